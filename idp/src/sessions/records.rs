//! Sign-in sessions people can see and end. Every sign-in (the sign-in page or the JSON
//! API) starts one: who, from which device and IP, when it started and was last used,
//! when it expires. The rules live here:
//! - a session is live until it is ended, passes its absolute lifetime
//!   (`IDP_SESSION_LIFETIME_SECS`) or goes unused for the idle timeout
//!   (`IDP_SESSION_IDLE_TIMEOUT_SECS`); every check is server-side, in SQL;
//! - a user has at most `IDP_MAX_SESSIONS_PER_USER` live sessions: starting one more
//!   ends the oldest;
//! - JSON API sessions carry a refresh token, rotated on every use; a used one
//!   presented again ends the session (someone holds a copy);
//! - ending a session ends its refresh tokens (they only work while it is live) and
//!   revokes the OAuth grants made in it. Access tokens already issued are checked
//!   offline by resource servers: ending a session queues a CAEP `session-revoked`
//!   event for them (and back-channel logout tokens for the clients it signed in to)
//!   in the same transaction, so they refuse those tokens from then on.

use std::net::IpAddr;

use anyhow::Context;
use service_kit::clock::Clock;
use sqlx::AnyPool;

use crate::accounts::amr::Amr;
use crate::events::{Events, Initiator, SecurityEvent};
use crate::guards::audit::store::{self as audit_store, AuditRow};
use crate::guards::audit::{Audit, Event, Outcome, events};
use crate::guards::secrets::{self, Secret};
use crate::oauth::store::grants;
use crate::sessions::device::Device;
use crate::sessions::store::{self as store, SessionRow};

/// Activity is written at most once per this many seconds per session.
const TOUCH_GRANULARITY_SECS: i64 = 60;
/// Sign-in attempts shown in "recent activity".
const ACTIVITY_LIMIT: i64 = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionKind {
    /// The sign-in page: the session's id is the browser session's OIDC `sid`.
    Browser,
    /// The JSON API: kept going by refresh tokens.
    Api,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Browser => "browser",
            Self::Api => "api",
        }
    }
}

/// Why a session ended (recorded with it and in the audit trail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    SignedOut,
    /// Ended by its user from another session (or this one).
    EndedByUser,
    /// The user had too many sessions; this was the oldest.
    Evicted,
    PasswordChanged,
    RefreshTokenReused,
    /// An operator disabled the account.
    AccountDisabled,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignedOut => "signed_out",
            Self::EndedByUser => "ended_by_user",
            Self::Evicted => "evicted",
            Self::PasswordChanged => "password_changed",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::AccountDisabled => "account_disabled",
        }
    }

    /// Who ended the session, as a security event says it.
    fn initiator(self) -> Initiator {
        match self {
            Self::SignedOut | Self::EndedByUser | Self::PasswordChanged => Initiator::User,
            Self::Evicted | Self::RefreshTokenReused => Initiator::Policy,
            Self::AccountDisabled => Initiator::Admin,
        }
    }

    /// Why, in a security event's `reason_admin`.
    fn described(self) -> &'static str {
        match self {
            Self::SignedOut => "The user signed out",
            Self::EndedByUser => "The user ended the session",
            Self::Evicted => "The user started more sessions than allowed; this was the oldest",
            Self::PasswordChanged => "The password was changed or reset",
            Self::RefreshTokenReused => "A used refresh token was presented again",
            Self::AccountDisabled => "The account was disabled",
        }
    }
}

/// The timeouts and the most sessions a user may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_timeout_secs: i64,
    pub lifetime_secs: i64,
    pub max_per_user: usize,
}

/// A new session, with the secrets only its creator ever sees (JSON API sessions).
#[derive(Debug)]
pub struct StartedSession {
    pub session: SessionRow,
    pub refresh_token: Option<Secret>,
    /// Echoed in `X-CSRF-Token` by calls authenticated with the refresh cookie.
    pub csrf_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Unknown, used before (the session is ended now), or its session is over.
    #[error("the refresh token is invalid, expired or revoked")]
    Invalid,
    /// The token came in the cookie without the session's CSRF token.
    #[error("the CSRF token is missing or wrong")]
    Csrf,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Clone)]
pub struct UserSessions {
    pool: AnyPool,
    clock: Clock,
    audit: Audit,
    events: Events,
    policy: SessionPolicy,
}

impl UserSessions {
    pub fn new(pool: AnyPool, clock: Clock, policy: SessionPolicy, events: Events) -> Self {
        Self {
            audit: Audit::new(pool.clone(), clock.clone()),
            pool,
            clock,
            events,
            policy,
        }
    }

    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// The security events these sessions' ends are told through, for the changes
    /// that end them (a password change publishes its own event first).
    pub fn events(&self) -> &Events {
        &self.events
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn idle_since(&self, now: i64) -> i64 {
        now - self.policy.idle_timeout_secs
    }

    /// Starts a session for `user_id` and ends the oldest ones past the per-user cap.
    pub async fn start(
        &self,
        user_id: &str,
        kind: SessionKind,
        device: &Device,
        ip: Option<IpAddr>,
        amr: &Amr,
    ) -> anyhow::Result<StartedSession> {
        let now = self.now();
        let (refresh_token, csrf_token) = match kind {
            SessionKind::Api => (Some(Secret::generate()), Some(secrets::random_token(32))),
            SessionKind::Browser => (None, None),
        };
        let session = SessionRow {
            id: secrets::random_token(32),
            user_id: user_id.to_owned(),
            kind: kind.as_str().to_owned(),
            device: device.description.clone(),
            user_agent: device.user_agent.clone(),
            ip: ip.map(|ip| ip.to_string()),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.policy.lifetime_secs,
            csrf_hash: csrf_token.as_deref().map(secrets::hash),
            amr: amr.stored(),
        };
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        store::insert(&mut *tx, &session).await?;
        if let Some(token) = &refresh_token {
            store::insert_refresh_token(&mut *tx, &token.hash(), &session.id, now).await?;
        }
        tx.commit().await.context("Failed to store a session")?;
        self.evict_beyond_cap(user_id, ip).await?;
        Ok(StartedSession {
            session,
            refresh_token,
            csrf_token,
        })
    }

    async fn evict_beyond_cap(&self, user_id: &str, ip: Option<IpAddr>) -> anyhow::Result<()> {
        let mut live = self.list(user_id).await?;
        if live.len() <= self.policy.max_per_user {
            return Ok(());
        }
        live.sort_by_key(|s| (s.created_at, s.last_seen_at));
        let excess = live.len() - self.policy.max_per_user;
        for oldest in live.iter().take(excess) {
            self.end(user_id, &oldest.id, EndReason::Evicted, ip)
                .await?;
        }
        Ok(())
    }

    /// The session `id` if it is live, recording that it was just used.
    pub async fn live(&self, id: &str) -> anyhow::Result<Option<SessionRow>> {
        let now = self.now();
        let session = store::find_live(&self.pool, id, now, self.idle_since(now)).await?;
        if session.is_some() {
            store::touch(&self.pool, id, now, now - TOUCH_GRANULARITY_SECS).await?;
        }
        Ok(session)
    }

    /// The live sessions of `user_id`, most recently used first.
    pub async fn list(&self, user_id: &str) -> anyhow::Result<Vec<SessionRow>> {
        let now = self.now();
        store::live_for_user(&self.pool, user_id, now, self.idle_since(now)).await
    }

    /// Ends the session `id` if it is `user_id`'s, with the OAuth grants made in it, and
    /// tells the event receivers. `true` if it was live until now.
    pub async fn end(
        &self,
        user_id: &str,
        id: &str,
        reason: EndReason,
        ip: Option<IpAddr>,
    ) -> anyhow::Result<bool> {
        self.end_in(user_id, id, reason, ip, &Events::txn()).await
    }

    /// [`UserSessions::end`] as part of the cause `txn`.
    async fn end_in(
        &self,
        user_id: &str,
        id: &str,
        reason: EndReason,
        ip: Option<IpAddr>,
        txn: &str,
    ) -> anyhow::Result<bool> {
        let now = self.now();
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        let ended = store::end(&mut *tx, id, user_id, now, reason.as_str()).await?;
        if ended {
            let event = SecurityEvent::SessionRevoked {
                user_id,
                session_id: id,
                initiator: reason.initiator(),
                reason: reason.described(),
            };
            // Before the grants go: the clients to tell are those of its live grants.
            self.events.publish(&mut tx, txn, &event).await?;
            grants::revoke_for_session(&mut *tx, id, now).await?;
        }
        tx.commit().await.context("Failed to end a session")?;
        if ended {
            self.events.wake();
            self.audit
                .record(
                    Event::new(events::SESSION_ENDED, Outcome::Success)
                        .user(Some(user_id))
                        .ip(ip)
                        .detail(reason.as_str()),
                )
                .await;
        }
        Ok(ended)
    }

    /// Ends every live session of `user_id` except `keep`; returns how many ended.
    pub async fn end_others(
        &self,
        user_id: &str,
        keep: Option<&str>,
        reason: EndReason,
        ip: Option<IpAddr>,
    ) -> anyhow::Result<u64> {
        self.end_others_in(user_id, keep, reason, ip, &Events::txn())
            .await
    }

    /// [`UserSessions::end_others`] as part of the cause `txn` (the password change
    /// or the disabling that ends them).
    pub async fn end_others_in(
        &self,
        user_id: &str,
        keep: Option<&str>,
        reason: EndReason,
        ip: Option<IpAddr>,
        txn: &str,
    ) -> anyhow::Result<u64> {
        let mut ended = 0;
        for session in self.list(user_id).await? {
            if Some(session.id.as_str()) != keep
                && self.end_in(user_id, &session.id, reason, ip, txn).await?
            {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Exchanges a JSON API session's refresh token for a new one. The old one is used
    /// up in the same transaction; a used one presented again ends its session. A token
    /// from the cookie comes with `csrf`, which must be the session's CSRF token (else
    /// nothing changes).
    pub async fn refresh(
        &self,
        presented: &Secret,
        csrf: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<(SessionRow, Secret), RefreshError> {
        let now = self.now();
        let hash = presented.hash();
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        let Some(session_id) = store::use_refresh_token(&mut *tx, &hash, now).await? else {
            drop(tx);
            if let Some((session_id, user_id)) =
                store::session_of_used_refresh_token(&self.pool, &hash).await?
            {
                tracing::warn!("A used refresh token was presented again; its session ends");
                self.end(&user_id, &session_id, EndReason::RefreshTokenReused, ip)
                    .await?;
            }
            return Err(RefreshError::Invalid);
        };
        // Dropping `tx` on a refusal rolls the use back.
        let session = store::find_live(&mut *tx, &session_id, now, self.idle_since(now))
            .await?
            .ok_or(RefreshError::Invalid)?;
        if let Some(csrf) = csrf
            && !Self::csrf_matches(&session, csrf)
        {
            return Err(RefreshError::Csrf);
        }
        let next = Secret::generate();
        store::insert_refresh_token(&mut *tx, &next.hash(), &session.id, now).await?;
        store::touch(&mut *tx, &session.id, now, now + 1).await?;
        tx.commit()
            .await
            .context("Failed to rotate a refresh token")?;
        Ok((session, next))
    }

    /// The live session an unused refresh token belongs to.
    pub async fn of_refresh_token(&self, presented: &Secret) -> anyhow::Result<Option<SessionRow>> {
        let now = self.now();
        match store::session_of_unused_refresh_token(&self.pool, &presented.hash()).await? {
            Some(id) => store::find_live(&self.pool, &id, now, self.idle_since(now)).await,
            None => Ok(None),
        }
    }

    /// Replaces the CSRF token of session `id`.
    pub async fn set_csrf(&self, id: &str, token: &str) -> anyhow::Result<()> {
        store::set_csrf_hash(&self.pool, id, &secrets::hash(token)).await
    }

    /// Whether `presented` is the CSRF token of `session` (constant time).
    pub fn csrf_matches(session: &SessionRow, presented: &str) -> bool {
        session
            .csrf_hash
            .as_deref()
            .is_some_and(|hash| !presented.is_empty() && secrets::matches(presented, hash))
    }

    /// Recent sign-in attempts on `user_id`'s account (successes, failures, refusals
    /// while locked), passwords and second steps alike, newest first.
    pub async fn sign_in_activity(&self, user_id: &str) -> anyhow::Result<Vec<AuditRow>> {
        let steps = [events::SIGN_IN, events::SECOND_FACTOR];
        audit_store::latest_for_user(&self.pool, user_id, steps, ACTIVITY_LIMIT).await
    }
}
