//! What the two outboxes share, the mail (`mail_outbox`) and the security events
//! (`event_outbox`): both keep a row per delivery with `attempts`, `next_attempt_at`,
//! `lease_until`, `last_error`, `sent_at` and `failed_at` (a dead letter), and fail and
//! retry the same way. How each claims its rows, and what it keeps once sent, is its own.

use anyhow::Context;
use serde::Serialize;
use sqlx::AnyPool;

/// Where one undelivered row stands, as `idp mail list` and `idp streams outbox` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// Set once it is a dead letter.
    pub failed_at: Option<i64>,
}

/// The columns of [`Delivery`], for a `SELECT`.
pub const DELIVERY_COLUMNS: &str = "created_at, attempts, next_attempt_at, last_error, failed_at";

/// One of the outbox tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Mail,
    Events,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Mail => "mail_outbox",
            Self::Events => "event_outbox",
        }
    }
}

/// Attempt number `attempts` of row `id` failed: try again at `next_attempt_at`, or give
/// up (`failed_at`) when `dead_at` says so. An attempt overtaken by a later one (its
/// lease ran out mid-delivery) changes nothing: the later one decides.
pub async fn mark_failed(
    pool: &AnyPool,
    table: Table,
    (id, attempts): (&str, i64),
    error: &str,
    next_attempt_at: i64,
    dead_at: Option<i64>,
) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "UPDATE {} SET last_error = $1, next_attempt_at = $2, failed_at = $3, \
         lease_until = 0 WHERE id = $4 AND attempts = $5 AND sent_at IS NULL",
        table.name()
    ))
    .bind(error)
    .bind(next_attempt_at)
    .bind(dead_at)
    .bind(id)
    .bind(attempts)
    .execute(pool)
    .await
    .context("Failed to record a failed delivery")?;
    Ok(())
}

/// Puts dead letters (`id`, or all of them) back in the queue with fresh attempts;
/// how many.
pub async fn retry_failed(
    pool: &AnyPool,
    table: Table,
    id: Option<&str>,
    now: i64,
) -> anyhow::Result<u64> {
    let retry = format!(
        "UPDATE {} SET failed_at = NULL, attempts = 0, next_attempt_at = $1 \
         WHERE failed_at IS NOT NULL",
        table.name()
    );
    let result = match id {
        Some(id) => {
            sqlx::query(&format!("{retry} AND id = $2"))
                .bind(now)
                .bind(id)
                .execute(pool)
                .await
        }
        None => sqlx::query(&retry).bind(now).execute(pool).await,
    }
    .context("Failed to queue dead letters again")?;
    Ok(result.rows_affected())
}
