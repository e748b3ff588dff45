//! Moving an account to a new address. Asking needs the current password; the new
//! address gets a single-use link and the old one a notice, in one transaction. Only
//! opening the link changes the address (so a request alone cannot take the account
//! from its owner), verified, and the old address is told again. Two accounts can never
//! end up on one address, or on two that look alike: the change is one `UPDATE`
//! against the same unique constraints as registration.

use anyhow::Context;

use crate::accounts::email::{Email, EmailError};
use crate::accounts::reauth::ReauthError;
use crate::accounts::store::{self as users, InsertUserError};
use crate::accounts::tokens::{self, NewToken, Purpose};
use crate::accounts::{Accounts, ClientIp, shown_ip};
use crate::guards::audit::{Event, Outcome, events};
use crate::guards::secrets;
use crate::mail::messages::{EmailChangeConfirmation, EmailChangeNotice, NOTICE_TIME, in_words};
use crate::sessions::device::Device;

#[derive(Debug, thiserror::Error)]
pub enum EmailChangeError {
    #[error(transparent)]
    Reauth(#[from] ReauthError),
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    #[error("that is already the account's address")]
    SameAddress,
    /// Another account has it, or one that looks like it.
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmEmailChangeError {
    /// Unknown, tampered with, used, superseded or expired.
    #[error("this link does not work")]
    InvalidLink,
    /// Another account took the address since it was asked for.
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl Accounts {
    /// Mails a link to `new_email` that moves `user_id` there, and a notice to the
    /// current address.
    #[tracing::instrument(skip_all)]
    pub async fn request_email_change(
        &self,
        user_id: &str,
        current_password: String,
        new_email: &str,
        ip: ClientIp,
        device: &Device,
    ) -> Result<Email, EmailChangeError> {
        let user = self
            .reauthenticate(
                user_id,
                current_password,
                ip,
                events::EMAIL_CHANGE_REQUESTED,
            )
            .await?;
        let new = Email::parse(new_email)?;
        if new.as_ref() == user.email {
            return Err(EmailChangeError::SameAddress);
        }
        if users::email_in_use(&self.pool, &new).await? {
            return Err(EmailChangeError::EmailTaken);
        }
        let token = secrets::random_token(32);
        let now = self.clock.now();
        let when = now.format(NOTICE_TIME).to_string();
        let now = now.timestamp();
        let link = format!("{}?token={token}", self.mail.email_change_url);
        let confirmation = EmailChangeConfirmation {
            link: &link,
            valid_for: &in_words(self.mail.email_verification_ttl_secs),
        }
        .to(new.as_ref())?;
        let device_label = device.shown();
        let ip_text = shown_ip(ip);
        let notice = EmailChangeNotice {
            new_email: new.as_ref(),
            done: false,
            when: &when,
            origin: Some((&device_label, &ip_text)),
            account_url: &self.mail.account_url,
        }
        .to(&user.email)?;
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        let stored = NewToken {
            token_hash: &secrets::hash(&token),
            user_id,
            purpose: Purpose::EmailChange,
            email: new.as_ref(),
            now,
            expires_at: now + self.mail.email_verification_ttl_secs,
        };
        tokens::replace(&mut tx, &stored).await?;
        self.outbox.enqueue(&mut *tx, &confirmation).await?;
        self.outbox.enqueue(&mut *tx, &notice).await?;
        tx.commit()
            .await
            .context("Failed to queue an email change")?;
        self.outbox.wake();
        self.audit
            .record(
                Event::new(events::EMAIL_CHANGE_REQUESTED, Outcome::Success)
                    .user(Some(user_id))
                    .ip(ip),
            )
            .await;
        Ok(new)
    }

    /// Moves the account to the address the link was sent to; see the module's docs.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_email_change(&self, token: &str) -> Result<(), ConfirmEmailChangeError> {
        let token_hash = secrets::hash(token);
        let now = self.clock.now();
        let when = now.format(NOTICE_TIME).to_string();
        let now = now.timestamp();
        let Some(link) =
            tokens::find_live(&self.pool, &token_hash, Purpose::EmailChange, now).await?
        else {
            return Err(ConfirmEmailChangeError::InvalidLink);
        };
        let user = users::find_by_id(&self.pool, &link.user_id)
            .await?
            .ok_or(ConfirmEmailChangeError::InvalidLink)?;
        let new = Email::parse(&link.email).map_err(|_| ConfirmEmailChangeError::InvalidLink)?;
        let notice = EmailChangeNotice {
            new_email: new.as_ref(),
            done: true,
            when: &when,
            origin: None,
            account_url: &self.mail.account_url,
        }
        .to(&user.email)?;
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        if !tokens::spend(&mut *tx, &token_hash, Purpose::EmailChange, now).await? {
            return Err(ConfirmEmailChangeError::InvalidLink);
        }
        match users::change_email(&mut *tx, &link.user_id, &new, now).await {
            Ok(()) => {}
            Err(InsertUserError::EmailTaken) => return Err(ConfirmEmailChangeError::EmailTaken),
            Err(InsertUserError::Unexpected(e)) => return Err(e.into()),
        }
        self.outbox.enqueue(&mut *tx, &notice).await?;
        tx.commit().await.context("Failed to change an email")?;
        self.outbox.wake();
        self.audit
            .record(Event::new(events::EMAIL_CHANGED, Outcome::Success).user(Some(&link.user_id)))
            .await;
        Ok(())
    }
}
