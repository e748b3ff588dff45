//! Deleting rows that can no longer matter. Each statement is idempotent, so every
//! instance may run them.

use anyhow::Context;
use sqlx::AnyPool;

/// Up to when each kind of row is dead (Unix seconds); rows older are deleted.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    /// Sessions that ended or expired before this.
    pub sessions_finished_before: i64,
    /// Sessions last used before this (idle long past the timeout).
    pub sessions_idle_before: i64,
    /// Throttle counters whose window began before this and that are not locked.
    pub throttle_windows_before: i64,
    /// Authorization codes that expired before this.
    pub codes_expired_before: i64,
    /// OAuth refresh tokens whose family ended (absolute expiry) before this; used
    /// ones are kept until then for reuse detection.
    pub refresh_families_ended_before: i64,
    /// Access token records that expired before this.
    pub access_tokens_expired_before: i64,
    /// Security events and logout tokens delivered before this.
    pub events_delivered_before: i64,
    pub now: i64,
}

/// Deletes what `cutoffs` say is dead; returns how many rows went.
pub async fn purge(pool: &AnyPool, cutoffs: &Cutoffs) -> anyhow::Result<u64> {
    let statements: [(&str, &[i64]); 7] = [
        (
            "DELETE FROM user_sessions WHERE ended_at < $1 OR expires_at < $1 OR last_seen_at < $2",
            &[
                cutoffs.sessions_finished_before,
                cutoffs.sessions_idle_before,
            ],
        ),
        (
            "DELETE FROM auth_failures WHERE window_start < $1 AND locked_until < $2",
            &[cutoffs.throttle_windows_before, cutoffs.now],
        ),
        // A time in the past is a full allowance, the same as no row.
        ("DELETE FROM rate_limits WHERE tat < $1", &[cutoffs.now]),
        (
            "DELETE FROM authorization_codes WHERE expires_at < $1",
            &[cutoffs.codes_expired_before],
        ),
        (
            "DELETE FROM refresh_tokens WHERE absolute_expires_at < $1",
            &[cutoffs.refresh_families_ended_before],
        ),
        (
            "DELETE FROM access_tokens WHERE expires_at < $1",
            &[cutoffs.access_tokens_expired_before],
        ),
        (
            "DELETE FROM event_outbox WHERE sent_at < $1",
            &[cutoffs.events_delivered_before],
        ),
    ];
    let mut deleted = 0;
    for (sql, binds) in statements {
        let mut query = sqlx::query(sql);
        for value in binds {
            query = query.bind(*value);
        }
        deleted += query
            .execute(pool)
            .await
            .with_context(|| format!("Housekeeping failed: {sql}"))?
            .rows_affected();
    }
    Ok(deleted)
}
