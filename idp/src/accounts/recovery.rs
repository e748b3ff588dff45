//! Recovering an account whose password is lost: a single-use link by mail, and a new
//! password set with it.
//!
//! - **Asking** ([`Accounts::request_password_reset`]) answers the same whether or not
//!   the address has an account: the caller gets `Ok` at once and the work (look-up,
//!   link, mail) happens in a task of its own, so neither the answer nor its timing
//!   tells. Per IP address it is throttled openly (429); per submitted address quietly
//!   (three mails an hour at most, the rest dropped without a word), since a 429 there
//!   would say nothing but still invite probing.
//! - **The link** carries 256 random bits; only their SHA-256 is stored. It works once,
//!   for `password_reset_ttl_secs`, and a newer one spends the older ones.
//! - **Setting the password** ([`Accounts::reset_password`]) spends the link, stores
//!   the new hash, marks the address verified (the link proved it) and queues a notice
//!   in one transaction, then ends every session, refresh token and OAuth grant of the
//!   account and clears its sign-in lock.

use std::net::IpAddr;

use anyhow::Context;

use crate::accounts::email::Email;
use crate::accounts::password::{Password, PasswordError};
use crate::accounts::store as users;
use crate::accounts::tokens::{self, NewToken, Purpose};
use crate::accounts::{Accounts, ClientIp, password_changed, shown_ip};
use crate::events::Events;
use crate::guards::audit::{Event, Outcome, events};
use crate::guards::secrets;
use crate::guards::throttle::{Key, Rate};
use crate::mail::messages::{NOTICE_TIME, PasswordChanged, PasswordReset, in_words};
use crate::oauth::store::grants;
use crate::sessions::device::Device;
use crate::sessions::records::EndReason;

/// Reset mails per submitted address.
const PER_ADDRESS: Rate = Rate {
    per_hour: 3,
    burst: 3,
};
/// Reset requests per IP address.
const PER_IP: Rate = Rate {
    per_hour: 20,
    burst: 10,
};

#[derive(Debug, thiserror::Error)]
pub enum ResetRequestError {
    /// Too many requests from this IP address; says nothing about any account.
    #[error("too many password reset requests")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// Unknown, tampered with, used or expired: deliberately one case.
    #[error("this password reset link does not work")]
    InvalidLink,
    #[error(transparent)]
    InvalidPassword(#[from] PasswordError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl Accounts {
    /// Mails a reset link to `email` if it has an account; see the module's docs.
    pub async fn request_password_reset(
        &self,
        email: &str,
        ip: ClientIp,
    ) -> Result<(), ResetRequestError> {
        if let Some(ip) = ip
            && let Some(retry_after_secs) = self.throttle.take(Key::ResetIp(ip), &PER_IP).await?
        {
            return Err(ResetRequestError::Throttled { retry_after_secs });
        }
        let (accounts, email) = (self.clone(), email.to_owned());
        tokio::spawn(async move {
            if let Err(e) = accounts.mail_reset_link(&email, ip).await {
                tracing::error!(
                    error = format!("{e:#}"),
                    "A password reset link was not queued"
                );
            }
        });
        Ok(())
    }

    async fn mail_reset_link(&self, input: &str, ip: Option<IpAddr>) -> anyhow::Result<()> {
        let Ok(email) = Email::parse(input) else {
            return Ok(());
        };
        if self
            .throttle
            .take(Key::ResetRequests(email.as_ref()), &PER_ADDRESS)
            .await?
            .is_some()
        {
            tracing::info!("A password reset request was dropped: too many for that address");
            return Ok(());
        }
        let Some(user) = users::find_by_email(&self.pool, &email).await? else {
            return Ok(());
        };
        let token = secrets::random_token(32);
        let now = self.clock.now().timestamp();
        let link = format!("{}?token={token}", self.mail.password_reset_url);
        let mail = PasswordReset {
            link: &link,
            valid_for: &in_words(self.mail.password_reset_ttl_secs),
        }
        .to(&user.email)?;
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        let new = NewToken {
            token_hash: &secrets::hash(&token),
            user_id: &user.id,
            purpose: Purpose::PasswordReset,
            email: &user.email,
            now,
            expires_at: now + self.mail.password_reset_ttl_secs,
        };
        tokens::replace(&mut tx, &new).await?;
        self.outbox.enqueue(&mut *tx, &mail).await?;
        tx.commit()
            .await
            .context("Failed to queue a password reset")?;
        self.outbox.wake();
        self.audit
            .record(
                Event::new(events::PASSWORD_RESET_REQUESTED, Outcome::Success)
                    .user(Some(&user.id))
                    .ip(ip),
            )
            .await;
        Ok(())
    }

    /// Whether `token` is a live reset link (the page shows its form only then). Looks,
    /// never spends: a mail scanner opening the link changes nothing.
    pub async fn reset_link_works(&self, token: &str) -> anyhow::Result<bool> {
        let now = self.clock.now().timestamp();
        let found = tokens::find_live(
            &self.pool,
            &secrets::hash(token),
            Purpose::PasswordReset,
            now,
        )
        .await?;
        Ok(found.is_some())
    }

    /// Sets a new password with a reset link; see the module's docs.
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(
        &self,
        token: &str,
        new: String,
        ip: ClientIp,
        device: &Device,
    ) -> Result<(), ResetError> {
        let token_hash = secrets::hash(token);
        let now = self.clock.now();
        let failure = Event::new(events::PASSWORD_RESET, Outcome::Failure).ip(ip);
        let Some(link) = tokens::find_live(
            &self.pool,
            &token_hash,
            Purpose::PasswordReset,
            now.timestamp(),
        )
        .await?
        else {
            self.audit.record(failure.detail("invalid_link")).await;
            return Err(ResetError::InvalidLink);
        };
        // Checked before the link is spent: a weak password costs the link nothing.
        let password = Password::parse(new, &self.common_passwords)?;
        let hash = self.hasher.hash(password).await?;
        let notice = PasswordChanged {
            when: &now.format(NOTICE_TIME).to_string(),
            device: &device.shown(),
            ip: &shown_ip(ip),
            account_url: &self.mail.account_url,
        }
        .to(&link.email)?;
        let now = now.timestamp();
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        if !tokens::spend(&mut *tx, &token_hash, Purpose::PasswordReset, now).await? {
            // Spent by a concurrent request between the look-up and here.
            self.audit.record(failure.detail("invalid_link")).await;
            return Err(ResetError::InvalidLink);
        }
        users::update_password_hash(&mut *tx, &link.user_id, &hash, now).await?;
        // The link reached the mailbox: that proves the address as well as a
        // verification link would (if it is still the account's).
        users::mark_email_verified(&mut *tx, &link.user_id, &link.email, now).await?;
        self.outbox.enqueue(&mut *tx, &notice).await?;
        let txn = Events::txn();
        let signals = self.sessions.events();
        signals
            .publish(&mut tx, &txn, &password_changed(&link.user_id))
            .await?;
        tx.commit().await.context("Failed to reset a password")?;
        self.outbox.wake();
        signals.wake();
        let ended = self
            .sessions
            .end_others_in(&link.user_id, None, EndReason::PasswordChanged, ip, &txn)
            .await?;
        // No session is called "": every grant of the user goes.
        let revoked =
            grants::revoke_for_user_except_session(&self.pool, &link.user_id, "", now).await?;
        self.throttle.reset(Key::Account(&link.email)).await?;
        tracing::info!(user_id = %link.user_id, ended_sessions = ended, revoked_grants = revoked, "Password reset");
        self.audit
            .record(
                Event::new(events::PASSWORD_RESET, Outcome::Success)
                    .user(Some(&link.user_id))
                    .ip(ip)
                    .device(&device.description, device.user_agent.as_deref()),
            )
            .await;
        Ok(())
    }
}
