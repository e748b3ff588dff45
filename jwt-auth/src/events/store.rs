//! Where received events are recorded: the `jti`s seen (so a redelivered SET is
//! acknowledged without being applied twice) and the revocations, kept in the
//! [`RevocationIndex`] the validator reads and, with the `events-store` feature, in a
//! database (`sql.rs`) so they survive a restart and reach the other instances.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::revocation::{Revocation, RevocationIndex};

/// Whether a SET was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    /// Its `jti` was seen before: nothing was applied again.
    Duplicate,
}

/// What a prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Revocations (in memory; in the database as well with the SQL store).
    pub revocations: usize,
    /// Remembered `jti`s.
    pub seen_events: usize,
}

/// Records events and fills the [`RevocationIndex`] it was given. Times are unix
/// seconds.
pub struct EventStore {
    index: RevocationIndex,
    backend: Backend,
}

enum Backend {
    /// The `jti`s and revocations of this process only: gone with it.
    Memory(Mutex<HashMap<String, i64>>),
    #[cfg(feature = "events-store")]
    Sql(super::sql::SqlStore),
}

impl EventStore {
    /// A store in memory: nothing survives a restart. For tests, and for services that
    /// accept forgetting revocations when they restart.
    pub fn in_memory(index: RevocationIndex) -> Self {
        Self {
            index,
            backend: Backend::Memory(Mutex::new(HashMap::new())),
        }
    }

    /// A store in the database behind `pool` (SQLite or PostgreSQL through sqlx's
    /// `Any` driver): creates its tables if missing (see [`super::sql`]) and loads the
    /// revocations still in force at `now` into `index`.
    #[cfg(feature = "events-store")]
    pub async fn sql(
        pool: sqlx::AnyPool,
        index: RevocationIndex,
        now: i64,
    ) -> anyhow::Result<Self> {
        let store = super::sql::SqlStore::open(pool, &index, now).await?;
        Ok(Self {
            index,
            backend: Backend::Sql(store),
        })
    }

    pub fn revocations(&self) -> &RevocationIndex {
        &self.index
    }

    /// Remembers `jti` until `seen_until` and applies `revocations`, unless `jti` was
    /// seen before. In the database both happen in one transaction, committed before
    /// this returns; the index is updated after the commit.
    #[cfg_attr(not(feature = "events-store"), allow(unused_variables))]
    pub async fn record(
        &self,
        jti: &str,
        seen_until: i64,
        revocations: &[Revocation],
        now: i64,
    ) -> anyhow::Result<Recorded> {
        match &self.backend {
            Backend::Memory(seen) => {
                let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                if seen.contains_key(jti) {
                    return Ok(Recorded::Duplicate);
                }
                seen.insert(jti.to_owned(), seen_until);
            }
            #[cfg(feature = "events-store")]
            Backend::Sql(store) => {
                if store.record(jti, seen_until, revocations, now).await? == Recorded::Duplicate {
                    return Ok(Recorded::Duplicate);
                }
            }
        }
        for revocation in revocations {
            self.index.apply(revocation);
        }
        Ok(Recorded::New)
    }

    /// Deletes the revocations and `jti`s that expired before `now`.
    pub async fn prune(&self, now: i64) -> anyhow::Result<Pruned> {
        let seen_events = match &self.backend {
            Backend::Memory(seen) => {
                let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                let before = seen.len();
                seen.retain(|_, until| *until >= now);
                before - seen.len()
            }
            #[cfg(feature = "events-store")]
            Backend::Sql(store) => store.prune(now).await?,
        };
        Ok(Pruned {
            revocations: self.index.prune(now),
            seen_events,
        })
    }

    /// Reads the revocations other instances recorded since the last sync into the
    /// index; returns how many rows were read. Nothing to do in memory.
    #[cfg_attr(not(feature = "events-store"), allow(unused_variables))]
    pub async fn sync(&self, now: i64) -> anyhow::Result<usize> {
        match &self.backend {
            Backend::Memory(_) => Ok(0),
            #[cfg(feature = "events-store")]
            Backend::Sql(store) => store.sync(&self.index, now).await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::revocation::AccountState;

    #[cfg(feature = "events-store")]
    fn token(sub: &str, sid: &str, iat: i64) -> crate::AccessTokenClaims {
        crate::AccessTokenClaims {
            issuer: "i".into(),
            subject: sub.into(),
            audience: vec![],
            expires_at: iat + 60,
            issued_at: iat,
            not_before: None,
            scopes: crate::Scopes::default(),
            client_id: "c".into(),
            token_id: "t".into(),
            email: None,
            auth_time: None,
            acr: None,
            amr: vec![],
            session_id: Some(sid.into()),
        }
    }

    fn session(sid: &str, before: i64) -> Revocation {
        Revocation::Session {
            session_id: sid.into(),
            before,
            expires_at: before + 1000,
        }
    }

    fn account(state: AccountState, iat: i64) -> Revocation {
        Revocation::Account {
            subject: "u1".into(),
            state,
            set_issued_at: iat,
            expires_at: (state == AccountState::Enabled).then_some(iat + 300),
        }
    }

    /// What every store must do, whatever keeps it.
    async fn behaves_as_a_store(store: &EventStore) {
        let index = store.revocations();
        assert_eq!(
            store
                .record("j1", 500, &[session("s1", 100)], 100)
                .await
                .unwrap(),
            Recorded::New
        );
        // A redelivery is recognised and applies nothing, even if it says otherwise.
        assert_eq!(
            store
                .record("j1", 500, &[session("s2", 100)], 100)
                .await
                .unwrap(),
            Recorded::Duplicate
        );
        assert_eq!(index.len(), 1);
        // An older revocation of the same session cannot shorten it.
        store
            .record("j2", 500, &[session("s1", 50)], 100)
            .await
            .unwrap();
        // The newest SET decides an account's state.
        store
            .record("j3", 500, &[account(AccountState::Disabled, 100)], 100)
            .await
            .unwrap();
        store
            .record("j4", 500, &[account(AccountState::Enabled, 90)], 100)
            .await
            .unwrap();
        assert_eq!(index.len(), 2);

        // Past the `jti`s' time and the session's expiry; the disabled account stays.
        let pruned = store.prune(1101).await.unwrap();
        assert_eq!(pruned.revocations, 1);
        assert_eq!(pruned.seen_events, 4);
        assert_eq!(index.len(), 1);
        // A forgotten `jti` counts as new again (the `iat` window refuses it before).
        assert_eq!(
            store.record("j1", 2000, &[], 1101).await.unwrap(),
            Recorded::New
        );
    }

    #[tokio::test]
    async fn a_store_in_memory_behaves_as_a_store() {
        behaves_as_a_store(&EventStore::in_memory(RevocationIndex::new())).await;
    }

    #[cfg(feature = "events-store")]
    async fn sqlite() -> (sqlx::AnyPool, tempfile::TempDir) {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/events.db?mode=rwc", dir.path().display());
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap();
        (pool, dir)
    }

    #[cfg(feature = "events-store")]
    #[tokio::test]
    async fn a_store_in_sqlite_behaves_as_a_store_and_survives_a_restart() {
        let (pool, _dir) = sqlite().await;
        let store = EventStore::sql(pool.clone(), RevocationIndex::new(), 100)
            .await
            .unwrap();
        behaves_as_a_store(&store).await;
        store
            .record("j5", 500, &[session("s9", 1100)], 1101)
            .await
            .unwrap();

        // Opening it again (the tables exist) loads what is still in force.
        let reopened = EventStore::sql(pool, RevocationIndex::new(), 1101)
            .await
            .unwrap();
        let index = reopened.revocations();
        assert_eq!(index.len(), 2);
        assert!(index.refuses(&token("u1", "none", 5_000)));
        assert!(index.refuses(&token("u2", "s9", 1100)));
        assert!(!index.refuses(&token("u2", "s9", 1101)));
        // The `jti`s are remembered too.
        assert_eq!(
            reopened.record("j5", 500, &[], 1101).await.unwrap(),
            Recorded::Duplicate
        );
    }

    #[cfg(feature = "events-store")]
    #[tokio::test]
    async fn an_instance_reads_what_another_recorded() {
        let (pool, _dir) = sqlite().await;
        let one = EventStore::sql(pool.clone(), RevocationIndex::new(), 100)
            .await
            .unwrap();
        let two = EventStore::sql(pool, RevocationIndex::new(), 100)
            .await
            .unwrap();
        one.record("j1", 500, &[session("s1", 100)], 101)
            .await
            .unwrap();
        one.record("j2", 500, &[account(AccountState::Disabled, 100)], 101)
            .await
            .unwrap();
        assert!(two.revocations().is_empty());
        assert_eq!(two.sync(102).await.unwrap(), 2);
        assert!(two.revocations().refuses(&token("u1", "s0", 5_000)));
        // An enable elsewhere lifts the disable here too.
        one.record("j3", 500, &[account(AccountState::Enabled, 101)], 103)
            .await
            .unwrap();
        two.sync(104).await.unwrap();
        assert!(!two.revocations().refuses(&token("u1", "s0", 5_000)));
        assert!(two.revocations().refuses(&token("u2", "s1", 100)));
    }
}
