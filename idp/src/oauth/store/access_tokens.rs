//! The `access_tokens` table: the `jti`s of access tokens issued within a user grant,
//! and of any access token revoked on its own (RFC 7009). A signature cannot say that a
//! token was revoked; userinfo and introspection ask here.

use anyhow::Context;
use sqlx::{Any, Executor, Row};

/// Records an access token issued within `grant_id`.
pub async fn insert<'e>(
    executor: impl Executor<'e, Database = Any>,
    jti: &str,
    grant_id: Option<&str>,
    client_id: &str,
    expires_at: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO access_tokens (jti, grant_id, client_id, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4, NULL)",
    )
    .bind(jti)
    .bind(grant_id)
    .bind(client_id)
    .bind(expires_at)
    .execute(executor)
    .await
    .context("Failed to record an access token")?;
    Ok(())
}

/// Marks the token `jti` revoked, recording it first if it was never recorded (tokens
/// of the client_credentials grant are not, so that path does no write).
pub async fn revoke<'e>(
    executor: impl Executor<'e, Database = Any>,
    jti: &str,
    client_id: &str,
    expires_at: i64,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO access_tokens (jti, grant_id, client_id, expires_at, revoked_at) \
         VALUES ($1, NULL, $2, $3, $4) \
         ON CONFLICT (jti) DO UPDATE SET revoked_at = \
         COALESCE(access_tokens.revoked_at, excluded.revoked_at)",
    )
    .bind(jti)
    .bind(client_id)
    .bind(expires_at)
    .bind(now)
    .execute(executor)
    .await
    .context("Failed to revoke an access token")?;
    Ok(())
}

/// What the database knows about one access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    /// No row: a token issued without a grant (client_credentials, first-party login).
    Unrecorded,
    /// Issued within a grant of `user_id` that is still live, and not revoked itself.
    Live { grant_id: String, user_id: String },
    /// Recorded without a grant and not revoked (cannot happen today; kept total).
    LiveWithoutGrant,
    /// Revoked by itself or through its grant.
    Revoked,
}

pub async fn state<'e>(
    executor: impl Executor<'e, Database = Any>,
    jti: &str,
) -> anyhow::Result<TokenState> {
    let row = sqlx::query(
        "SELECT a.grant_id, a.revoked_at, g.user_id, g.revoked_at AS grant_revoked_at \
         FROM access_tokens a LEFT JOIN grants g ON g.id = a.grant_id WHERE a.jti = $1",
    )
    .bind(jti)
    .fetch_optional(executor)
    .await
    .context("Failed to look up an access token")?;
    let Some(row) = row else {
        return Ok(TokenState::Unrecorded);
    };
    let revoked: Option<i64> = row.try_get("revoked_at")?;
    let grant_id: Option<String> = row.try_get("grant_id")?;
    let user_id: Option<String> = row.try_get("user_id")?;
    let grant_revoked: Option<i64> = row.try_get("grant_revoked_at")?;
    Ok(match (revoked, grant_id, user_id) {
        (Some(_), _, _) => TokenState::Revoked,
        (None, None, _) => TokenState::LiveWithoutGrant,
        (None, Some(grant_id), Some(user_id)) if grant_revoked.is_none() => {
            TokenState::Live { grant_id, user_id }
        }
        // The grant is revoked, or gone (ON DELETE CASCADE removes the row with it).
        (None, Some(_), _) => TokenState::Revoked,
    })
}
