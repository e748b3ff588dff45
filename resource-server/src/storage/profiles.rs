//! The `profiles` table.

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::{Bio, PageRequest, Profile, ProfileName, ProfileUpdate, UserId};

const COLUMNS: &str = "id, name, email, bio, created_at, updated_at";

/// The PostgreSQL notification channel on which writes announce a changed profile's id.
pub const CHANGES_CHANNEL: &str = "profiles_changed";

/// Creates an empty profile for `id` unless one exists. Safe under concurrent first
/// calls: the primary key decides, the loser changes nothing.
pub async fn insert_if_absent(
    conn: &mut AnyConnection,
    id: &UserId,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO profiles (id, name, email, bio, created_at, updated_at) \
         VALUES ($1, '', $2, '', $3, $3) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(email)
    .bind(now.timestamp())
    .execute(conn)
    .await
    .context("Failed to insert a profile")?;
    Ok(())
}

pub async fn find(conn: &mut AnyConnection, id: &UserId) -> anyhow::Result<Option<Profile>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM profiles WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await
        .context("Failed to read a profile")?;
    row.map(|row| profile_from_row(&row)).transpose()
}

/// Applies `update`; `None` when there is no such profile.
pub async fn update(
    conn: &mut AnyConnection,
    id: &UserId,
    update: &ProfileUpdate,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Profile>> {
    let row = sqlx::query(&format!(
        "UPDATE profiles SET name = COALESCE($1, name), bio = COALESCE($2, bio), updated_at = $3 \
         WHERE id = $4 RETURNING {COLUMNS}"
    ))
    .bind(update.name.as_ref().map(|n| n.as_ref().to_owned()))
    .bind(update.bio.as_ref().map(|b| b.as_ref().to_owned()))
    .bind(now.timestamp())
    .bind(id.to_string())
    .fetch_optional(conn)
    .await
    .context("Failed to update a profile")?;
    row.map(|row| profile_from_row(&row)).transpose()
}

/// `true` when a profile was deleted.
pub async fn delete(conn: &mut AnyConnection, id: &UserId) -> anyhow::Result<bool> {
    let result = sqlx::query("DELETE FROM profiles WHERE id = $1")
        .bind(id.to_string())
        .execute(conn)
        .await
        .context("Failed to delete a profile")?;
    Ok(result.rows_affected() > 0)
}

/// Tells every instance listening on [`CHANGES_CHANNEL`] that profile `id` changed.
/// PostgreSQL only; delivered when the surrounding transaction commits.
pub async fn announce_change(conn: &mut AnyConnection, id: &UserId) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(id.to_string())
        .execute(conn)
        .await
        .context("Failed to announce a profile change")?;
    Ok(())
}

/// One page of profiles in creation order (ties broken by id), and the total count.
pub async fn list(
    conn: &mut AnyConnection,
    page: &PageRequest,
) -> anyhow::Result<(Vec<Profile>, u64)> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM profiles")
        .fetch_one(&mut *conn)
        .await
        .context("Failed to count profiles")?;
    let offset = i64::try_from(page.offset()).context("Page offset out of range")?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM profiles ORDER BY created_at, id LIMIT $1 OFFSET $2"
    ))
    .bind(i64::from(page.per_page()))
    .bind(offset)
    .fetch_all(&mut *conn)
    .await
    .context("Failed to list profiles")?;
    let items = rows
        .iter()
        .map(profile_from_row)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((items, u64::try_from(total).unwrap_or_default()))
}

fn profile_from_row(row: &AnyRow) -> anyhow::Result<Profile> {
    let id: String = row.try_get("id")?;
    Ok(Profile {
        id: UserId::parse(&id).ok_or_else(|| anyhow!("A stored profile id is not a UUID"))?,
        name: ProfileName::parse(row.try_get("name")?).context("A stored name is invalid")?,
        email: row.try_get("email")?,
        bio: Bio::parse(row.try_get("bio")?).context("A stored bio is invalid")?,
        created_at: timestamp(row.try_get("created_at")?)?,
        updated_at: timestamp(row.try_get("updated_at")?)?,
    })
}

fn timestamp(seconds: i64) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| anyhow!("A stored timestamp is out of range"))
}
