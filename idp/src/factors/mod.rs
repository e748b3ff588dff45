//! Second factors: authenticator apps (TOTP, [`totp`]) and recovery codes
//! ([`recovery_codes`]), and the check a sign-in's second step makes.
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

pub mod recovery_codes;
pub mod store;
pub mod totp;

use std::sync::Arc;

use anyhow::Context;
use service_kit::clock::Clock;
use sqlx::AnyPool;

use crate::accounts::reauth::ReauthError;
use crate::accounts::{Accounts, ClientIp, shown_ip};
use crate::factors::store::{Authenticator, NewCredential};
use crate::factors::totp::Provisioning;
use crate::guards::audit::{Audit, Event, Outcome, events};
use crate::guards::secrets;
use crate::guards::throttle::{Key, Throttle};
use crate::keys::KeyEncryptionKey;
use crate::mail::messages::{NOTICE_TIME, SecurityChange};
use crate::mail::{Mail, Outbox};
use crate::sessions::device::Device;

/// How long an enrolment waits for its first code.
const ENROLMENT_TTL_SECS: i64 = 3600;
/// The longest name of an authenticator.
const MAX_NAME_CHARS: usize = 64;
/// What an authenticator is called when the person gives no name.
const DEFAULT_NAME: &str = "Authenticator app";

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
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// How a second step was passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondFactor {
    Totp,
    RecoveryCode,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Wrong, used, malformed, or the account's second factor is locked: one answer.
    #[error("the code is incorrect")]
    WrongCode,
    /// Too many failures from this IP address.
    #[error("too many failed attempts")]
    Throttled { retry_after_secs: u64 },
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
            recovery_codes_left: store::recovery_codes_left(&self.pool, user_id).await?,
        })
    }

    /// A new secret for `user_id` (whose address labels it in the app), replacing an
    /// unfinished enrolment.
    pub async fn begin_totp(&self, user_id: &str, email: &str) -> anyhow::Result<Enrolment> {
        let id = secrets::random_token(16);
        let secret = totp::new_secret();
        let sealed = self.kek.seal(&aad(&id), &secret)?;
        let new = NewCredential {
            id: &id,
            user_id,
            sealed_secret: &sealed,
            now: self.clock.now().timestamp(),
        };
        store::begin(&self.pool, &new).await?;
        let provisioning = totp::provisioning(&secret, email, &self.policy.issuer_label)?;
        Ok(Enrolment { id, provisioning })
    }

    /// The unfinished enrolment of `user_id`, if it is recent.
    pub async fn enrolment(&self, user_id: &str, email: &str) -> anyhow::Result<Option<Enrolment>> {
        let since = self.clock.now().timestamp() - ENROLMENT_TTL_SECS;
        let Some(sealed) = store::unconfirmed(&self.pool, user_id, since).await? else {
            return Ok(None);
        };
        let secret = self.kek.open(&aad(&sealed.id), &sealed.secret)?;
        let provisioning = totp::provisioning(&secret, email, &self.policy.issuer_label)?;
        Ok(Some(Enrolment {
            id: sealed.id,
            provisioning,
        }))
    }

    /// Activates enrolment `id` with its first code; the recovery codes to show when it
    /// is the account's first second factor.
    pub async fn confirm_totp(
        &self,
        actor: &Actor<'_>,
        id: &str,
        name: &str,
        code: &str,
        current_password: String,
    ) -> Result<Option<Vec<String>>, ChangeError> {
        let user = self
            .accounts
            .reauthenticate(
                actor.user_id,
                current_password,
                actor.ip,
                events::SECOND_FACTOR_ADDED,
            )
            .await?;
        let name = authenticator_name(name)?;
        let now = self.clock.now().timestamp();
        let sealed = store::unconfirmed(&self.pool, actor.user_id, now - ENROLMENT_TTL_SECS)
            .await?
            .filter(|s| s.id == id)
            .ok_or(ChangeError::NotFound)?;
        let secret = self.kek.open(&aad(id), &sealed.secret)?;
        let step = totp::matching_step(&secret, code.trim(), now).ok_or(ChangeError::WrongCode)?;
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        let first = store::count(&mut *tx, actor.user_id).await? == 0;
        if !store::confirm(&mut tx, actor.user_id, id, &name, step, now).await? {
            return Err(ChangeError::NotFound);
        }
        let codes = first.then(recovery_codes::generate);
        if let Some(codes) = &codes {
            let hashes = hashed(actor.user_id, codes);
            store::replace_recovery_codes(&mut tx, actor.user_id, &hashes, now).await?;
        }
        let what = format!(
            "An authenticator app named \u{201c}{name}\u{201d} was added to your account. \
             Signing in now takes a code from it after your password."
        );
        let notice = self.notice(
            actor,
            "An authenticator app was added to your account",
            &what,
            &user.email,
        )?;
        self.outbox.enqueue(&mut *tx, &notice).await?;
        tx.commit()
            .await
            .context("Failed to add an authenticator")?;
        self.outbox.wake();
        self.record(events::SECOND_FACTOR_ADDED, actor, "totp")
            .await;
        Ok(codes)
    }

    /// Removes authenticator `id`; the last one takes the recovery codes with it.
    pub async fn remove_totp(
        &self,
        actor: &Actor<'_>,
        id: &str,
        current_password: String,
    ) -> Result<(), ChangeError> {
        let user = self
            .accounts
            .reauthenticate(
                actor.user_id,
                current_password,
                actor.ip,
                events::SECOND_FACTOR_REMOVED,
            )
            .await?;
        let now = self.clock.now().timestamp();
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        let name = store::remove(&mut tx, actor.user_id, id)
            .await?
            .ok_or(ChangeError::NotFound)?;
        let last = store::count(&mut *tx, actor.user_id).await? == 0;
        if last {
            store::replace_recovery_codes(&mut tx, actor.user_id, &[], now).await?;
        }
        let what = if last {
            format!(
                "The authenticator app named \u{201c}{name}\u{201d} was removed from your \
                 account, and with it two-step sign-in: your password alone signs in now, \
                 and your recovery codes no longer work."
            )
        } else {
            format!(
                "The authenticator app named \u{201c}{name}\u{201d} was removed from your \
                 account. Your other second factors still work."
            )
        };
        let notice = self.notice(
            actor,
            "An authenticator app was removed from your account",
            &what,
            &user.email,
        )?;
        self.outbox.enqueue(&mut *tx, &notice).await?;
        tx.commit()
            .await
            .context("Failed to remove an authenticator")?;
        self.outbox.wake();
        self.record(events::SECOND_FACTOR_REMOVED, actor, "totp")
            .await;
        Ok(())
    }

    /// A new set of recovery codes, the old set spent.
    pub async fn regenerate_recovery_codes(
        &self,
        actor: &Actor<'_>,
        current_password: String,
    ) -> Result<Vec<String>, ChangeError> {
        let user = self
            .accounts
            .reauthenticate(
                actor.user_id,
                current_password,
                actor.ip,
                events::RECOVERY_CODES_REGENERATED,
            )
            .await?;
        let now = self.clock.now().timestamp();
        let codes = recovery_codes::generate();
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        if store::count(&mut *tx, actor.user_id).await? == 0 {
            return Err(ChangeError::NoSecondFactor);
        }
        let hashes = hashed(actor.user_id, &codes);
        store::replace_recovery_codes(&mut tx, actor.user_id, &hashes, now).await?;
        let notice = self.notice(
            actor,
            "New recovery codes were made for your account",
            "A new set of recovery codes was made for your account. The codes of the \
             earlier set no longer work.",
            &user.email,
        )?;
        self.outbox.enqueue(&mut *tx, &notice).await?;
        tx.commit()
            .await
            .context("Failed to replace recovery codes")?;
        self.outbox.wake();
        self.record(events::RECOVERY_CODES_REGENERATED, actor, "")
            .await;
        Ok(codes)
    }

    /// The second step of a sign-in whose password was right: a code from an
    /// authenticator app, or a recovery code. See the module's docs.
    #[tracing::instrument(skip_all)]
    pub async fn check(
        &self,
        actor: &Actor<'_>,
        email: &str,
        code: &str,
    ) -> Result<SecondFactor, CheckError> {
        if let Some(ip) = actor.ip
            && let Some(retry_after_secs) = self.throttle.locked(Key::Ip(ip)).await?
        {
            return Err(CheckError::Throttled { retry_after_secs });
        }
        let account = Key::SecondFactor(actor.user_id);
        let [state] = self.throttle.states([account]).await?;
        let passed = if state.locked_for.is_some() {
            None
        } else {
            self.passes(actor.user_id, code).await?
        };
        let Some(factor) = passed else {
            self.record_failure(actor, account, state.locked_for.is_some())
                .await?;
            return Err(CheckError::WrongCode);
        };
        if state.recorded {
            self.throttle.reset(account).await?;
        }
        let detail = match factor {
            SecondFactor::Totp => "totp",
            SecondFactor::RecoveryCode => "recovery_code",
        };
        self.record(events::SECOND_FACTOR, actor, detail).await;
        if factor == SecondFactor::RecoveryCode {
            self.tell_recovery_code_used(actor, email).await?;
        }
        Ok(factor)
    }

    /// Which factor `code` passes, spending it.
    async fn passes(&self, user_id: &str, code: &str) -> anyhow::Result<Option<SecondFactor>> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let now = self.clock.now().timestamp();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            for sealed in store::confirmed_secrets(&self.pool, user_id).await? {
                let secret = self.kek.open(&aad(&sealed.id), &sealed.secret)?;
                if let Some(step) = totp::matching_step(&secret, &code, now) {
                    // Right, but accepted once already (a replay, or a rival request
                    // that won the race) is wrong.
                    let fresh = step > sealed.last_step
                        && store::accept_step(&self.pool, &sealed.id, step).await?;
                    return Ok(fresh.then_some(SecondFactor::Totp));
                }
            }
            return Ok(None);
        }
        let Some(code) = recovery_codes::normalise(&code) else {
            return Ok(None);
        };
        let hash = recovery_codes::hash(user_id, &code);
        let spent = store::spend_recovery_code(&self.pool, user_id, &hash, now).await?;
        Ok(spent.then_some(SecondFactor::RecoveryCode))
    }

    async fn record_failure(
        &self,
        actor: &Actor<'_>,
        account: Key<'_>,
        locked: bool,
    ) -> anyhow::Result<()> {
        let outcome = if locked {
            Outcome::Locked
        } else {
            Outcome::Failure
        };
        self.audit
            .record(
                Event::new(events::SECOND_FACTOR, outcome)
                    .user(Some(actor.user_id))
                    .ip(actor.ip)
                    .device(
                        &actor.device.description,
                        actor.device.user_agent.as_deref(),
                    ),
            )
            .await;
        let policies = self.throttle.policies();
        if !locked {
            self.throttle.fail(account, &policies.account).await?;
        }
        if let Some(ip) = actor.ip {
            self.throttle.fail(Key::Ip(ip), &policies.ip).await?;
        }
        Ok(())
    }

    async fn tell_recovery_code_used(&self, actor: &Actor<'_>, email: &str) -> anyhow::Result<()> {
        let left = store::recovery_codes_left(&self.pool, actor.user_id).await?;
        let what = format!(
            "A recovery code was used to sign in to your account instead of your \
             authenticator app. {left} of your recovery codes are left; your account page \
             makes a new set."
        );
        let subject = "A recovery code was used to sign in to your account";
        let notice = self.notice(actor, subject, &what, email)?;
        self.outbox.enqueue(&self.pool, &notice).await?;
        self.outbox.wake();
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

fn authenticator_name(input: &str) -> Result<String, ChangeError> {
    let name = input.trim();
    if name.is_empty() {
        return Ok(DEFAULT_NAME.to_owned());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ChangeError::InvalidName(
            "Give the app a name of at most 64 characters.",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ChangeError::InvalidName(
            "The name cannot contain control characters.",
        ));
    }
    Ok(name.to_owned())
}
