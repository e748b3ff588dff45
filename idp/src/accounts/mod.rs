//! Accounts: registration, the password check behind every sign-in, and password
//! changes. Owns the rules (policy, uniqueness, no user enumeration, throttling, the
//! audit trail of all three); storage, hashing and the throttle counters are delegated.

pub mod amr;
pub mod deletion;
pub mod email;
pub mod email_change;
pub mod hashing;
pub mod password;
pub mod profile;
pub mod reauth;
pub mod recovery;
pub mod status;
pub mod store;
pub mod tokens;
pub mod user_id;
pub mod verification;

use std::net::IpAddr;

use anyhow::Context;
use chrono::{DateTime, Utc};
use service_kit::clock::Clock;
use sqlx::AnyPool;

use crate::accounts::email::{Email, EmailError};
use crate::accounts::hashing::PasswordHasher;
use crate::accounts::password::CommonPasswords;
use crate::accounts::password::{Password, PasswordError};
use crate::accounts::profile::DisplayName;
use crate::accounts::reauth::ReauthError;
use crate::accounts::store::{self as users, InsertUserError};
use crate::accounts::user_id::UserId;
use crate::accounts::verification::ResendError;
use crate::events::{Change, Credential, Events, Initiator, SecurityEvent};
use crate::guards::audit::{Audit, Event, Outcome, events};
use crate::guards::throttle::{Key, Throttle};
use crate::mail::Outbox;
use crate::mail::messages::{NOTICE_TIME, PasswordChanged};
use crate::oauth::store::grants;
use crate::sessions::device::Device;
use crate::sessions::records::{EndReason, UserSessions};

#[derive(Clone)]
pub struct Accounts {
    pool: AnyPool,
    hasher: PasswordHasher,
    common_passwords: CommonPasswords,
    clock: Clock,
    throttle: Throttle,
    audit: Audit,
    sessions: UserSessions,
    outbox: Outbox,
    mail: MailPolicy,
}

/// Where the links in mail to account holders point, and how long they work.
#[derive(Clone, Debug)]
pub struct MailPolicy {
    /// The account page.
    pub account_url: String,
    /// The page a password reset link opens (the token goes in its query).
    pub password_reset_url: String,
    pub password_reset_ttl_secs: i64,
    /// The page an email verification link opens (the token goes in its query).
    pub email_verification_url: String,
    pub email_verification_ttl_secs: i64,
    /// The page an email change link opens; it works as long as a verification link.
    pub email_change_url: String,
    /// Whether only accounts with a verified address may sign in.
    pub require_verified_email: bool,
}

#[derive(Debug)]
pub struct RegisteredUser {
    pub id: UserId,
    pub email: Email,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    #[error(transparent)]
    InvalidPassword(#[from] PasswordError),
    #[error("email already registered")]
    EmailTaken,
    /// Too many accounts created or failed attempts from this IP address: retry after
    /// this many seconds.
    #[error("too many registrations")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// A user whose password was just checked.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    pub id: String,
    pub email: String,
}

/// What an account with the right password must still pass to sign in.
#[derive(Clone, Copy, Debug)]
struct Standing {
    email_verified: bool,
    disabled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown email, wrong password, malformed email or a locked account:
    /// deliberately one case.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failures from this IP address: retry after this many seconds. Says
    /// nothing about the account.
    #[error("too many failed sign-ins")]
    Throttled { retry_after_secs: u64 },
    /// The password is right but the address is unverified and the idp requires it: a
    /// new verification link was mailed (unless three went out in the last hour).
    #[error("the email address is not verified")]
    EmailNotVerified,
    /// The password is right but an operator disabled the account.
    #[error("the account is disabled")]
    AccountDisabled,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    /// The current password is wrong (or the account is locked: the same answer).
    #[error("the current password is incorrect")]
    WrongCurrentPassword,
    #[error(transparent)]
    InvalidPassword(#[from] PasswordError),
    /// Too many failures from this IP address: retry after this many seconds.
    #[error("too many failed attempts")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<ReauthError> for PasswordChangeError {
    fn from(e: ReauthError) -> Self {
        match e {
            ReauthError::WrongCurrentPassword => Self::WrongCurrentPassword,
            ReauthError::Throttled { retry_after_secs } => Self::Throttled { retry_after_secs },
            ReauthError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

/// Where a credential check comes from (for throttling and the audit trail).
pub type ClientIp = Option<IpAddr>;

/// A request's address as a notice shows it.
pub(crate) fn shown_ip(ip: ClientIp) -> String {
    ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// The CAEP event of a password changed or reset by its owner.
pub(crate) fn password_changed(user_id: &str) -> SecurityEvent<'_> {
    SecurityEvent::CredentialChange {
        user_id,
        credential: Credential::Password,
        change: Change::Update,
        initiator: Initiator::User,
    }
}

impl Accounts {
    /// The security events account changes are told through.
    pub fn events(&self) -> &Events {
        self.sessions.events()
    }

    pub fn new(
        pool: AnyPool,
        hasher: PasswordHasher,
        clock: Clock,
        throttle: Throttle,
        sessions: UserSessions,
        outbox: Outbox,
        mail: MailPolicy,
    ) -> Self {
        Self {
            audit: Audit::new(pool.clone(), clock.clone()),
            pool,
            hasher,
            common_passwords: CommonPasswords::load(),
            clock,
            throttle,
            sessions,
            outbox,
            mail,
        }
    }

    /// Whether only accounts with a verified address may sign in: then registering does
    /// not sign in either.
    pub fn requires_verified_email(&self) -> bool {
        self.mail.require_verified_email
    }

    /// Registration with an optional display name. Two budgets per IP address (see
    /// docs/abuse-resistance.md): accounts created, a sustained rate with a burst, and
    /// failed attempts (malformed input, a taken email), a fixed number per window. A
    /// typo costs nothing of the first; a taken email's 409 cannot be used to harvest
    /// accounts at scale because of the second.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        email: &str,
        name: Option<DisplayName>,
        password: String,
        ip: ClientIp,
    ) -> Result<RegisteredUser, RegisterError> {
        let event = Event::new(events::REGISTRATION, Outcome::Success).ip(ip);
        if let Some(ip) = ip
            && let Some(retry_after_secs) = self.throttle.locked(Key::RegisterIp(ip)).await?
        {
            let event = Event {
                outcome: Outcome::Throttled,
                ..event
            };
            self.audit.record(event.detail("failed_attempts")).await;
            return Err(RegisterError::Throttled { retry_after_secs });
        }
        let result = self.create_account(email, name, password, ip).await;
        let (outcome, detail) = match &result {
            Ok(user) => {
                let id = user.id.to_string();
                self.audit.record(event.user(Some(&id))).await;
                return result;
            }
            Err(RegisterError::Unexpected(_)) => return result,
            Err(RegisterError::Throttled { .. }) => (Outcome::Throttled, "accounts_created"),
            Err(RegisterError::InvalidEmail(_)) => (Outcome::Failure, "invalid_email"),
            Err(RegisterError::InvalidPassword(_)) => (Outcome::Failure, "invalid_password"),
            Err(RegisterError::EmailTaken) => (Outcome::Failure, "email_taken"),
        };
        if let (Some(ip), Outcome::Failure) = (ip, outcome) {
            self.throttle
                .fail(Key::RegisterIp(ip), &self.throttle.policies().registration)
                .await?;
        }
        self.audit
            .record(Event { outcome, ..event }.detail(detail))
            .await;
        result
    }

    /// Validates the input, takes one account from the address's allowance, and stores
    /// the account; the allowance is given back if no account came of it.
    async fn create_account(
        &self,
        email: &str,
        name: Option<DisplayName>,
        password: String,
        ip: ClientIp,
    ) -> Result<RegisteredUser, RegisterError> {
        let email = Email::parse(email)?;
        let password = Password::parse(password, &self.common_passwords)?;
        let allowance = ip.map(Key::AccountsCreated);
        let rate = &self.throttle.policies().accounts_created;
        if let Some(key) = allowance
            && let Some(retry_after_secs) = self.throttle.take(key, rate).await?
        {
            return Err(RegisterError::Throttled { retry_after_secs });
        }
        let result = self.insert_account(email, name, password).await;
        if let (Some(key), Err(_)) = (allowance, &result) {
            self.throttle.give_back(key, rate).await?;
        }
        result
    }

    async fn insert_account(
        &self,
        email: Email,
        name: Option<DisplayName>,
        password: Password,
    ) -> Result<RegisteredUser, RegisterError> {
        let hash = self.hasher.hash(password).await?;
        let id = UserId::generate();
        let created_at = self.clock.now();
        let name = name.as_ref().map(AsRef::as_ref);
        let new_user = users::NewUser {
            id,
            email: &email,
            name,
            password_hash: &hash,
            now: created_at.timestamp(),
        };
        // The account and its verification mail commit together; the UNIQUE constraints
        // decide concurrent registrations, and a crash leaves everything or nothing.
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        match users::insert(&mut *tx, &new_user).await {
            Ok(()) => {}
            Err(InsertUserError::EmailTaken) => return Err(RegisterError::EmailTaken),
            Err(InsertUserError::Unexpected(e)) => return Err(e.into()),
        }
        self.queue_verification(&mut tx, &id.to_string(), email.as_ref())
            .await?;
        tx.commit().await.context("Failed to register an account")?;
        self.outbox.wake();
        tracing::info!(user_id = %id, "Account registered");
        Ok(RegisteredUser {
            id,
            email,
            created_at,
        })
    }

    /// Checks an email and password, throttled per IP address and per submitted email.
    /// Unknown emails, malformed emails, wrong passwords and locked accounts are one
    /// outcome and cost one Argon2id verification each, so neither the answer nor its
    /// timing tells whether an account exists or is locked. Only an IP address with too
    /// many failures gets another answer ([`LoginError::Throttled`]), before any check.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate(
        &self,
        email: &str,
        password: String,
        ip: ClientIp,
        device: &Device,
    ) -> Result<AuthenticatedUser, LoginError> {
        let account = Key::Account(email);
        // Both counters in one read; without an address, the account's twice.
        let [by_ip, by_account] = self
            .throttle
            .states([ip.map_or(account, Key::Ip), account])
            .await?;
        if let Some(ip) = ip
            && let Some(retry_after_secs) = by_ip.locked_for
        {
            self.audit
                .record(Event::new(events::SIGN_IN, Outcome::Throttled).ip(Some(ip)))
                .await;
            return Err(LoginError::Throttled { retry_after_secs });
        }
        let locked = by_account.locked_for.is_some();
        // Verified even when locked, so a locked account costs the same time.
        let (user, verified) = self.check_password(email, password).await?;
        let user_id = user.as_ref().map(|(u, _)| u.id.as_str());
        if locked {
            tracing::info!(outcome = "locked", "Password check refused");
            self.audit
                .record(
                    Event::new(events::SIGN_IN, Outcome::Locked)
                        .user(user_id)
                        .ip(ip)
                        .device(&device.description, device.user_agent.as_deref()),
                )
                .await;
            self.count_ip_failure(ip).await?;
            return Err(LoginError::InvalidCredentials);
        }
        match user {
            Some((user, standing)) if verified => {
                // Nothing on record (nearly every sign-in): nothing to reset. A failure
                // counted meanwhile stays, as if it came after this success.
                if by_account.recorded {
                    self.throttle.reset(account).await?;
                }
                if standing.disabled {
                    return Err(self.refuse_disabled(&user, ip, device).await);
                }
                if self.mail.require_verified_email && !standing.email_verified {
                    return Err(self.refuse_unverified(&user, ip, device).await?);
                }
                tracing::info!(outcome = "success", user_id = %user.id, "Password check");
                self.audit
                    .record(
                        Event::new(events::SIGN_IN, Outcome::Success)
                            .user(Some(&user.id))
                            .ip(ip)
                            .device(&device.description, device.user_agent.as_deref()),
                    )
                    .await;
                Ok(user)
            }
            _ => {
                tracing::info!(outcome = "failure", "Password check refused");
                self.audit
                    .record(
                        Event::new(events::SIGN_IN, Outcome::Failure)
                            .user(user_id)
                            .ip(ip)
                            .device(&device.description, device.user_agent.as_deref()),
                    )
                    .await;
                let policy = &self.throttle.policies().account;
                if let Some(lock) = self.throttle.fail(account, policy).await? {
                    let detail = format!("locked for {lock} s");
                    self.audit
                        .record(
                            Event::new(events::ACCOUNT_LOCKED, Outcome::Locked)
                                .user(user_id)
                                .ip(ip)
                                .detail(&detail),
                        )
                        .await;
                }
                self.count_ip_failure(ip).await?;
                Err(LoginError::InvalidCredentials)
            }
        }
    }

    async fn count_ip_failure(&self, ip: ClientIp) -> anyhow::Result<()> {
        let Some(ip) = ip else { return Ok(()) };
        let policy = &self.throttle.policies().ip;
        if let Some(lock) = self.throttle.fail(Key::Ip(ip), policy).await? {
            let detail = format!("throttled for {lock} s");
            self.audit
                .record(
                    Event::new(events::IP_THROTTLED, Outcome::Throttled)
                        .ip(Some(ip))
                        .detail(&detail),
                )
                .await;
        }
        Ok(())
    }

    /// A right password for an unverified address, when the idp requires verified ones:
    /// no session, a new link mailed (quietly capped at three an hour), and the refusal
    /// audited. Not a failure: the account's and the address's counters are untouched.
    async fn refuse_unverified(
        &self,
        user: &AuthenticatedUser,
        ip: ClientIp,
        device: &Device,
    ) -> anyhow::Result<LoginError> {
        match self.resend_verification(&user.id).await {
            Ok(()) | Err(ResendError::AlreadyVerified | ResendError::Throttled { .. }) => {}
            Err(ResendError::Unexpected(e)) => return Err(e),
        }
        self.record_refusal(user, ip, device, "email_not_verified")
            .await;
        Ok(LoginError::EmailNotVerified)
    }

    /// A right password for a disabled account: no session, and the refusal audited. Not
    /// a failure: the counters are untouched.
    async fn refuse_disabled(
        &self,
        user: &AuthenticatedUser,
        ip: ClientIp,
        device: &Device,
    ) -> LoginError {
        self.record_refusal(user, ip, device, "account_disabled")
            .await;
        LoginError::AccountDisabled
    }

    /// Logs and audits a sign-in refused after a right password, with the reason.
    async fn record_refusal(
        &self,
        user: &AuthenticatedUser,
        ip: ClientIp,
        device: &Device,
        reason: &'static str,
    ) {
        tracing::info!(outcome = reason, user_id = %user.id, "Password check");
        self.audit
            .record(
                Event::new(events::SIGN_IN, Outcome::Failure)
                    .user(Some(&user.id))
                    .ip(ip)
                    .device(&device.description, device.user_agent.as_deref())
                    .detail(reason),
            )
            .await;
    }

    /// The account of `email` (and what it still has to pass), if any, and whether
    /// `password` is its password. One Argon2id verification whatever the input (a dummy
    /// hash for unknown emails).
    async fn check_password(
        &self,
        email: &str,
        password: String,
    ) -> anyhow::Result<(Option<(AuthenticatedUser, Standing)>, bool)> {
        let password = Password::for_login(password);
        let user = match Email::parse(email) {
            Ok(email) => users::find_by_email(&self.pool, &email).await?,
            Err(_) => None,
        };
        let (user, stored_hash) = match user {
            Some(u) => {
                let standing = Standing {
                    email_verified: u.email_verified,
                    disabled: u.disabled,
                };
                let user = AuthenticatedUser {
                    id: u.id,
                    email: u.email,
                };
                (Some((user, standing)), Some(u.password_hash))
            }
            None => (None, None),
        };
        let matches = self.hasher.verify(password, stored_hash).await?;
        Ok((user, matches))
    }

    /// Changes `user_id`'s password after checking the current one (throttled like a
    /// sign-in). On success every other session of the user ends, and with them every
    /// refresh token and OAuth grant not made in `current_session`.
    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
        user_id: &str,
        current_session: &str,
        current: String,
        new: String,
        ip: ClientIp,
        device: &Device,
    ) -> Result<(), PasswordChangeError> {
        let user = self
            .reauthenticate(user_id, current, ip, events::PASSWORD_CHANGED)
            .await?;
        let new = Password::parse(new, &self.common_passwords)?;
        let hash = self.hasher.hash(new).await?;
        let now = self.clock.now();
        let notice = PasswordChanged {
            when: &now.format(NOTICE_TIME).to_string(),
            device: &device.shown(),
            ip: &shown_ip(ip),
            account_url: &self.mail.account_url,
        }
        .to(&user.email)?;
        let now = now.timestamp();
        // The new hash, the notice and the event commit together: no change goes untold.
        let txn = Events::txn();
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        users::update_password_hash(&mut *tx, user_id, &hash, now).await?;
        self.outbox.enqueue(&mut *tx, &notice).await?;
        let signals = self.sessions.events();
        signals
            .publish(&mut tx, &txn, &password_changed(user_id))
            .await?;
        tx.commit().await.context("Failed to change a password")?;
        self.outbox.wake();
        signals.wake();
        let ended = self
            .sessions
            .end_others_in(
                user_id,
                Some(current_session),
                EndReason::PasswordChanged,
                ip,
                &txn,
            )
            .await?;
        let revoked =
            grants::revoke_for_user_except_session(&self.pool, user_id, current_session, now)
                .await?;
        tracing::info!(
            user_id,
            ended_sessions = ended,
            revoked_grants = revoked,
            "Password changed"
        );
        self.audit
            .record(
                Event::new(events::PASSWORD_CHANGED, Outcome::Success)
                    .user(Some(user_id))
                    .ip(ip),
            )
            .await;
        Ok(())
    }
}
