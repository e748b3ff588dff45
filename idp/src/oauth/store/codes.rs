//! The `authorization_codes` table. A code is consumed by one conditional UPDATE, so
//! two concurrent redemptions cannot both succeed; the row stays (consumed) so a replay
//! can be recognised and the grant it produced revoked.

use anyhow::Context;
use sqlx::{AnyPool, Row};

/// A code as stored (by hash), with everything the token endpoint must check.
#[derive(Debug, Clone)]
pub struct CodeRecord {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    /// How the user signed in (RFC 8176 values, space-separated).
    pub amr: String,
    pub session_id: String,
    pub expires_at: i64,
}

pub async fn insert(
    pool: &AnyPool,
    code_hash: &str,
    code: &CodeRecord,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, scope, nonce, \
         code_challenge, auth_time, amr, session_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(code_hash)
    .bind(&code.client_id)
    .bind(&code.user_id)
    .bind(&code.redirect_uri)
    .bind(&code.scope)
    .bind(code.nonce.as_deref())
    .bind(code.code_challenge.as_deref())
    .bind(code.auth_time)
    .bind(&code.amr)
    .bind(&code.session_id)
    .bind(now)
    .bind(code.expires_at)
    .execute(pool)
    .await
    .context("Failed to store an authorization code")?;
    Ok(())
}

/// What presenting a code found.
#[derive(Debug)]
pub enum Consumed {
    /// First presentation: the code is now used up.
    Fresh(CodeRecord),
    /// Presented before; `grant_id` is what the first redemption produced, if recorded.
    Replayed {
        grant_id: Option<String>,
    },
    Unknown,
}

const RECORD_COLUMNS: &str = "client_id, user_id, redirect_uri, scope, nonce, code_challenge, auth_time, amr, session_id, expires_at";

/// Marks the code used and returns it, or says why it cannot be used. Takes a connection
/// (`&mut *tx`): the token endpoint consumes the code and records its grant in one
/// transaction.
pub async fn consume(
    conn: &mut sqlx::AnyConnection,
    code_hash: &str,
    now: i64,
) -> anyhow::Result<Consumed> {
    let row = sqlx::query(&format!(
        "UPDATE authorization_codes SET consumed_at = $1 \
         WHERE code_hash = $2 AND consumed_at IS NULL RETURNING {RECORD_COLUMNS}"
    ))
    .bind(now)
    .bind(code_hash)
    .fetch_optional(&mut *conn)
    .await
    .context("Failed to consume an authorization code")?;
    if let Some(row) = row {
        return Ok(Consumed::Fresh(CodeRecord {
            client_id: row.try_get("client_id")?,
            user_id: row.try_get("user_id")?,
            redirect_uri: row.try_get("redirect_uri")?,
            scope: row.try_get("scope")?,
            nonce: row.try_get("nonce")?,
            code_challenge: row.try_get("code_challenge")?,
            auth_time: row.try_get("auth_time")?,
            amr: row.try_get("amr")?,
            session_id: row.try_get("session_id")?,
            expires_at: row.try_get("expires_at")?,
        }));
    }
    let replayed: Option<(Option<String>,)> =
        sqlx::query_as("SELECT grant_id FROM authorization_codes WHERE code_hash = $1")
            .bind(code_hash)
            .fetch_optional(&mut *conn)
            .await
            .context("Failed to look up a used authorization code")?;
    Ok(match replayed {
        Some((grant_id,)) => Consumed::Replayed { grant_id },
        None => Consumed::Unknown,
    })
}

/// Records which grant a redeemed code produced, so a replay can revoke it.
pub async fn set_grant<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    code_hash: &str,
    grant_id: &str,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE authorization_codes SET grant_id = $1 WHERE code_hash = $2")
        .bind(grant_id)
        .bind(code_hash)
        .execute(executor)
        .await
        .context("Failed to link an authorization code to its grant")?;
    Ok(())
}
