//! The second step of a sign-in: a code from an authenticator app (accepted once) or a
//! recovery code (spent), throttled per account and per IP address, a lock answering
//! like a wrong code.

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
        if let Some(ip) = actor.ip
            && let Some(retry_after_secs) = self.throttle.locked(Key::Ip(ip)).await?
        {
            return Err(CheckError::Throttled { retry_after_secs });
        }
        let account = Key::SecondFactor(actor.user_id);
        let [state] = self.throttle.states([account]).await?;
        let passed = if state.locked_for.is_some() {
            None
        } else {
            self.passes(actor.user_id, code).await?
        };
        let Some(factor) = passed else {
            self.record_failure(actor, account, state.locked_for.is_some())
                .await?;
            return Err(CheckError::WrongCode);
        };
        if state.recorded {
            self.throttle.reset(account).await?;
        }
        let detail = match factor {
            SecondFactor::Totp => "totp",
            SecondFactor::RecoveryCode => "recovery_code",
        };
        self.record(events::SECOND_FACTOR, actor, detail).await;
        if factor == SecondFactor::RecoveryCode {
            self.tell_recovery_code_used(actor, email).await?;
        }
        Ok(factor)
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
        let policies = self.throttle.policies();
        if !locked {
            self.throttle.fail(account, &policies.account).await?;
        }
        if let Some(ip) = actor.ip {
            self.throttle.fail(Key::Ip(ip), &policies.ip).await?;
        }
        Ok(())
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
