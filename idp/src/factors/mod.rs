//! Second factors: authenticator apps (TOTP, [`totp`]) and recovery codes
//! ([`recovery_codes`]), adding and removing them (`enrolment.rs`), and the check a
//! sign-in's second step makes (`check.rs`). This file holds what they share: the
//! types, the current password asked again, and the notice mailed with each change.
//!
//! - **Adding** an authenticator takes two steps: [`Factors::begin_totp`] makes a secret
//!   (sealed with the key-encryption key) the page shows as a QR code and as text;
//!   [`Factors::confirm_totp`] activates it once the person types a correct code and
//!   their current password. The first second factor comes with ten recovery codes,
//!   shown once.
//! - **Removing** one, or making a new set of recovery codes, also takes the current
//!   password. Removing the last one ends two-step sign-in and its recovery codes.
//! - **Checking** ([`Factors::check`]) is throttled like a password: per account (its
//!   own counter) and per IP address (the sign-ins' counter). A locked account gets the
//!   answer a wrong code gets. A TOTP code works once: the step it was right for must be
//!   later than the last one accepted, which one conditional UPDATE decides.
//!
//! Every change and every recovery code used is audited and mailed to the person.

mod check;
mod enrolment;
mod passkeys;
pub mod recovery_codes;
pub mod store;
pub mod totp;

use std::sync::Arc;

use anyhow::Context;
use service_kit::clock::Clock;
use sqlx::{Any, AnyPool, Transaction};
use webauthn_rs::Webauthn;

use crate::accounts::reauth::ReauthError;
use crate::accounts::store::UserRecord;
use crate::accounts::{Accounts, ClientIp, shown_ip};
use crate::events::{Change, Credential, Events, Initiator, SecurityEvent};
use crate::factors::store::{Authenticator, StoredPasskey};
use crate::factors::totp::Provisioning;
use crate::guards::audit::{Audit, Event, Outcome};
use crate::guards::throttle::Throttle;
use crate::keys::KeyEncryptionKey;
use crate::mail::messages::{NOTICE_TIME, SecurityChange};
use crate::mail::{Mail, Outbox};
use crate::sessions::device::Device;

/// How long an enrolment waits for its first code.
const ENROLMENT_TTL_SECS: i64 = 3600;
/// The longest name of an authenticator.
const MAX_NAME_CHARS: usize = 64;
/// What an authenticator app is called when the person gives no name.
const APP_NAME: &str = "Authenticator app";

#[derive(Clone)]
pub struct Factors {
    pool: AnyPool,
    clock: Clock,
    kek: Arc<KeyEncryptionKey>,
    throttle: Throttle,
    audit: Audit,
    outbox: Outbox,
    accounts: Accounts,
    policy: FactorPolicy,
}

/// How this service appears in authenticator apps, and where notices point.
#[derive(Clone, Debug)]
pub struct FactorPolicy {
    /// The label apps show next to the account: the issuer's host.
    pub issuer_label: String,
    pub account_url: String,
    /// The WebAuthn relying party: the issuer's host as its id, the issuer as the
    /// only origin; `None` when the issuer is not on a domain (no passkeys then).
    pub webauthn: Option<Arc<Webauthn>>,
}

/// Who asks for a change, from where.
pub struct Actor<'a> {
    pub user_id: &'a str,
    pub ip: ClientIp,
    pub device: &'a Device,
}

/// An enrolment waiting for its first code.
pub struct Enrolment {
    pub id: String,
    pub provisioning: Provisioning,
}

/// The account's second factors as its page shows them.
pub struct Overview {
    pub authenticators: Vec<Authenticator>,
    pub passkeys: Vec<StoredPasskey>,
    pub recovery_codes_left: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Reauth(#[from] ReauthError),
    #[error("the code is not the one the app shows")]
    WrongCode,
    #[error("{0}")]
    InvalidName(&'static str),
    /// No such authenticator, or the enrolment expired or was replaced.
    #[error("not found")]
    NotFound,
    /// Recovery codes without a second factor make no sense.
    #[error("two-step sign-in is off")]
    NoSecondFactor,
    /// The browser's answer did not register a passkey.
    #[error("the passkey was refused")]
    PasskeyRefused,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// How a second step was passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondFactor {
    Totp,
    RecoveryCode,
    Passkey,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Wrong, used, malformed, or the account's second factor is locked: one answer.
    #[error("the code is incorrect")]
    WrongCode,
    /// Too many failures from this IP address.
    #[error("too many failed attempts")]
    Throttled { retry_after_secs: u64 },
    /// The passkey is right but an operator disabled its account.
    #[error("the account is disabled")]
    AccountDisabled,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl Factors {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: AnyPool,
        clock: Clock,
        kek: Arc<KeyEncryptionKey>,
        throttle: Throttle,
        outbox: Outbox,
        accounts: Accounts,
        policy: FactorPolicy,
    ) -> Self {
        Self {
            audit: Audit::new(pool.clone(), clock.clone()),
            pool,
            clock,
            kek,
            throttle,
            outbox,
            accounts,
            policy,
        }
    }

    /// Whether signing in as `user_id` takes a second step.
    pub async fn required(&self, user_id: &str) -> anyhow::Result<bool> {
        Ok(store::count(&self.pool, user_id).await? > 0)
    }

    pub async fn overview(&self, user_id: &str) -> anyhow::Result<Overview> {
        Ok(Overview {
            authenticators: store::authenticators(&self.pool, user_id).await?,
            passkeys: store::passkeys(&self.pool, user_id).await?,
            recovery_codes_left: store::recovery_codes_left(&self.pool, user_id).await?,
        })
    }

    /// The current password asked again before a change; a failure is audited as
    /// `event`.
    async fn reauthenticate(
        &self,
        actor: &Actor<'_>,
        current_password: String,
        event: &'static str,
    ) -> Result<UserRecord, ChangeError> {
        Ok(self
            .accounts
            .reauthenticate(actor.user_id, current_password, actor.ip, event)
            .await?)
    }

    /// Queues `notice` in `tx`, commits, and wakes the sender.
    /// Commits a change with its notice and, for a credential added or removed, its
    /// CAEP `credential-change` event.
    async fn commit_with_notice(
        &self,
        mut tx: Transaction<'_, Any>,
        notice: &Mail,
        change: Option<(Credential, Change, &str)>,
        what: &'static str,
    ) -> anyhow::Result<()> {
        self.outbox.enqueue(&mut *tx, notice).await?;
        let signals = self.accounts.events();
        if let Some((credential, change, user_id)) = change {
            let event = SecurityEvent::CredentialChange {
                user_id,
                credential,
                change,
                initiator: Initiator::User,
            };
            signals.publish(&mut tx, &Events::txn(), &event).await?;
        }
        tx.commit().await.context(what)?;
        self.outbox.wake();
        signals.wake();
        Ok(())
    }

    fn notice(
        &self,
        actor: &Actor<'_>,
        subject: &str,
        what: &str,
        recipient: &str,
    ) -> anyhow::Result<Mail> {
        SecurityChange {
            subject,
            what,
            when: &self.clock.now().format(NOTICE_TIME).to_string(),
            device: &actor.device.shown(),
            ip: &shown_ip(actor.ip),
            account_url: &self.policy.account_url,
        }
        .to(recipient)
    }

    async fn record(&self, event: &'static str, actor: &Actor<'_>, detail: &str) {
        let event = Event::new(event, Outcome::Success)
            .user(Some(actor.user_id))
            .ip(actor.ip)
            .device(
                &actor.device.description,
                actor.device.user_agent.as_deref(),
            );
        let event = if detail.is_empty() {
            event
        } else {
            event.detail(detail)
        };
        self.audit.record(event).await;
    }
}

/// What a sealed TOTP secret is bound to: its row.
fn aad(id: &str) -> String {
    format!("totp:{id}")
}

fn hashed(user_id: &str, codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .filter_map(|c| recovery_codes::normalise(c))
        .map(|c| recovery_codes::hash(user_id, &c))
        .collect()
}

/// A second factor's name as typed: trimmed, `default` when empty, at most 64
/// characters and no control characters.
fn factor_name(input: &str, default: &str) -> Result<String, ChangeError> {
    let name = input.trim();
    if name.is_empty() {
        return Ok(default.to_owned());
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ChangeError::InvalidName(
            "Give it a name of at most 64 characters, without control characters.",
        ));
    }
    Ok(name.to_owned())
}

/// The recovery codes a first second factor brings, stored in `conn` (the change's
/// transaction); none for a later one.
async fn codes_for_first(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    first: bool,
    now: i64,
) -> anyhow::Result<Option<Vec<String>>> {
    if !first {
        return Ok(None);
    }
    let codes = recovery_codes::generate();
    store::replace_recovery_codes(conn, user_id, &hashed(user_id, &codes), now).await?;
    Ok(Some(codes))
}
