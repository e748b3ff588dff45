//! Deleting an account by its owner (current password required). In one transaction:
//! a last notice to the address is queued, the account's audit events lose what could
//! identify a person (IP address, device, user agent, detail), and the account row goes
//! with everything that hangs on it by foreign key: sessions and their refresh tokens,
//! grants with their refresh and access token records, consents, authorization codes,
//! mailed links. The audit trail keeps an `account_deleted` event with the user id only.
//! Each session still open is told to the event receivers (CAEP `session-revoked`, and
//! back-channel logout to the clients it signed in to), so resource servers refuse the
//! tokens issued in it.

use anyhow::Context;

use crate::accounts::reauth::ReauthError;
use crate::accounts::{Accounts, ClientIp};
use crate::events::{Events, Initiator, SecurityEvent};
use crate::guards::audit::{Event, Outcome, events};
use crate::mail::messages::{AccountDeleted, NOTICE_TIME};

impl Accounts {
    #[tracing::instrument(skip_all)]
    pub async fn delete_account(
        &self,
        user_id: &str,
        current_password: String,
        ip: ClientIp,
    ) -> Result<(), ReauthError> {
        let user = self
            .reauthenticate(user_id, current_password, ip, events::ACCOUNT_DELETED)
            .await?;
        let now = self.clock.now();
        let notice = AccountDeleted {
            when: &now.format(NOTICE_TIME).to_string(),
        }
        .to(&user.email)?;
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        self.outbox.enqueue(&mut *tx, &notice).await?;
        sqlx::query(
            "UPDATE audit_events SET ip = NULL, device = NULL, user_agent = NULL, detail = NULL \
             WHERE user_id = $1",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .context("Failed to strip an account's audit events")?;
        let open: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM user_sessions WHERE user_id = $1 AND ended_at IS NULL")
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await
                .context("Failed to list an account's sessions")?;
        let txn = Events::txn();
        for (session_id,) in &open {
            let event = SecurityEvent::SessionRevoked {
                user_id,
                session_id,
                initiator: Initiator::User,
                reason: "The account was deleted",
            };
            self.events().publish(&mut tx, &txn, &event).await?;
        }
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .context("Failed to delete an account")?;
        tx.commit().await.context("Failed to delete an account")?;
        self.outbox.wake();
        self.events().wake();
        tracing::info!(user_id, "Account deleted");
        self.audit
            .record(Event::new(events::ACCOUNT_DELETED, Outcome::Success).user(Some(user_id)))
            .await;
        Ok(())
    }
}
