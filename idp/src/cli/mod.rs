//! `idp clients ...`: registering, listing and deleting OAuth clients from the shell,
//! against the same database settings as `idp serve`; `idp keys ...`: the signing keys;
//! `idp mail ...`: mail not yet sent, and dead letters sent again; `idp streams ...`:
//! the receivers of security events ([`streams`]); `idp users ...`: disabling and
//! enabling accounts ([`users`]). `--json` gives machine-readable output.

pub mod streams;
pub mod users;

use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use service_kit::clock::Clock;
use service_kit::db::Database;

use crate::app::settings::Settings;
use crate::keys::KeyEncryptionKey;
use crate::keys::lifecycle::{Change, KeyManager, RotateMode};
use crate::mail;
use crate::oauth::Scope;
use crate::oauth::clients::{
    AuthMethod, BackchannelLogout, Client, ClientType, Clients, ConsentPolicy, CreateClientError,
    DEFAULT_SCOPE, GrantType, NewClient, PkcePolicy, RedirectUri,
};
use crate::storage;
use crate::storage::outbox::{self, Delivery, Table};

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints its client_id (and client_secret, shown only once).
    Create(CreateArgs),
    /// List registered clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and everything issued to it.
    Delete {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    /// Shown to users on the consent page.
    #[arg(long)]
    name: String,
    /// An exact redirect URI; repeat for several.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// An exact post-logout redirect URI; repeat for several.
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// A public client (SPA, native app): no secret, PKCE always.
    #[arg(long)]
    public: bool,
    /// Scopes the client may request, space-separated.
    #[arg(long, default_value = DEFAULT_SCOPE)]
    scope: String,
    /// Allowed grant type; repeat for several [default: authorization_code and refresh_token].
    #[arg(long = "grant-type", value_parser = GrantType::SUPPORTED)]
    grant_types: Vec<String>,
    /// Token endpoint auth method [default: client_secret_basic, or none for public clients].
    #[arg(long = "auth-method", value_parser = AuthMethod::SUPPORTED)]
    auth_method: Option<String>,
    /// First-party client: users are not asked for consent.
    #[arg(long)]
    skip_consent: bool,
    /// Confidential clients only: accept authorization requests without PKCE.
    #[arg(long)]
    pkce_optional: bool,
    /// Users must sign in with a second factor before this client gets a code.
    #[arg(long)]
    require_mfa: bool,
    /// Where the client takes back-channel logout tokens (OIDC Back-Channel Logout 1.0):
    /// on the scheme, host and port of a redirect URI.
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in logout tokens (they always carry it).
    #[arg(long, requires = "backchannel_logout_uri")]
    backchannel_logout_session_required: bool,
    #[arg(long)]
    json: bool,
}

pub async fn run(command: ClientsCommand, settings: &Settings) -> anyhow::Result<()> {
    let db = Database::connect(&settings.database_url, 1).await?;
    db.migrate(&storage::MIGRATIONS).await?;
    let clients = Clients::new(db.pool.clone(), Clock::system());
    match command {
        ClientsCommand::Create(args) => create(&clients, args).await,
        ClientsCommand::List { json } => {
            let list = clients.list().await?;
            if json {
                let items: Vec<_> = list.iter().map(describe).collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else if list.is_empty() {
                println!("No clients registered.");
            } else {
                for c in &list {
                    println!(
                        "{}\t{}\t{}\t{}",
                        c.id,
                        c.client_type.as_str(),
                        c.name,
                        c.redirect_uris
                            .iter()
                            .map(AsRef::as_ref)
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                }
            }
            Ok(())
        }
        ClientsCommand::Delete { client_id, json } => {
            let deleted = clients.delete(&client_id).await?;
            if json {
                println!("{}", json!({ "client_id": client_id, "deleted": deleted }));
            }
            if !deleted {
                bail!("No client with id {client_id}");
            }
            if !json {
                println!("Deleted {client_id}.");
            }
            Ok(())
        }
    }
}

async fn create(clients: &Clients, args: CreateArgs) -> anyhow::Result<()> {
    let parse_uris = |list: &[String], what: &str| -> anyhow::Result<Vec<RedirectUri>> {
        list.iter()
            .map(|u| RedirectUri::parse(u).map_err(|e| anyhow::anyhow!("{what} {u:?} {e}")))
            .collect()
    };
    let grant_types = if args.grant_types.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        args.grant_types
            .iter()
            .filter_map(|g| GrantType::parse(g))
            .collect()
    };
    let redirect_uris = parse_uris(&args.redirect_uris, "--redirect-uri")?;
    let backchannel_logout = args
        .backchannel_logout_uri
        .as_deref()
        .map(|uri| {
            BackchannelLogout::parse(
                uri,
                args.backchannel_logout_session_required,
                &redirect_uris,
            )
            .map_err(|e| anyhow::anyhow!("--backchannel-logout-uri: {e}"))
        })
        .transpose()?;
    let new = NewClient {
        name: args.name,
        client_type: if args.public {
            ClientType::Public
        } else {
            ClientType::Confidential
        },
        auth_method: args.auth_method.as_deref().and_then(AuthMethod::parse),
        redirect_uris,
        post_logout_redirect_uris: parse_uris(
            &args.post_logout_redirect_uris,
            "--post-logout-redirect-uri",
        )?,
        allowed_scope: Scope::parse(&args.scope).context("--scope")?,
        grant_types,
        consent: if args.skip_consent {
            ConsentPolicy::Skip
        } else {
            ConsentPolicy::Ask
        },
        pkce: if args.pkce_optional {
            PkcePolicy::Optional
        } else {
            PkcePolicy::Required
        },
        require_mfa: args.require_mfa,
        backchannel_logout,
    };
    let (client, secret) = match clients.create(new).await {
        Ok(created) => created,
        Err(CreateClientError::Invalid(reason)) => bail!("Cannot create the client: {reason}"),
        Err(CreateClientError::Unexpected(e)) => return Err(e),
    };
    let secret = secret.as_ref().map(|s| s.expose());
    if args.json {
        println!(
            "{}",
            json!({ "client_id": client.id.as_ref(), "client_secret": secret })
        );
    } else {
        println!("client_id:     {}", client.id);
        if let Some(secret) = secret {
            println!("client_secret: {secret}");
            println!("Store the secret now: it is not shown again.");
        }
    }
    Ok(())
}

fn describe(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.id.as_ref(),
        "name": c.name,
        "client_type": c.client_type.as_str(),
        "token_endpoint_auth_method": c.auth_method.as_str(),
        "redirect_uris": c.redirect_uris.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
        "post_logout_redirect_uris": c.post_logout_redirect_uris.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
        "scope": c.allowed_scope.to_string(),
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "skip_consent": c.consent == ConsentPolicy::Skip,
        "require_pkce": c.requires_pkce(),
        "require_mfa": c.require_mfa,
        "backchannel_logout_uri": c.backchannel_logout.as_ref().map(|b| b.uri.as_str()),
        "backchannel_logout_session_required": c.backchannel_logout.as_ref().is_some_and(|b| b.session_required),
        "created_at": c.created_at,
    })
}

/// `idp keys ...`: the signing keys' lifecycle (see docs/keys.md).
/// Changes go to the database; running instances pick them up on their next reload
/// (within `IDP_KEY_CHECK_INTERVAL_SECS`).
#[derive(Subcommand)]
pub enum KeysCommand {
    /// List every key with its state and times (created, activates, retires, removes).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stage a next key: published now, signing once the pre-publication window passed.
    Rotate {
        /// Emergency: the new key signs at once (skipping pre-publication); the old one
        /// is retired but stays published until its tokens expire.
        #[arg(long)]
        now: bool,
        #[arg(long)]
        json: bool,
    },
    /// Drop a compromised key from the JWKS at once (a current key is replaced first).
    Revoke {
        kid: String,
        #[arg(long)]
        json: bool,
    },
}

/// The key manager the CLI uses: the same database and key-encryption key as `serve`.
pub async fn key_manager(settings: &Settings, clock: Clock) -> anyhow::Result<KeyManager> {
    let db = Database::connect(&settings.database_url, 1).await?;
    db.migrate(&storage::MIGRATIONS).await?;
    let kek = KeyEncryptionKey::load_or_create(
        settings.key_encryption_key.as_ref().map(|k| k.0.as_str()),
        &settings.keys_dir,
    )?;
    Ok(KeyManager::new(
        db.pool,
        Arc::new(kek),
        settings.key_schedule(),
        clock,
    ))
}

pub async fn run_keys(command: KeysCommand, settings: &Settings) -> anyhow::Result<()> {
    let keys = key_manager(settings, Clock::system()).await?;
    match command {
        KeysCommand::List { json } => {
            let list = keys.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("No signing keys yet (the first start of `idp serve` creates one).");
            } else {
                println!("kid\tstate\tcreated\tactivates\tretires\tremoves");
                for k in &list {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        k.kid,
                        k.state.as_str(),
                        time(Some(k.created_at)),
                        time(k.activates_at),
                        time(k.retires_at),
                        time(k.removes_at),
                    );
                }
            }
            Ok(())
        }
        KeysCommand::Rotate { now, json } => {
            let mode = if now {
                RotateMode::Now
            } else {
                RotateMode::Staged
            };
            print_changes(keys.rotate(mode).await?, json)
        }
        KeysCommand::Revoke { kid, json } => print_changes(keys.revoke(&kid).await?, json),
    }
}

fn print_changes(changes: Vec<Change>, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&changes)?);
        return Ok(());
    }
    for change in changes {
        match change {
            Change::Staged { kid, activates_at } => println!(
                "Staged {kid}: published now, signing from {}.",
                time(Some(activates_at))
            ),
            Change::Activated { kid } => println!("Activated {kid}: it signs now."),
            Change::Retired { kid } => {
                println!("Retired {kid}: published until its tokens expire.");
            }
            Change::Removed { kid } => println!("Removed {kid} from the JWKS."),
            Change::Revoked { kid } => println!("Revoked {kid}: removed from the JWKS."),
        }
    }
    println!("Running instances pick this up within IDP_KEY_CHECK_INTERVAL_SECS.");
    Ok(())
}

/// `idp mail ...`: what the outbox has not delivered.
#[derive(Subcommand)]
pub enum MailCommand {
    /// List mail not yet sent: pending (with its attempts, next try and last error)
    /// and failed (dead letters).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Queue dead letters again with fresh attempts: one by id, or all with --all.
    Retry(Retry),
}

/// Which dead letters of an outbox to queue again.
#[derive(Args)]
pub struct Retry {
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<String>,
    #[arg(long)]
    pub all: bool,
}

impl Retry {
    /// Queues the dead letters of `table` again; `listed_by` names the command that
    /// shows their ids, `within` the setting that says when a running idp sends them.
    pub(crate) async fn run(
        self,
        db: &Database,
        table: Table,
        listed_by: &str,
        within: &str,
    ) -> anyhow::Result<()> {
        let now = Clock::system().now().timestamp();
        let queued = outbox::retry_failed(&db.pool, table, self.id.as_deref(), now).await?;
        if self.id.is_some() && queued == 0 {
            bail!("No dead letter has that id (see `{listed_by}`).");
        }
        println!("Queued {queued} again; a running idp delivers them within {within}.");
        Ok(())
    }
}

pub async fn run_mail(command: MailCommand, settings: &Settings) -> anyhow::Result<()> {
    let db = Database::connect(&settings.database_url, 1).await?;
    db.migrate(&storage::MIGRATIONS).await?;
    match command {
        MailCommand::List { json } => {
            let unsent = mail::store::unsent(&db.pool).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&unsent)?);
            } else if unsent.is_empty() {
                println!("Every message has been sent.");
            } else {
                println!("id\tto\tsubject\t{DELIVERY_HEADER}");
                for m in &unsent {
                    println!(
                        "{}\t{}\t{}\t{}",
                        m.id,
                        m.recipient,
                        m.subject,
                        delivery_columns(&m.delivery)
                    );
                }
            }
        }
        MailCommand::Retry(retry) => {
            retry
                .run(&db, Table::Mail, "idp mail list", "IDP_MAIL_POLL_SECS")
                .await?;
        }
    }
    Ok(())
}

/// The header of [`delivery_columns`].
pub(crate) const DELIVERY_HEADER: &str = "state\tqueued\tattempts\tnext try\tlast error";

/// Where an outbox row stands, tab-separated: pending or failed (a dead letter), when it
/// was queued, its attempts, its next try and its last error.
pub(crate) fn delivery_columns(d: &Delivery) -> String {
    let (state, next) = match d.failed_at {
        Some(_) => ("failed", "-".to_owned()),
        None => ("pending", time(Some(d.next_attempt_at))),
    };
    format!(
        "{state}\t{}\t{}\t{next}\t{}",
        time(Some(d.created_at)),
        d.attempts,
        d.last_error.as_deref().unwrap_or("-"),
    )
}

pub(crate) fn time(at: Option<i64>) -> String {
    at.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}
