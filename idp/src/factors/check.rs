//! The second step of a sign-in: a code from an authenticator app (accepted once), a
//! recovery code (spent) or a passkey (`passkeys.rs`), throttled per account and per IP
//! address, a lock answering like a wrong code.

use crate::accounts::ClientIp;
use crate::accounts::store as users;
use crate::factors::store;
use crate::factors::{Actor, CheckError, Factors, SecondFactor, aad, recovery_codes, totp};
use crate::guards::audit::{Event, Outcome, events};
use crate::guards::throttle::Key;

impl Factors {
    /// The second step of a sign-in whose password was right: a code from an
    /// authenticator app, or a recovery code. See the module's docs.
    #[tracing::instrument(skip_all)]
    pub async fn check(
        &self,
        actor: &Actor<'_>,
        email: &str,
        code: &str,
    ) -> Result<SecondFactor, CheckError> {
        let factor = self
            .guarded(actor, async || self.passes(actor.user_id, code).await)
            .await?;
        if factor == SecondFactor::RecoveryCode {
            self.tell_recovery_code_used(actor, email).await?;
        }
        Ok(factor)
    }

    /// The throttling around every second step: refused at once while the IP address
    /// is throttled; while the account's second step is locked, `attempt` is not even
    /// made and the answer is a wrong code's; a failure counts for both.
    pub(super) async fn guarded(
        &self,
        actor: &Actor<'_>,
        attempt: impl AsyncFnOnce() -> anyhow::Result<Option<SecondFactor>>,
    ) -> Result<SecondFactor, CheckError> {
        if let Some(retry_after_secs) = self.ip_locked(actor.ip).await? {
            return Err(CheckError::Throttled { retry_after_secs });
        }
        let account = Key::SecondFactor(actor.user_id);
        let [state] = self.throttle.states([account]).await?;
        let passed = if state.locked_for.is_some() {
            None
        } else {
            attempt().await?
        };
        let Some(factor) = passed else {
            self.record_failure(actor, account, state.locked_for.is_some())
                .await?;
            return Err(CheckError::WrongCode);
        };
        if state.recorded {
            self.throttle.reset(account).await?;
        }
        self.refuse_if_disabled(actor).await?;
        let detail = match factor {
            SecondFactor::Totp => "totp",
            SecondFactor::RecoveryCode => "recovery_code",
            SecondFactor::Passkey => "passkey",
        };
        self.record(events::SECOND_FACTOR, actor, detail).await;
        Ok(factor)
    }

    /// A right second step (or passkey) still signs nobody in to an account an operator
    /// disabled meanwhile; the refusal is audited.
    pub(super) async fn refuse_if_disabled(&self, actor: &Actor<'_>) -> Result<(), CheckError> {
        let disabled = users::find_by_id(&self.pool, actor.user_id)
            .await?
            .is_none_or(|user| user.disabled);
        if !disabled {
            return Ok(());
        }
        let refusal = Event::new(events::SIGN_IN, Outcome::Failure)
            .user(Some(actor.user_id))
            .ip(actor.ip)
            .device(
                &actor.device.description,
                actor.device.user_agent.as_deref(),
            )
            .detail("account_disabled");
        self.audit.record(refusal).await;
        Err(CheckError::AccountDisabled)
    }

    /// Retry-after seconds if `ip` has too many failures.
    pub(super) async fn ip_locked(&self, ip: ClientIp) -> anyhow::Result<Option<u64>> {
        match ip {
            Some(ip) => self.throttle.locked(Key::Ip(ip)).await,
            None => Ok(None),
        }
    }

    pub(super) async fn count_ip_failure(&self, ip: ClientIp) -> anyhow::Result<()> {
        if let Some(ip) = ip {
            let policy = &self.throttle.policies().ip;
            self.throttle.fail(Key::Ip(ip), policy).await?;
        }
        Ok(())
    }

    /// Which factor `code` passes, spending it.
    async fn passes(&self, user_id: &str, code: &str) -> anyhow::Result<Option<SecondFactor>> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let now = self.clock.now().timestamp();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            for sealed in store::confirmed_secrets(&self.pool, user_id).await? {
                let secret = self.kek.open(&aad(&sealed.id), &sealed.secret)?;
                if let Some(step) = totp::matching_step(&secret, &code, now) {
                    // Right, but accepted once already (a replay, or a rival request
                    // that won the race) is wrong.
                    let fresh = step > sealed.last_step
                        && store::accept_step(&self.pool, &sealed.id, step).await?;
                    return Ok(fresh.then_some(SecondFactor::Totp));
                }
            }
            return Ok(None);
        }
        let Some(code) = recovery_codes::normalise(&code) else {
            return Ok(None);
        };
        let hash = recovery_codes::hash(user_id, &code);
        let spent = store::spend_recovery_code(&self.pool, user_id, &hash, now).await?;
        Ok(spent.then_some(SecondFactor::RecoveryCode))
    }

    async fn record_failure(
        &self,
        actor: &Actor<'_>,
        account: Key<'_>,
        locked: bool,
    ) -> anyhow::Result<()> {
        let outcome = if locked {
            Outcome::Locked
        } else {
            Outcome::Failure
        };
        self.audit
            .record(
                Event::new(events::SECOND_FACTOR, outcome)
                    .user(Some(actor.user_id))
                    .ip(actor.ip)
                    .device(
                        &actor.device.description,
                        actor.device.user_agent.as_deref(),
                    ),
            )
            .await;
        if !locked {
            let policy = &self.throttle.policies().account;
            self.throttle.fail(account, policy).await?;
        }
        self.count_ip_failure(actor.ip).await
    }

    async fn tell_recovery_code_used(&self, actor: &Actor<'_>, email: &str) -> anyhow::Result<()> {
        let left = store::recovery_codes_left(&self.pool, actor.user_id).await?;
        let what = format!(
            "A recovery code was used to sign in to your account instead of your \
             authenticator app. {left} of your recovery codes are left; your account page \
             makes a new set."
        );
        let subject = "A recovery code was used to sign in to your account";
        let notice = self.notice(actor, subject, &what, email)?;
        self.outbox.enqueue(&self.pool, &notice).await?;
        self.outbox.wake();
        Ok(())
    }
}
