//! The `idp` binary: `idp serve` (the default) or `idp migrate`.

use clap::{Parser, Subcommand};
use idp::settings::Settings;
use idp::startup::Application;

/// The identity provider. Configuration comes from IDP_* environment variables (see
/// the README), optionally a TOML file named by IDP_CONFIG.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::init("info,sqlx=warn");
    let cli = Cli::parse();
    let settings = Settings::load()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Migrate => {
            let db = service_kit::db::Database::connect(&settings.database_url, 1).await?;
            db.migrate(&idp::storage::MIGRATIONS).await?;
            println!("Migrations applied.");
            Ok(())
        }
    }
}
