//! `idp users ...`: an operator's decisions about accounts. `disable` stops an account
//! signing in, ends its sessions and tells the event receivers (RISC
//! `account-disabled`, so resource servers refuse its tokens); `enable` undoes it.

use clap::Subcommand;
use serde_json::json;
use service_kit::clock::Clock;
use service_kit::db::Database;

use crate::accounts::status::{AccountStatus, StatusChange, StatusError};
use crate::app::settings::Settings;
use crate::events::Events;
use crate::sessions::records::UserSessions;
use crate::storage;

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Stop an account signing in: its sessions end, its grants are revoked, and
    /// resource servers refuse its tokens until it is enabled.
    Disable {
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// Let a disabled account sign in again.
    Enable {
        email: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: UsersCommand, settings: &Settings) -> anyhow::Result<()> {
    let db = Database::connect(&settings.database_url, 1).await?;
    db.migrate(&storage::MIGRATIONS).await?;
    let clock = Clock::system();
    // The events are queued here; a running idp delivers them within
    // IDP_EVENTS_POLL_SECS.
    let sessions = UserSessions::new(
        db.pool.clone(),
        clock.clone(),
        settings.session_policy(),
        Events::new(&settings.issuer, clock.clone()),
    );
    let status = AccountStatus::new(db.pool.clone(), clock, sessions);
    let (email, json, disable) = match command {
        UsersCommand::Disable { email, json } => (email, json, true),
        UsersCommand::Enable { email, json } => (email, json, false),
    };
    let outcome = if disable {
        status.disable(&email).await
    } else {
        status.enable(&email).await
    };
    let (user_id, changed) = match outcome {
        Ok(StatusChange::Changed(id)) => (id, true),
        Ok(StatusChange::Unchanged(id)) => (id, false),
        Err(StatusError::NoSuchAccount) => anyhow::bail!("No account has the address {email}"),
        Err(StatusError::Unexpected(e)) => return Err(e),
    };
    let state = if disable { "disabled" } else { "enabled" };
    if json {
        println!(
            "{}",
            json!({ "user_id": user_id, "state": state, "changed": changed })
        );
    } else if changed {
        println!("{email} ({user_id}) is {state} now.");
    } else {
        println!("{email} ({user_id}) was {state} already.");
    }
    Ok(())
}
