//! Accounts: registration and first-party password login. Owns the rules (policy,
//! uniqueness, no user enumeration); storage and hashing are delegated.

use chrono::{DateTime, Utc};
use service_kit::clock::Clock;
use sqlx::AnyPool;

use crate::domain::password::CommonPasswords;
use crate::domain::{Email, EmailError, Password, PasswordError, UserId};
use crate::passwords::PasswordHasher;
use crate::storage::users::{self, InsertUserError};
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
    /// Unknown email, wrong password or malformed email: deliberately one case.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub struct AccountsConfig {
    pub audience: String,
    pub access_token_ttl_secs: u64,
}

impl Accounts {
    pub fn new(
        pool: AnyPool,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        clock: Clock,
        config: AccountsConfig,
    ) -> Self {
        Self {
            pool,
            hasher,
            common_passwords: CommonPasswords::load(),
            tokens,
            clock,
            audience: config.audience,
            access_token_ttl_secs: config.access_token_ttl_secs,
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        email: &str,
        password: String,
    ) -> Result<RegisteredUser, RegisterError> {
        self.register_with_name(email, None, password).await
    }

    /// Registration with an optional display name (the registration page asks for one;
    /// the JSON API does not).
    #[tracing::instrument(skip_all)]
    pub async fn register_with_name(
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

    /// Checks an email and password. Unknown emails, malformed emails and wrong
    /// passwords are one outcome and cost one Argon2id verification each, so neither
    /// the answer nor its timing tells whether an account exists.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate(
        &self,
        email: &str,
        password: String,
    ) -> Result<AuthenticatedUser, LoginError> {
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
        match user {
            Some((id, email)) if verified => {
                tracing::info!(outcome = "success", user_id = %id, "Password check");
                Ok(AuthenticatedUser { id, email })
            }
            _ => {
                tracing::info!(outcome = "failure", "Password check refused");
                Err(LoginError::InvalidCredentials)
            }
        }
    }

    /// First-party JSON login: a password check, then an access token for the
    /// resource server.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, email: &str, password: String) -> Result<IssuedToken, LoginError> {
        let user = self.authenticate(email, password).await?;
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
