//! The events store in a database (feature `events-store`): sqlx's `Any` driver, one
//! query text for SQLite and PostgreSQL, portable SQL only. The store creates its two
//! tables if they are missing, so a service needs no migration of its own:
//!
//! ```sql
//! -- What is revoked. kind 'session' (id: a sid) and 'subject' (id: a sub): tokens
//! -- with iat <= at are refused; kind 'account' (id: a sub): `at` is the iat of the
//! -- SET that set the account's state, `disabled` 1 while it refuses every token.
//! -- expires_at: when the row may go (NULL while an account is disabled);
//! -- updated_at: when it was written, for the other instances to sync.
//! CREATE TABLE jwt_auth_revocations (kind TEXT, id TEXT, at BIGINT, disabled BIGINT,
//!     expires_at BIGINT, updated_at BIGINT, PRIMARY KEY (kind, id));
//! -- The SETs received, until a redelivery would be too old to be accepted anyway.
//! CREATE TABLE jwt_auth_seen_events (jti TEXT PRIMARY KEY, expires_at BIGINT);
//! ```
//!
//! The merge rules of [`RevocationIndex::apply`] are spelled in SQL here (`ON
//! CONFLICT ... DO UPDATE`), so that concurrent writers, on several instances, cannot
//! lose a revocation: sessions and subjects keep the later `at`, an account follows the
//! newest SET. Instances sharing the database read each other's rows every
//! [`sync_interval`](super::ReceiverConfig::sync_interval).

use std::time::Duration;

use anyhow::{Context, anyhow};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Executor, Row};
use tokio::sync::Mutex;

use super::store::Recorded;
use crate::revocation::{AccountState, Revocation, RevocationIndex};

const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS jwt_auth_revocations (\
         kind TEXT NOT NULL, \
         id TEXT NOT NULL, \
         at BIGINT NOT NULL, \
         disabled BIGINT NOT NULL, \
         expires_at BIGINT, \
         updated_at BIGINT NOT NULL, \
         PRIMARY KEY (kind, id))",
    "CREATE INDEX IF NOT EXISTS jwt_auth_revocations_updated_at \
         ON jwt_auth_revocations (updated_at)",
    "CREATE TABLE IF NOT EXISTS jwt_auth_seen_events (\
         jti TEXT PRIMARY KEY, \
         expires_at BIGINT NOT NULL)",
];

const COLUMNS: &str = "kind, id, at, disabled, expires_at";

/// A sync reads again the rows written this long before the last one, so that a row
/// stamped by an instance whose clock is behind, or committed late, is not missed.
/// Reading a row twice is harmless: merging is idempotent.
const SYNC_OVERLAP_SECS: i64 = 60;

pub(crate) struct SqlStore {
    pool: AnyPool,
    /// Rows updated at or after this (less the overlap) are read by the next sync.
    synced_at: Mutex<i64>,
}

impl SqlStore {
    pub(crate) async fn open(
        pool: AnyPool,
        index: &RevocationIndex,
        now: i64,
    ) -> anyhow::Result<Self> {
        if create_tables(&pool).await.is_err() {
            // Two instances creating the tables at once on PostgreSQL can collide in its
            // catalog; a second attempt finds them created.
            tokio::time::sleep(Duration::from_millis(200)).await;
            create_tables(&pool)
                .await
                .context("Failed to create the security event tables")?;
        }
        let loaded = apply_rows(
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM jwt_auth_revocations \
                 WHERE expires_at IS NULL OR expires_at >= $1"
            ))
            .bind(now)
            .fetch(&pool),
            index,
        )
        .await
        .context("Failed to load the revocations")?;
        tracing::info!(revocations = loaded, "Loaded the revocations");
        Ok(Self {
            pool,
            synced_at: Mutex::new(now),
        })
    }

    pub(crate) async fn record(
        &self,
        jti: &str,
        seen_until: i64,
        revocations: &[Revocation],
        now: i64,
    ) -> anyhow::Result<Recorded> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin recording a security event")?;
        // The primary key decides which of two deliveries of one SET is the first.
        let inserted = sqlx::query(
            "INSERT INTO jwt_auth_seen_events (jti, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(seen_until)
        .execute(&mut *tx)
        .await
        .context("Failed to remember a security event")?
        .rows_affected();
        if inserted == 0 {
            return Ok(Recorded::Duplicate);
        }
        for revocation in revocations {
            upsert(&mut tx, revocation, now).await?;
        }
        tx.commit()
            .await
            .context("Failed to commit a security event")?;
        Ok(Recorded::New)
    }

    /// Deletes expired rows; returns how many `jti`s went.
    pub(crate) async fn prune(&self, now: i64) -> anyhow::Result<usize> {
        // A disabled account (expires_at NULL) is never older than anything.
        sqlx::query("DELETE FROM jwt_auth_revocations WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .context("Failed to prune the revocations")?;
        let seen = sqlx::query("DELETE FROM jwt_auth_seen_events WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .context("Failed to prune the seen security events")?;
        Ok(usize::try_from(seen.rows_affected()).unwrap_or(usize::MAX))
    }

    pub(crate) async fn sync(&self, index: &RevocationIndex, now: i64) -> anyhow::Result<usize> {
        let mut synced_at = self.synced_at.lock().await;
        let read = apply_rows(
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM jwt_auth_revocations \
                 WHERE updated_at >= $1 AND (expires_at IS NULL OR expires_at >= $2)"
            ))
            .bind(synced_at.saturating_sub(SYNC_OVERLAP_SECS))
            .bind(now)
            .fetch(&self.pool),
            index,
        )
        .await
        .context("Failed to read the latest revocations")?;
        *synced_at = now;
        Ok(read)
    }
}

/// Applies each row of `rows` to `index` as it arrives, so that loading a long list
/// never holds all its rows in memory at once (100,000 rows held together cost about
/// 100 MiB, which the allocator then kept); how many there were.
async fn apply_rows(
    mut rows: impl futures::Stream<Item = Result<AnyRow, sqlx::Error>> + Unpin,
    index: &RevocationIndex,
) -> anyhow::Result<usize> {
    use futures::TryStreamExt;
    let mut count = 0;
    while let Some(row) = rows.try_next().await? {
        index.apply(&revocation_from_row(&row)?);
        count += 1;
    }
    Ok(count)
}

async fn create_tables(pool: &AnyPool) -> anyhow::Result<()> {
    for statement in SCHEMA {
        pool.execute(statement).await?;
    }
    Ok(())
}

async fn upsert(conn: &mut AnyConnection, revocation: &Revocation, now: i64) -> anyhow::Result<()> {
    let query = match revocation {
        Revocation::Session {
            session_id: id,
            before,
            expires_at,
        }
        | Revocation::Subject {
            subject: id,
            before,
            expires_at,
        } => sqlx::query(
            // The later revocation wins and lives as long as the longer-lived one.
            "INSERT INTO jwt_auth_revocations (kind, id, at, disabled, expires_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $5) \
             ON CONFLICT (kind, id) DO UPDATE SET \
             at = CASE WHEN excluded.at > jwt_auth_revocations.at \
                  THEN excluded.at ELSE jwt_auth_revocations.at END, \
             expires_at = CASE WHEN excluded.expires_at > jwt_auth_revocations.expires_at \
                  THEN excluded.expires_at ELSE jwt_auth_revocations.expires_at END, \
             updated_at = excluded.updated_at",
        )
        .bind(kind(revocation))
        .bind(id.as_str())
        .bind(*before)
        .bind(*expires_at)
        .bind(now),
        Revocation::Account {
            subject,
            state,
            set_issued_at,
            expires_at,
        } => sqlx::query(
            // The newest SET decides; of two in one second, the later delivered.
            "INSERT INTO jwt_auth_revocations (kind, id, at, disabled, expires_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (kind, id) DO UPDATE SET \
             at = excluded.at, disabled = excluded.disabled, \
             expires_at = excluded.expires_at, updated_at = excluded.updated_at \
             WHERE excluded.at >= jwt_auth_revocations.at",
        )
        .bind(kind(revocation))
        .bind(subject.as_str())
        .bind(*set_issued_at)
        .bind(i64::from(*state == AccountState::Disabled))
        .bind(*expires_at)
        .bind(now),
    };
    query
        .execute(conn)
        .await
        .context("Failed to store a revocation")?;
    Ok(())
}

fn kind(revocation: &Revocation) -> &'static str {
    match revocation {
        Revocation::Session { .. } => "session",
        Revocation::Subject { .. } => "subject",
        Revocation::Account { .. } => "account",
    }
}

fn revocation_from_row(row: &AnyRow) -> anyhow::Result<Revocation> {
    let kind: String = row.try_get("kind")?;
    let id: String = row.try_get("id")?;
    let at: i64 = row.try_get("at")?;
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    let window_expiry = || expires_at.ok_or_else(|| anyhow!("A stored revocation has no expiry"));
    Ok(match kind.as_str() {
        "session" => Revocation::Session {
            session_id: id,
            before: at,
            expires_at: window_expiry()?,
        },
        "subject" => Revocation::Subject {
            subject: id,
            before: at,
            expires_at: window_expiry()?,
        },
        "account" => Revocation::Account {
            subject: id,
            state: if row.try_get::<i64, _>("disabled")? == 0 {
                AccountState::Enabled
            } else {
                AccountState::Disabled
            },
            set_issued_at: at,
            expires_at,
        },
        other => return Err(anyhow!("A stored revocation has an unknown kind {other:?}")),
    })
}
