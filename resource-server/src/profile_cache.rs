//! The read-through cache of profiles by id, and the rules that keep it from serving a
//! profile that was changed or deleted.
//!
//! A reader that misses takes a [`Fill`] *before* reading the database and hands the
//! profile back to it afterwards. Every invalidation (after a write commits here, on a
//! change notification from another instance, on losing or regaining the change
//! listener) bumps one epoch under a small lock, and a fill only stores its profile if
//! the epoch has not moved since it was taken. So a read that raced a write can never
//! put the old row back after the write's invalidation; at worst it stores nothing.
//!
//! When other instances share the database ([`Sharing::Shared`]), their writes are only
//! seen through the change listener ([`crate::profile_changes`]): until it listens, and
//! whenever it loses its connection, the cache is bypassed (and cleared).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::domain::{Profile, UserId};

/// Who else writes the profiles this cache holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// Only this process writes (SQLite): its own invalidations are enough, and the cache
    /// is used from the start.
    Exclusive,
    /// Other instances write too (PostgreSQL): the cache is used only while the change
    /// listener is listening.
    Shared,
}

/// Bounded, time-limited profiles by id. Cheap to clone; clones share the entries.
#[derive(Clone)]
pub struct ProfileCache {
    inner: Arc<Inner>,
}

struct Inner {
    entries: moka::sync::Cache<UserId, Profile>,
    /// Moves on every invalidation; changed only under `lock`.
    epoch: AtomicU64,
    /// Whether every change to the database reaches `invalidate`; changed only under `lock`.
    coherent: AtomicBool,
    /// Orders fills against invalidations: a fill checks the epoch and inserts without
    /// an invalidation in between.
    lock: Mutex<()>,
}

/// A cache miss about to read the database; see [`ProfileCache::begin_fill`].
#[must_use = "a fill stores nothing unless completed"]
pub struct Fill<'a> {
    cache: &'a ProfileCache,
    epoch: u64,
}

impl ProfileCache {
    /// At most `capacity` profiles, each kept at most `ttl`: the time-to-live only
    /// bounds the damage should an invalidation ever be missed (a silently dead
    /// listener connection, a write made outside the service).
    pub fn new(capacity: u64, ttl: Duration, sharing: Sharing) -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: moka::sync::Cache::builder()
                    .max_capacity(capacity)
                    .time_to_live(ttl)
                    .build(),
                epoch: AtomicU64::new(0),
                coherent: AtomicBool::new(sharing == Sharing::Exclusive),
                lock: Mutex::new(()),
            }),
        }
    }

    /// The cached profile, if the cache may be trusted and holds it.
    pub fn get(&self, id: &UserId) -> Option<Profile> {
        if !self.is_coherent() {
            return None;
        }
        self.inner.entries.get(id)
    }

    /// Starts a fill: call before reading the database.
    pub fn begin_fill(&self) -> Fill<'_> {
        Fill {
            cache: self,
            epoch: self.inner.epoch.load(Ordering::SeqCst),
        }
    }

    /// Forgets `id`: call once a write to it has committed, or another instance says it
    /// wrote it. Fills begun before now store nothing.
    pub fn invalidate(&self, id: &UserId) {
        let _guard = self.lock();
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        self.inner.entries.invalidate(id);
    }

    /// The change listener is listening (again): changes made from now on will reach
    /// [`Self::invalidate`], those made before may have been missed, so start empty.
    pub fn listening(&self) {
        self.clear(true);
    }

    /// The change listener is not listening: bypass the cache until it is.
    pub fn not_listening(&self) {
        self.clear(false);
    }

    /// Whether lookups and fills use the cache (always with [`Sharing::Exclusive`]).
    pub fn is_coherent(&self) -> bool {
        self.inner.coherent.load(Ordering::SeqCst)
    }

    fn clear(&self, coherent: bool) {
        let _guard = self.lock();
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        self.inner.entries.invalidate_all();
        self.inner.coherent.store(coherent, Ordering::SeqCst);
    }

    /// The lock guards no data, so a panic while holding it leaves nothing half-done.
    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Fill<'_> {
    /// Stores `profile`, read from the database since [`ProfileCache::begin_fill`],
    /// unless something was invalidated in the meantime.
    pub fn complete(self, profile: &Profile) {
        let inner = &self.cache.inner;
        let _guard = self.cache.lock();
        if inner.coherent.load(Ordering::SeqCst) && inner.epoch.load(Ordering::SeqCst) == self.epoch
        {
            inner.entries.insert(profile.id, profile.clone());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::domain::{Bio, ProfileName};

    fn profile(name: &str) -> Profile {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Profile {
            id: UserId::parse("0f8fad5b-d9cb-469f-a165-70867728950e").unwrap(),
            name: ProfileName::parse(name.to_owned()).unwrap(),
            email: "ada@example.com".to_owned(),
            bio: Bio::default(),
            created_at: at,
            updated_at: at,
        }
    }

    fn cache(sharing: Sharing) -> ProfileCache {
        ProfileCache::new(100, Duration::from_secs(60), sharing)
    }

    #[test]
    fn a_completed_fill_is_served_until_invalidated() {
        let cache = cache(Sharing::Exclusive);
        let old = profile("old");
        cache.begin_fill().complete(&old);
        assert_eq!(cache.get(&old.id), Some(old.clone()));
        cache.invalidate(&old.id);
        assert_eq!(cache.get(&old.id), None);
    }

    #[test]
    fn a_fill_begun_before_an_invalidation_stores_nothing() {
        let cache = cache(Sharing::Exclusive);
        let old = profile("old");
        // A reader starts, reads the old row; a write commits and invalidates; the
        // reader then tries to store what it read.
        let fill = cache.begin_fill();
        cache.invalidate(&old.id);
        fill.complete(&old);
        assert_eq!(cache.get(&old.id), None);
        // A fill begun after the invalidation reads the new row and may store it.
        let new = profile("new");
        cache.begin_fill().complete(&new);
        assert_eq!(cache.get(&new.id), Some(new));
    }

    #[test]
    fn a_shared_cache_is_bypassed_until_the_listener_listens() {
        let cache = cache(Sharing::Shared);
        let old = profile("old");
        cache.begin_fill().complete(&old);
        assert_eq!(cache.get(&old.id), None);

        // A fill that read while nobody listened may have missed a change.
        let fill = cache.begin_fill();
        cache.listening();
        fill.complete(&old);
        assert_eq!(cache.get(&old.id), None);

        cache.begin_fill().complete(&old);
        assert_eq!(cache.get(&old.id), Some(old.clone()));
    }

    #[test]
    fn losing_the_listener_clears_and_bypasses_the_cache() {
        let cache = cache(Sharing::Shared);
        cache.listening();
        let old = profile("old");
        cache.begin_fill().complete(&old);
        assert!(cache.get(&old.id).is_some());

        cache.not_listening();
        assert!(!cache.is_coherent());
        assert_eq!(cache.get(&old.id), None);
        cache.begin_fill().complete(&old);
        cache.listening();
        assert_eq!(
            cache.get(&old.id),
            None,
            "stored a fill made while bypassed"
        );
    }
}
