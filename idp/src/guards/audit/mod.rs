//! The audit trail: one row in `audit_events` per security-relevant event (sign-ins,
//! failures, lockouts, registrations, client authentication failures, client changes,
//! key transitions), with time, user, client, IP and outcome, and the same as a
//! `tracing` event with target `audit`.
//!
//! Never recorded: passwords, secrets, tokens, and the submitted email of an unknown
//! account (people type passwords into the email field); a failure against an unknown
//! account carries no user at all.

pub mod store;

use std::net::IpAddr;

use service_kit::clock::Clock;
use sqlx::AnyPool;

use crate::guards::audit::store::AuditRow;

/// Event names, stable for whoever reads the table.
pub mod events {
    /// A password check (JSON login or sign-in page).
    pub const SIGN_IN: &str = "sign_in";
    /// An account's failures crossed the limit: it is locked for a while.
    pub const ACCOUNT_LOCKED: &str = "account_locked";
    /// An IP address's failures crossed the limit: it gets 429s for a while.
    pub const IP_THROTTLED: &str = "ip_throttled";
    /// A registration attempt that reached the service.
    pub const REGISTRATION: &str = "registration";
    /// Client authentication at the token, revocation or introspection endpoint.
    pub const CLIENT_AUTHENTICATION: &str = "client_authentication";
    pub const CLIENT_CREATED: &str = "client_created";
    pub const CLIENT_DELETED: &str = "client_deleted";
    /// A sign-in session ended before its time: signed out, ended from another
    /// session, evicted past the per-user cap, or ended by a password change or a
    /// reused refresh token (the detail says which).
    pub const SESSION_ENDED: &str = "session_ended";
    /// A password change (success, or a wrong current password).
    pub const PASSWORD_CHANGED: &str = "password_changed";
    /// An operator disabled an account (`idp users disable`).
    pub const ACCOUNT_DISABLED: &str = "account_disabled";
    /// An operator enabled a disabled account again.
    pub const ACCOUNT_ENABLED: &str = "account_enabled";
    /// The display name released with the `profile` scope changed.
    pub const PROFILE_CHANGED: &str = "profile_changed";
    /// A password reset link was mailed (never for an unknown address: nothing is
    /// recorded then, not even the submitted text).
    pub const PASSWORD_RESET_REQUESTED: &str = "password_reset_requested";
    /// A password was set with a reset link (success, or a link that did not work).
    pub const PASSWORD_RESET: &str = "password_reset";
    /// A new verification link was asked for (success, or throttled), from the account
    /// page, the API, or by signing in unverified when verification is required.
    pub const EMAIL_VERIFICATION_REQUESTED: &str = "email_verification_requested";
    /// An address was proven with a verification link.
    pub const EMAIL_VERIFIED: &str = "email_verified";
    /// A change of address was asked for (success, or a wrong current password).
    pub const EMAIL_CHANGE_REQUESTED: &str = "email_change_requested";
    /// The new address was confirmed and is now the account's.
    pub const EMAIL_CHANGED: &str = "email_changed";
    /// The second step of a sign-in: a code from an authenticator app or a recovery
    /// code (the detail says which), wrong, or refused while locked.
    pub const SECOND_FACTOR: &str = "sign_in_second_factor";
    /// An authenticator app added (success, or a wrong current password).
    pub const SECOND_FACTOR_ADDED: &str = "second_factor_added";
    /// An authenticator app removed (success, or a wrong current password).
    pub const SECOND_FACTOR_REMOVED: &str = "second_factor_removed";
    /// A new set of recovery codes (success, or a wrong current password).
    pub const RECOVERY_CODES_REGENERATED: &str = "recovery_codes_regenerated";
    /// An account deleted by its owner (success, or a wrong current password); the
    /// account's earlier events keep only their time, kind, outcome and user id.
    pub const ACCOUNT_DELETED: &str = "account_deleted";
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Wrong credentials (or unknown account/client).
    Failure,
    /// Refused because the account is locked (answered like a wrong password).
    Locked,
    /// Refused with a 429 because the IP address is throttled.
    Throttled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Locked => "locked",
            Self::Throttled => "throttled",
        }
    }
}

/// One event to record. `detail` is free text for people: never a secret.
#[derive(Clone, Debug)]
pub struct Event<'a> {
    pub event: &'static str,
    pub outcome: Outcome,
    pub user_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub ip: Option<IpAddr>,
    /// The device description from the User-Agent ("Firefox on Linux").
    pub device: Option<&'a str>,
    /// The User-Agent, sanitised and truncated.
    pub user_agent: Option<&'a str>,
    pub detail: Option<&'a str>,
}

impl<'a> Event<'a> {
    pub fn new(event: &'static str, outcome: Outcome) -> Self {
        Self {
            event,
            outcome,
            user_id: None,
            client_id: None,
            ip: None,
            device: None,
            user_agent: None,
            detail: None,
        }
    }

    pub fn user(mut self, user_id: Option<&'a str>) -> Self {
        self.user_id = user_id;
        self
    }

    pub fn client(mut self, client_id: Option<&'a str>) -> Self {
        self.client_id = client_id;
        self
    }

    pub fn ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    /// The device's description and user agent (see `sessions::device`).
    pub fn device(mut self, description: &'a str, user_agent: Option<&'a str>) -> Self {
        self.device = Some(description);
        self.user_agent = user_agent;
        self
    }

    pub fn detail(mut self, detail: &'a str) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Writes `event` at `at` (Unix seconds) and emits it as a `tracing` event with target
/// `audit`. For callers without an [`Audit`] (the CLI, the key lifecycle).
pub async fn record(pool: &AnyPool, at: i64, event: &Event<'_>) -> anyhow::Result<()> {
    let ip = event.ip.map(|ip| ip.to_string());
    tracing::info!(
        target: "audit",
        event = event.event,
        outcome = event.outcome.as_str(),
        user_id = event.user_id,
        client_id = event.client_id,
        ip = ip.as_deref(),
        device = event.device,
        detail = event.detail,
        "Audit event"
    );
    store::insert(
        pool,
        &AuditRow {
            at,
            event: event.event.to_owned(),
            outcome: event.outcome.as_str().to_owned(),
            user_id: event.user_id.map(str::to_owned),
            client_id: event.client_id.map(str::to_owned),
            ip,
            device: event.device.map(str::to_owned),
            user_agent: event.user_agent.map(str::to_owned),
            detail: event.detail.map(str::to_owned),
        },
    )
    .await
}

/// The audit service of a running idp: its own clock, and a write failure is logged
/// rather than failing the request it describes.
#[derive(Clone)]
pub struct Audit {
    pool: AnyPool,
    clock: Clock,
}

impl Audit {
    pub fn new(pool: AnyPool, clock: Clock) -> Self {
        Self { pool, clock }
    }

    pub async fn record(&self, event: Event<'_>) {
        let at = self.clock.now().timestamp();
        if let Err(e) = record(&self.pool, at, &event).await {
            tracing::error!(
                error = format!("{e:#}"),
                event = event.event,
                "Audit write failed"
            );
        }
    }
}
