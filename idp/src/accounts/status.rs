//! Disabling and enabling accounts, an operator's decision (`idp users disable|enable`).
//! A disabled account keeps its data but cannot sign in (a right password or passkey is
//! answered "account disabled"); disabling ends its sessions and revokes its grants,
//! and a RISC `account-disabled` event tells the resource servers to refuse every token
//! of the account until `account-enabled`.

use anyhow::Context;
use service_kit::clock::Clock;
use sqlx::AnyPool;

use crate::accounts::email::Email;
use crate::accounts::store as users;
use crate::events::{Events, SecurityEvent};
use crate::guards::audit::{Audit, Event, Outcome, events};
use crate::oauth::store::grants;
use crate::sessions::records::{EndReason, UserSessions};

/// What a status change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusChange {
    /// The account's id; it was in the other state until now.
    Changed(String),
    /// The account's id; it was in that state already.
    Unchanged(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("no account has that email address")]
    NoSuchAccount,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Clone)]
pub struct AccountStatus {
    pool: AnyPool,
    clock: Clock,
    sessions: UserSessions,
    audit: Audit,
}

impl AccountStatus {
    pub fn new(pool: AnyPool, clock: Clock, sessions: UserSessions) -> Self {
        Self {
            audit: Audit::new(pool.clone(), clock.clone()),
            pool,
            clock,
            sessions,
        }
    }

    /// Disables the account of `email`: the event, then its sessions and grants end.
    pub async fn disable(&self, email: &str) -> Result<StatusChange, StatusError> {
        let user_id = self.user_id(email).await?;
        let now = self.clock.now().timestamp();
        let txn = Events::txn();
        let signals = self.sessions.events();
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        if !users::set_disabled(&mut *tx, &user_id, Some(now)).await? {
            return Ok(StatusChange::Unchanged(user_id));
        }
        let event = SecurityEvent::AccountDisabled { user_id: &user_id };
        signals.publish(&mut tx, &txn, &event).await?;
        tx.commit().await.context("Failed to disable an account")?;
        signals.wake();
        let ended = self
            .sessions
            .end_others_in(&user_id, None, EndReason::AccountDisabled, None, &txn)
            .await?;
        // No session is called "": every grant of the user goes.
        let revoked = grants::revoke_for_user_except_session(&self.pool, &user_id, "", now).await?;
        tracing::info!(
            user_id,
            ended_sessions = ended,
            revoked_grants = revoked,
            "Account disabled"
        );
        self.record(events::ACCOUNT_DISABLED, &user_id).await;
        Ok(StatusChange::Changed(user_id))
    }

    /// Lets the account of `email` sign in again.
    pub async fn enable(&self, email: &str) -> Result<StatusChange, StatusError> {
        let user_id = self.user_id(email).await?;
        let signals = self.sessions.events();
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        if !users::set_disabled(&mut *tx, &user_id, None).await? {
            return Ok(StatusChange::Unchanged(user_id));
        }
        let event = SecurityEvent::AccountEnabled { user_id: &user_id };
        signals.publish(&mut tx, &Events::txn(), &event).await?;
        tx.commit().await.context("Failed to enable an account")?;
        signals.wake();
        tracing::info!(user_id, "Account enabled");
        self.record(events::ACCOUNT_ENABLED, &user_id).await;
        Ok(StatusChange::Changed(user_id))
    }

    async fn user_id(&self, email: &str) -> Result<String, StatusError> {
        let email = Email::parse(email).map_err(|_| StatusError::NoSuchAccount)?;
        users::find_by_email(&self.pool, &email)
            .await?
            .map(|user| user.id)
            .ok_or(StatusError::NoSuchAccount)
    }

    async fn record(&self, event: &'static str, user_id: &str) {
        self.audit
            .record(
                Event::new(event, Outcome::Success)
                    .user(Some(user_id))
                    .detail("operator"),
            )
            .await;
    }
}
