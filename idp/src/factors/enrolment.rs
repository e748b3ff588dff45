//! Adding and removing second factors: an authenticator app in two steps (a secret
//! shown as a QR code, then its first code), removing one, and a new set of recovery
//! codes. Each takes the current password and is mailed and audited.

use anyhow::Context;

use crate::events::{Change, Credential};
use crate::factors::store::{self, NewCredential, Removed};
use crate::factors::{
    APP_NAME, Actor, ChangeError, ENROLMENT_TTL_SECS, Enrolment, Factors, aad, codes_for_first,
    factor_name, hashed, recovery_codes, totp,
};
use crate::guards::audit::events;
use crate::guards::secrets;

impl Factors {
    /// A new secret for `user_id` (whose address labels it in the app), replacing an
    /// unfinished enrolment.
    pub async fn begin_totp(&self, user_id: &str, email: &str) -> anyhow::Result<Enrolment> {
        let id = secrets::random_token(16);
        let secret = totp::new_secret();
        let sealed = self.kek.seal(&aad(&id), &secret)?;
        let new = NewCredential {
            id: &id,
            user_id,
            sealed_secret: &sealed,
            now: self.clock.now().timestamp(),
        };
        store::begin(&self.pool, &new).await?;
        let provisioning = totp::provisioning(&secret, email, &self.policy.issuer_label)?;
        Ok(Enrolment { id, provisioning })
    }

    /// The unfinished enrolment of `user_id`, if it is recent.
    pub async fn enrolment(&self, user_id: &str, email: &str) -> anyhow::Result<Option<Enrolment>> {
        let since = self.clock.now().timestamp() - ENROLMENT_TTL_SECS;
        let Some(sealed) = store::unconfirmed(&self.pool, user_id, since).await? else {
            return Ok(None);
        };
        let secret = self.kek.open(&aad(&sealed.id), &sealed.secret)?;
        let provisioning = totp::provisioning(&secret, email, &self.policy.issuer_label)?;
        Ok(Some(Enrolment {
            id: sealed.id,
            provisioning,
        }))
    }

    /// Activates enrolment `id` with its first code; the recovery codes to show when it
    /// is the account's first second factor.
    pub async fn confirm_totp(
        &self,
        actor: &Actor<'_>,
        id: &str,
        name: &str,
        code: &str,
        current_password: String,
    ) -> Result<Option<Vec<String>>, ChangeError> {
        let user = self
            .reauthenticate(actor, current_password, events::SECOND_FACTOR_ADDED)
            .await?;
        let name = factor_name(name, APP_NAME)?;
        let now = self.clock.now().timestamp();
        let sealed = store::unconfirmed(&self.pool, actor.user_id, now - ENROLMENT_TTL_SECS)
            .await?
            .filter(|s| s.id == id)
            .ok_or(ChangeError::NotFound)?;
        let secret = self.kek.open(&aad(id), &sealed.secret)?;
        let step = totp::matching_step(&secret, code.trim(), now).ok_or(ChangeError::WrongCode)?;
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        // The write first (see `store::remove`): then this one counts itself.
        if !store::confirm(&mut tx, actor.user_id, id, &name, step, now).await? {
            return Err(ChangeError::NotFound);
        }
        let first = store::count(&mut *tx, actor.user_id).await? == 1;
        let codes = codes_for_first(&mut tx, actor.user_id, first, now).await?;
        let what = format!(
            "An authenticator app named \u{201c}{name}\u{201d} was added to your account. \
             Signing in now takes a code from it after your password."
        );
        let notice = self.notice(
            actor,
            "An authenticator app was added to your account",
            &what,
            &user.email,
        )?;
        let change = (Credential::App, Change::Create, actor.user_id);
        self.commit_with_notice(tx, &notice, Some(change), "Failed to add an authenticator")
            .await?;
        self.record(events::SECOND_FACTOR_ADDED, actor, "totp")
            .await;
        Ok(codes)
    }

    /// Removes authenticator `id`; the last one takes the recovery codes with it.
    pub async fn remove_factor(
        &self,
        actor: &Actor<'_>,
        id: &str,
        current_password: String,
    ) -> Result<(), ChangeError> {
        let user = self
            .reauthenticate(actor, current_password, events::SECOND_FACTOR_REMOVED)
            .await?;
        let now = self.clock.now().timestamp();
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        let removed = store::remove(&mut tx, actor.user_id, id)
            .await?
            .ok_or(ChangeError::NotFound)?;
        let (what_it_was, name, subject, detail) = match &removed {
            Removed::App(name) => (
                "authenticator app",
                name,
                "An authenticator app was removed from your account",
                "totp",
            ),
            Removed::Passkey(name) => (
                "passkey",
                name,
                "A passkey was removed from your account",
                "passkey",
            ),
        };
        let last = store::count(&mut *tx, actor.user_id).await? == 0;
        if last {
            store::replace_recovery_codes(&mut tx, actor.user_id, &[], now).await?;
        }
        let what = if last {
            format!(
                "The {what_it_was} named \u{201c}{name}\u{201d} was removed from your \
                 account, and with it two-step sign-in: your password alone signs in now, \
                 and your recovery codes no longer work."
            )
        } else {
            format!(
                "The {what_it_was} named \u{201c}{name}\u{201d} was removed from your \
                 account. Your other second factors still work."
            )
        };
        let notice = self.notice(actor, subject, &what, &user.email)?;
        let credential = match &removed {
            Removed::App(_) => Credential::App,
            Removed::Passkey(_) => Credential::Passkey,
        };
        let change = (credential, Change::Delete, actor.user_id);
        self.commit_with_notice(
            tx,
            &notice,
            Some(change),
            "Failed to remove a second factor",
        )
        .await?;
        self.record(events::SECOND_FACTOR_REMOVED, actor, detail)
            .await;
        Ok(())
    }

    /// A new set of recovery codes, the old set spent.
    pub async fn regenerate_recovery_codes(
        &self,
        actor: &Actor<'_>,
        current_password: String,
    ) -> Result<Vec<String>, ChangeError> {
        let user = self
            .reauthenticate(actor, current_password, events::RECOVERY_CODES_REGENERATED)
            .await?;
        let now = self.clock.now().timestamp();
        let codes = recovery_codes::generate();
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        // The write first (see `store::remove`); without a second factor the
        // transaction is dropped, and with it the new codes.
        let hashes = hashed(actor.user_id, &codes);
        store::replace_recovery_codes(&mut tx, actor.user_id, &hashes, now).await?;
        if store::count(&mut *tx, actor.user_id).await? == 0 {
            return Err(ChangeError::NoSecondFactor);
        }
        let notice = self.notice(
            actor,
            "New recovery codes were made for your account",
            "A new set of recovery codes was made for your account. The codes of the \
             earlier set no longer work.",
            &user.email,
        )?;
        // Recovery codes are no credential CAEP names; the notice tells the person.
        self.commit_with_notice(tx, &notice, None, "Failed to replace recovery codes")
            .await?;
        self.record(events::RECOVERY_CODES_REGENERATED, actor, "")
            .await;
        Ok(codes)
    }
}
