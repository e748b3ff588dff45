//! The `signing_keys` table.

use anyhow::Context;
use sqlx::{AnyConnection, AnyPool};

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

/// A key's lifecycle row, without key material.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kid: String,
    pub state: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub removed_at: Option<i64>,
}

type KeyRowTuple = (String, String, i64, Option<i64>, Option<i64>, Option<i64>);

/// Every key ever stored (removed ones too), oldest first.
pub async fn all(conn: &mut AnyConnection) -> anyhow::Result<Vec<KeyRow>> {
    let rows: Vec<KeyRowTuple> = sqlx::query_as(
        "SELECT kid, state, created_at, activated_at, retired_at, removed_at \
         FROM signing_keys ORDER BY created_at, kid",
    )
    .fetch_all(conn)
    .await
    .context("Failed to list the signing keys")?;
    Ok(rows
        .into_iter()
        .map(
            |(kid, state, created_at, activated_at, retired_at, removed_at)| KeyRow {
                kid,
                state,
                created_at,
                activated_at,
                retired_at,
                removed_at,
            },
        )
        .collect())
}

/// Stores a key in state `next` (published, not signing) that is planned to sign from
/// `activates_at`. The unique index allows one staged key at a time.
pub async fn insert_next(
    conn: &mut AnyConnection,
    kid: &str,
    public_jwk: &str,
    private_key_enc: &str,
    now: i64,
    activates_at: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO signing_keys \
         (kid, state, algorithm, public_jwk, private_key_enc, created_at, activated_at) \
         VALUES ($1, 'next', 'RS256', $2, $3, $4, $5)",
    )
    .bind(kid)
    .bind(public_jwk)
    .bind(private_key_enc)
    .bind(now)
    .bind(activates_at)
    .execute(conn)
    .await
    .context("Failed to stage a signing key")?;
    Ok(())
}

/// Stores a key that signs from `now` (there must be no current key).
pub async fn insert_current_in(
    conn: &mut AnyConnection,
    kid: &str,
    public_jwk: &str,
    private_key_enc: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO signing_keys \
         (kid, state, algorithm, public_jwk, private_key_enc, created_at, activated_at) \
         VALUES ($1, 'current', 'RS256', $2, $3, $4, $4)",
    )
    .bind(kid)
    .bind(public_jwk)
    .bind(private_key_enc)
    .bind(now)
    .execute(conn)
    .await
    .context("Failed to store a signing key")?;
    Ok(())
}

/// `current` -> `retired`. False if `kid` was not current (someone else moved it).
pub async fn retire(conn: &mut AnyConnection, kid: &str, now: i64) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE signing_keys SET state = 'retired', retired_at = $2 \
         WHERE kid = $1 AND state = 'current'",
    )
    .bind(kid)
    .bind(now)
    .execute(conn)
    .await
    .context("Failed to retire a signing key")?;
    Ok(done.rows_affected() == 1)
}

/// `next` -> `current`. False if `kid` was not staged.
pub async fn activate(conn: &mut AnyConnection, kid: &str, now: i64) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE signing_keys SET state = 'current', activated_at = $2 \
         WHERE kid = $1 AND state = 'next'",
    )
    .bind(kid)
    .bind(now)
    .execute(conn)
    .await
    .context("Failed to activate a signing key")?;
    Ok(done.rows_affected() == 1)
}

/// Any published state -> `removed`, destroying the encrypted private key. False if
/// `kid` is unknown or already removed.
pub async fn remove(conn: &mut AnyConnection, kid: &str, now: i64) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE signing_keys SET state = 'removed', removed_at = $2, private_key_enc = '' \
         WHERE kid = $1 AND state IN ('next', 'current', 'retired')",
    )
    .bind(kid)
    .bind(now)
    .execute(conn)
    .await
    .context("Failed to remove a signing key")?;
    Ok(done.rows_affected() == 1)
}

/// Claims or renews the lease `name` for `holder` until `expires_at`. True when
/// `holder` now holds it: it was free, expired (at `now`), or already `holder`'s.
/// One atomic statement, so of several instances claiming at once exactly one wins.
pub async fn claim_lease(
    pool: &AnyPool,
    name: &str,
    holder: &str,
    now: i64,
    expires_at: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
    )
    .bind(name)
    .bind(holder)
    .bind(expires_at)
    .bind(now)
    .execute(pool)
    .await
    .context("Failed to claim a lease")?;
    Ok(done.rows_affected() == 1)
}
