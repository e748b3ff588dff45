//! The `audit_events` table: append-only.

use anyhow::Context;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

/// One row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub device: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

pub async fn insert(pool: &AnyPool, row: &AuditRow) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO audit_events \
         (at, event, outcome, user_id, client_id, ip, device, user_agent, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.at)
    .bind(&row.event)
    .bind(&row.outcome)
    .bind(row.user_id.as_deref())
    .bind(row.client_id.as_deref())
    .bind(row.ip.as_deref())
    .bind(row.device.as_deref())
    .bind(row.user_agent.as_deref())
    .bind(row.detail.as_deref())
    .execute(pool)
    .await
    .context("Failed to write an audit event")?;
    Ok(())
}

const COLUMNS: &str = "at, event, outcome, user_id, client_id, ip, device, user_agent, detail";

/// The latest `limit` events, newest first.
pub async fn latest(pool: &AnyPool, limit: i64) -> anyhow::Result<Vec<AuditRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_events ORDER BY id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("Failed to read audit events")?;
    rows.iter().map(record).collect()
}

/// The latest `limit` events named `event` about `user_id`, newest first.
pub async fn latest_for_user(
    pool: &AnyPool,
    user_id: &str,
    events: [&str; 2],
    limit: i64,
) -> anyhow::Result<Vec<AuditRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE user_id = $1 AND event IN ($2, $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(user_id)
    .bind(events[0])
    .bind(events[1])
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("Failed to read audit events")?;
    rows.iter().map(record).collect()
}

fn record(row: &AnyRow) -> anyhow::Result<AuditRow> {
    Ok(AuditRow {
        at: row.try_get("at")?,
        event: row.try_get("event")?,
        outcome: row.try_get("outcome")?,
        user_id: row.try_get("user_id")?,
        client_id: row.try_get("client_id")?,
        ip: row.try_get("ip")?,
        device: row.try_get("device")?,
        user_agent: row.try_get("user_agent")?,
        detail: row.try_get("detail")?,
    })
}
