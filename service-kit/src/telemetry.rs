//! Tracing set-up: one subscriber per process, filter from `RUST_LOG`, written to
//! stderr (stdout is for command output such as `idp clients create --json`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset.
/// Calling it twice is harmless (the second call is ignored), so the launcher and the
/// services can all call it.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}
