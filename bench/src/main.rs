//! `bench`: the benchmark harness of issue 6.
//!
//! It builds and starts the real release binaries of the idp and the resource server on
//! loopback, with fresh databases (SQLite files, or PostgreSQL databases with
//! `--postgres`), drives them with its own closed-loop load generator, and measures every
//! figure as a ratio to a baseline measured in the same run on the same cores: bare
//! RS256 signing, bare Argon2id, and a bare axum handler. It prints a table and writes
//! `docs/BENCHMARKS.md` and `docs/benchmarks.svg` (`-postgres` ones for PostgreSQL).

mod baseline;
mod chart;
mod load;
mod machine;
mod notes;
mod report;
mod revocation;
mod scenarios;
mod services;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::report::Run;
use crate::scenarios::{Only, Plan};
use crate::services::{Backend, Binaries, workspace_root};

/// Benchmarks the idp and the resource server against the physical limits of the
/// machine (bare signing, bare Argon2id, a bare axum handler), measured in the same run.
#[derive(Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every scenario: client_credentials, login, /users/me, /jwks and discovery,
    /// memory, and cold start.
    All(Options),
}

#[derive(Args)]
struct Options {
    /// Run the services on fresh PostgreSQL databases (`bench_*_test_*`, dropped at the
    /// end) instead of SQLite files.
    #[arg(long)]
    postgres: bool,
    /// The PostgreSQL server to create the databases on.
    #[arg(
        long,
        env = "TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// About two seconds per scenario, for CI: fails on any error, asserts nothing about
    /// timing, and writes no report unless --out says where.
    #[arg(long, conflicts_with = "long")]
    quick: bool,
    /// 30 seconds per scenario.
    #[arg(long)]
    long: bool,
    /// Seconds of load per scenario (after a warm-up); overrides --quick and --long.
    #[arg(long)]
    seconds: Option<f64>,
    /// Where to write the report and its chart (BENCHMARKS.md and benchmarks.svg, or
    /// BENCHMARKS-postgres.md and benchmarks-postgres.svg) [default: docs/, except with
    /// --quick].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Do not run `cargo build` for the services first.
    #[arg(long)]
    no_build: bool,
    /// Run only this scenario (repeat for several), e.g. while profiling a service;
    /// writes no report unless --out says where (nor does --set).
    #[arg(long, value_enum)]
    only: Vec<Only>,
    /// A setting for the services, e.g. `--set IDP_MAX_CONCURRENT_HASHES=1` (repeat for
    /// several): `IDP_*` go to the idp, `RS_*` to the resource server. The defaults are
    /// what is measured otherwise.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_setting)]
    settings: Vec<(String, String)>,
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if name.starts_with("IDP_") || name.starts_with("RS_") => {
            Ok((name.to_owned(), value.to_owned()))
        }
        _ => Err("expected IDP_NAME=VALUE or RS_NAME=VALUE".to_owned()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::All(options) = cli.command;
    // One thread: the load generator must leave the cores to the servers it measures.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(all(options)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn all(options: Options) -> anyhow::Result<ExitCode> {
    machine::check_supported()?;
    let binaries = Binaries::build_and_locate(options.no_build)?;
    if binaries.profile != "release" {
        eprintln!(
            "warning: the services are a {} build; figures mean little outside --release",
            binaries.profile
        );
    }
    let seconds = options.seconds.unwrap_or(if options.quick {
        2.0
    } else if options.long {
        30.0
    } else {
        10.0
    });
    let duration = Duration::from_secs_f64(seconds.max(0.1));
    let plan = Plan {
        duration,
        warmup: (duration / 4).min(Duration::from_secs(2)),
        cold_starts: if options.quick {
            3
        } else if options.long {
            9
        } else {
            5
        },
        only: options.only.clone(),
        sweep: !options.quick,
        settings: options.settings.clone(),
    };
    let mut backend = if options.postgres {
        Backend::postgres(&options.postgres_url).await?
    } else {
        Backend::Sqlite
    };
    eprintln!(
        "== {} backend, {:.0} s per scenario",
        backend.name(),
        duration.as_secs_f64()
    );
    let measured = scenarios::run(&binaries, &mut backend, &plan).await?;
    let errors = measured.errors;
    let run = Run {
        machine: machine::describe(),
        command: command_line(),
        backend: backend.name(),
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        commit: commit(),
        seconds_per_scenario: duration.as_secs_f64(),
        scenarios: measured.scenarios,
        below_saturation: measured.below_saturation,
        memory: measured.memory,
        cold_starts: measured.cold_starts,
        revocation: measured.revocation,
        generator_cores: measured.generator_cores,
        background_cores: measured.background_cores,
    };
    run.print();
    // A quick or partial run never replaces the published figures by itself.
    let out = match options.out {
        Some(out) => Some(out),
        None if !options.quick && options.only.is_empty() && options.settings.is_empty() => {
            Some(workspace_root().join("docs"))
        }
        None => None,
    };
    if let Some(out) = out {
        std::fs::create_dir_all(&out)
            .with_context(|| format!("Failed to create {}", out.display()))?;
        let files = run.files();
        let md = out.join(files.markdown);
        std::fs::write(&md, run.markdown())
            .with_context(|| format!("Failed to write {}", md.display()))?;
        let svg = out.join(files.chart);
        chart::write(&run, &svg)?;
        eprintln!("== wrote {} and {}", md.display(), svg.display());
    }
    if errors > 0 {
        eprintln!("error: {errors} requests failed (every scenario must have none)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// How this run was started, for the report: through `cargo run` (which sets `CARGO`
/// for the program it runs) or as the binary itself.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os("CARGO").is_some() {
        format!("cargo run --release -p bench -- {}", args.join(" "))
    } else {
        format!("target/release/bench {}", args.join(" "))
    }
}

/// The commit the services were built from, marked when the tree had changes.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(workspace_root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_owned();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head} + uncommitted changes"),
        _ => head,
    }
}
