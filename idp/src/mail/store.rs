//! The `mail_outbox` table.

use anyhow::Context;
use serde::Serialize;
use sqlx::{Any, AnyPool, Executor};

use crate::storage::outbox::{DELIVERY_COLUMNS, Delivery};

/// A message as queued.
pub struct NewRow<'a> {
    pub id: &'a str,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub message: &'a str,
    pub now: i64,
}

pub async fn insert<'e>(
    executor: impl Executor<'e, Database = Any>,
    row: &NewRow<'_>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO mail_outbox (id, recipient, subject, message, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(row.id)
    .bind(row.recipient)
    .bind(row.subject)
    .bind(row.message)
    .bind(row.now)
    .execute(executor)
    .await
    .context("Failed to queue a mail")?;
    Ok(())
}

/// Queues a message that can never be sent as a dead letter, with the reason.
pub async fn insert_dead<'e>(
    executor: impl Executor<'e, Database = Any>,
    row: &NewRow<'_>,
    error: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO mail_outbox \
         (id, recipient, subject, message, created_at, next_attempt_at, last_error, failed_at) \
         VALUES ($1, $2, $3, '', $4, $4, $5, $4)",
    )
    .bind(row.id)
    .bind(row.recipient)
    .bind(row.subject)
    .bind(row.now)
    .bind(error)
    .execute(executor)
    .await
    .context("Failed to queue a mail")?;
    Ok(())
}

/// A message claimed for one delivery attempt.
pub struct Claimed {
    pub id: String,
    pub recipient: String,
    pub message: String,
    /// Counting this one.
    pub attempts: i64,
}

/// Claims up to `limit` due messages until `lease_until`, in one statement. A message
/// another instance claimed meanwhile is skipped: on PostgreSQL the row lock makes the
/// second `UPDATE` re-check `lease_until` against the first one's write.
pub async fn claim_due(
    pool: &AnyPool,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> anyhow::Result<Vec<Claimed>> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "UPDATE mail_outbox SET lease_until = $1, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM mail_outbox \
                      WHERE sent_at IS NULL AND failed_at IS NULL \
                        AND next_attempt_at <= $2 AND lease_until <= $2 \
                      ORDER BY created_at, id LIMIT $3) \
           AND lease_until <= $2 \
         RETURNING id, recipient, message, attempts",
    )
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("Failed to claim mail")?;
    Ok(rows
        .into_iter()
        .map(|(id, recipient, message, attempts)| Claimed {
            id,
            recipient,
            message,
            attempts,
        })
        .collect())
}

/// The server accepted it: sent, and its text (which may hold a token) is dropped.
pub async fn mark_sent(pool: &AnyPool, id: &str, now: i64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE mail_outbox SET sent_at = $1, message = '', lease_until = 0, last_error = NULL \
         WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await
    .context("Failed to mark a mail sent")?;
    Ok(())
}

/// One message as `idp mail list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Listed {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub delivery: Delivery,
}

/// Messages not yet sent (pending and dead letters), oldest first.
pub async fn unsent(pool: &AnyPool) -> anyhow::Result<Vec<Listed>> {
    sqlx::query_as(&format!(
        "SELECT id, recipient, subject, {DELIVERY_COLUMNS} FROM mail_outbox \
         WHERE sent_at IS NULL ORDER BY created_at, id"
    ))
    .fetch_all(pool)
    .await
    .context("Failed to list mail")
}
