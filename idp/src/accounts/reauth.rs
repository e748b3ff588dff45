//! The current password asked again before a sensitive change (a new password or email
//! address, deleting the account): throttled like a sign-in, per IP address and per
//! account, with a locked account answering like a wrong password.

use crate::accounts::password::Password;
use crate::accounts::store::{self as users, UserRecord};
use crate::accounts::{Accounts, ClientIp};
use crate::guards::audit::{Event, Outcome};
use crate::guards::throttle::Key;

#[derive(Debug, thiserror::Error)]
pub enum ReauthError {
    /// The current password is wrong (or the account is locked: the same answer).
    #[error("the current password is incorrect")]
    WrongCurrentPassword,
    /// Too many failures from this IP address: retry after this many seconds.
    #[error("too many failed attempts")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl Accounts {
    /// `user_id`'s account if `current` is its password. A failure is audited as
    /// `event` with `wrong_current_password` and counts like a failed sign-in.
    pub(crate) async fn reauthenticate(
        &self,
        user_id: &str,
        current: String,
        ip: ClientIp,
        event: &'static str,
    ) -> Result<UserRecord, ReauthError> {
        if let Some(ip) = ip
            && let Some(retry_after_secs) = self.throttle.locked(Key::Ip(ip)).await?
        {
            return Err(ReauthError::Throttled { retry_after_secs });
        }
        let user = users::find_by_id(&self.pool, user_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("A signed-in user has no account"))?;
        let account = Key::Account(&user.email);
        let locked = self.throttle.locked(account).await?.is_some();
        let verified = self
            .hasher
            .verify(
                Password::for_login(current),
                Some(user.password_hash.clone()),
            )
            .await?;
        if locked || !verified {
            self.audit
                .record(
                    Event::new(event, Outcome::Failure)
                        .user(Some(user_id))
                        .ip(ip)
                        .detail("wrong_current_password"),
                )
                .await;
            if !locked {
                self.throttle
                    .fail(account, &self.throttle.policies().account)
                    .await?;
            }
            self.count_ip_failure(ip).await?;
            return Err(ReauthError::WrongCurrentPassword);
        }
        Ok(user)
    }
}
