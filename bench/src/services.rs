//! The services under test, as the real release binaries in child processes: building
//! them, fresh databases (SQLite files in a temporary folder, or PostgreSQL databases
//! named `bench_*_test_*` that are dropped at the end), free loopback ports, starting,
//! waiting for `/health`, and stopping with SIGTERM.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::{Connection, Executor};

/// The workspace root, where `cargo build` runs and `docs/` lives.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The two service binaries, found next to the harness's own executable.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub idp: PathBuf,
    pub resource_server: PathBuf,
    /// The cargo profile they were built with (`release` for meaningful figures).
    pub profile: String,
}

impl Binaries {
    /// Builds the services with the harness's own profile (unless `no_build`) and
    /// locates them next to the harness.
    pub fn build_and_locate(no_build: bool) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("Failed to locate the bench executable")?;
        let dir = exe
            .parent()
            .context("The bench executable has no folder")?
            .to_path_buf();
        let profile = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("release")
            .to_owned();
        if !no_build {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let mut command = Command::new(cargo);
            command.current_dir(workspace_root()).args([
                "build",
                "-p",
                "idp",
                "-p",
                "resource-server",
            ]);
            match profile.as_str() {
                "debug" => {}
                "release" => {
                    command.arg("--release");
                }
                other => {
                    command.args(["--profile", other]);
                }
            }
            eprintln!("== building the services: {command:?}");
            let status = command.status().context("Failed to run cargo build")?;
            if !status.success() {
                bail!("cargo build of the services failed ({status})");
            }
        }
        let binaries = Self {
            idp: dir.join("idp"),
            resource_server: dir.join("resource-server"),
            profile,
        };
        for bin in [&binaries.idp, &binaries.resource_server] {
            if !bin.is_file() {
                bail!(
                    "{} is missing: run `cargo build --release -p idp -p resource-server` \
                     (or drop --no-build)",
                    bin.display()
                );
            }
        }
        Ok(binaries)
    }
}

/// Where the services keep their data for one harness run.
pub enum Backend {
    Sqlite,
    Postgres {
        admin_url: String,
        created: Vec<String>,
    },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => crate::report::SQLITE,
            Self::Postgres { .. } => crate::report::POSTGRES,
        }
    }

    pub async fn postgres(admin_url: &str) -> anyhow::Result<Self> {
        sqlx::PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("PostgreSQL is unreachable at {admin_url}"))?
            .close()
            .await?;
        Ok(Self::Postgres {
            admin_url: admin_url.to_owned(),
            created: Vec::new(),
        })
    }

    /// A new, empty database for `service`.
    pub async fn fresh_database(&mut self, service: &str, dir: &Path) -> anyhow::Result<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match self {
            Self::Sqlite => Ok(format!(
                "sqlite://{}/{service}-{}.db",
                dir.display(),
                &id[..8]
            )),
            Self::Postgres { admin_url, created } => {
                let name = format!("bench_{service}_test_{id}");
                let mut admin = sqlx::PgConnection::connect(admin_url).await?;
                admin
                    .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
                    .await
                    .with_context(|| format!("Failed to create database {name}"))?;
                admin.close().await?;
                created.push(name.clone());
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(base, _)| base);
                Ok(format!("{base}/{name}"))
            }
        }
    }

    /// Drops every database this run created.
    pub async fn cleanup(&mut self) -> anyhow::Result<()> {
        if let Self::Postgres { admin_url, created } = self {
            let mut admin = sqlx::PgConnection::connect(admin_url).await?;
            for name in created.drain(..) {
                admin
                    .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await
                    .with_context(|| format!("Failed to drop database {name}"))?;
            }
            admin.close().await?;
        }
        Ok(())
    }
}

/// A free port on loopback (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("Failed to bind a free port")?;
    Ok(listener.local_addr()?.port())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Idp,
    ResourceServer,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Idp => "idp",
            Self::ResourceServer => "resource-server",
        }
    }
}

/// Everything a service needs to start: its binary and its environment.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub kind: Kind,
    pub binary: PathBuf,
    pub port: u16,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

impl ServiceConfig {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Runs the binary with `args` in this environment (e.g. `idp clients create`) and
    /// returns its standard output.
    pub fn run_command(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("Failed to run {}", self.binary.display()))?;
        if !output.status.success() {
            bail!(
                "{} {} failed: {}",
                self.kind.name(),
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        String::from_utf8(output.stdout).context("Command output is not UTF-8")
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        // Only our settings: nothing from the caller's IDP_* / RS_* environment.
        for (name, _) in std::env::vars() {
            if name.starts_with("IDP_") || name.starts_with("RS_") {
                command.env_remove(name);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Starts the service; the returned value stops it when dropped.
    pub fn spawn(&self) -> anyhow::Result<Service> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .context("Failed to open a service log")?;
        let mut command = self.command();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let spawned_at = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("Failed to start {}", self.binary.display()))?;
        Ok(Service {
            config: self.clone(),
            child: Some(child),
            spawned_at,
        })
    }
}

/// A running service process.
pub struct Service {
    pub config: ServiceConfig,
    child: Option<Child>,
    spawned_at: Instant,
}

impl Service {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Polls `GET /health` until it answers 200; returns the time from spawn to that
    /// answer (the cold start).
    pub async fn wait_healthy(
        &mut self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        let url = format!("{}/health", self.config.base_url());
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status() == reqwest::StatusCode::OK
            {
                return Ok(self.spawned_at.elapsed());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{} exited ({status}) before it was healthy; its log:\n{}",
                    self.config.kind.name(),
                    log_tail(&self.config.log)
                );
            }
            if self.spawned_at.elapsed() > timeout {
                bail!(
                    "{} was not healthy after {timeout:?}; its log:\n{}",
                    self.config.kind.name(),
                    log_tail(&self.config.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// SIGTERM (graceful shutdown), then SIGKILL if it has not exited within 5 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.kill()?;
        child.wait()?;
        bail!("{} did not stop on SIGTERM", self.config.kind.name())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last lines of a service log, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
