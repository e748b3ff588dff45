//! The `idp` binary: `idp serve` (the default), `idp migrate`, `idp clients ...`,
//! `idp keys ...`, `idp mail ...`, `idp streams ...`, `idp users ...`.

use clap::{Parser, Subcommand};
use idp::app::settings::Settings;
use idp::app::startup::Application;
use idp::cli::streams::StreamsCommand;
use idp::cli::users::UsersCommand;
use idp::cli::{ClientsCommand, KeysCommand, MailCommand};

/// The identity provider. Configuration comes from IDP_* environment variables (see
/// docs/settings.md), optionally a TOML file named by IDP_CONFIG.
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
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage the signing keys: list, rotate [--now], revoke KID.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Mail not yet sent: list [--json], retry ID | --all (dead letters).
    #[command(subcommand)]
    Mail(MailCommand),
    /// Receivers of security events: create, list, delete, outbox, retry.
    #[command(subcommand)]
    Streams(StreamsCommand),
    /// Accounts: disable EMAIL, enable EMAIL.
    #[command(subcommand)]
    Users(UsersCommand),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_kit::telemetry::init("info,sqlx=warn");
    service_kit::process::exit_code(run(Cli::parse()).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
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
        Command::Clients(command) => idp::cli::run(command, &settings).await,
        Command::Keys(command) => idp::cli::run_keys(command, &settings).await,
        Command::Mail(command) => idp::cli::run_mail(command, &settings).await,
        Command::Streams(command) => idp::cli::streams::run(command, &settings).await,
        Command::Users(command) => idp::cli::users::run(command, &settings).await,
    }
}
