//! The receiver: verifies a pushed SET ([`super::set`]), works out what it revokes
//! ([`super::effects`]) and records it ([`EventStore`]) before the transmitter is told
//! it was accepted. Also the upkeep of the store: pruning what expired and reading what
//! other instances recorded, on a background task or step by step.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::SetError;
use super::config::ReceiverConfig;
use super::effects::{self, Retention};
use super::set::{self, SecurityEventToken, secs};
use super::store::{EventStore, Pruned, Recorded};
use crate::JwksCache;
use crate::clock::Clock;
use crate::revocation::RevocationIndex;

/// What became of an accepted SET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded and its revocations applied.
    Applied,
    /// Recorded; it revokes nothing (an event type or a credential we do not act on).
    NothingToApply,
    /// Its `jti` was seen before: acknowledged again, applied once.
    AlreadyApplied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::NothingToApply => "nothing_to_apply",
            Self::AlreadyApplied => "already_applied",
        }
    }
}

/// An accepted SET and what became of it.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub set: SecurityEventToken,
    pub outcome: Outcome,
}

/// Receives the issuer's security events. Cheap to clone; clones share the store.
#[derive(Clone)]
pub struct EventReceiver {
    inner: Arc<Inner>,
}

struct Inner {
    config: ReceiverConfig,
    keys: JwksCache,
    store: EventStore,
    clock: Clock,
}

impl EventReceiver {
    /// `keys` is the issuer's key cache (the validator's: [`crate::TokenValidator::keys`]).
    pub fn new(config: ReceiverConfig, keys: JwksCache, store: EventStore, clock: Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                keys,
                store,
                clock,
            }),
        }
    }

    pub fn config(&self) -> &ReceiverConfig {
        &self.inner.config
    }

    /// The index the store fills (the one to give the validator).
    pub fn revocations(&self) -> &RevocationIndex {
        self.inner.store.revocations()
    }

    /// Verifies the compact SET `token` and records it. `Ok` means the transmitter may
    /// forget it (RFC 8935 §2.2): it is stored, or was already.
    pub async fn receive(
        &self,
        token: &str,
        request_id: Option<&str>,
    ) -> Result<Receipt, SetError> {
        let config = &self.inner.config;
        let now = self.now();
        let set = set::verify(token, config, &self.inner.keys, now, request_id).await?;
        let revocations = effects::revocations(
            &set,
            Retention {
                revocations: secs(config.retention),
                max_set_age: secs(config.max_set_age),
            },
        );
        // Remembered for as long as a redelivery could pass the `iat` check, and a
        // little longer for clock skew between instances.
        let seen_until = set
            .issued_at
            .saturating_add(secs(config.max_set_age))
            .saturating_add(secs(config.max_set_future));
        let recorded = self
            .inner
            .store
            .record(&set.jti, seen_until, &revocations, now)
            .await?;
        let outcome = match recorded {
            Recorded::Duplicate => Outcome::AlreadyApplied,
            Recorded::New if revocations.is_empty() => Outcome::NothingToApply,
            Recorded::New => Outcome::Applied,
        };
        Ok(Receipt { set, outcome })
    }

    /// Deletes the revocations and remembered SETs that expired.
    pub async fn prune(&self) -> anyhow::Result<Pruned> {
        self.inner.store.prune(self.now()).await
    }

    /// Reads the revocations other instances recorded in a shared database since the
    /// last sync.
    pub async fn sync(&self) -> anyhow::Result<usize> {
        self.inner.store.sync(self.now()).await
    }

    /// Starts pruning every `prune_interval` and syncing every `sync_interval` (real
    /// time) on the current tokio runtime, until the handle is dropped.
    pub fn spawn_maintenance(&self) -> MaintenanceTask {
        let receiver = self.clone();
        MaintenanceTask(tokio::spawn(async move {
            let config = &receiver.inner.config;
            let mut prune = interval(config.prune_interval);
            let mut sync = interval(config.sync_interval);
            loop {
                tokio::select! {
                    _ = prune.tick() => match receiver.prune().await {
                        Ok(pruned) if pruned != Pruned::default() => tracing::debug!(
                            revocations = pruned.revocations,
                            seen_events = pruned.seen_events,
                            "Pruned expired revocations"
                        ),
                        Ok(_) => {}
                        Err(error) => tracing::warn!(
                            error = format!("{error:#}"),
                            "Failed to prune expired revocations"
                        ),
                    },
                    _ = sync.tick() => {
                        if let Err(error) = receiver.sync().await {
                            tracing::warn!(
                                error = format!("{error:#}"),
                                "Failed to read the latest revocations"
                            );
                        }
                    }
                }
            }
        }))
    }

    fn now(&self) -> i64 {
        self.inner.clock.now().timestamp()
    }
}

fn interval(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period.max(Duration::from_millis(10)));
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// The background upkeep started by [`EventReceiver::spawn_maintenance`]; it stops when
/// this handle is dropped (or [`MaintenanceTask::stop`] is called).
#[must_use = "the maintenance stops when this handle is dropped"]
pub struct MaintenanceTask(JoinHandle<()>);

impl MaintenanceTask {
    pub fn stop(self) {}
}

impl Drop for MaintenanceTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
