//! The `signing_keys` table.

use anyhow::Context;
use sqlx::AnyPool;

/// A stored key; `private_key_enc` is still encrypted.
#[derive(Debug)]
pub struct KeyRecord {
    pub kid: String,
    pub state: String,
    pub public_jwk: String,
    pub private_key_enc: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InsertKeyError {
    /// Another instance created the current key first.
    #[error("a current signing key already exists")]
    CurrentExists,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub async fn insert_current(
    pool: &AnyPool,
    kid: &str,
    public_jwk: &str,
    private_key_enc: &str,
    now: i64,
) -> Result<(), InsertKeyError> {
    sqlx::query(
        "INSERT INTO signing_keys \
         (kid, state, algorithm, public_jwk, private_key_enc, created_at, activated_at) \
         VALUES ($1, 'current', 'RS256', $2, $3, $4, $4)",
    )
    .bind(kid)
    .bind(public_jwk)
    .bind(private_key_enc)
    .bind(now)
    .execute(pool)
    .await
    .map_err(|e| {
        if service_kit::db::is_unique_violation(&e) {
            InsertKeyError::CurrentExists
        } else {
            InsertKeyError::Unexpected(
                anyhow::Error::new(e).context("Failed to store a signing key"),
            )
        }
    })?;
    Ok(())
}

/// Keys that belong in the JWKS (next, current, retired), current first.
pub async fn published(pool: &AnyPool) -> anyhow::Result<Vec<KeyRecord>> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT kid, state, public_jwk, private_key_enc FROM signing_keys \
         WHERE state IN ('next', 'current', 'retired') \
         ORDER BY CASE state WHEN 'current' THEN 0 WHEN 'next' THEN 1 ELSE 2 END, created_at DESC",
    )
    .fetch_all(pool)
    .await
    .context("Failed to load the signing keys")?;
    Ok(rows
        .into_iter()
        .map(|(kid, state, public_jwk, private_key_enc)| KeyRecord {
            kid,
            state,
            public_jwk,
            private_key_enc,
        })
        .collect())
}
