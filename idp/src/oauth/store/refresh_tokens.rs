//! The `refresh_tokens` table, keyed by the SHA-256 of the token. Rotation is one
//! conditional UPDATE (`used_at IS NULL`), so two concurrent uses of one token cannot
//! both succeed; the used row stays, so presenting it again is recognised as reuse.

use anyhow::Context;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

/// A refresh token as stored (by hash).
#[derive(Debug, Clone)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub scope: String,
    pub created_at: i64,
    /// Idle expiry of this token.
    pub expires_at: i64,
    /// The end of the whole family, however often it is used.
    pub absolute_expires_at: i64,
    /// Set once the token was exchanged for a new one.
    pub used_at: Option<i64>,
}

impl RefreshTokenRecord {
    /// The moment this token stops working: idle or absolute expiry, whichever is first.
    pub fn expiry(&self) -> i64 {
        self.expires_at.min(self.absolute_expires_at)
    }
}

const COLUMNS: &str =
    "token_hash, grant_id, client_id, scope, created_at, expires_at, absolute_expires_at, used_at";

pub async fn insert<'e>(
    executor: impl Executor<'e, Database = Any>,
    token: &RefreshTokenRecord,
) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO refresh_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&token.token_hash)
    .bind(&token.grant_id)
    .bind(&token.client_id)
    .bind(&token.scope)
    .bind(token.created_at)
    .bind(token.expires_at)
    .bind(token.absolute_expires_at)
    .bind(token.used_at)
    .execute(executor)
    .await
    .context("Failed to store a refresh token")?;
    Ok(())
}

/// Marks an unused token of `client_id` used and returns it; `None` if there is no such
/// unused token (unknown, another client's, or already used: see [`find`]).
pub async fn mark_used<'e>(
    executor: impl Executor<'e, Database = Any>,
    token_hash: &str,
    client_id: &str,
    now: i64,
) -> anyhow::Result<Option<RefreshTokenRecord>> {
    let row = sqlx::query(&format!(
        "UPDATE refresh_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND client_id = $3 AND used_at IS NULL RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(token_hash)
    .bind(client_id)
    .fetch_optional(executor)
    .await
    .context("Failed to rotate a refresh token")?;
    row.as_ref().map(record).transpose()
}

pub async fn find<'e>(
    executor: impl Executor<'e, Database = Any>,
    token_hash: &str,
) -> anyhow::Result<Option<RefreshTokenRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM refresh_tokens WHERE token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(executor)
    .await
    .context("Failed to look up a refresh token")?;
    row.as_ref().map(record).transpose()
}

fn record(row: &AnyRow) -> anyhow::Result<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        token_hash: row.try_get("token_hash")?,
        grant_id: row.try_get("grant_id")?,
        client_id: row.try_get("client_id")?,
        scope: row.try_get("scope")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        absolute_expires_at: row.try_get("absolute_expires_at")?,
        used_at: row.try_get("used_at")?,
    })
}
