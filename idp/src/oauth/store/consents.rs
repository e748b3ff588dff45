//! The `consents` table: per user and client, the scope the user agreed to share.

use anyhow::Context;
use sqlx::AnyPool;

/// The remembered scope (space-separated), if the user ever consented.
pub async fn find(
    pool: &AnyPool,
    user_id: &str,
    client_id: &str,
) -> anyhow::Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(pool)
            .await
            .context("Failed to look up a consent")?;
    Ok(row.map(|(scope,)| scope))
}

/// Stores `scope` as what the user agreed to share with the client, replacing any
/// earlier answer.
pub async fn upsert(
    pool: &AnyPool,
    user_id: &str,
    client_id: &str,
    scope: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(scope)
    .bind(now)
    .execute(pool)
    .await
    .context("Failed to store a consent")?;
    Ok(())
}
