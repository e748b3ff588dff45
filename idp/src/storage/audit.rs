//! The `audit_events` table: append-only.

use anyhow::Context;
use sqlx::AnyPool;

/// One row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

pub async fn insert(pool: &AnyPool, row: &AuditRow) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, event, outcome, user_id, client_id, ip, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.at)
    .bind(&row.event)
    .bind(&row.outcome)
    .bind(row.user_id.as_deref())
    .bind(row.client_id.as_deref())
    .bind(row.ip.as_deref())
    .bind(row.detail.as_deref())
    .execute(pool)
    .await
    .context("Failed to write an audit event")?;
    Ok(())
}

/// The latest `limit` events, newest first.
pub async fn latest(pool: &AnyPool, limit: i64) -> anyhow::Result<Vec<AuditRow>> {
    type Row = (
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT at, event, outcome, user_id, client_id, ip, detail FROM audit_events \
         ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("Failed to read audit events")?;
    Ok(rows
        .into_iter()
        .map(
            |(at, event, outcome, user_id, client_id, ip, detail)| AuditRow {
                at,
                event,
                outcome,
                user_id,
                client_id,
                ip,
                detail,
            },
        )
        .collect())
}
