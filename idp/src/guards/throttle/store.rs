//! The `auth_failures` table: failure counters and temporary locks of the throttle,
//! shared by every instance on one database.

use anyhow::Context;
use sqlx::AnyPool;

/// The lock (Unix seconds; 0 or past: not locked) of each of `keys` that has a row,
/// in one statement.
pub async fn locks(pool: &AnyPool, keys: &[String]) -> anyhow::Result<Vec<(String, i64)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT throttle_key, locked_until FROM auth_failures WHERE throttle_key IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as(&sql);
    for key in keys {
        query = query.bind(key);
    }
    query
        .fetch_all(pool)
        .await
        .context("Failed to read throttle locks")
}

/// Counts one failure of `key` at `now` in one atomic statement: a window that began
/// at or before `window_expired_at` starts afresh. Returns the failures in the window.
pub async fn count_failure(
    pool: &AnyPool,
    key: &str,
    now: i64,
    window_expired_at: i64,
) -> anyhow::Result<i64> {
    let (failures,): (i64,) = sqlx::query_as(
        "INSERT INTO auth_failures (throttle_key, failures, window_start, locked_until) \
         VALUES ($1, 1, $2, 0) \
         ON CONFLICT (throttle_key) DO UPDATE SET \
           failures = CASE WHEN auth_failures.window_start <= $3 THEN 1 \
                           ELSE auth_failures.failures + 1 END, \
           window_start = CASE WHEN auth_failures.window_start <= $3 THEN $2 \
                               ELSE auth_failures.window_start END \
         RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .bind(window_expired_at)
    .fetch_one(pool)
    .await
    .context("Failed to count an authentication failure")?;
    Ok(failures)
}

/// Extends the lock of `key` to `until`; never shortens it (concurrent instances may
/// compute different locks; the longest wins).
pub async fn lock(pool: &AnyPool, key: &str, until: i64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE auth_failures SET locked_until = $2 \
         WHERE throttle_key = $1 AND locked_until < $2",
    )
    .bind(key)
    .bind(until)
    .execute(pool)
    .await
    .context("Failed to lock a throttle key")?;
    Ok(())
}

/// Forgets `key` (a successful sign-in resets its account's counter).
pub async fn reset(pool: &AnyPool, key: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM auth_failures WHERE throttle_key = $1")
        .bind(key)
        .execute(pool)
        .await
        .context("Failed to reset a throttle key")?;
    Ok(())
}
