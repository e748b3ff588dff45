//! Token revocation (RFC 7009) for authenticated clients. Introspection (RFC 7662),
//! which looks tokens up the same way, is in [`super::introspection`].
//!
//! Our access tokens are JWTs (three dot-separated parts) and our refresh tokens are
//! opaque base64url strings (no dots), so the token's shape says which it is and
//! `token_type_hint` is not needed (RFC 7009 §2.1 lets us ignore it).

use sqlx::AnyPool;

use crate::guards::secrets;
use crate::keys::KeyRing;
use crate::oauth::access::{self, AccessTokenError};
use crate::oauth::clients::Client;
use crate::oauth::store::{access_tokens, grants, refresh_tokens};

/// Where revocation and introspection look things up.
pub struct Context<'a> {
    pub pool: &'a AnyPool,
    pub keys: &'a KeyRing,
    pub issuer: &'a str,
    pub now: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// RFC 7009 §2.1: the token was issued to another client; the request is refused.
    #[error("the token was issued to another client")]
    IssuedToAnotherClient,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// An access token (a JWT, three dot-separated parts) rather than a refresh token.
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// RFC 7009 §2.1-2.2. Revoking a refresh token revokes its grant (every refresh and
/// access token of it); revoking an access token revokes that token alone. Tokens we
/// do not know, expired ones included, are no error (§2.2): there is nothing to do.
pub async fn revoke(
    ctx: &Context<'_>,
    client: &Client,
    token: &str,
) -> Result<(), RevocationError> {
    let client_id = client.id.as_ref();
    if looks_like_jwt(token) {
        return match access::verify(token, ctx.keys, ctx.issuer, ctx.now) {
            Ok(at) if at.client_id != client_id => Err(RevocationError::IssuedToAnotherClient),
            Ok(at) => {
                access_tokens::revoke(ctx.pool, &at.jti, client_id, at.expires_at, ctx.now).await?;
                tracing::info!(client_id, jti = at.jti, "Access token revoked");
                Ok(())
            }
            Err(AccessTokenError::Expired(e)) if e.client_id != client_id => {
                Err(RevocationError::IssuedToAnotherClient)
            }
            Err(_) => Ok(()),
        };
    }
    match refresh_tokens::find(ctx.pool, &secrets::hash(token)).await? {
        None => Ok(()),
        Some(t) if t.client_id != client_id => Err(RevocationError::IssuedToAnotherClient),
        Some(t) => {
            grants::revoke(ctx.pool, &t.grant_id, ctx.now).await?;
            tracing::info!(
                client_id,
                grant_id = t.grant_id,
                "Grant revoked with its refresh token"
            );
            Ok(())
        }
    }
}
