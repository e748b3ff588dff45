//! One harness run from start to end: databases and services up, the cold starts, the
//! scenarios each beside its baseline, memory, and everything torn down again.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::header::AUTHORIZATION;
use serde_json::{Value, json};

use crate::baseline::{self, BareResult, HelloServer};
use crate::load::{self, LoadResult, LoadSpec, RequestTemplate};
use crate::machine;
use crate::report::{self, ColdStart, Measured, MemoryFigure, Scenario};
use crate::revocation;
use crate::services::{Backend, Binaries, Kind, Service, ServiceConfig, free_port};

/// How long and how hard to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub duration: Duration,
    pub warmup: Duration,
    pub cold_starts: usize,
    /// The scenarios to run; empty: all of them.
    pub only: Vec<Only>,
    /// Run the HTTP scenarios at several connection counts (see
    /// [`Plan::connection_sweep`]).
    pub sweep: bool,
    /// Extra settings for the services (`IDP_*` go to the idp, `RS_*` to the resource
    /// server), to try a tuning.
    pub settings: Vec<(String, String)>,
}

impl Plan {
    fn runs(&self, scenario: Only) -> bool {
        self.only.is_empty() || self.only.contains(&scenario)
    }

    /// Connection counts the HTTP scenarios are run at; each server is reported at its
    /// best. How many concurrent connections a server needs to reach its peak differs
    /// (a handler that waits on a database thread peaks earlier than one that does not),
    /// so one fixed count would favour one of them. A quick run tries one.
    fn connection_sweep(&self, cores: usize) -> Vec<usize> {
        if self.sweep {
            vec![2 * cores, 8 * cores, 32 * cores]
        } else {
            vec![8 * cores]
        }
    }
}

/// The `--set` settings meant for the service whose variables start with `prefix`.
fn extra_settings(plan: &Plan, prefix: &str) -> Vec<(String, String)> {
    plan.settings
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .cloned()
        .collect()
}

/// Keeps the run with the higher throughput.
fn keep_best(best: &mut Option<(usize, LoadResult)>, connections: usize, run: LoadResult) {
    let better = best
        .as_ref()
        .is_none_or(|(_, b)| run.per_second() > b.per_second());
    if better {
        *best = Some((connections, run));
    }
}

/// A scenario to run alone (with `--only`, e.g. while profiling a service).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// 1. client_credentials vs bare RS256 signing.
    ClientCredentials,
    /// 2. password login vs bare Argon2id.
    Login,
    /// 3. GET /users/me vs a bare axum handler.
    UsersMe,
    /// 4. GET /jwks and the discovery document.
    Documents,
    /// Sign-out to the resource server's first refusal (6), and /users/me with
    /// 100,000 revocation entries vs none (7).
    Revocation,
}

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// Everything measured, as the report needs it (without the run's metadata).
pub struct Measurements {
    pub scenarios: Vec<Scenario>,
    pub below_saturation: Option<Scenario>,
    pub memory: Vec<MemoryFigure>,
    pub cold_starts: Vec<ColdStart>,
    /// Scenario 6.
    pub revocation: Option<revocation::Latency>,
    pub generator_cores: f64,
    /// Cores other processes kept busy meanwhile, on average.
    pub background_cores: f64,
    /// Requests that failed, over every run.
    pub errors: u64,
}

/// Runs everything on `backend`, dropping what it created even when a step fails.
pub async fn run(
    binaries: &Binaries,
    backend: &mut Backend,
    plan: &Plan,
) -> anyhow::Result<Measurements> {
    let dir = tempfile::tempdir().context("Failed to create a temporary folder")?;
    let result = run_in(binaries, backend, plan, dir.path()).await;
    let cleanup = backend.cleanup().await;
    let measurements = result?;
    cleanup?;
    Ok(measurements)
}

async fn run_in(
    binaries: &Binaries,
    backend: &mut Backend,
    plan: &Plan,
    dir: &Path,
) -> anyhow::Result<Measurements> {
    let cores = machine::cores();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let idp_port = free_port()?;
    let rs_port = free_port()?;
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let audience = format!("http://127.0.0.1:{rs_port}");
    let events_authorization = format!("Bearer {}", uuid::Uuid::new_v4().simple());
    let idp = ServiceConfig {
        kind: Kind::Idp,
        binary: binaries.idp.clone(),
        port: idp_port,
        env: vec![
            ("IDP_LISTEN".into(), format!("127.0.0.1:{idp_port}")),
            ("IDP_ISSUER".into(), issuer.clone()),
            ("IDP_AUDIENCE".into(), audience.clone()),
            (
                "IDP_DATABASE_URL".into(),
                backend.fresh_database("idp", dir).await?,
            ),
            (
                "IDP_KEYS_DIR".into(),
                dir.join("keys").display().to_string(),
            ),
            (
                "IDP_MAIL_DIR".into(),
                dir.join("mail").display().to_string(),
            ),
            ("RUST_LOG".into(), "warn".into()),
        ]
        .into_iter()
        .chain(extra_settings(plan, "IDP_"))
        .collect(),
        log: dir.join("idp.log"),
    };
    let rs = ServiceConfig {
        kind: Kind::ResourceServer,
        binary: binaries.resource_server.clone(),
        port: rs_port,
        env: vec![
            ("RS_LISTEN".into(), format!("127.0.0.1:{rs_port}")),
            ("RS_ISSUER".into(), issuer.clone()),
            ("RS_AUDIENCE".into(), audience.clone()),
            (
                "RS_DATABASE_URL".into(),
                backend.fresh_database("rs", dir).await?,
            ),
            (
                "RS_EVENTS_AUTHORIZATION".into(),
                events_authorization.clone(),
            ),
            ("RUST_LOG".into(), "warn".into()),
        ]
        .into_iter()
        .chain(extra_settings(plan, "RS_"))
        .collect(),
        log: dir.join("resource-server.log"),
    };

    eprintln!("== cold starts ({} each)", plan.cold_starts);
    let cold_starts = vec![
        cold_start(&idp, &http, plan.cold_starts).await?,
        cold_start(&rs, &http, plan.cold_starts).await?,
    ];

    let mut idp_service = idp.spawn()?;
    idp_service
        .wait_healthy(&http, Duration::from_secs(30))
        .await?;
    let mut rs_service = rs.spawn()?;
    rs_service
        .wait_healthy(&http, Duration::from_secs(30))
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = [
        machine::memory(idp_service.pid())?,
        machine::memory(rs_service.pid())?,
    ];

    // Set-up: a confidential client, a user, and their access token.
    let created: Value = serde_json::from_str(&idp.run_command(&[
        "clients",
        "create",
        "--name",
        "bench",
        "--grant-type",
        "client_credentials",
        "--scope",
        "users:read",
        "--json",
    ])?)
    .context("`idp clients create --json` printed something else than JSON")?;
    let client_id = created["client_id"].as_str().context("No client_id")?;
    let client_secret = created["client_secret"]
        .as_str()
        .context("No client_secret")?;
    let credentials = json!({"email": EMAIL, "password": PASSWORD}).to_string();
    let registered = http
        .post(format!("{issuer}/auth/register"))
        .header("content-type", "application/json")
        .body(credentials.clone())
        .send()
        .await?;
    if registered.status() != reqwest::StatusCode::CREATED {
        bail!("Registration failed: {}", registered.text().await?);
    }
    let token = &revocation::log_in(&http, &issuer, &credentials).await?;
    // Creates the profile and fills the resource server's key cache.
    http.get(format!("{audience}/users/me"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()
        .context("GET /users/me failed during set-up")?;

    let mut scenarios = Vec::new();
    let mut runs: Vec<LoadResult> = Vec::new();
    let idp_pid = Some(idp_service.pid());
    let rs_pid = Some(rs_service.pid());

    if plan.runs(Only::ClientCredentials) {
        eprintln!("== 1. client_credentials POST /token vs bare RS256 signing ({cores} threads)");
        let key = baseline::signing_key()?;
        let basic = STANDARD.encode(format!(
            "{}:{}",
            form_urlencode(client_id),
            form_urlencode(client_secret)
        ));
        let connections = 4 * cores;
        let token_request = spec(
            idp.addr(),
            RequestTemplate::post(
                "/token",
                "application/x-www-form-urlencoded",
                "grant_type=client_credentials",
            )
            .header(AUTHORIZATION, &format!("Basic {basic}"))?,
            connections,
            plan,
            idp_pid,
        );
        let (bare_sign, cc) = interleaved(
            plan,
            |warmup, window| baseline::sign(&key, cores, warmup, window),
            &token_request,
        )
        .await?;
        scenarios.push(Scenario {
            name: "client_credentials",
            unit: "/s",
            connections,
            server: measured("client_credentials POST /token", &cc),
            baseline: bare(&format!("bare RS256 signing, {cores} threads"), &bare_sign),
            target_ratio: Some(report::CLIENT_CREDENTIALS_RATIO),
        });
        runs.push(cc);
    }

    if plan.runs(Only::Login) {
        eprintln!("== 2. POST /auth/login vs bare Argon2id ({cores} threads)");
        let phc = baseline::argon2_phc()?;
        let connections = 2 * cores;
        let login_request = spec(
            idp.addr(),
            RequestTemplate::post("/auth/login", "application/json", credentials.clone()),
            connections,
            plan,
            idp_pid,
        );
        let (bare_hash, logins) = interleaved(
            plan,
            |warmup, window| baseline::argon2(&phc, cores, warmup, window),
            &login_request,
        )
        .await?;
        scenarios.push(Scenario {
            name: "login",
            unit: "/s",
            connections,
            server: measured("POST /auth/login", &logins),
            baseline: bare(&format!("bare Argon2id, {cores} threads"), &bare_hash),
            target_ratio: Some(report::LOGIN_RATIO),
        });
        runs.push(logins);
    }

    let mut below_saturation = None;
    if plan.runs(Only::UsersMe) || plan.runs(Only::Documents) {
        let hello = HelloServer::start(cores)?;
        let hello_request = RequestTemplate::get("/");
        let me_request =
            RequestTemplate::get("/users/me").header(AUTHORIZATION, &format!("Bearer {token}"))?;
        let sweep = plan.connection_sweep(cores);
        let mut hello_best: Option<(usize, LoadResult)> = None;
        let mut me_best: Option<(usize, LoadResult)> = None;
        for &connections in &sweep {
            let hello_spec = spec(hello.addr, hello_request.clone(), connections, plan, None);
            if plan.runs(Only::UsersMe) {
                eprintln!("== 3. GET /users/me vs a bare axum handler, {connections} connections");
                let me_spec = spec(rs.addr(), me_request.clone(), connections, plan, rs_pid);
                let (h, m) = interleaved_loads(plan, &hello_spec, &me_spec).await?;
                keep_best(&mut hello_best, connections, h);
                keep_best(&mut me_best, connections, m);
            } else {
                eprintln!("== 3. a bare axum handler, {connections} connections");
                keep_best(&mut hello_best, connections, load::run(&hello_spec).await?);
            }
        }
        let (hello_connections, hello_run) = hello_best.context("No hello-world run")?;
        let hello_measured = measured(
            &format!("bare axum hello world ({hello_connections} connections)"),
            &hello_run,
        );
        runs.push(hello_run);

        if let Some((connections, me)) = me_best {
            scenarios.push(Scenario {
                name: "/users/me",
                unit: "/s",
                connections,
                server: measured("GET /users/me", &me),
                baseline: hello_measured.clone(),
                target_ratio: Some(report::USERS_ME_RATIO),
            });
            let rate = (me.per_second() / 2.0).max(1.0);
            runs.push(me);
            eprintln!(
                "== 3. GET /users/me and the bare handler paced at {rate:.0}/s (half of saturation)"
            );
            let mut paced_me = spec(rs.addr(), me_request, connections, plan, rs_pid);
            paced_me.rate = Some(rate);
            let mut paced_hello = spec(hello.addr, hello_request, connections, plan, None);
            paced_hello.rate = Some(rate);
            let (hello_paced, me_paced) = interleaved_loads(plan, &paced_hello, &paced_me).await?;
            below_saturation = Some(Scenario {
                name: "/users/me at half load",
                unit: "/s",
                connections,
                server: measured(&format!("GET /users/me at {rate:.0}/s"), &me_paced),
                baseline: measured(
                    &format!("bare axum hello world at {rate:.0}/s"),
                    &hello_paced,
                ),
                target_ratio: None,
            });
            runs.push(me_paced);
            runs.push(hello_paced);
        }
        drop(hello);

        if plan.runs(Only::Documents) {
            for (name, path, label) in [
                ("/jwks", "/jwks", "GET /jwks"),
                (
                    "discovery",
                    "/.well-known/openid-configuration",
                    "GET /.well-known/openid-configuration",
                ),
            ] {
                let mut best: Option<(usize, LoadResult)> = None;
                for &connections in &sweep {
                    eprintln!("== 4. {label}, {connections} connections");
                    let run = load::run(&spec(
                        idp.addr(),
                        RequestTemplate::get(path),
                        connections,
                        plan,
                        idp_pid,
                    ))
                    .await?;
                    keep_best(&mut best, connections, run);
                }
                let (connections, run) = best.context("No run")?;
                scenarios.push(Scenario {
                    name,
                    unit: "/s",
                    connections,
                    server: measured(label, &run),
                    baseline: hello_measured.clone(),
                    target_ratio: None,
                });
                runs.push(run);
            }
        }
    }

    let mut latency = None;
    let mut revocation_memory = None;
    if plan.runs(Only::Revocation) {
        // At least 20 sign-outs; ten per second of the plan's duration, at most 200.
        let rounds = ((plan.duration.as_secs_f64() * 10.0) as usize).clamp(20, 200);
        // The resource server hears of sign-outs as `cargo run` wires it. Only from here:
        // the login scenario signs one user in past the session cap, and each eviction
        // would push an event, work a real mix of users rarely causes.
        revocation::connect(&idp, &audience, &audience, &events_authorization)?;
        eprintln!(
            "== 6. sign-out at the idp to the first refusal at the resource server, {rounds} times"
        );
        latency = Some(revocation::latency(&http, &issuer, &audience, &credentials, rounds).await?);
        let connections = plan.connection_sweep(cores)[0];
        let (empty, full) = revocation_pair(&rs, backend, dir).await?;
        let full_idle = machine::memory(full.1.pid())?;
        let me_request =
            RequestTemplate::get("/users/me").header(AUTHORIZATION, &format!("Bearer {token}"))?;
        for service in [&empty.0, &full.0] {
            http.get(format!("{}/users/me", service.base_url()))
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()
                .context("GET /users/me failed on a revocation resource server")?;
        }
        eprintln!(
            "== 7. GET /users/me with {} revocation entries vs none, {connections} connections",
            revocation::SEEDED_ENTRIES
        );
        let (none, many) = interleaved_loads(
            plan,
            &spec(
                empty.0.addr(),
                me_request.clone(),
                connections,
                plan,
                Some(empty.1.pid()),
            ),
            &spec(
                full.0.addr(),
                me_request,
                connections,
                plan,
                Some(full.1.pid()),
            ),
        )
        .await?;
        let full_end = machine::memory(full.1.pid())?;
        let (rss_none, rss_many) = (machine::memory(empty.1.pid())?.rss_mib, full_end.rss_mib);
        // Held to the same memory targets as the services: the list is loaded at start.
        revocation_memory = Some(MemoryFigure {
            service: "resource-server with 100,000 revocations",
            idle_mib: full_idle.rss_mib,
            end_mib: full_end.rss_mib,
            peak_mib: full_end.peak_mib,
        });
        scenarios.push(Scenario {
            name: "/users/me, 100k revocations",
            unit: "/s",
            connections,
            server: measured(
                &format!("GET /users/me, 100,000 revocation entries (RSS {rss_many:.1} MiB)"),
                &many,
            ),
            baseline: measured(
                &format!("GET /users/me, no revocation entries (RSS {rss_none:.1} MiB)"),
                &none,
            ),
            target_ratio: Some(report::REVOCATIONS_RATIO),
        });
        runs.push(none);
        runs.push(many);
        empty.1.stop().await?;
        full.1.stop().await?;
    }

    // Memory at the end of the load, then a graceful stop.
    let end = [
        machine::memory(idp_service.pid())?,
        machine::memory(rs_service.pid())?,
    ];
    let memory = [Kind::Idp, Kind::ResourceServer]
        .iter()
        .zip(idle.iter().zip(end.iter()))
        .map(|(kind, (idle, end))| MemoryFigure {
            service: kind.name(),
            idle_mib: idle.rss_mib,
            end_mib: end.rss_mib,
            peak_mib: end.peak_mib,
        })
        .chain(revocation_memory)
        .collect();
    rs_service.stop().await?;
    idp_service.stop().await?;

    let errors: u64 = runs.iter().map(|r| r.errors).sum();
    if errors > 0 {
        let first = runs
            .iter()
            .find_map(|r| r.first_error.clone())
            .unwrap_or_default();
        eprintln!("!! {errors} requests failed; the first: {first}");
    }
    // How much of the machine the generator took while it loaded a separate process.
    let loaded: Vec<&LoadResult> = runs
        .iter()
        .filter(|r| r.server_cpu_seconds.is_some())
        .collect();
    let generator_cores = loaded
        .iter()
        .map(|r| r.client_cpu_seconds / r.window.as_secs_f64())
        .sum::<f64>()
        / loaded.len().max(1) as f64;
    let background_cores =
        loaded.iter().map(|r| r.background_cores()).sum::<f64>() / loaded.len().max(1) as f64;
    Ok(Measurements {
        scenarios,
        below_saturation,
        memory,
        cold_starts,
        revocation: latency,
        generator_cores,
        background_cores,
        errors,
    })
}

/// Two more resource servers like `rs` on fresh databases: one with no revocation
/// entries, one with [`revocation::SEEDED_ENTRIES`] (written after a first start created
/// the tables, loaded by the second).
async fn revocation_pair(
    rs: &ServiceConfig,
    backend: &mut Backend,
    dir: &Path,
) -> anyhow::Result<((ServiceConfig, Service), (ServiceConfig, Service))> {
    let http = reqwest::Client::new();
    let mut started = Vec::new();
    for (name, seeded) in [("rs-empty", false), ("rs-seeded", true)] {
        let port = free_port()?;
        let database_url = backend.fresh_database(name, dir).await?;
        let mut config = rs.clone();
        config.port = port;
        config.log = dir.join(format!("{name}.log"));
        for (key, value) in &mut config.env {
            match key.as_str() {
                "RS_LISTEN" => *value = format!("127.0.0.1:{port}"),
                "RS_DATABASE_URL" => value.clone_from(&database_url),
                _ => {}
            }
        }
        let mut service = config.spawn()?;
        service.wait_healthy(&http, Duration::from_secs(30)).await?;
        if seeded {
            service.stop().await?;
            revocation::seed(&database_url).await?;
            service = config.spawn()?;
            service.wait_healthy(&http, Duration::from_secs(60)).await?;
        }
        started.push((config, service));
    }
    let seeded = started.pop().context("No seeded resource server")?;
    let empty = started.pop().context("No empty resource server")?;
    Ok((empty, seeded))
}

/// The measurement window split into slices of about two seconds, each with its
/// warm-up (the first one the plan's): a baseline and its scenario take turns slice by
/// slice, so a drift in what the machine gives us (other tenants, frequency) falls on
/// both alike instead of on whichever ran second.
fn slices(plan: &Plan) -> Vec<(Duration, Duration)> {
    let rounds = (plan.duration.as_secs_f64() / 2.0).round().max(1.0);
    let window = plan.duration.div_f64(rounds);
    (0..rounds as usize)
        .map(|i| {
            let warmup = if i == 0 {
                plan.warmup
            } else {
                plan.warmup.min(Duration::from_millis(300))
            };
            (warmup, window)
        })
        .collect()
}

/// A bare baseline and a load run, taking turns (see [`slices`]).
async fn interleaved(
    plan: &Plan,
    bare: impl Fn(Duration, Duration) -> anyhow::Result<BareResult>,
    load: &LoadSpec,
) -> anyhow::Result<(BareResult, LoadResult)> {
    let mut total: Option<(BareResult, LoadResult)> = None;
    for (warmup, window) in slices(plan) {
        // The harness's runtime has one thread and nothing else to do meanwhile, so the
        // bare runs may block it.
        let b = bare(warmup, window)?;
        let l = load::run(&LoadSpec {
            warmup,
            duration: window,
            ..load.clone()
        })
        .await?;
        total = Some(match total {
            None => (b, l),
            Some((mut tb, mut tl)) => {
                tb.absorb(b)?;
                tl.absorb(l)?;
                (tb, tl)
            }
        });
    }
    total.context("No slices to measure")
}

/// Two load runs, taking turns (see [`slices`]).
async fn interleaved_loads(
    plan: &Plan,
    first: &LoadSpec,
    second: &LoadSpec,
) -> anyhow::Result<(LoadResult, LoadResult)> {
    let mut total: Option<(LoadResult, LoadResult)> = None;
    for (warmup, window) in slices(plan) {
        let slice = |spec: &LoadSpec| LoadSpec {
            warmup,
            duration: window,
            ..spec.clone()
        };
        let a = load::run(&slice(first)).await?;
        let b = load::run(&slice(second)).await?;
        total = Some(match total {
            None => (a, b),
            Some((mut ta, mut tb)) => {
                ta.absorb(a)?;
                tb.absorb(b)?;
                (ta, tb)
            }
        });
    }
    total.context("No slices to measure")
}

/// Starts the service once on its empty database, then `runs` more times on it; each
/// time from spawn to the first 200 from `/health`, then a graceful stop.
async fn cold_start(
    config: &ServiceConfig,
    http: &reqwest::Client,
    runs: usize,
) -> anyhow::Result<ColdStart> {
    let mut times = Vec::new();
    for _ in 0..=runs {
        let mut service: Service = config.spawn()?;
        let took = service.wait_healthy(http, Duration::from_secs(30)).await?;
        times.push(took.as_secs_f64() * 1000.0);
        service.stop().await?;
    }
    let first_ms = times.remove(0);
    Ok(ColdStart {
        service: config.kind.name(),
        first_ms,
        restarts_ms: times,
    })
}

fn spec(
    addr: SocketAddr,
    request: RequestTemplate,
    connections: usize,
    plan: &Plan,
    server_pid: Option<u32>,
) -> LoadSpec {
    LoadSpec {
        addr,
        request,
        connections,
        warmup: plan.warmup,
        duration: plan.duration,
        rate: None,
        server_pid,
    }
}

fn measured(label: &str, run: &LoadResult) -> Measured {
    Measured {
        label: label.to_owned(),
        per_second: run.per_second(),
        p50_ms: run.p50_ms(),
        p99_ms: run.p99_ms(),
        errors: run.errors,
        cpu_micros_per_op: run.server_cpu_micros_per_request(),
    }
}

fn bare(label: &str, run: &BareResult) -> Measured {
    Measured {
        label: label.to_owned(),
        per_second: run.per_second(),
        p50_ms: run.p50_ms(),
        p99_ms: run.p99_ms(),
        errors: 0,
        cpu_micros_per_op: Some(run.cpu_micros_per_op()),
    }
}

/// `application/x-www-form-urlencoded` for one credential (RFC 6749 §2.3.1).
fn form_urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
