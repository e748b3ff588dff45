//! Security events: what the idp tells other services when a session ends, a credential
//! changes or an account is disabled, so that resource servers validating tokens
//! offline stop accepting the old ones, and relying parties end their own sessions.
//!
//! - Receivers of the OpenID Shared Signals Framework (SSF 1.0) are configured by an
//!   operator with `idp streams` ([`streams`]); each gets Security Event Tokens (RFC
//!   8417) with CAEP `session-revoked` and `credential-change` and RISC
//!   `account-disabled` / `account-enabled` events, pushed per RFC 8935.
//! - Clients registered with a `backchannel_logout_uri` get an OpenID Connect
//!   Back-Channel Logout 1.0 logout token for each session they received an ID token
//!   in, when it ends ([`logout`]).
//!
//! Both go through one outbox ([`store`]): [`Events::publish`] writes a row per receiver
//! in the transaction of the change, so a committed change always produces its events
//! and a rolled-back one never does. The [`delivery`] task signs each token when it
//! sends it (the current signing key; [`set`] builds the claims) and delivers at least
//! once, in order per receiver and user, with retries and dead letters.

pub mod delivery;
pub mod logout;
pub mod set;
pub mod store;
pub mod streams;

use std::sync::Arc;

use service_kit::clock::Clock;
use sqlx::AnyConnection;
use tokio::sync::Notify;

/// The event type URIs (CAEP 1.0 §3.1 and §3.3, RISC 1.0 §2.3 and §2.4), as the
/// receiving end in `jwt-auth` reads them.
pub use jwt_auth::events::{ACCOUNT_DISABLED, ACCOUNT_ENABLED, CREDENTIAL_CHANGE, SESSION_REVOKED};

/// Every event type a stream can ask for, with the short name `idp streams` takes.
pub const EVENT_TYPES: [(&str, &str); 4] = [
    ("session-revoked", SESSION_REVOKED),
    ("credential-change", CREDENTIAL_CHANGE),
    ("account-disabled", ACCOUNT_DISABLED),
    ("account-enabled", ACCOUNT_ENABLED),
];

/// Who caused an event (CAEP 1.0 §2 `initiating_entity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    Admin,
    User,
    Policy,
    System,
}

impl Initiator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
            Self::Policy => "policy",
            Self::System => "system",
        }
    }
}

/// The kind of credential that changed (CAEP 1.0 §3.3 `credential_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    Password,
    /// An authenticator app (TOTP).
    App,
    /// A passkey. The idp does not record whether it lives on the device or on a
    /// security key, so it is reported as `fido2-roaming`.
    Passkey,
}

impl Credential {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::App => "app",
            Self::Passkey => "fido2-roaming",
        }
    }
}

/// What happened to it (CAEP 1.0 §3.3 `change_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Create,
    Update,
    Delete,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// One event about one user.
#[derive(Clone, Copy, Debug)]
pub enum SecurityEvent<'a> {
    /// A session ended, for any reason; `reason` is said to the administrator
    /// (`reason_admin`) in English.
    SessionRevoked {
        user_id: &'a str,
        session_id: &'a str,
        initiator: Initiator,
        reason: &'a str,
    },
    CredentialChange {
        user_id: &'a str,
        credential: Credential,
        change: Change,
        initiator: Initiator,
    },
    AccountDisabled {
        user_id: &'a str,
    },
    AccountEnabled {
        user_id: &'a str,
    },
}

impl SecurityEvent<'_> {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::SessionRevoked { .. } => SESSION_REVOKED,
            Self::CredentialChange { .. } => CREDENTIAL_CHANGE,
            Self::AccountDisabled { .. } => ACCOUNT_DISABLED,
            Self::AccountEnabled { .. } => ACCOUNT_ENABLED,
        }
    }

    pub fn user_id(&self) -> &str {
        match self {
            Self::SessionRevoked { user_id, .. }
            | Self::CredentialChange { user_id, .. }
            | Self::AccountDisabled { user_id }
            | Self::AccountEnabled { user_id } => user_id,
        }
    }
}

/// How delivery behaves.
#[derive(Clone, Debug)]
pub struct EventsConfig {
    /// Attempts before an event becomes a dead letter.
    pub max_attempts: u32,
    /// How often the sender looks for due events besides being woken.
    pub poll_secs: u64,
    /// The longest one push may take, connecting included.
    pub timeout_secs: u64,
}

/// Writes events to the outbox and wakes this instance's delivery task.
#[derive(Clone)]
pub struct Events {
    issuer: Arc<str>,
    clock: Clock,
    wake: Arc<Notify>,
}

impl Events {
    pub fn new(issuer: &str, clock: Clock) -> Self {
        Self {
            issuer: Arc::from(issuer),
            clock,
            wake: Arc::new(Notify::new()),
        }
    }

    /// A new `txn`: the SETs of one cause share it (SSF 1.0 §4.1.4 via RFC 8417 §2.2).
    pub fn txn() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    /// Queues `event` for every stream that wants its type and, when a session ended,
    /// a logout token for every client that got an ID token in it. `conn` is the
    /// transaction of the change; call [`Events::wake`] after the commit.
    pub async fn publish(
        &self,
        conn: &mut AnyConnection,
        txn: &str,
        event: &SecurityEvent<'_>,
    ) -> anyhow::Result<()> {
        let now = self.clock.now().timestamp();
        for stream in streams::store::wanting(&mut *conn, event.event_type()).await? {
            let id = uuid::Uuid::now_v7().to_string();
            let claims = set::security_event(&self.issuer, &id, txn, event, now);
            store::insert(
                &mut *conn,
                &store::NewEvent {
                    id: &id,
                    receiver: store::Receiver::Stream(&stream),
                    subject: event.user_id(),
                    event_type: event.event_type(),
                    claims: &claims,
                    now,
                },
            )
            .await?;
        }
        if let SecurityEvent::SessionRevoked {
            user_id,
            session_id,
            ..
        } = event
        {
            for client_id in logout::clients_of_session(&mut *conn, session_id).await? {
                let id = uuid::Uuid::now_v7().to_string();
                let claims = set::logout_token(&self.issuer, &id, &client_id, user_id, session_id);
                store::insert(
                    &mut *conn,
                    &store::NewEvent {
                        id: &id,
                        receiver: store::Receiver::Client(&client_id),
                        subject: user_id,
                        event_type: set::BACKCHANNEL_LOGOUT,
                        claims: &claims,
                        now,
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Tells this instance's delivery task that events are waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn wakes(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}
