//! The `event_outbox` table: tokens waiting for their receiver, delivered ones, and dead
//! letters.

use std::collections::HashMap;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{Any, AnyPool, Executor};

use crate::storage::outbox::{DELIVERY_COLUMNS, Delivery};

/// Who a queued token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receiver<'a> {
    /// An SSF stream, by id.
    Stream(&'a str),
    /// A client's back-channel logout URI, by client id.
    Client(&'a str),
}

impl<'a> Receiver<'a> {
    /// The `receiver` column: deliveries are ordered and grouped by it.
    pub fn key(self) -> String {
        match self {
            Self::Stream(id) => format!("stream:{id}"),
            Self::Client(id) => format!("client:{id}"),
        }
    }

    pub fn parse(key: &'a str) -> Option<Self> {
        if let Some(id) = key.strip_prefix("stream:") {
            Some(Self::Stream(id))
        } else {
            key.strip_prefix("client:").map(Self::Client)
        }
    }
}

pub struct NewEvent<'a> {
    pub id: &'a str,
    pub receiver: Receiver<'a>,
    /// The user it is about: events of one user reach a receiver in order.
    pub subject: &'a str,
    pub event_type: &'a str,
    pub claims: &'a Map<String, Value>,
    pub now: i64,
}

pub async fn insert<'e>(
    executor: impl Executor<'e, Database = Any>,
    event: &NewEvent<'_>,
) -> anyhow::Result<()> {
    let (stream_id, client_id) = match event.receiver {
        Receiver::Stream(id) => (Some(id), None),
        Receiver::Client(id) => (None, Some(id)),
    };
    sqlx::query(
        "INSERT INTO event_outbox (id, receiver, stream_id, client_id, subject, event_type, \
         claims, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(event.id)
    .bind(event.receiver.key())
    .bind(stream_id)
    .bind(client_id)
    .bind(event.subject)
    .bind(event.event_type)
    .bind(serde_json::to_string(event.claims)?)
    .bind(event.now)
    .execute(executor)
    .await
    .context("Failed to queue a security event")?;
    Ok(())
}

/// Receivers with an event due now.
pub async fn due_receivers(pool: &AnyPool, now: i64) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT receiver FROM event_outbox \
         WHERE sent_at IS NULL AND failed_at IS NULL \
           AND next_attempt_at <= $1 AND lease_until <= $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await
    .context("Failed to look for due events")?;
    Ok(rows.into_iter().map(|(r,)| r).collect())
}

/// An event claimed for one delivery attempt.
#[derive(Debug)]
pub struct Claimed {
    pub id: String,
    pub event_type: String,
    pub claims: String,
    /// Counting this one.
    pub attempts: i64,
}

/// Claims up to `limit` due events of `receiver` until `lease_until`, in one statement:
/// only the oldest undelivered event of each user, so a user's events arrive in order
/// even across instances (a later one waits while an earlier one is pending). Dead
/// letters do not hold later events back. On PostgreSQL the row lock makes a second
/// instance's `UPDATE` re-check `lease_until` against the first one's write.
pub async fn claim(
    pool: &AnyPool,
    receiver: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> anyhow::Result<Vec<Claimed>> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "UPDATE event_outbox SET lease_until = $1, attempts = attempts + 1 \
         WHERE id IN (SELECT e.id FROM event_outbox e \
                      WHERE e.receiver = $3 AND e.sent_at IS NULL AND e.failed_at IS NULL \
                        AND e.next_attempt_at <= $2 AND e.lease_until <= $2 \
                        AND NOT EXISTS (SELECT 1 FROM event_outbox p \
                                        WHERE p.receiver = e.receiver AND p.subject = e.subject \
                                          AND p.sent_at IS NULL AND p.failed_at IS NULL \
                                          AND (p.created_at < e.created_at \
                                               OR (p.created_at = e.created_at AND p.id < e.id))) \
                      ORDER BY e.created_at, e.id LIMIT $4) \
           AND lease_until <= $2 \
         RETURNING id, event_type, claims, attempts",
    )
    .bind(lease_until)
    .bind(now)
    .bind(receiver)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("Failed to claim events")?;
    let mut claimed: Vec<Claimed> = rows
        .into_iter()
        .map(|(id, event_type, claims, attempts)| Claimed {
            id,
            event_type,
            claims,
            attempts,
        })
        .collect();
    // RETURNING follows no ORDER BY; ids are time-ordered (UUIDv7).
    claimed.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(claimed)
}

pub async fn mark_delivered(pool: &AnyPool, id: &str, now: i64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE event_outbox SET sent_at = $1, lease_until = 0, last_error = NULL \
         WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await
    .context("Failed to mark an event delivered")?;
    Ok(())
}

/// Hands back a claimed event that was not attempted (its receiver just failed): due
/// again at `next_attempt_at`, the claim not counted as an attempt.
pub async fn release(
    pool: &AnyPool,
    claimed: &Claimed,
    next_attempt_at: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE event_outbox SET lease_until = 0, attempts = attempts - 1, \
         next_attempt_at = $1 WHERE id = $2 AND attempts = $3 AND sent_at IS NULL",
    )
    .bind(next_attempt_at)
    .bind(&claimed.id)
    .bind(claimed.attempts)
    .execute(pool)
    .await
    .context("Failed to release an event")?;
    Ok(())
}

/// One undelivered event as `idp streams outbox` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Listed {
    pub id: String,
    pub receiver: String,
    pub subject: String,
    pub event_type: String,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub delivery: Delivery,
}

/// Events not yet delivered (pending and dead letters), oldest first.
pub async fn undelivered(pool: &AnyPool) -> anyhow::Result<Vec<Listed>> {
    sqlx::query_as(&format!(
        "SELECT id, receiver, subject, event_type, {DELIVERY_COLUMNS} FROM event_outbox \
         WHERE sent_at IS NULL ORDER BY created_at, id"
    ))
    .fetch_all(pool)
    .await
    .context("Failed to list events")
}

/// Per receiver: events pending and dead letters.
pub async fn counts(pool: &AnyPool) -> anyhow::Result<HashMap<String, (i64, i64)>> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT receiver, \
                SUM(CASE WHEN failed_at IS NULL THEN 1 ELSE 0 END), \
                SUM(CASE WHEN failed_at IS NULL THEN 0 ELSE 1 END) \
         FROM event_outbox WHERE sent_at IS NULL GROUP BY receiver",
    )
    .fetch_all(pool)
    .await
    .context("Failed to count events")?;
    Ok(rows
        .into_iter()
        .map(|(receiver, pending, failed)| (receiver, (pending, failed)))
        .collect())
}
