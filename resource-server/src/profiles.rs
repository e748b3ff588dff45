//! The profile service: authorization decisions and storage calls for each use case.
//! Knows nothing of HTTP; owns the transactions.

use anyhow::Context;
use service_kit::clock::Clock;
use service_kit::db::Database;

use crate::domain::{
    Access, AccessDenied, Action, Caller, CallerUser, Page, PageRequest, Profile, ProfileUpdate,
    UserId,
};
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
#[derive(Clone, Debug)]
pub struct Profiles {
    db: Database,
    clock: Clock,
}

impl Profiles {
    pub fn new(db: Database, clock: Clock) -> Self {
        Self { db, clock }
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
            _ => {
                let mut conn = self.connection().await?;
                store::find(&mut conn, id)
                    .await?
                    .ok_or(ProfileError::NotFound)
            }
        }
    }

    #[tracing::instrument(skip_all, fields(profile = %id))]
    pub async fn update(
        &self,
        caller: &Caller,
        id: &UserId,
        update: &ProfileUpdate,
    ) -> Result<Profile, ProfileError> {
        let access = caller.authorize(Action::Write, id)?;
        let now = self.clock.now();
        let mut tx = self
            .db
            .pool
            .begin()
            .await
            .context("Failed to begin a transaction")?;
        if let (Access::Owner, Some(user)) = (access, caller.user()) {
            store::insert_if_absent(
                &mut tx,
                &user.id,
                user.email.as_deref().unwrap_or_default(),
                now,
            )
            .await?;
        }
        let updated = store::update(&mut tx, id, update, now).await?;
        tx.commit()
            .await
            .context("Failed to commit a profile update")?;
        updated.ok_or(ProfileError::NotFound)
    }

    #[tracing::instrument(skip_all, fields(profile = %id))]
    pub async fn delete(&self, caller: &Caller, id: &UserId) -> Result<(), ProfileError> {
        caller.authorize(Action::Write, id)?;
        let mut conn = self.connection().await?;
        if store::delete(&mut conn, id).await? {
            Ok(())
        } else {
            Err(ProfileError::NotFound)
        }
    }

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
        let mut conn = self.connection().await?;
        // Nearly every call finds the profile: read first, write only the first time.
        if let Some(profile) = store::find(&mut conn, &user.id).await? {
            return Ok(profile);
        }
        store::insert_if_absent(
            &mut conn,
            &user.id,
            user.email.as_deref().unwrap_or_default(),
            self.clock.now(),
        )
        .await?;
        // Only a concurrent DELETE can make it vanish again.
        store::find(&mut conn, &user.id)
            .await?
            .ok_or(ProfileError::NotFound)
    }

    async fn connection(&self) -> anyhow::Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        self.db
            .pool
            .acquire()
            .await
            .context("Failed to get a database connection")
    }
}
