//! Passkeys (WebAuthn Level 2 through `webauthn-rs`'s passkey API): registered on the
//! two-step page with the current password, used as the second step after a password,
//! and to sign in without one (a discoverable credential found by the browser).
//!
//! - The relying party id is the issuer's host and the only accepted origin the issuer
//!   itself; `webauthn-rs` checks both at start-up and on every ceremony.
//! - Ceremony state (the challenge) stays on the server, in the caller's browser
//!   session; the browser only ever sees the options and sends back the response.
//! - Passkeys must verify the user (a PIN or biometric on the device), so a passkey
//!   alone is two factors: `amr` `hwk mfa`, after a password `pwd hwk mfa`.
//! - The credential's public key and signature counter are stored (JSON); a counter
//!   that goes backwards is refused by `webauthn-rs` as a cloned authenticator.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid,
};

use crate::accounts::ClientIp;
use crate::events::{Change, Credential};
use crate::factors::store::{self, NewPasskey};
use crate::factors::{
    Actor, ChangeError, CheckError, Factors, SecondFactor, codes_for_first, factor_name,
};
use crate::guards::audit::events;
use crate::sessions::device::Device;

/// What a passkey is called when the person gives no name.
const PASSKEY_NAME: &str = "Passkey";

impl Factors {
    /// Whether this idp can have passkeys (its issuer is on a domain).
    pub fn passkeys_available(&self) -> bool {
        self.policy.webauthn.is_some()
    }

    fn webauthn(&self) -> anyhow::Result<&Webauthn> {
        self.policy
            .webauthn
            .as_deref()
            .context("Passkeys are off: the issuer is not on a domain")
    }

    /// The options for `navigator.credentials.create` (as `PublicKeyCredential.
    /// parseCreationOptionsFromJSON` reads them) and the state to keep until the answer.
    /// A discoverable credential is asked for, so it can sign in without a password;
    /// the user's existing passkeys are excluded.
    pub async fn begin_passkey(
        &self,
        user_id: &str,
        email: &str,
    ) -> anyhow::Result<(Value, PasskeyRegistration)> {
        let handle = Uuid::parse_str(user_id).context("A user id is not a UUID")?;
        let existing = self.passkeys_of(user_id).await?;
        let exclude = existing.iter().map(|p| p.cred_id().clone()).collect();
        let (challenge, state) = self
            .webauthn()?
            .start_passkey_registration(handle, email, email, Some(exclude))
            .context("Failed to start a passkey registration")?;
        let mut options = serde_json::to_value(&challenge)?["publicKey"].take();
        let selection = &mut options["authenticatorSelection"];
        selection["residentKey"] = Value::from("required");
        selection["requireResidentKey"] = Value::from(true);
        Ok((options, state))
    }

    /// Registers the passkey the browser created; the recovery codes to show when it is
    /// the account's first second factor.
    pub async fn finish_passkey(
        &self,
        actor: &Actor<'_>,
        state: &PasskeyRegistration,
        credential: &RegisterPublicKeyCredential,
        name: &str,
        current_password: String,
    ) -> Result<Option<Vec<String>>, ChangeError> {
        let user = self
            .reauthenticate(actor, current_password, events::SECOND_FACTOR_ADDED)
            .await?;
        let name = factor_name(name, PASSKEY_NAME)?;
        let passkey = self
            .webauthn()?
            .finish_passkey_registration(credential, state)
            .map_err(|e| {
                tracing::info!(error = %e, "A passkey registration was refused");
                ChangeError::PasskeyRefused
            })?;
        let now = self.clock.now().timestamp();
        let id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
        let mut tx = self.pool.begin().await.context("Failed to begin")?;
        let new = NewPasskey {
            id: &id,
            user_id: actor.user_id,
            name: &name,
            passkey: &serde_json::to_string(&passkey).context("A passkey did not serialise")?,
            now,
        };
        // The write first (see `store::remove`): then this one counts itself.
        store::insert_passkey(&mut tx, &new).await?;
        let first = store::count(&mut *tx, actor.user_id).await? == 1;
        let codes = codes_for_first(&mut tx, actor.user_id, first, now).await?;
        let what = format!(
            "A passkey named \u{201c}{name}\u{201d} was added to your account. It signs you \
             in without a password, and serves as the second step after one."
        );
        let subject = "A passkey was added to your account";
        let notice = self.notice(actor, subject, &what, &user.email)?;
        let change = (Credential::Passkey, Change::Create, actor.user_id);
        self.commit_with_notice(tx, &notice, Some(change), "Failed to add a passkey")
            .await?;
        self.record(events::SECOND_FACTOR_ADDED, actor, "passkey")
            .await;
        Ok(codes)
    }

    /// The options for `navigator.credentials.get` naming `user_id`'s passkeys, for the
    /// second step; `None` if the user has none.
    pub async fn begin_passkey_check(
        &self,
        user_id: &str,
    ) -> anyhow::Result<Option<(Value, PasskeyAuthentication)>> {
        let passkeys = self.passkeys_of(user_id).await?;
        if passkeys.is_empty() {
            return Ok(None);
        }
        let (challenge, state) = self
            .webauthn()?
            .start_passkey_authentication(&passkeys)
            .context("Failed to start a passkey check")?;
        let options = serde_json::to_value(&challenge)?["publicKey"].take();
        Ok(Some((options, state)))
    }

    /// The second step with a passkey: throttled and answered like a code.
    pub async fn finish_passkey_check(
        &self,
        actor: &Actor<'_>,
        state: &PasskeyAuthentication,
        credential: &PublicKeyCredential,
    ) -> Result<(), CheckError> {
        self.guarded(actor, async || {
            match self
                .webauthn()?
                .finish_passkey_authentication(credential, state)
            {
                Ok(result) => Ok(self
                    .used(actor.user_id, &result)
                    .await?
                    .then_some(SecondFactor::Passkey)),
                Err(e) => {
                    tracing::info!(error = %e, "A passkey was refused");
                    Ok(None)
                }
            }
        })
        .await?;
        Ok(())
    }

    /// The options for a sign-in without a password: any passkey of this site the
    /// browser holds.
    pub fn begin_passkey_sign_in(&self) -> anyhow::Result<(Value, DiscoverableAuthentication)> {
        let (challenge, state) = self
            .webauthn()?
            .start_discoverable_authentication()
            .context("Failed to start a passkey sign-in")?;
        Ok((serde_json::to_value(&challenge)?["publicKey"].take(), state))
    }

    /// Whose passkey signed in, if it verifies. Refusals count against the IP address,
    /// as wrong passwords do.
    pub async fn finish_passkey_sign_in(
        &self,
        state: DiscoverableAuthentication,
        credential: &PublicKeyCredential,
        ip: ClientIp,
        device: &Device,
    ) -> Result<String, CheckError> {
        if let Some(retry_after_secs) = self.ip_locked(ip).await? {
            return Err(CheckError::Throttled { retry_after_secs });
        }
        let Some(user_id) = self.verify_discoverable(state, credential).await? else {
            self.count_ip_failure(ip).await?;
            return Err(CheckError::WrongCode);
        };
        let actor = Actor {
            user_id: &user_id,
            ip,
            device,
        };
        self.refuse_if_disabled(&actor).await?;
        self.record(events::SIGN_IN, &actor, "passkey").await;
        Ok(user_id)
    }

    async fn verify_discoverable(
        &self,
        state: DiscoverableAuthentication,
        credential: &PublicKeyCredential,
    ) -> anyhow::Result<Option<String>> {
        let Ok((handle, cred_id)) = self
            .webauthn()?
            .identify_discoverable_authentication(credential)
        else {
            return Ok(None);
        };
        let user_id = handle.to_string();
        let passkeys = self.passkeys_of(&user_id).await?;
        let Some(passkey) = passkeys.iter().find(|p| p.cred_id().as_slice() == cred_id) else {
            return Ok(None);
        };
        match self
            .webauthn()?
            .finish_discoverable_authentication_v2(credential, state, passkey)
        {
            Ok(result) => Ok(self.used(&user_id, &result).await?.then_some(user_id)),
            Err(e) => {
                tracing::info!(error = %e, "A passkey sign-in was refused");
                Ok(None)
            }
        }
    }

    /// Records a passkey's use (its counter); `false` if it is no longer the user's.
    async fn used(
        &self,
        user_id: &str,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> anyhow::Result<bool> {
        let now = self.clock.now().timestamp();
        for stored in store::passkeys(&self.pool, user_id).await? {
            let mut passkey: Passkey = serde_json::from_str(&stored.passkey)?;
            if passkey.update_credential(result).is_some() {
                let json = serde_json::to_string(&passkey)?;
                return store::passkey_used(&self.pool, &stored.id, &json, now).await;
            }
        }
        Ok(false)
    }

    pub(super) async fn passkeys_of(&self, user_id: &str) -> anyhow::Result<Vec<Passkey>> {
        store::passkeys(&self.pool, user_id)
            .await?
            .iter()
            .map(|p| serde_json::from_str(&p.passkey).context("A stored passkey is unreadable"))
            .collect()
    }
}
