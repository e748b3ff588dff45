//! Proving an address belongs to the account's owner: a single-use link mailed at
//! registration (in the registration's transaction) and again on request, which marks
//! the address verified when opened. OIDC `email_verified` says whether it was. A link
//! names the address it was sent to, so one sent to a former address proves nothing
//! about the current one.

use anyhow::Context;
use sqlx::AnyConnection;

use crate::accounts::Accounts;
use crate::accounts::store as users;
use crate::accounts::tokens::{self, NewToken, Purpose};
use crate::guards::audit::{Event, Outcome, events};
use crate::guards::secrets;
use crate::guards::throttle::{Key, Rate};
use crate::mail::messages::{EmailVerification, in_words};

/// Verification mails an account may ask for.
const RESENDS: Rate = Rate {
    per_hour: 3,
    burst: 3,
};

#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error("the address is already verified")]
    AlreadyVerified,
    #[error("too many verification mails")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Unknown, tampered with, used, superseded, expired, or for a former address.
    #[error("this verification link does not work")]
    InvalidLink,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl Accounts {
    /// Stores a new verification link for `email` (spending earlier ones) and queues its
    /// mail, on `conn`: the caller's transaction. The caller wakes the outbox after the
    /// commit.
    pub(crate) async fn queue_verification(
        &self,
        conn: &mut AnyConnection,
        user_id: &str,
        email: &str,
    ) -> anyhow::Result<()> {
        let token = secrets::random_token(32);
        let now = self.clock.now().timestamp();
        let link = format!("{}?token={token}", self.mail.email_verification_url);
        let mail = EmailVerification {
            link: &link,
            valid_for: &in_words(self.mail.email_verification_ttl_secs),
        }
        .to(email)?;
        let new = NewToken {
            token_hash: &secrets::hash(&token),
            user_id,
            purpose: Purpose::EmailVerification,
            email,
            now,
            expires_at: now + self.mail.email_verification_ttl_secs,
        };
        tokens::replace(conn, &new).await?;
        self.outbox.enqueue(&mut *conn, &mail).await
    }

    /// Mails `user_id` a new verification link (three an hour at most).
    pub async fn resend_verification(&self, user_id: &str) -> Result<(), ResendError> {
        let user = users::find_by_id(&self.pool, user_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("A signed-in user has no account"))?;
        if user.email_verified {
            return Err(ResendError::AlreadyVerified);
        }
        let event = Event::new(events::EMAIL_VERIFICATION_REQUESTED, Outcome::Success);
        if let Some(retry_after_secs) = self
            .throttle
            .take(Key::VerificationRequests(user_id), &RESENDS)
            .await?
        {
            let event = Event {
                outcome: Outcome::Throttled,
                ..event
            };
            self.audit.record(event.user(Some(user_id))).await;
            return Err(ResendError::Throttled { retry_after_secs });
        }
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        self.queue_verification(&mut tx, user_id, &user.email)
            .await?;
        tx.commit()
            .await
            .context("Failed to queue a verification mail")?;
        self.outbox.wake();
        self.audit.record(event.user(Some(user_id))).await;
        Ok(())
    }

    /// Spends a verification link and marks its address verified, if it is still the
    /// account's.
    pub async fn verify_email(&self, token: &str) -> Result<(), VerifyError> {
        let token_hash = secrets::hash(token);
        let now = self.clock.now().timestamp();
        let Some(link) =
            tokens::find_live(&self.pool, &token_hash, Purpose::EmailVerification, now).await?
        else {
            return Err(VerifyError::InvalidLink);
        };
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        let spent = tokens::spend(&mut *tx, &token_hash, Purpose::EmailVerification, now).await?;
        if !spent || !users::mark_email_verified(&mut *tx, &link.user_id, &link.email, now).await? {
            return Err(VerifyError::InvalidLink);
        }
        tx.commit().await.context("Failed to verify an email")?;
        self.audit
            .record(Event::new(events::EMAIL_VERIFIED, Outcome::Success).user(Some(&link.user_id)))
            .await;
        Ok(())
    }
}
