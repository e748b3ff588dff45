//! OpenID Connect Back-Channel Logout 1.0: which clients hear that a session ended, and
//! where. A client registered with a `backchannel_logout_uri` gets a logout token for
//! each session it received an ID token in (a live grant with `openid` made in it).

use anyhow::Context;
use sqlx::{Any, AnyPool, Executor};

/// The clients to tell that session `session_id` ended.
pub async fn clients_of_session<'e>(
    executor: impl Executor<'e, Database = Any>,
    session_id: &str,
) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT g.client_id FROM grants g \
         JOIN clients c ON c.client_id = g.client_id \
         WHERE g.session_id = $1 AND g.revoked_at IS NULL \
           AND c.backchannel_logout_uri IS NOT NULL \
           AND (' ' || g.scope || ' ') LIKE '% openid %' \
         ORDER BY g.client_id",
    )
    .bind(session_id)
    .fetch_all(executor)
    .await
    .context("Failed to find the clients of a session")?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Where client `client_id` takes logout tokens; `None` once it is deleted or no longer
/// registered for back-channel logout.
pub async fn uri(pool: &AnyPool, client_id: &str) -> anyhow::Result<Option<String>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT backchannel_logout_uri FROM clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(pool)
            .await
            .context("Failed to read a client's back-channel logout URI")?;
    Ok(row.and_then(|(uri,)| uri))
}
