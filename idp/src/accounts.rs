//! Accounts: registration and first-party password login. Owns the rules (policy,
//! uniqueness, no user enumeration, throttling, the audit trail of both); storage,
//! hashing and the throttle counters are delegated.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use service_kit::clock::Clock;
use sqlx::AnyPool;

use crate::audit::{Audit, Event, Outcome, events};
use crate::domain::password::CommonPasswords;
use crate::domain::{Email, EmailError, Password, PasswordError, UserId};
use crate::passwords::PasswordHasher;
use crate::storage::users::{self, InsertUserError};
use crate::throttle::{Key, Throttle};
use crate::tokens::{AccessGrant, IssuedToken, TokenIssuer};

/// `client_id` of tokens from the first-party JSON login.
pub const FIRST_PARTY_CLIENT_ID: &str = "first-party";
/// Scopes of first-party tokens: the user's own profile at the resource server.
pub const FIRST_PARTY_SCOPE: &str = "users:read users:write";

#[derive(Clone)]
pub struct Accounts {
    pool: AnyPool,
    hasher: PasswordHasher,
    common_passwords: CommonPasswords,
    tokens: TokenIssuer,
    clock: Clock,
    throttle: Throttle,
    audit: Audit,
    audience: String,
    access_token_ttl_secs: u64,
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
    /// Too many registrations from this IP address: retry after this many seconds.
    #[error("too many registrations")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// A display name (OIDC `name`): trimmed, 1 to 100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DisplayNameError {
    #[error("Use at most 100 characters.")]
    TooLong,
    #[error("Names cannot contain control characters.")]
    ControlCharacter,
}

impl DisplayName {
    pub const MAX_CHARS: usize = 100;

    /// `None` for a blank input: the name is optional.
    pub fn parse(input: &str) -> Result<Option<Self>, DisplayNameError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(DisplayNameError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DisplayNameError::ControlCharacter);
        }
        Ok(Some(Self(trimmed.to_owned())))
    }
}

impl AsRef<str> for DisplayName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A user whose password was just checked.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    pub id: String,
    pub email: String,
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
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub struct AccountsConfig {
    pub audience: String,
    pub access_token_ttl_secs: u64,
}

/// Where a credential check comes from (for throttling and the audit trail).
pub type ClientIp = Option<IpAddr>;

impl Accounts {
    pub fn new(
        pool: AnyPool,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        clock: Clock,
        throttle: Throttle,
        config: AccountsConfig,
    ) -> Self {
        Self {
            audit: Audit::new(pool.clone(), clock.clone()),
            pool,
            hasher,
            common_passwords: CommonPasswords::load(),
            tokens,
            clock,
            throttle,
            audience: config.audience,
            access_token_ttl_secs: config.access_token_ttl_secs,
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        email: &str,
        password: String,
        ip: ClientIp,
    ) -> Result<RegisteredUser, RegisterError> {
        self.register_with_name(email, None, password, ip).await
    }

    /// Registration with an optional display name (the registration page asks for one;
    /// the JSON API does not). Every attempt counts against the IP address's budget,
    /// so a taken email's 409 cannot be used to harvest accounts at scale.
    #[tracing::instrument(skip_all)]
    pub async fn register_with_name(
        &self,
        email: &str,
        name: Option<DisplayName>,
        password: String,
        ip: ClientIp,
    ) -> Result<RegisteredUser, RegisterError> {
        if let Some(ip) = ip {
            let key = Key::RegisterIp(ip);
            if let Some(retry_after_secs) = self.throttle.locked(key).await? {
                self.audit
                    .record(Event::new(events::REGISTRATION, Outcome::Throttled).ip(Some(ip)))
                    .await;
                return Err(RegisterError::Throttled { retry_after_secs });
            }
            self.throttle
                .fail(key, &self.throttle.policies().registration)
                .await?;
        }
        let result = self.insert_account(email, name, password).await;
        let event = Event::new(events::REGISTRATION, Outcome::Success).ip(ip);
        match &result {
            Ok(user) => {
                let id = user.id.to_string();
                self.audit.record(event.user(Some(&id))).await;
            }
            Err(RegisterError::Unexpected(_)) => {}
            Err(e) => {
                let detail = match e {
                    RegisterError::InvalidEmail(_) => "invalid_email",
                    RegisterError::InvalidPassword(_) => "invalid_password",
                    _ => "email_taken",
                };
                let event = Event {
                    outcome: Outcome::Failure,
                    ..event
                };
                self.audit.record(event.detail(detail)).await;
            }
        }
        result
    }

    async fn insert_account(
        &self,
        email: &str,
        name: Option<DisplayName>,
        password: String,
    ) -> Result<RegisteredUser, RegisterError> {
        let email = Email::parse(email)?;
        let password = Password::parse(password, &self.common_passwords)?;
        let hash = self.hasher.hash(password).await?;
        let id = UserId::generate();
        let created_at = self.clock.now();
        // One INSERT: the UNIQUE constraint decides concurrent registrations, and a crash
        // leaves either the whole row or nothing.
        let name = name.as_ref().map(AsRef::as_ref);
        match users::insert(&self.pool, id, &email, name, &hash, created_at.timestamp()).await {
            Ok(()) => {}
            Err(InsertUserError::EmailTaken) => return Err(RegisterError::EmailTaken),
            Err(InsertUserError::Unexpected(e)) => return Err(e.into()),
        }
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
    ) -> Result<AuthenticatedUser, LoginError> {
        if let Some(ip) = ip
            && let Some(retry_after_secs) = self.throttle.locked(Key::Ip(ip)).await?
        {
            self.audit
                .record(Event::new(events::SIGN_IN, Outcome::Throttled).ip(Some(ip)))
                .await;
            return Err(LoginError::Throttled { retry_after_secs });
        }
        let account = Key::Account(email);
        let locked = self.throttle.locked(account).await?.is_some();
        // Verified even when locked, so a locked account costs the same time.
        let (user, verified) = self.check_password(email, password).await?;
        let user_id = user.as_ref().map(|u| u.id.as_str());
        if locked {
            tracing::info!(outcome = "locked", "Password check refused");
            self.audit
                .record(
                    Event::new(events::SIGN_IN, Outcome::Locked)
                        .user(user_id)
                        .ip(ip),
                )
                .await;
            self.count_ip_failure(ip).await?;
            return Err(LoginError::InvalidCredentials);
        }
        match user {
            Some(user) if verified => {
                self.throttle.reset(account).await?;
                tracing::info!(outcome = "success", user_id = %user.id, "Password check");
                self.audit
                    .record(
                        Event::new(events::SIGN_IN, Outcome::Success)
                            .user(Some(&user.id))
                            .ip(ip),
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
                            .ip(ip),
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

    /// The account of `email`, if any, and whether `password` is its password. One
    /// Argon2id verification whatever the input (a dummy hash for unknown emails).
    async fn check_password(
        &self,
        email: &str,
        password: String,
    ) -> anyhow::Result<(Option<AuthenticatedUser>, bool)> {
        let password = Password::for_login(password);
        let user = match Email::parse(email) {
            Ok(email) => users::find_by_email(&self.pool, &email).await?,
            Err(_) => None,
        };
        let (user, stored_hash) = match user {
            Some(u) => {
                let hash = u.password_hash;
                (Some((u.id, u.email)), Some(hash))
            }
            None => (None, None),
        };
        let verified = self.hasher.verify(password, stored_hash).await?;
        Ok((
            user.map(|(id, email)| AuthenticatedUser { id, email }),
            verified,
        ))
    }

    /// First-party JSON login: a password check, then an access token for the
    /// resource server.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: String,
        ip: ClientIp,
    ) -> Result<IssuedToken, LoginError> {
        let user = self.authenticate(email, password, ip).await?;
        Ok(self
            .tokens
            .access_token(AccessGrant {
                subject: user.id,
                audience: self.audience.clone(),
                client_id: FIRST_PARTY_CLIENT_ID.to_owned(),
                scope: FIRST_PARTY_SCOPE.to_owned(),
                email: Some(user.email),
                lifetime_secs: self.access_token_ttl_secs,
            })
            .await?)
    }
}
