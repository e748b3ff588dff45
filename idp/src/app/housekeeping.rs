//! Housekeeping on a timer: ended sessions, stale throttle counters, expired codes and
//! token records, delivered security events are deleted so the tables stay the size of what is live. The rules
//! (how long each kind of row can still matter) are here; the SQL is in
//! [`crate::storage::housekeeping`].

use std::time::Duration;

use service_kit::clock::Clock;
use sqlx::AnyPool;
use tokio::sync::watch;

use crate::app::settings::{Settings, secs};
use crate::storage::housekeeping::{self, Cutoffs};

/// How often each instance purges.
pub const PERIOD: Duration = Duration::from_secs(3600);
/// Ended sessions stay this long (for support questions), then go. Sign-in history
/// lives in the audit trail, which is not purged here.
const ENDED_SESSION_RETENTION_SECS: i64 = 30 * 86_400;
/// A consumed authorization code presented again is a replay worth reacting to
/// (revoking its grant) for a while after it expired.
const CODE_RETENTION_SECS: i64 = 86_400;
/// Delivered security events stay this long (to see what a receiver was sent), then go.
/// Undelivered ones and dead letters stay until delivered or their stream is deleted.
const DELIVERED_EVENT_RETENTION_SECS: i64 = 7 * 86_400;

#[derive(Clone)]
pub struct Housekeeping {
    pool: AnyPool,
    clock: Clock,
    idle_timeout_secs: i64,
    longest_throttle_window_secs: i64,
}

impl Housekeeping {
    pub fn new(pool: AnyPool, clock: Clock, settings: &Settings) -> Self {
        Self {
            pool,
            clock,
            idle_timeout_secs: secs(settings.session_idle_timeout_secs),
            longest_throttle_window_secs: secs(
                settings
                    .login_failure_window_secs
                    .max(settings.registration_window_secs),
            ),
        }
    }

    /// Deletes what can no longer matter; returns how many rows went.
    pub async fn purge(&self) -> anyhow::Result<u64> {
        let now = self.clock.now().timestamp();
        let sessions_before = now - ENDED_SESSION_RETENTION_SECS;
        housekeeping::purge(
            &self.pool,
            &Cutoffs {
                sessions_finished_before: sessions_before,
                sessions_idle_before: sessions_before - self.idle_timeout_secs,
                throttle_windows_before: now - self.longest_throttle_window_secs,
                codes_expired_before: now - CODE_RETENTION_SECS,
                refresh_families_ended_before: now,
                access_tokens_expired_before: now,
                events_delivered_before: now - DELIVERED_EVENT_RETENTION_SECS,
                now,
            },
        )
        .await
    }

    /// Purges every [`PERIOD`] until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            match self.purge().await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "Housekeeping deleted dead rows"),
                Err(e) => tracing::error!(error = format!("{e:#}"), "Housekeeping failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(PERIOD) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }
}
