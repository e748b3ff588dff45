//! The `event_streams` table.

use anyhow::Context;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Executor, Row};

use crate::events::streams::Stream;

const COLUMNS: &str = "id, name, push_url, audience, events, auth_header, created_at";

pub async fn upsert(
    pool: &AnyPool,
    stream: &Stream,
    auth_header: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO event_streams (id, name, push_url, audience, events, auth_header, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET push_url = $3, audience = $4, events = $5, auth_header = $6",
    )
    .bind(&stream.id)
    .bind(&stream.name)
    .bind(&stream.push_url)
    .bind(&stream.audience)
    .bind(stream.events.join(" "))
    .bind(auth_header)
    .bind(stream.created_at)
    .execute(pool)
    .await
    .context("Failed to store an event stream")?;
    Ok(())
}

pub async fn find_by_name(pool: &AnyPool, name: &str) -> anyhow::Result<Option<Stream>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM event_streams WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await
    .context("Failed to read an event stream")?;
    row.as_ref().map(stream).transpose()
}

/// The stream and its sealed authorization value.
pub async fn find(pool: &AnyPool, id: &str) -> anyhow::Result<Option<(Stream, Option<String>)>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM event_streams WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .context("Failed to read an event stream")?;
    row.map(|row| Ok((stream(&row)?, row.try_get("auth_header")?)))
        .transpose()
}

pub async fn all(pool: &AnyPool) -> anyhow::Result<Vec<Stream>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM event_streams ORDER BY name"
    ))
    .fetch_all(pool)
    .await
    .context("Failed to list event streams")?;
    rows.iter().map(stream).collect()
}

/// The ids of the streams that want `event_type`.
pub async fn wanting<'e>(
    executor: impl Executor<'e, Database = Any>,
    event_type: &str,
) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, events FROM event_streams")
        .fetch_all(executor)
        .await
        .context("Failed to list event streams")?;
    Ok(rows
        .into_iter()
        .filter(|(_, events)| events.split(' ').any(|t| t == event_type))
        .map(|(id, _)| id)
        .collect())
}

/// Deletes the stream `name`; its queued events go with it (foreign key cascade).
pub async fn delete(pool: &AnyPool, name: &str) -> anyhow::Result<bool> {
    let result = sqlx::query("DELETE FROM event_streams WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await
        .context("Failed to delete an event stream")?;
    Ok(result.rows_affected() > 0)
}

fn stream(row: &AnyRow) -> anyhow::Result<Stream> {
    let events: String = row.try_get("events")?;
    Ok(Stream {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        push_url: row.try_get("push_url")?,
        audience: row.try_get("audience")?,
        events: events
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        authorization: row.try_get::<Option<String>, _>("auth_header")?.is_some(),
        created_at: row.try_get("created_at")?,
    })
}
