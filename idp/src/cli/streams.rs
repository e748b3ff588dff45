//! `idp streams ...`: the receivers of security events (SSF push streams), what is
//! waiting for them, and dead letters sent again. See docs/events.md.

use std::sync::Arc;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::json;
use service_kit::clock::Clock;
use service_kit::db::Database;

use crate::app::settings::Settings;
use crate::cli::{DELIVERY_HEADER, Retry, delivery_columns};
use crate::events::store::{self as queued, Receiver};
use crate::events::streams::{NewStream, StreamError, Streams};
use crate::keys::KeyEncryptionKey;
use crate::storage;
use crate::storage::outbox::Table;

#[derive(Subcommand)]
pub enum StreamsCommand {
    /// Add a receiver, or change one with --replace.
    Create(CreateArgs),
    /// List the receivers, with how many events wait for each and how many failed.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a receiver and the events queued for it.
    Delete { name: String },
    /// Events and logout tokens not yet delivered: pending (attempts, next try, last
    /// error) and failed (dead letters).
    Outbox {
        #[arg(long)]
        json: bool,
    },
    /// Queue dead letters again with fresh attempts: one by id, or all with --all.
    Retry(Retry),
}

#[derive(Args)]
pub struct CreateArgs {
    /// The receiver's name (unique), shown in logs and lists.
    #[arg(long)]
    name: String,
    /// Where SETs are POSTed (RFC 8935), e.g. https://rs.example/events.
    #[arg(long)]
    push_url: String,
    /// The `aud` of its SETs: how the receiver names itself.
    #[arg(long)]
    audience: String,
    /// An event type it wants (session-revoked, credential-change, account-disabled,
    /// account-enabled); repeat for several [default: all].
    #[arg(long = "event")]
    events: Vec<String>,
    /// The name of an environment variable holding the Authorization header value sent
    /// with each push (e.g. "Bearer ..."), kept out of shell history and process lists.
    #[arg(long, conflicts_with = "authorization")]
    authorization_env: Option<String>,
    /// The Authorization header value itself (prefer --authorization-env).
    #[arg(long)]
    authorization: Option<String>,
    /// Change the receiver of that name instead of failing.
    #[arg(long)]
    replace: bool,
    #[arg(long)]
    json: bool,
}

/// The receivers, on the database and key-encryption key `serve` uses.
async fn streams(settings: &Settings) -> anyhow::Result<(Database, Streams)> {
    let db = Database::connect(&settings.database_url, 1).await?;
    db.migrate(&storage::MIGRATIONS).await?;
    let kek = KeyEncryptionKey::load_or_create(
        settings.key_encryption_key.as_ref().map(|k| k.0.as_str()),
        &settings.keys_dir,
    )?;
    let streams = Streams::new(db.pool.clone(), Arc::new(kek), Clock::system());
    Ok((db, streams))
}

pub async fn run(command: StreamsCommand, settings: &Settings) -> anyhow::Result<()> {
    let (db, streams) = streams(settings).await?;
    match command {
        StreamsCommand::Create(args) => create(&streams, args).await,
        StreamsCommand::List { json } => {
            let list = streams.list().await?;
            let counts = queued::counts(&db.pool).await?;
            let count = |id: &str| {
                let key = Receiver::Stream(id).key();
                counts.get(&key).copied().unwrap_or_default()
            };
            if json {
                let items: Vec<_> = list
                    .iter()
                    .map(|s| {
                        let (pending, failed) = count(&s.id);
                        json!({ "stream": s, "pending": pending, "failed": failed })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else if list.is_empty() {
                println!("No event streams (see `idp streams create --help`).");
            } else {
                println!("name\tpush url\taudience\tevents\tpending\tfailed");
                for s in &list {
                    let (pending, failed) = count(&s.id);
                    let events: Vec<&str> = s
                        .events
                        .iter()
                        .map(|e| e.rsplit('/').next().unwrap_or(e))
                        .collect();
                    println!(
                        "{}\t{}\t{}\t{}\t{pending}\t{failed}",
                        s.name,
                        s.push_url,
                        s.audience,
                        events.join(",")
                    );
                }
            }
            Ok(())
        }
        StreamsCommand::Delete { name } => {
            if !streams.delete(&name).await? {
                bail!("No stream is called {name}");
            }
            println!("Deleted {name} and the events queued for it.");
            Ok(())
        }
        StreamsCommand::Outbox { json } => {
            let undelivered = queued::undelivered(&db.pool).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&undelivered)?);
            } else if undelivered.is_empty() {
                println!("Every event has been delivered.");
            } else {
                println!("id\treceiver\tevent\tuser\t{DELIVERY_HEADER}");
                for e in &undelivered {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        e.id,
                        e.receiver,
                        e.event_type.rsplit('/').next().unwrap_or(&e.event_type),
                        e.subject,
                        delivery_columns(&e.delivery)
                    );
                }
            }
            Ok(())
        }
        StreamsCommand::Retry(retry) => {
            retry
                .run(
                    &db,
                    Table::Events,
                    "idp streams outbox",
                    "IDP_EVENTS_POLL_SECS",
                )
                .await
        }
    }
}

async fn create(streams: &Streams, args: CreateArgs) -> anyhow::Result<()> {
    let auth_header =
        match (&args.authorization_env, args.authorization) {
            (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                anyhow::anyhow!("--authorization-env: the variable {var} is not set")
            })?),
            (None, value) => value,
        };
    let new = NewStream {
        name: args.name,
        push_url: args.push_url,
        audience: args.audience,
        events: args.events,
        auth_header,
    };
    let stream = match streams.create(new, args.replace).await {
        Ok(stream) => stream,
        Err(StreamError::Unexpected(e)) => return Err(e),
        Err(e) => bail!("Cannot create the stream: {e}"),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stream)?);
    } else {
        println!(
            "Stream {} pushes to {} (aud {}); running instances use it for the next event.",
            stream.name, stream.push_url, stream.audience
        );
    }
    Ok(())
}
