//! The `totp_credentials` and `recovery_codes` tables. Secrets arrive here sealed;
//! recovery codes hashed.

use anyhow::Context;
use sqlx::{Any, AnyConnection, AnyPool, Executor};

/// An authenticator app as the account page lists it.
#[derive(Clone, Debug)]
pub struct Authenticator {
    pub id: String,
    pub name: String,
    pub confirmed_at: i64,
}

/// A credential's sealed secret and the last step accepted for it.
pub struct SealedSecret {
    pub id: String,
    pub secret: String,
    pub last_step: i64,
}

pub struct NewCredential<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub sealed_secret: &'a str,
    pub now: i64,
}

/// Starts an enrolment, forgetting any unfinished one of the user.
pub async fn begin(pool: &AnyPool, credential: &NewCredential<'_>) -> anyhow::Result<()> {
    let mut tx = pool.begin().await.context("Failed to begin")?;
    sqlx::query("DELETE FROM totp_credentials WHERE user_id = $1 AND confirmed_at IS NULL")
        .bind(credential.user_id)
        .execute(&mut *tx)
        .await
        .context("Failed to forget an unfinished enrolment")?;
    sqlx::query(
        "INSERT INTO totp_credentials (id, user_id, name, secret, last_step, created_at) \
         VALUES ($1, $2, '', $3, 0, $4)",
    )
    .bind(credential.id)
    .bind(credential.user_id)
    .bind(credential.sealed_secret)
    .bind(credential.now)
    .execute(&mut *tx)
    .await
    .context("Failed to store an enrolment")?;
    tx.commit().await.context("Failed to begin an enrolment")
}

/// The user's unfinished enrolment begun after `since`, if any.
pub async fn unconfirmed(
    pool: &AnyPool,
    user_id: &str,
    since: i64,
) -> anyhow::Result<Option<SealedSecret>> {
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT id, secret, last_step FROM totp_credentials \
         WHERE user_id = $1 AND confirmed_at IS NULL AND created_at > $2",
    )
    .bind(user_id)
    .bind(since)
    .fetch_optional(pool)
    .await
    .context("Failed to read an enrolment")?;
    Ok(row.map(|(id, secret, last_step)| SealedSecret {
        id,
        secret,
        last_step,
    }))
}

/// Finishes the enrolment `id` with the step its first code was right for; `false` if
/// it was not the user's unfinished enrolment any more.
pub async fn confirm(
    conn: &mut AnyConnection,
    user_id: &str,
    id: &str,
    name: &str,
    step: i64,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE totp_credentials SET name = $1, last_step = $2, confirmed_at = $3 \
         WHERE id = $4 AND user_id = $5 AND confirmed_at IS NULL",
    )
    .bind(name)
    .bind(step)
    .bind(now)
    .bind(id)
    .bind(user_id)
    .execute(conn)
    .await
    .context("Failed to confirm an authenticator")?;
    Ok(done.rows_affected() == 1)
}

pub async fn authenticators(pool: &AnyPool, user_id: &str) -> anyhow::Result<Vec<Authenticator>> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, name, confirmed_at FROM totp_credentials \
         WHERE user_id = $1 AND confirmed_at IS NOT NULL ORDER BY confirmed_at, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
    .context("Failed to list authenticators")?;
    Ok(rows
        .into_iter()
        .map(|(id, name, confirmed_at)| Authenticator {
            id,
            name,
            confirmed_at,
        })
        .collect())
}

/// The sealed secrets of the user's confirmed authenticators.
pub async fn confirmed_secrets(pool: &AnyPool, user_id: &str) -> anyhow::Result<Vec<SealedSecret>> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, secret, last_step FROM totp_credentials \
         WHERE user_id = $1 AND confirmed_at IS NOT NULL",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
    .context("Failed to read authenticators")?;
    Ok(rows
        .into_iter()
        .map(|(id, secret, last_step)| SealedSecret {
            id,
            secret,
            last_step,
        })
        .collect())
}

/// Moves `id`'s last accepted step to `step` if it is later: `false` when a code of
/// this step (or a later one) was accepted already, by this request's rival too.
pub async fn accept_step(pool: &AnyPool, id: &str, step: i64) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE totp_credentials SET last_step = $1 \
         WHERE id = $2 AND last_step < $1 AND confirmed_at IS NOT NULL",
    )
    .bind(step)
    .bind(id)
    .execute(pool)
    .await
    .context("Failed to record an accepted code")?;
    Ok(done.rows_affected() == 1)
}

/// What a removal took away.
pub enum Removed {
    App(String),
    Passkey(String),
}

/// Removes the user's authenticator app or passkey `id`; `None` if there is none.
///
/// Here and in the factors' other transactions the first statement writes: on SQLite
/// (WAL) a transaction that read first cannot write once another connection wrote
/// meanwhile (`SQLITE_BUSY_SNAPSHOT`, not retried), while one that writes first waits
/// its turn.
pub async fn remove(
    conn: &mut AnyConnection,
    user_id: &str,
    id: &str,
) -> anyhow::Result<Option<Removed>> {
    if let Some(name) = remove_app(conn, user_id, id).await? {
        return Ok(Some(Removed::App(name)));
    }
    let name: Option<(String,)> =
        sqlx::query_as("DELETE FROM passkeys WHERE id = $1 AND user_id = $2 RETURNING name")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await
            .context("Failed to remove a passkey")?;
    Ok(name.map(|(name,)| Removed::Passkey(name)))
}

async fn remove_app(
    conn: &mut AnyConnection,
    user_id: &str,
    id: &str,
) -> anyhow::Result<Option<String>> {
    let name: Option<(String,)> = sqlx::query_as(
        "DELETE FROM totp_credentials \
         WHERE id = $1 AND user_id = $2 AND confirmed_at IS NOT NULL RETURNING name",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await
    .context("Failed to remove an authenticator")?;
    Ok(name.map(|(name,)| name))
}

/// How many confirmed second factors the user has.
pub async fn count<'e>(
    executor: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> anyhow::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM totp_credentials \
         WHERE user_id = $1 AND confirmed_at IS NOT NULL) \
         + (SELECT COUNT(*) FROM passkeys WHERE user_id = $1)",
    )
    .bind(user_id)
    .fetch_one(executor)
    .await
    .context("Failed to count second factors")?;
    Ok(n)
}

/// Replaces the user's recovery codes with `hashes` (none: the user has no set).
pub async fn replace_recovery_codes(
    conn: &mut AnyConnection,
    user_id: &str,
    hashes: &[String],
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .context("Failed to delete recovery codes")?;
    for hash in hashes {
        sqlx::query(
            "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&mut *conn)
        .await
        .context("Failed to store a recovery code")?;
    }
    Ok(())
}

/// Spends the unused recovery code with this hash; `false` if there is none.
pub async fn spend_recovery_code(
    pool: &AnyPool,
    user_id: &str,
    code_hash: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 \
         WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .bind(code_hash)
    .execute(pool)
    .await
    .context("Failed to spend a recovery code")?;
    Ok(done.rows_affected() == 1)
}

pub async fn recovery_codes_left<'e>(
    executor: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> anyhow::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(executor)
    .await
    .context("Failed to count recovery codes")?;
    Ok(n)
}

/// A passkey as stored: `passkey` is the webauthn-rs credential as JSON.
pub struct StoredPasskey {
    pub id: String,
    pub name: String,
    pub passkey: String,
    pub created_at: i64,
}

pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub passkey: &'a str,
    pub now: i64,
}

pub async fn insert_passkey(conn: &mut AnyConnection, new: &NewPasskey<'_>) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO passkeys (id, user_id, name, passkey, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new.id)
    .bind(new.user_id)
    .bind(new.name)
    .bind(new.passkey)
    .bind(new.now)
    .execute(conn)
    .await
    .context("Failed to store a passkey")?;
    Ok(())
}

pub async fn passkeys(pool: &AnyPool, user_id: &str) -> anyhow::Result<Vec<StoredPasskey>> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, name, passkey, created_at FROM passkeys WHERE user_id = $1 \
         ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
    .context("Failed to list passkeys")?;
    Ok(rows
        .into_iter()
        .map(|(id, name, passkey, created_at)| StoredPasskey {
            id,
            name,
            passkey,
            created_at,
        })
        .collect())
}

/// Stores a passkey's new counter after a use; `false` if it is gone.
pub async fn passkey_used(
    pool: &AnyPool,
    id: &str,
    passkey: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query("UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE id = $3")
        .bind(passkey)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await
        .context("Failed to record a passkey's use")?;
    Ok(done.rows_affected() == 1)
}
