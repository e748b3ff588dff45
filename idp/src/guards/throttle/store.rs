//! The `auth_failures` table (failure counters and temporary locks) and the
//! `rate_limits` table (allowances with a burst), shared by every instance on one
//! database.

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

/// Takes one unit of `key`'s allowance at `now` in one atomic statement (GCRA): its
/// theoretical arrival time moves `interval` past the later of itself and `now`, unless
/// it is already more than `tolerance` ahead of `now`. `true` if taken.
pub async fn take(
    pool: &AnyPool,
    key: &str,
    now: i64,
    interval: i64,
    tolerance: i64,
) -> anyhow::Result<bool> {
    let taken: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO rate_limits (limit_key, tat) VALUES ($1, $2 + $3) \
         ON CONFLICT (limit_key) DO UPDATE SET \
           tat = CASE WHEN rate_limits.tat > $2 THEN rate_limits.tat ELSE $2 END + $3 \
         WHERE rate_limits.tat <= $2 + $4 \
         RETURNING tat",
    )
    .bind(key)
    .bind(now)
    .bind(interval)
    .bind(tolerance)
    .fetch_optional(pool)
    .await
    .context("Failed to take from a rate limit")?;
    Ok(taken.is_some())
}

/// `key`'s theoretical arrival time, if it has a row.
pub async fn arrival_time(pool: &AnyPool, key: &str) -> anyhow::Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT tat FROM rate_limits WHERE limit_key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await
        .context("Failed to read a rate limit")?;
    Ok(row.map(|(tat,)| tat))
}

/// Gives back one unit taken from `key`.
pub async fn give_back(pool: &AnyPool, key: &str, interval: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE rate_limits SET tat = tat - $2 WHERE limit_key = $1")
        .bind(key)
        .bind(interval)
        .execute(pool)
        .await
        .context("Failed to give back to a rate limit")?;
    Ok(())
}
