//! `resource-server [serve]` runs the profile API; `resource-server migrate` applies
//! the database migrations and exits. Settings come from `RS_*` variables (and the TOML
//! file `RS_CONFIG` names).

use anyhow::bail;
use resource_server::Settings;
use resource_server::startup::{Application, connect_and_migrate};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_kit::telemetry::init("info,sqlx=warn");
    service_kit::process::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let command = std::env::args().nth(1);
    let settings = Settings::load()?;
    match command.as_deref() {
        None | Some("serve") => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
        }
        Some("migrate") => {
            connect_and_migrate(&settings).await?;
            tracing::info!("Migrations applied");
            Ok(())
        }
        Some(other) => {
            bail!("unknown command {other:?}: expected `serve` (the default) or `migrate`")
        }
    }
}
