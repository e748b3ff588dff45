//! The signing keys' lifecycle: `next` (published, not signing) -> `current` (the one
//! signing key) -> `retired` (published, not signing) -> `removed`.
//!
//! [`plan`] is a pure function from the stored keys, "now" and the [`KeySchedule`] to the
//! transitions that are due. [`KeyManager`] applies them in a transaction, guarded by a
//! lease row so that of several instances on one database exactly one does; it also
//! carries out the operator's `idp keys` commands. [`KeyRotation`] pairs it with the
//! running [`KeyRing`]: every tick applies what is due, then reloads the ring, so changes
//! made by other instances or the CLI appear within one check interval.
//!
//! Every transition is recorded in the audit trail ([`crate::guards::audit`]: a row and a
//! `tracing` event with target `audit`), with the kid and who did it; never key material.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use service_kit::clock::Clock;
use sqlx::AnyPool;
use tokio::sync::watch;

use super::{KeyEncryptionKey, KeyRing, new_sealed_key};
use crate::keys::store::{self as store, KeyRow};

/// The lease that names the one instance applying scheduled transitions.
const LEASE: &str = "signing_keys";

/// The lifecycle's times, in seconds (the settings check how they relate at start-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySchedule {
    /// How long a key signs before the next one takes over.
    pub rotation_period: i64,
    /// How long a key is published before it signs.
    pub prepublication: i64,
    /// How long a retired key stays published.
    pub retire_after: i64,
    /// How often each instance ticks (and so how stale its keys may be).
    pub check_interval: i64,
}

impl KeySchedule {
    /// How long a claimed lease lasts: a few ticks, so a live holder keeps it and a dead
    /// one's lease passes to another instance soon.
    fn lease_secs(&self) -> i64 {
        3 * self.check_interval + 10
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Current,
    Retired,
    Removed,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Retired => "retired",
            Self::Removed => "removed",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "next" => Self::Next,
            "current" => Self::Current,
            "retired" => Self::Retired,
            "removed" => Self::Removed,
            other => bail!("Unknown signing key state {other:?}"),
        })
    }
}

/// A key as the lifecycle sees it. For a `next` key, `activated_at` is when it is
/// planned to start signing; for the others, when it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub kid: String,
    pub state: KeyState,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub removed_at: Option<i64>,
}

impl TryFrom<KeyRow> for KeyInfo {
    type Error = anyhow::Error;

    fn try_from(row: KeyRow) -> anyhow::Result<Self> {
        Ok(Self {
            state: KeyState::parse(&row.state)?,
            kid: row.kid,
            created_at: row.created_at,
            activated_at: row.activated_at,
            retired_at: row.retired_at,
            removed_at: row.removed_at,
        })
    }
}

/// A transition that is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Create a `next` key that starts signing at `activates_at`.
    Stage { activates_at: i64 },
    /// `next` -> `current`, and the old current key (if any) -> `retired`.
    Promote {
        next: String,
        current: Option<String>,
    },
    /// `retired` -> `removed`: every token it signed has expired.
    Remove { kid: String },
}

/// The transitions due at `now`. A next key is staged at `current.activated_at +
/// rotation_period - prepublication` (or at once, if that has passed) and promoted at
/// `current.activated_at + rotation_period`, but never before it has been published for
/// `prepublication`; a retired key is removed `retire_after` after it retired.
pub fn plan(keys: &[KeyInfo], now: i64, schedule: &KeySchedule) -> Vec<Transition> {
    let mut due = Vec::new();
    let current = keys.iter().find(|k| k.state == KeyState::Current);
    let next = keys.iter().find(|k| k.state == KeyState::Next);
    match (current, next) {
        (Some(current), None) => {
            let activated = current.activated_at.unwrap_or(current.created_at);
            let rotates_at = activated.saturating_add(schedule.rotation_period);
            if now >= rotates_at.saturating_sub(schedule.prepublication) {
                due.push(Transition::Stage {
                    activates_at: rotates_at.max(now.saturating_add(schedule.prepublication)),
                });
            }
        }
        (current, Some(next)) => {
            if now >= activates_at(next, schedule) {
                due.push(Transition::Promote {
                    next: next.kid.clone(),
                    current: current.map(|c| c.kid.clone()),
                });
            }
        }
        (None, None) => {}
    }
    for key in keys.iter().filter(|k| k.state == KeyState::Retired) {
        let retired = key.retired_at.unwrap_or(key.created_at);
        if now >= retired.saturating_add(schedule.retire_after) {
            due.push(Transition::Remove {
                kid: key.kid.clone(),
            });
        }
    }
    due
}

/// When a next key starts signing: as planned, and never before it has been published
/// for the pre-publication window.
fn activates_at(next: &KeyInfo, schedule: &KeySchedule) -> i64 {
    let earliest = next.created_at.saturating_add(schedule.prepublication);
    next.activated_at.unwrap_or(earliest).max(earliest)
}

/// One key's past and planned times, for `idp keys list`.
#[derive(Clone, Debug, Serialize)]
pub struct KeyStatus {
    pub kid: String,
    pub state: KeyState,
    pub created_at: i64,
    /// When it started (or is planned to start) signing.
    pub activates_at: Option<i64>,
    /// When it stopped (or is planned to stop) signing.
    pub retires_at: Option<i64>,
    /// When it left (or is planned to leave) the JWKS.
    pub removes_at: Option<i64>,
}

fn status(key: &KeyInfo, schedule: &KeySchedule) -> KeyStatus {
    let (activates, retires, removes) = match key.state {
        KeyState::Next | KeyState::Current => {
            let activates = if key.state == KeyState::Next {
                activates_at(key, schedule)
            } else {
                key.activated_at.unwrap_or(key.created_at)
            };
            let retires = activates.saturating_add(schedule.rotation_period);
            (
                Some(activates),
                Some(retires),
                Some(retires.saturating_add(schedule.retire_after)),
            )
        }
        KeyState::Retired => (
            key.activated_at,
            key.retired_at,
            key.retired_at
                .map(|r| r.saturating_add(schedule.retire_after)),
        ),
        KeyState::Removed => (key.activated_at, key.retired_at, key.removed_at),
    };
    KeyStatus {
        kid: key.kid.clone(),
        state: key.state,
        created_at: key.created_at,
        activates_at: activates,
        retires_at: retires,
        removes_at: removes,
    }
}

/// What happened to a key; each is logged as an audit event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Change {
    Staged { kid: String, activates_at: i64 },
    Activated { kid: String },
    Retired { kid: String },
    Removed { kid: String },
    Revoked { kid: String },
}

impl Change {
    /// The audit event name and the kid.
    fn event(&self) -> (&'static str, &str) {
        match self {
            Self::Staged { kid, .. } => ("signing_key_staged", kid),
            Self::Activated { kid } => ("signing_key_activated", kid),
            Self::Retired { kid } => ("signing_key_retired", kid),
            Self::Removed { kid } => ("signing_key_removed", kid),
            Self::Revoked { kid } => ("signing_key_revoked", kid),
        }
    }
}

/// Records each change in the audit trail (the `audit_events` table and a `tracing`
/// event with target `audit`): the kid, who did it, and a staged key's planned
/// activation. Never key material. The changes are already committed, so a failed
/// write is logged, not returned.
async fn audit(pool: &AnyPool, at: i64, changes: &[Change], by: &str) {
    for change in changes {
        let (event, kid) = change.event();
        let detail = match change {
            Change::Staged { activates_at, .. } => {
                format!("kid={kid} by={by} activates_at={activates_at}")
            }
            _ => format!("kid={kid} by={by}"),
        };
        let record =
            crate::guards::audit::Event::new(event, crate::guards::audit::Outcome::Success)
                .detail(&detail);
        if let Err(e) = crate::guards::audit::record(pool, at, &record).await {
            tracing::error!(error = %format!("{e:#}"), event, kid, "Failed to audit a key transition");
        }
    }
}

/// `idp keys rotate` with or without `--now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotateMode {
    /// Stage a next key; it signs once it has been published for the pre-publication
    /// window.
    Staged,
    /// Emergency: a new key signs at once, skipping pre-publication. The old current key
    /// is retired (still published); a staged next key is dropped, as the schedule
    /// restarts from the new key.
    Now,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyCommandError {
    #[error("a next key is already staged: {0} (use --now to switch at once)")]
    AlreadyStaged(String),
    #[error("no published signing key has kid {0}")]
    UnknownKid(String),
    #[error("the signing keys changed meanwhile; try again")]
    Conflict,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Applies the lifecycle to the database. Cheap to clone.
#[derive(Clone)]
pub struct KeyManager {
    pool: AnyPool,
    kek: Arc<KeyEncryptionKey>,
    schedule: KeySchedule,
    clock: Clock,
    /// This instance's name in the lease table.
    holder: Arc<str>,
}

impl KeyManager {
    pub fn new(
        pool: AnyPool,
        kek: Arc<KeyEncryptionKey>,
        schedule: KeySchedule,
        clock: Clock,
    ) -> Self {
        Self {
            pool,
            kek,
            schedule,
            clock,
            holder: Arc::from(uuid::Uuid::new_v4().to_string()),
        }
    }

    pub fn schedule(&self) -> KeySchedule {
        self.schedule
    }

    /// Every key, oldest first, with its times.
    pub async fn list(&self) -> anyhow::Result<Vec<KeyStatus>> {
        let mut conn = self.pool.acquire().await.context("Failed to connect")?;
        let keys = load(&mut conn).await?;
        Ok(keys.iter().map(|k| status(k, &self.schedule)).collect())
    }

    /// Applies the transitions due now, if this instance holds (or wins) the lease.
    /// Returns what this instance changed: nothing when nothing was due or another
    /// instance holds the lease.
    #[tracing::instrument(skip_all)]
    pub async fn tick(&self) -> anyhow::Result<Vec<Change>> {
        let now = self.clock.now().timestamp();
        let mut conn = self.pool.acquire().await.context("Failed to connect")?;
        if plan(&load(&mut conn).await?, now, &self.schedule).is_empty() {
            return Ok(Vec::new());
        }
        drop(conn);
        let expires = now.saturating_add(self.schedule.lease_secs());
        if !store::claim_lease(&self.pool, LEASE, &self.holder, now, expires).await? {
            tracing::debug!("Another instance holds the key lease");
            return Ok(Vec::new());
        }
        // Generate outside the transaction (it takes a while), only if it may be needed.
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        let due = plan(&load(&mut tx).await?, now, &self.schedule);
        let fresh = if due.iter().any(|t| matches!(t, Transition::Stage { .. })) {
            Some(new_sealed_key(&self.kek).await?)
        } else {
            None
        };
        let mut changes = Vec::new();
        for transition in due {
            match transition {
                Transition::Stage { activates_at } => {
                    let Some(key) = fresh.as_ref() else {
                        bail!("No key generated for staging");
                    };
                    store::insert_next(
                        &mut tx,
                        &key.kid,
                        &key.public_jwk,
                        &key.private_key_enc,
                        now,
                        activates_at,
                    )
                    .await?;
                    changes.push(Change::Staged {
                        kid: key.kid.clone(),
                        activates_at,
                    });
                }
                Transition::Promote { next, current } => {
                    if let Some(current) = current {
                        if !store::retire(&mut tx, &current, now).await? {
                            bail!("Key {current} was no longer current");
                        }
                        changes.push(Change::Retired { kid: current });
                    }
                    if !store::activate(&mut tx, &next, now).await? {
                        bail!("Key {next} was no longer staged");
                    }
                    changes.push(Change::Activated { kid: next });
                }
                Transition::Remove { kid } => {
                    if store::remove(&mut tx, &kid, now).await? {
                        changes.push(Change::Removed { kid });
                    }
                }
            }
        }
        tx.commit()
            .await
            .context("Failed to commit key transitions")?;
        audit(&self.pool, now, &changes, "schedule").await;
        Ok(changes)
    }

    /// `idp keys rotate [--now]`.
    pub async fn rotate(&self, mode: RotateMode) -> Result<Vec<Change>, KeyCommandError> {
        let now = self.clock.now().timestamp();
        let key = new_sealed_key(&self.kek).await?;
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        let keys = load(&mut tx).await?;
        let next = keys.iter().find(|k| k.state == KeyState::Next);
        let mut changes = Vec::new();
        match mode {
            RotateMode::Staged => {
                if let Some(next) = next {
                    return Err(KeyCommandError::AlreadyStaged(next.kid.clone()));
                }
                let activates_at = now.saturating_add(self.schedule.prepublication);
                store::insert_next(
                    &mut tx,
                    &key.kid,
                    &key.public_jwk,
                    &key.private_key_enc,
                    now,
                    activates_at,
                )
                .await?;
                changes.push(Change::Staged {
                    kid: key.kid,
                    activates_at,
                });
            }
            RotateMode::Now => {
                if let Some(current) = keys.iter().find(|k| k.state == KeyState::Current) {
                    if !store::retire(&mut tx, &current.kid, now).await? {
                        return Err(KeyCommandError::Conflict);
                    }
                    changes.push(Change::Retired {
                        kid: current.kid.clone(),
                    });
                }
                changes.extend(self.replace_current(&mut tx, next, key, now).await?);
            }
        }
        tx.commit().await.context("Failed to commit the rotation")?;
        audit(&self.pool, now, &changes, "operator").await;
        Ok(changes)
    }

    /// `idp keys revoke KID`: the key leaves the JWKS at once and its private key is
    /// destroyed. A revoked current key is first replaced by a new one (as `rotate
    /// --now` would).
    pub async fn revoke(&self, kid: &str) -> Result<Vec<Change>, KeyCommandError> {
        let now = self.clock.now().timestamp();
        let mut conn = self.pool.acquire().await.context("Failed to connect")?;
        let is_current = load(&mut conn)
            .await?
            .iter()
            .any(|k| k.kid == kid && k.state == KeyState::Current);
        drop(conn);
        let fresh = if is_current {
            Some(new_sealed_key(&self.kek).await?)
        } else {
            None
        };
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        let keys = load(&mut tx).await?;
        let Some(target) = keys
            .iter()
            .find(|k| k.kid == kid && k.state != KeyState::Removed)
        else {
            return Err(KeyCommandError::UnknownKid(kid.to_owned()));
        };
        if (target.state == KeyState::Current) != is_current {
            return Err(KeyCommandError::Conflict);
        }
        if !store::remove(&mut tx, kid, now).await? {
            return Err(KeyCommandError::Conflict);
        }
        let mut changes = vec![Change::Revoked {
            kid: kid.to_owned(),
        }];
        if let Some(key) = fresh {
            let next = keys.iter().find(|k| k.state == KeyState::Next);
            changes.extend(self.replace_current(&mut tx, next, key, now).await?);
        }
        tx.commit()
            .await
            .context("Failed to commit the revocation")?;
        audit(&self.pool, now, &changes, "operator").await;
        Ok(changes)
    }

    /// Makes `key` current at once (no current key is left by the caller) and drops a
    /// staged `next` key, since the schedule restarts from the new key.
    async fn replace_current(
        &self,
        conn: &mut sqlx::AnyConnection,
        next: Option<&KeyInfo>,
        key: super::NewKey,
        now: i64,
    ) -> Result<Vec<Change>, KeyCommandError> {
        let mut changes = Vec::new();
        if let Some(next) = next {
            if !store::remove(conn, &next.kid, now).await? {
                return Err(KeyCommandError::Conflict);
            }
            changes.push(Change::Removed {
                kid: next.kid.clone(),
            });
        }
        store::insert_current_in(conn, &key.kid, &key.public_jwk, &key.private_key_enc, now)
            .await?;
        changes.push(Change::Activated { kid: key.kid });
        Ok(changes)
    }
}

async fn load(conn: &mut sqlx::AnyConnection) -> anyhow::Result<Vec<KeyInfo>> {
    store::all(conn)
        .await?
        .into_iter()
        .map(KeyInfo::try_from)
        .collect()
}

/// The running instance's key maintenance: apply what is due, then reload the ring.
#[derive(Clone)]
pub struct KeyRotation {
    manager: KeyManager,
    ring: KeyRing,
}

impl KeyRotation {
    pub fn new(manager: KeyManager, ring: KeyRing) -> Self {
        Self { manager, ring }
    }

    pub fn manager(&self) -> &KeyManager {
        &self.manager
    }

    /// One maintenance step (what the background task does every check interval):
    /// returns the transitions this instance applied.
    pub async fn tick(&self) -> anyhow::Result<Vec<Change>> {
        let changes = self.manager.tick().await?;
        if self
            .ring
            .reload(&self.manager.pool, &self.manager.kek)
            .await?
        {
            tracing::info!(
                kid = %self.ring.signing_key().kid,
                "Loaded changed signing keys"
            );
        }
        Ok(changes)
    }

    /// Ticks every `every` until `stop` changes (or its sender is dropped). A tick in
    /// progress finishes first.
    pub async fn run(self, every: Duration, mut stop: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    if let Err(e) = self.tick().await {
                        tracing::error!(error = %format!("{e:#}"), "Key maintenance failed");
                    }
                }
                _ = stop.changed() => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn schedule() -> KeySchedule {
        KeySchedule {
            rotation_period: 30 * DAY,
            prepublication: 365,
            retire_after: 3600 + 365,
            check_interval: 5,
        }
    }

    /// A tiny in-memory database for `plan`: applies transitions as the manager would.
    fn apply(keys: &mut Vec<KeyInfo>, due: Vec<Transition>, now: i64, counter: &mut u32) {
        for t in due {
            match t {
                Transition::Stage { activates_at } => {
                    *counter += 1;
                    keys.push(KeyInfo {
                        kid: format!("k{counter}"),
                        state: KeyState::Next,
                        created_at: now,
                        activated_at: Some(activates_at),
                        retired_at: None,
                        removed_at: None,
                    });
                }
                Transition::Promote { next, current } => {
                    for k in keys.iter_mut() {
                        if Some(&k.kid) == current.as_ref() {
                            k.state = KeyState::Retired;
                            k.retired_at = Some(now);
                        }
                        if k.kid == next {
                            k.state = KeyState::Current;
                            k.activated_at = Some(now);
                        }
                    }
                }
                Transition::Remove { kid } => {
                    for k in keys.iter_mut().filter(|k| k.kid == kid) {
                        k.state = KeyState::Removed;
                        k.removed_at = Some(now);
                    }
                }
            }
        }
    }

    fn first_key() -> Vec<KeyInfo> {
        vec![KeyInfo {
            kid: "k0".into(),
            state: KeyState::Current,
            created_at: 0,
            activated_at: Some(0),
            retired_at: None,
            removed_at: None,
        }]
    }

    fn state_of(keys: &[KeyInfo], kid: &str) -> KeyState {
        keys.iter().find(|k| k.kid == kid).map(|k| k.state).unwrap()
    }

    #[test]
    fn nothing_is_due_early_in_a_keys_life() {
        assert!(plan(&first_key(), 0, &schedule()).is_empty());
        assert!(plan(&first_key(), 30 * DAY - 366, &schedule()).is_empty());
    }

    #[test]
    fn a_timeline_with_a_fake_clock_publishes_before_signing_and_keeps_retired_keys() {
        let s = schedule();
        // A pure function of the time: a counter, not the wall clock (which moved
        // under load and made the bounds below flaky).
        let start = 1_800_000_000;
        let mut now = start;
        let mut keys = first_key();
        for k in &mut keys {
            k.created_at = start;
            k.activated_at = Some(start);
        }
        let mut counter = 0;
        // (time of the first sign-by-k1, when k1 was first published, when k0 retired)
        let (mut published_k1, mut signing_k1, mut retired_k0, mut removed_k0) =
            (None, None, None, None);
        // Walk 61 days in 60-second steps, as the background task would (coarser).
        for _ in 0..(61 * DAY / 60) {
            now += 60;
            let due = plan(&keys, now, &s);
            apply(&mut keys, due, now, &mut counter);
            let k1 = keys.iter().find(|k| k.kid == "k1");
            if let Some(k1) = k1 {
                published_k1.get_or_insert(now);
                if k1.state == KeyState::Current {
                    signing_k1.get_or_insert(now);
                }
            }
            match state_of(&keys, "k0") {
                KeyState::Retired => {
                    retired_k0.get_or_insert(now);
                }
                KeyState::Removed => {
                    removed_k0.get_or_insert(now);
                }
                _ => {}
            }
            // Always exactly one current key, and at most one staged.
            assert_eq!(
                keys.iter().filter(|k| k.state == KeyState::Current).count(),
                1
            );
            assert!(keys.iter().filter(|k| k.state == KeyState::Next).count() <= 1);
        }
        let (published, signing) = (published_k1.unwrap(), signing_k1.unwrap());
        let (retired, removed) = (retired_k0.unwrap(), removed_k0.unwrap());
        // Staged about `prepublication` before the rotation, signing at the rotation.
        assert!(published >= start + 30 * DAY - s.prepublication);
        assert!(
            signing - published >= s.prepublication,
            "published early enough"
        );
        assert!(signing - start <= 30 * DAY + 60);
        assert_eq!(retired, signing, "k0 retires as k1 takes over");
        assert!(
            removed - retired >= s.retire_after,
            "k0 outlives its tokens"
        );
        assert!(removed - retired <= s.retire_after + 60);
        // Two rotations in 61 days: k2 signs now, k1 retired or removed.
        assert_eq!(state_of(&keys, "k2"), KeyState::Current);
        assert_ne!(state_of(&keys, "k1"), KeyState::Current);
    }

    #[test]
    fn a_late_stage_still_waits_for_the_prepublication_window() {
        let s = schedule();
        let mut keys = first_key();
        let now = 40 * DAY; // the instance was down through the planned rotation
        let due = plan(&keys, now, &s);
        assert_eq!(
            due,
            vec![Transition::Stage {
                activates_at: now + s.prepublication
            }]
        );
        let mut counter = 0;
        apply(&mut keys, due, now, &mut counter);
        assert!(plan(&keys, now + s.prepublication - 1, &s).is_empty());
        assert_eq!(
            plan(&keys, now + s.prepublication, &s),
            vec![Transition::Promote {
                next: "k1".into(),
                current: Some("k0".into())
            }]
        );
    }

    #[test]
    fn a_next_key_never_signs_before_its_prepublication_even_if_planned_earlier() {
        let s = schedule();
        let mut keys = first_key();
        keys.push(KeyInfo {
            kid: "k1".into(),
            state: KeyState::Next,
            created_at: 100,
            activated_at: Some(50),
            retired_at: None,
            removed_at: None,
        });
        assert!(plan(&keys, 100 + s.prepublication - 1, &s).is_empty());
        assert_eq!(plan(&keys, 100 + s.prepublication, &s).len(), 1);
    }

    #[test]
    fn list_shows_planned_times() {
        let s = schedule();
        let statuses: Vec<_> = first_key().iter().map(|k| status(k, &s)).collect();
        assert_eq!(statuses[0].activates_at, Some(0));
        assert_eq!(statuses[0].retires_at, Some(30 * DAY));
        assert_eq!(statuses[0].removes_at, Some(30 * DAY + s.retire_after));
    }
}
