//! The `grants` table: one row per authorization a user gave a client, created when an
//! authorization code is redeemed. Its refresh tokens form one rotation family and its
//! access tokens are recorded against it; setting `revoked_at` ends them all, because
//! every check of those tokens joins this row.

use anyhow::Context;
use sqlx::{Any, Executor, Row};

/// A grant as stored.
#[derive(Debug, Clone)]
pub struct GrantRecord {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub auth_time: i64,
    /// How the user signed in for this grant (RFC 8176 values, space-separated).
    pub amr: String,
    pub session_id: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl GrantRecord {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

pub async fn insert<'e>(
    executor: impl Executor<'e, Database = Any>,
    grant: &GrantRecord,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO grants (id, client_id, user_id, scope, auth_time, amr, session_id, \
         created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&grant.id)
    .bind(&grant.client_id)
    .bind(&grant.user_id)
    .bind(&grant.scope)
    .bind(grant.auth_time)
    .bind(&grant.amr)
    .bind(grant.session_id.as_deref())
    .bind(grant.created_at)
    .bind(grant.revoked_at)
    .execute(executor)
    .await
    .context("Failed to store a grant")?;
    Ok(())
}

pub async fn find<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: &str,
) -> anyhow::Result<Option<GrantRecord>> {
    let row = sqlx::query(
        "SELECT id, client_id, user_id, scope, auth_time, amr, session_id, created_at, \
         revoked_at FROM grants WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(executor)
    .await
    .context("Failed to look up a grant")?;
    row.map(|row| -> anyhow::Result<GrantRecord> {
        Ok(GrantRecord {
            id: row.try_get("id")?,
            client_id: row.try_get("client_id")?,
            user_id: row.try_get("user_id")?,
            scope: row.try_get("scope")?,
            auth_time: row.try_get("auth_time")?,
            amr: row.try_get("amr")?,
            session_id: row.try_get("session_id")?,
            created_at: row.try_get("created_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    })
    .transpose()
}

/// Revokes one grant (and so its refresh and access tokens). `true` if it was live.
pub async fn revoke<'e>(
    executor: impl Executor<'e, Database = Any>,
    id: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let result =
        sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(executor)
            .await
            .context("Failed to revoke a grant")?;
    Ok(result.rows_affected() > 0)
}

/// Revokes every live grant made in a browser session (logout). Returns how many.
pub async fn revoke_for_session<'e>(
    executor: impl Executor<'e, Database = Any>,
    session_id: &str,
    now: i64,
) -> anyhow::Result<u64> {
    let result = sqlx::query(
        "UPDATE grants SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(session_id)
    .execute(executor)
    .await
    .context("Failed to revoke the grants of a session")?;
    Ok(result.rows_affected())
}

/// Revokes every live grant of a user except those made in `session_id` (a password
/// change in that session). Returns how many.
pub async fn revoke_for_user_except_session<'e>(
    executor: impl Executor<'e, Database = Any>,
    user_id: &str,
    session_id: &str,
    now: i64,
) -> anyhow::Result<u64> {
    let result = sqlx::query(
        "UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
         AND (session_id IS NULL OR session_id <> $3)",
    )
    .bind(now)
    .bind(user_id)
    .bind(session_id)
    .execute(executor)
    .await
    .context("Failed to revoke the grants of a user")?;
    Ok(result.rows_affected())
}
