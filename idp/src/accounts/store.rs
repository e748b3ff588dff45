//! The `users` table.

use anyhow::Context;
use sqlx::{Any, AnyPool, Executor};

use crate::accounts::email::Email;
use crate::accounts::user_id::UserId;

/// A stored account. The password hash never leaves the idp.
#[derive(Debug)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: String,
    pub created_at: i64,
    /// When `name` last changed (OIDC `updated_at`), Unix seconds.
    pub profile_updated_at: i64,
    /// Whether `email` was proven to be the owner's (OIDC `email_verified`).
    pub email_verified: bool,
    /// An operator disabled the account (`idp users disable`): it cannot sign in.
    pub disabled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// A new account, as stored.
pub struct NewUser<'a> {
    pub id: UserId,
    pub email: &'a Email,
    pub name: Option<&'a str>,
    pub password_hash: &'a str,
    pub now: i64,
}

pub async fn insert<'e>(
    executor: impl Executor<'e, Database = Any>,
    user: &NewUser<'_>,
) -> Result<(), InsertUserError> {
    sqlx::query(
        "INSERT INTO users \
         (id, email, email_key, name, password_hash, created_at, updated_at, profile_updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $6)",
    )
    .bind(user.id.to_string())
    .bind(user.email.as_ref())
    .bind(user.email.confusable_key())
    .bind(user.name)
    .bind(user.password_hash)
    .bind(user.now)
    .execute(executor)
    .await
    .map_err(|e| taken_or(e, "Failed to insert a user"))?;
    Ok(())
}

/// A unique violation (the address, or one that looks like it) as `EmailTaken`.
fn taken_or(e: sqlx::Error, context: &'static str) -> InsertUserError {
    if service_kit::db::is_unique_violation(&e) {
        InsertUserError::EmailTaken
    } else {
        InsertUserError::Unexpected(anyhow::Error::new(e).context(context))
    }
}

type UserRow = (
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);
const USER_COLUMNS: &str = "id, email, name, password_hash, created_at, profile_updated_at, \
     email_verified_at, disabled_at";

pub async fn find_by_email(pool: &AnyPool, email: &Email) -> anyhow::Result<Option<UserRecord>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
    ))
    .bind(email.as_ref())
    .fetch_optional(pool)
    .await
    .context("Failed to look up a user by email")?;
    Ok(row.map(record))
}

pub async fn find_by_id(pool: &AnyPool, id: &str) -> anyhow::Result<Option<UserRecord>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await
            .context("Failed to look up a user by id")?;
    Ok(row.map(record))
}

fn record(
    (
        id,
        email,
        name,
        password_hash,
        created_at,
        profile_updated_at,
        email_verified_at,
        disabled_at,
    ): UserRow,
) -> UserRecord {
    UserRecord {
        id,
        email,
        name,
        password_hash,
        created_at,
        profile_updated_at,
        email_verified: email_verified_at.is_some(),
        disabled: disabled_at.is_some(),
    }
}

/// Moves `user_id` to `email`, verified at `now` (its link was opened). `EmailTaken`
/// if another account has it, or one that looks like it, by now.
pub async fn change_email<'e>(
    executor: impl Executor<'e, Database = Any>,
    user_id: &str,
    email: &Email,
    now: i64,
) -> Result<(), InsertUserError> {
    sqlx::query(
        "UPDATE users SET email = $1, email_key = $2, email_verified_at = $3, updated_at = $3 \
         WHERE id = $4",
    )
    .bind(email.as_ref())
    .bind(email.confusable_key())
    .bind(now)
    .bind(user_id)
    .execute(executor)
    .await
    .map_err(|e| taken_or(e, "Failed to change an email"))?;
    Ok(())
}

/// Whether an account has `email` or an address that looks like it.
pub async fn email_in_use(pool: &AnyPool, email: &Email) -> anyhow::Result<bool> {
    let (count,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM users WHERE email = $1 OR email_key = $2")
            .bind(email.as_ref())
            .bind(email.confusable_key())
            .fetch_one(pool)
            .await
            .context("Failed to look up an email")?;
    Ok(count > 0)
}

/// Disables `user_id` as of `Some(now)`, or enables it (`None`). `false` if it already
/// was (or there is no such account).
pub async fn set_disabled<'e>(
    executor: impl Executor<'e, Database = Any>,
    user_id: &str,
    disabled_at: Option<i64>,
) -> anyhow::Result<bool> {
    let query = match disabled_at {
        Some(now) => {
            sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
                .bind(now)
                .bind(user_id)
        }
        None => sqlx::query(
            "UPDATE users SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL",
        )
        .bind(user_id),
    };
    let result = query
        .execute(executor)
        .await
        .context("Failed to change whether an account is disabled")?;
    Ok(result.rows_affected() > 0)
}

/// Marks `email` verified for `user_id` if that is still the account's address (the
/// first time counts). `true` if it was.
pub async fn mark_email_verified<'e>(
    executor: impl Executor<'e, Database = Any>,
    user_id: &str,
    email: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $1) \
         WHERE id = $2 AND email = $3",
    )
    .bind(now)
    .bind(user_id)
    .bind(email)
    .execute(executor)
    .await
    .context("Failed to mark an email verified")?;
    Ok(result.rows_affected() > 0)
}

/// Sets a user's display name (`None` removes it). `true` if the user exists.
pub async fn update_name(
    pool: &AnyPool,
    id: &str,
    name: Option<&str>,
    now: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "UPDATE users SET name = $1, profile_updated_at = $2, updated_at = $2 WHERE id = $3",
    )
    .bind(name)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await
    .context("Failed to change a name")?;
    Ok(result.rows_affected() > 0)
}

/// Replaces a user's password hash. `true` if the user exists.
pub async fn update_password_hash<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: &str,
    password_hash: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(password_hash)
        .bind(now)
        .bind(id)
        .execute(executor)
        .await
        .context("Failed to change a password")?;
    Ok(result.rows_affected() > 0)
}

/// Gives accounts registered before addresses had confusable keys their normalised
/// address and key. An address that is no longer accepted, or that collides with
/// another account's, keeps its stored form, gets a key of its own that collides with
/// nothing (`legacy:` and the user id, which no address can be) and is logged by user
/// id for an operator to sort out: nothing is merged or refused behind anyone's back.
pub async fn backfill_email_keys(pool: &AnyPool) -> anyhow::Result<()> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, email FROM users WHERE email_key IS NULL")
            .fetch_all(pool)
            .await
            .context("Failed to list accounts without an email key")?;
    for (id, stored) in rows {
        let normalised = match Email::parse(&stored) {
            Ok(email) => Some(email),
            Err(e) => {
                tracing::warn!(user_id = %id, error = %e, "A registered email address is no longer accepted; it keeps its stored form");
                None
            }
        };
        if let Some(email) = &normalised {
            match set_email(pool, &id, email.as_ref(), email.confusable_key()).await {
                Ok(()) => continue,
                Err(e) if service_kit::db::is_unique_violation(&e) => {
                    tracing::warn!(user_id = %id, "A registered email address looks like another account's; it keeps its stored form");
                }
                Err(e) => return Err(anyhow::Error::new(e).context("Failed to store an email key")),
            }
        }
        set_email(pool, &id, &stored, &format!("legacy:{id}"))
            .await
            .context("Failed to store an email key")?;
    }
    Ok(())
}

async fn set_email(pool: &AnyPool, id: &str, email: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET email = $1, email_key = $2 WHERE id = $3")
        .bind(email)
        .bind(key)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())
}
