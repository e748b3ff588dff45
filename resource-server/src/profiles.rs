//! The profile service: authorization decisions and storage calls for each use case.
//! Knows nothing of HTTP; owns the transactions, and keeps the profile cache true to
//! them (single profiles read through it; every committed write invalidates it).

use anyhow::Context;
use service_kit::clock::Clock;
use service_kit::db::{Backend, Database};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Transaction};
use tracing::Instrument;

use crate::domain::{
    Access, AccessDenied, Action, Caller, CallerUser, Page, PageRequest, Profile, ProfileUpdate,
    UserId,
};
use crate::profile_cache::ProfileCache;
use crate::storage::profiles as store;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Denied(#[from] AccessDenied),
    #[error("no such profile")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The use cases of the profile API.
#[derive(Clone)]
pub struct Profiles {
    db: Database,
    clock: Clock,
    cache: ProfileCache,
}

impl Profiles {
    pub fn new(db: Database, clock: Clock, cache: ProfileCache) -> Self {
        Self { db, clock, cache }
    }

    /// The cache of single profiles that [`Self::me`] and [`Self::get`] read through.
    pub fn cache(&self) -> &ProfileCache {
        &self.cache
    }

    /// The caller's own profile, created from the token on first use.
    #[tracing::instrument(skip_all)]
    pub async fn me(&self, caller: &Caller) -> Result<Profile, ProfileError> {
        let user = caller.authorize_own(Action::Read)?;
        self.get_or_create(user).await
    }

    #[tracing::instrument(skip_all, fields(profile = %id))]
    pub async fn get(&self, caller: &Caller, id: &UserId) -> Result<Profile, ProfileError> {
        match (caller.authorize(Action::Read, id)?, caller.user()) {
            (Access::Owner, Some(user)) => self.get_or_create(user).await,
            _ => self.read(id).await?.ok_or(ProfileError::NotFound),
        }
    }

    #[tracing::instrument(skip_all, fields(profile = %id))]
    pub async fn update(
        &self,
        caller: &Caller,
        id: &UserId,
        update: &ProfileUpdate,
    ) -> Result<Profile, ProfileError> {
        let owner = match (caller.authorize(Action::Write, id)?, caller.user()) {
            (Access::Owner, Some(user)) => Some(user.clone()),
            _ => None,
        };
        let (this, id, update) = (self.clone(), *id, update.clone());
        self.run_to_completion(async move { this.write_update(owner, &id, &update).await })
            .await
    }

    #[tracing::instrument(skip_all, fields(profile = %id))]
    pub async fn delete(&self, caller: &Caller, id: &UserId) -> Result<(), ProfileError> {
        caller.authorize(Action::Write, id)?;
        let (this, id) = (self.clone(), *id);
        self.run_to_completion(async move { this.write_delete(&id).await })
            .await
    }

    /// Always read from the database: pages are not cached.
    #[tracing::instrument(skip_all)]
    pub async fn list(
        &self,
        caller: &Caller,
        request: PageRequest,
    ) -> Result<Page<Profile>, ProfileError> {
        caller.authorize_list()?;
        let mut conn = self.connection().await?;
        let (items, total) = store::list(&mut conn, &request).await?;
        Ok(Page {
            items,
            request,
            total,
        })
    }

    async fn get_or_create(&self, user: &CallerUser) -> Result<Profile, ProfileError> {
        // Nearly every call finds the profile: read first, write only the first time.
        if let Some(profile) = self.read(&user.id).await? {
            return Ok(profile);
        }
        // No invalidation: the cache never holds an absent profile, so a new row cannot
        // make any cached entry wrong, here or at another instance.
        store::insert_if_absent(
            &mut *self.connection().await?,
            &user.id,
            user.email.as_deref().unwrap_or_default(),
            self.clock.now(),
        )
        .await?;
        // Only a concurrent DELETE can make it vanish again.
        self.read(&user.id).await?.ok_or(ProfileError::NotFound)
    }

    /// Profile `id` from the cache, or else from the database into the cache.
    async fn read(&self, id: &UserId) -> anyhow::Result<Option<Profile>> {
        if let Some(profile) = self.cache.get(id) {
            return Ok(Some(profile));
        }
        let fill = self.cache.begin_fill();
        let found = store::find(&mut *self.connection().await?, id).await?;
        if let Some(profile) = &found {
            fill.complete(profile);
        }
        Ok(found)
    }

    async fn write_update(
        &self,
        owner: Option<CallerUser>,
        id: &UserId,
        update: &ProfileUpdate,
    ) -> Result<Profile, ProfileError> {
        let now = self.clock.now();
        let mut tx = self.begin().await?;
        if let Some(user) = owner {
            store::insert_if_absent(
                &mut tx,
                &user.id,
                user.email.as_deref().unwrap_or_default(),
                now,
            )
            .await?;
        }
        let updated = store::update(&mut tx, id, update, now)
            .await?
            .ok_or(ProfileError::NotFound)?;
        self.announce_change(&mut tx, id).await?;
        self.commit_and_invalidate(tx, id).await?;
        Ok(updated)
    }

    async fn write_delete(&self, id: &UserId) -> Result<(), ProfileError> {
        let mut tx = self.begin().await?;
        if !store::delete(&mut tx, id).await? {
            return Err(ProfileError::NotFound);
        }
        self.announce_change(&mut tx, id).await?;
        self.commit_and_invalidate(tx, id).await?;
        Ok(())
    }

    /// Tells the other instances, once `conn`'s transaction commits, to forget `id`.
    async fn announce_change(&self, conn: &mut AnyConnection, id: &UserId) -> anyhow::Result<()> {
        match self.db.backend {
            Backend::Postgres => store::announce_change(conn, id).await,
            // One process owns a SQLite file: there is nobody else to tell.
            Backend::Sqlite => Ok(()),
        }
    }

    /// Commits, then forgets `id` here. Also when the commit reports an error: the
    /// outcome of a commit whose answer was lost is unknown, and forgetting is harmless.
    async fn commit_and_invalidate(
        &self,
        tx: Transaction<'static, Any>,
        id: &UserId,
    ) -> anyhow::Result<()> {
        let committed = tx.commit().await;
        self.cache.invalidate(id);
        committed.context("Failed to commit a profile change")
    }

    /// Runs `write` in a task of its own, so that it finishes even if the request is
    /// dropped (client gone, timeout): dropped between sending COMMIT and invalidating,
    /// it would leave the write committed and the old profile cached here.
    async fn run_to_completion<T: Send + 'static>(
        &self,
        write: impl Future<Output = Result<T, ProfileError>> + Send + 'static,
    ) -> Result<T, ProfileError> {
        tokio::spawn(write.in_current_span())
            .await
            .context("A profile write panicked")?
    }

    async fn begin(&self) -> anyhow::Result<Transaction<'static, Any>> {
        self.db
            .pool
            .begin()
            .await
            .context("Failed to begin a transaction")
    }

    async fn connection(&self) -> anyhow::Result<PoolConnection<Any>> {
        self.db
            .pool
            .acquire()
            .await
            .context("Failed to get a database connection")
    }
}
