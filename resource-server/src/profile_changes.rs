//! Coherence of the profile cache across instances sharing one PostgreSQL database.
//!
//! Every write announces the profile's id on [`CHANGES_CHANNEL`] inside its own
//! transaction, so PostgreSQL delivers the announcement only once the write has
//! committed (and never for a write rolled back). Each instance runs one [`ChangeListener`] that
//! invalidates the ids it hears. Notifications sent while a listener is not connected
//! are lost for good, so the cache is bypassed whenever the listener is not listening,
//! and starts empty each time it listens again.

use std::time::Duration;

use anyhow::anyhow;
use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;

use crate::domain::UserId;
use crate::profile_cache::ProfileCache;
use crate::storage::profiles::CHANGES_CHANNEL;

/// The wait before reconnecting after a failure; it doubles with each failure in a row.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// The background task started by [`ChangeListener::spawn`]; it stops when this handle
/// is dropped (or [`ChangeListener::stop`] is called).
#[must_use = "the listener stops when this handle is dropped"]
pub struct ChangeListener(JoinHandle<()>);

impl ChangeListener {
    /// Listens on the PostgreSQL database at `database_url` for as long as the handle
    /// lives, reconnecting after failures, keeping `cache` bypassed while it cannot.
    pub fn spawn(database_url: String, cache: ProfileCache) -> Self {
        Self(tokio::spawn(run(database_url, cache)))
    }

    pub fn stop(self) {}
}

impl Drop for ChangeListener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run(database_url: String, cache: ProfileCache) {
    let mut retry = FIRST_RETRY;
    loop {
        match subscribe(&database_url).await {
            Ok(mut listener) => {
                cache.listening();
                retry = FIRST_RETRY;
                tracing::debug!("Listening for profile changes; the profile cache is in use");
                let error = follow(&mut listener, &cache).await;
                cache.not_listening();
                tracing::warn!(
                    error = %error,
                    "Stopped listening for profile changes; the profile cache is bypassed"
                );
            }
            Err(error) => {
                tracing::warn!(
                    error = %error,
                    "Failed to listen for profile changes; the profile cache is bypassed"
                );
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
}

async fn subscribe(database_url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(database_url).await?;
    // Report a lost connection at once instead of quietly reconnecting: the cache must
    // be bypassed from then until a new LISTEN is in place.
    listener.eager_reconnect(false);
    listener.listen(CHANGES_CHANNEL).await?;
    Ok(listener)
}

/// Invalidates every announced id until the connection fails, and says why it did.
async fn follow(listener: &mut PgListener, cache: &ProfileCache) -> anyhow::Error {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => match UserId::parse(notification.payload()) {
                Some(id) => cache.invalidate(&id),
                // Not one of ours: it cannot name a cached profile.
                None => tracing::warn!(
                    payload = notification.payload(),
                    "Ignored a profile change that names no user id"
                ),
            },
            Ok(None) => return anyhow!("the connection was lost"),
            Err(error) => return error.into(),
        }
    }
}
