//! The refresh token grant (RFC 6749 §6, OIDC Core §12, RFC 9700 §4.14.2): the token
//! must be the client's own, unexpired and its grant live. It is rotated on every use:
//! marking the old one used and storing the new one happen in one transaction, and a
//! used token presented again revokes the whole grant (the family).

use anyhow::{Context, anyhow};

use super::{TokenError, TokenResponse, TokenService};
use crate::guards::secrets::Secret;
use crate::oauth::Scope;
use crate::oauth::clients::Client;
use crate::oauth::store::grants;
use crate::oauth::store::refresh_tokens::{self, RefreshTokenRecord};

#[derive(Debug)]
pub struct Request {
    pub refresh_token: Secret,
    /// A narrower scope for the new access token; `None` keeps the grant's.
    pub scope: Option<Scope>,
}

pub(super) async fn exchange(
    service: &TokenService,
    client: &Client,
    request: Request,
) -> Result<TokenResponse, TokenError> {
    let now = service.now();
    let token_hash = request.refresh_token.hash();
    let mut tx = service
        .pool
        .begin()
        .await
        .context("Failed to begin a transaction")?;
    let Some(presented) =
        refresh_tokens::mark_used(&mut *tx, &token_hash, client.id.as_ref(), now).await?
    else {
        // Unknown, another client's, or already rotated.
        let reused = refresh_tokens::find(&mut *tx, &token_hash)
            .await?
            .filter(|t| t.client_id == client.id.as_ref() && t.used_at.is_some());
        if let Some(previous) = reused {
            grants::revoke(&mut *tx, &previous.grant_id, now).await?;
            tx.commit().await.context("Failed to revoke a grant")?;
            tracing::warn!(
                grant_id = previous.grant_id,
                "A rotated refresh token was presented again; its grant is revoked"
            );
        }
        return Err(TokenError::invalid_grant(
            "The refresh token is invalid, expired or revoked",
        ));
    };
    // Any refusal from here drops `tx`, which rolls the rotation back.
    if now >= presented.expiry() {
        return Err(TokenError::invalid_grant(
            "The refresh token is invalid, expired or revoked",
        ));
    }
    let grant = grants::find(&mut *tx, &presented.grant_id)
        .await?
        .filter(|g| !g.is_revoked())
        .ok_or(TokenError::invalid_grant(
            "The refresh token is invalid, expired or revoked",
        ))?;
    let granted = Scope::parse(&presented.scope)
        .map_err(|_| anyhow!("A stored refresh token has a bad scope"))?;
    // §6: the scope may shrink for this access token, never grow. The family keeps the
    // grant's scope, so a later refresh can ask for the rest again.
    let scope = match request.scope {
        Some(asked) if !asked.is_empty() => {
            if !asked.is_subset_of(&granted) {
                return Err(TokenError::invalid_scope(
                    "The requested scope exceeds the scope originally granted",
                ));
            }
            asked
        }
        _ => granted,
    };
    let next = Secret::generate();
    refresh_tokens::insert(
        &mut *tx,
        &RefreshTokenRecord {
            token_hash: next.hash(),
            grant_id: presented.grant_id.clone(),
            client_id: presented.client_id.clone(),
            scope: presented.scope.clone(),
            created_at: now,
            expires_at: service.refresh_expiry(now, presented.absolute_expires_at)?,
            absolute_expires_at: presented.absolute_expires_at,
            used_at: None,
        },
    )
    .await?;
    tx.commit()
        .await
        .context("Failed to commit a refresh token rotation")?;
    // OIDC Core §12.2: same iss, sub, aud and auth_time, a new iat, and no nonce (the
    // errata: a refresh is not an authentication request, so there is nothing to echo).
    service
        .issue_for_user(&grant, client, &scope, None, Some(next))
        .await
}
