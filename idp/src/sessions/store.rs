//! The `user_sessions` and `session_refresh_tokens` tables. "Live" is decided in SQL
//! (not ended, before the absolute expiry, used within the idle timeout), so every
//! instance on one database agrees on it.

use anyhow::Context;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Executor, Row};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    /// `browser` or `api`.
    pub kind: String,
    /// The parsed description ("Firefox on Linux"); see [`crate::sessions::device`].
    pub device: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub csrf_hash: Option<String>,
    /// How the user signed in ([`crate::accounts::amr::Amr`]'s stored form).
    pub amr: String,
}

const COLUMNS: &str = "id, user_id, kind, device, user_agent, ip, created_at, last_seen_at, expires_at, csrf_hash, \
     amr";

/// The condition for a live session, with `$1` = now and `$2` = the oldest allowed
/// `last_seen_at`.
const LIVE: &str = "ended_at IS NULL AND expires_at > $1 AND last_seen_at > $2";

pub async fn insert<'e>(
    executor: impl Executor<'e, Database = Any>,
    row: &SessionRow,
) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO user_sessions ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(&row.id)
    .bind(&row.user_id)
    .bind(&row.kind)
    .bind(&row.device)
    .bind(row.user_agent.as_deref())
    .bind(row.ip.as_deref())
    .bind(row.created_at)
    .bind(row.last_seen_at)
    .bind(row.expires_at)
    .bind(row.csrf_hash.as_deref())
    .bind(&row.amr)
    .execute(executor)
    .await
    .context("Failed to store a session")?;
    Ok(())
}

/// The session `id` if it is live.
pub async fn find_live<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: &str,
    now: i64,
    idle_since: i64,
) -> anyhow::Result<Option<SessionRow>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM user_sessions WHERE {LIVE} AND id = $3"
    ))
    .bind(now)
    .bind(idle_since)
    .bind(id)
    .fetch_optional(executor)
    .await
    .context("Failed to look up a session")?;
    row.as_ref().map(record).transpose()
}

/// The live sessions of `user_id`, most recently used first.
pub async fn live_for_user(
    pool: &AnyPool,
    user_id: &str,
    now: i64,
    idle_since: i64,
) -> anyhow::Result<Vec<SessionRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM user_sessions WHERE {LIVE} AND user_id = $3 \
         ORDER BY last_seen_at DESC, created_at DESC"
    ))
    .bind(now)
    .bind(idle_since)
    .bind(user_id)
    .fetch_all(pool)
    .await
    .context("Failed to list sessions")?;
    rows.iter().map(record).collect()
}

/// Moves `last_seen_at` forward to `now` if it is older than `stale_before` (so a busy
/// session costs one write per interval, not one per request).
pub async fn touch<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: &str,
    now: i64,
    stale_before: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE user_sessions SET last_seen_at = $1 \
         WHERE id = $2 AND ended_at IS NULL AND last_seen_at < $3",
    )
    .bind(now)
    .bind(id)
    .bind(stale_before)
    .execute(executor)
    .await
    .context("Failed to record session activity")?;
    Ok(())
}

pub async fn set_csrf_hash(pool: &AnyPool, id: &str, csrf_hash: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE user_sessions SET csrf_hash = $1 WHERE id = $2")
        .bind(csrf_hash)
        .bind(id)
        .execute(pool)
        .await
        .context("Failed to store a CSRF token")?;
    Ok(())
}

/// Ends the session `id` of `user_id`. `true` if it was not ended before.
pub async fn end<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: &str,
    user_id: &str,
    now: i64,
    reason: &str,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "UPDATE user_sessions SET ended_at = $1, ended_reason = $2 \
         WHERE id = $3 AND user_id = $4 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .bind(user_id)
    .execute(executor)
    .await
    .context("Failed to end a session")?;
    Ok(result.rows_affected() > 0)
}

/// Marks an unused refresh token used and returns its session id; `None` if there is
/// no such unused token.
pub async fn use_refresh_token<'e>(
    executor: impl Executor<'e, Database = Any>,
    token_hash: &str,
    now: i64,
) -> anyhow::Result<Option<String>> {
    let row = sqlx::query(
        "UPDATE session_refresh_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND used_at IS NULL RETURNING session_id",
    )
    .bind(now)
    .bind(token_hash)
    .fetch_optional(executor)
    .await
    .context("Failed to rotate a refresh token")?;
    row.map(|r| r.try_get("session_id").map_err(Into::into))
        .transpose()
}

/// The session of a refresh token that was already used, if `token_hash` is one.
pub async fn session_of_used_refresh_token<'e>(
    executor: impl Executor<'e, Database = Any>,
    token_hash: &str,
) -> anyhow::Result<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT t.session_id, s.user_id FROM session_refresh_tokens t \
         JOIN user_sessions s ON s.id = t.session_id \
         WHERE t.token_hash = $1 AND t.used_at IS NOT NULL",
    )
    .bind(token_hash)
    .fetch_optional(executor)
    .await
    .context("Failed to look up a refresh token")?;
    row.map(|r| -> anyhow::Result<(String, String)> {
        Ok((r.try_get("session_id")?, r.try_get("user_id")?))
    })
    .transpose()
}

/// The session of an unused refresh token.
pub async fn session_of_unused_refresh_token(
    pool: &AnyPool,
    token_hash: &str,
) -> anyhow::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT session_id FROM session_refresh_tokens WHERE token_hash = $1 AND used_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await
    .context("Failed to look up a refresh token")?;
    row.map(|r| r.try_get("session_id").map_err(Into::into))
        .transpose()
}

pub async fn insert_refresh_token<'e>(
    executor: impl Executor<'e, Database = Any>,
    token_hash: &str,
    session_id: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO session_refresh_tokens (token_hash, session_id, created_at) \
         VALUES ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(session_id)
    .bind(now)
    .execute(executor)
    .await
    .context("Failed to store a refresh token")?;
    Ok(())
}

fn record(row: &AnyRow) -> anyhow::Result<SessionRow> {
    Ok(SessionRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: row.try_get("kind")?,
        device: row.try_get("device")?,
        user_agent: row.try_get("user_agent")?,
        ip: row.try_get("ip")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
        csrf_hash: row.try_get("csrf_hash")?,
        amr: row.try_get("amr")?,
    })
}
