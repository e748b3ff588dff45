//! The authorization code grant (RFC 6749 §4.1.3, OIDC Core §3.1.3.2, RFC 7636 §4.6):
//! the code is consumed once, checked against the client, the redirect URI and the PKCE
//! verifier, and turned into a grant, all in one transaction. A failed check rolls
//! back, so the code stays usable by its rightful client; a second redemption revokes
//! what the first one produced (RFC 6749 §4.1.2, RFC 9700 §4.2.4).

use anyhow::{Context, anyhow};

use super::{TokenError, TokenResponse, TokenService};
use crate::guards::secrets::Secret;
use crate::oauth::Scope;
use crate::oauth::clients::{Client, GrantType};
use crate::oauth::pkce::{CodeChallenge, CodeVerifier};
use crate::oauth::store::codes::{self, CodeRecord, Consumed};
use crate::oauth::store::grants::{self, GrantRecord};
use crate::oauth::store::refresh_tokens::{self, RefreshTokenRecord};

#[derive(Debug)]
pub struct Request {
    pub code: Secret,
    pub redirect_uri: String,
    /// As sent: parsed here, since a malformed verifier is `invalid_grant`.
    pub code_verifier: Option<String>,
}

pub(super) async fn exchange(
    service: &TokenService,
    client: &Client,
    request: Request,
) -> Result<TokenResponse, TokenError> {
    let now = service.now();
    let code_hash = request.code.hash();
    let mut tx = service
        .pool
        .begin()
        .await
        .context("Failed to begin a transaction")?;
    let code = match codes::consume(&mut tx, &code_hash, now).await? {
        Consumed::Fresh(code) => code,
        Consumed::Replayed { grant_id } => {
            if let Some(grant_id) = grant_id {
                grants::revoke(&mut *tx, &grant_id, now).await?;
                tx.commit().await.context("Failed to revoke a grant")?;
                tracing::warn!(
                    grant_id,
                    "An authorization code was presented again; its grant is revoked"
                );
            }
            return Err(TokenError::invalid_grant(
                "The authorization code was already used",
            ));
        }
        Consumed::Unknown => {
            return Err(TokenError::invalid_grant(
                "The authorization code is invalid or has expired",
            ));
        }
    };
    // Any refusal from here drops `tx`, which rolls the consumption back.
    check(&code, client, &request, now)?;
    let scope = Scope::parse(&code.scope).map_err(|_| anyhow!("A stored code has a bad scope"))?;
    let grant = GrantRecord {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client.id.to_string(),
        user_id: code.user_id.clone(),
        scope: code.scope.clone(),
        auth_time: code.auth_time,
        amr: code.amr.clone(),
        session_id: Some(code.session_id.clone()),
        created_at: now,
        revoked_at: None,
    };
    grants::insert(&mut *tx, &grant).await?;
    codes::set_grant(&mut *tx, &code_hash, &grant.id).await?;
    let refresh_token = if client.allows_grant(GrantType::RefreshToken) {
        let secret = Secret::generate();
        let absolute_expires_at = now
            + i64::try_from(service.policy.refresh_token_absolute_ttl_secs)
                .context("Refresh token lifetime overflows")?;
        refresh_tokens::insert(
            &mut *tx,
            &RefreshTokenRecord {
                token_hash: secret.hash(),
                grant_id: grant.id.clone(),
                client_id: client.id.to_string(),
                scope: code.scope.clone(),
                created_at: now,
                expires_at: service.refresh_expiry(now, absolute_expires_at)?,
                absolute_expires_at,
                used_at: None,
            },
        )
        .await?;
        Some(secret)
    } else {
        None
    };
    tx.commit()
        .await
        .context("Failed to commit an authorization code redemption")?;
    // Signed after the commit, so no lock is held while RSA runs. A replay arriving now
    // finds the grant and revokes it, and the tokens below are refused with it.
    service
        .issue_for_user(&grant, client, &scope, code.nonce.as_deref(), refresh_token)
        .await
}

/// The checks of RFC 6749 §4.1.3 and RFC 7636 §4.6, in order.
fn check(
    code: &CodeRecord,
    client: &Client,
    request: &Request,
    now: i64,
) -> Result<(), TokenError> {
    if now >= code.expires_at {
        return Err(TokenError::invalid_grant(
            "The authorization code is invalid or has expired",
        ));
    }
    if code.client_id != client.id.as_ref() {
        return Err(TokenError::invalid_grant(
            "The authorization code was issued to another client",
        ));
    }
    // Exact string comparison, as registered and as sent to /authorize.
    if code.redirect_uri != request.redirect_uri {
        return Err(TokenError::invalid_grant(
            "The redirect_uri does not match the authorization request",
        ));
    }
    check_pkce(
        code.code_challenge.as_deref(),
        request.code_verifier.as_deref(),
        client.requires_pkce(),
    )
}

fn check_pkce(
    challenge: Option<&str>,
    verifier: Option<&str>,
    client_requires_pkce: bool,
) -> Result<(), TokenError> {
    match (challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            let challenge = CodeChallenge::parse(challenge)
                .ok_or_else(|| anyhow!("A stored code challenge is malformed"))?;
            let verifier = CodeVerifier::parse(verifier)
                .ok_or(TokenError::invalid_grant("The code_verifier is malformed"))?;
            if challenge.is_satisfied_by(&verifier) {
                Ok(())
            } else {
                Err(TokenError::invalid_grant(
                    "The code_verifier does not match the code_challenge",
                ))
            }
        }
        (Some(_), None) => Err(TokenError::invalid_grant("The code_verifier is missing")),
        // Downgrade protection (RFC 9700 §2.1.1): a verifier for a code issued without a
        // challenge means the challenge was stripped from the authorization request.
        (None, Some(_)) => Err(TokenError::invalid_grant(
            "A code_verifier was sent for a code issued without code_challenge",
        )),
        // /authorize enforces the client's policy; this catches a policy tightened since.
        (None, None) if client_requires_pkce => Err(TokenError::invalid_grant(
            "The authorization code was issued without PKCE, which this client requires",
        )),
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;

    fn code_of(result: Result<(), TokenError>) -> Option<ErrorCode> {
        match result {
            Ok(()) => None,
            Err(TokenError::Rejected(e)) => Some(e.code),
            Err(TokenError::Unexpected(e)) => panic!("{e:#}"),
        }
    }

    #[test]
    fn pkce_follows_rfc_7636_and_refuses_downgrades() {
        // RFC 7636 Appendix B.
        let challenge = Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(code_of(check_pkce(challenge, Some(verifier), true)), None);
        let wrong = "a".repeat(43);
        let grant = Some(ErrorCode::InvalidGrant);
        assert_eq!(code_of(check_pkce(challenge, Some(&wrong), true)), grant);
        assert_eq!(code_of(check_pkce(challenge, Some("short"), true)), grant);
        assert_eq!(code_of(check_pkce(challenge, None, true)), grant);
        assert_eq!(code_of(check_pkce(None, Some(verifier), false)), grant);
        assert_eq!(code_of(check_pkce(None, None, true)), grant);
        assert_eq!(code_of(check_pkce(None, None, false)), None);
    }
}
