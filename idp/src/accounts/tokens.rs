//! The `account_tokens` table: single-use, expiring links sent by mail. Only a token's
//! SHA-256 is stored, so the table alone opens nothing.

use anyhow::Context;
use sqlx::{Any, AnyConnection, AnyPool, Executor};

/// What a link is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    EmailVerification,
    /// The link's `email` is the new address.
    EmailChange,
    /// Not a link: the JSON API's `mfa_token`, between a right password and the second
    /// factor.
    SignInChallenge,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::EmailVerification => "email_verification",
            Self::EmailChange => "email_change",
            Self::SignInChallenge => "sign_in_challenge",
        }
    }
}

pub struct NewToken<'a> {
    pub token_hash: &'a str,
    pub user_id: &'a str,
    pub purpose: Purpose,
    pub email: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// Stores a new link and spends every earlier unused one of the same user and purpose:
/// the newest link is the only one that works.
pub async fn replace(conn: &mut AnyConnection, token: &NewToken<'_>) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE account_tokens SET used_at = $1 \
         WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
    )
    .bind(token.now)
    .bind(token.user_id)
    .bind(token.purpose.as_str())
    .execute(&mut *conn)
    .await
    .context("Failed to spend earlier links")?;
    sqlx::query(
        "INSERT INTO account_tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token.token_hash)
    .bind(token.user_id)
    .bind(token.purpose.as_str())
    .bind(token.email)
    .bind(token.now)
    .bind(token.expires_at)
    .execute(&mut *conn)
    .await
    .context("Failed to store a link")?;
    Ok(())
}

/// A link that can still be used.
pub struct LiveToken {
    pub user_id: String,
    pub email: String,
}

/// The unused, unexpired link with this hash and purpose.
pub async fn find_live(
    pool: &AnyPool,
    token_hash: &str,
    purpose: Purpose,
    now: i64,
) -> anyhow::Result<Option<LiveToken>> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT user_id, email FROM account_tokens \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(pool)
    .await
    .context("Failed to look up a link")?;
    Ok(row.map(|(user_id, email)| LiveToken { user_id, email }))
}

/// Spends the link if it is still live; `false` if it was not (used meanwhile,
/// expired, or never issued).
pub async fn spend<'e>(
    executor: impl Executor<'e, Database = Any>,
    token_hash: &str,
    purpose: Purpose,
    now: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "UPDATE account_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(token_hash)
    .bind(purpose.as_str())
    .execute(executor)
    .await
    .context("Failed to spend a link")?;
    Ok(result.rows_affected() == 1)
}
