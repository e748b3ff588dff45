//! Token revocation (RFC 7009) and introspection (RFC 7662) for authenticated clients.
//!
//! Our access tokens are JWTs (three dot-separated parts) and our refresh tokens are
//! opaque base64url strings (no dots), so the token's shape says which it is and
//! `token_type_hint` is not needed (RFC 7009 §2.1 lets us ignore it).

use serde::Serialize;
use sqlx::AnyPool;

use crate::clients::Client;
use crate::keys::KeyRing;
use crate::oauth::access::{self, AccessTokenError, Standing};
use crate::secrets;
use crate::storage::{access_tokens, grants, refresh_tokens};

/// Where the endpoints look things up.
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

fn looks_like_jwt(token: &str) -> bool {
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

/// RFC 7662 §2.2. Only `active` is certain; the rest describes an active token.
#[derive(Debug, Serialize, PartialEq)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// A string for one audience, an array for several (RFC 7519 §4.1.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl Introspection {
    /// §2.2: anything unknown, expired, revoked or not for this client says only this.
    pub fn inactive() -> Self {
        Self {
            active: false,
            scope: None,
            client_id: None,
            token_type: None,
            exp: None,
            iat: None,
            sub: None,
            aud: None,
            iss: None,
            jti: None,
        }
    }
}

/// Access tokens are answered for any confidential client (a resource server
/// introspects tokens issued to others); refresh tokens only for their own client.
pub async fn introspect(
    ctx: &Context<'_>,
    client: &Client,
    token: &str,
) -> anyhow::Result<Introspection> {
    if looks_like_jwt(token) {
        let Ok(at) = access::verify(token, ctx.keys, ctx.issuer, ctx.now) else {
            return Ok(Introspection::inactive());
        };
        if access::standing(ctx.pool, &at).await? == Standing::Revoked {
            return Ok(Introspection::inactive());
        }
        return Ok(Introspection {
            active: true,
            scope: Some(at.scope.to_string()),
            client_id: Some(at.client_id),
            token_type: Some("Bearer"),
            exp: Some(at.expires_at),
            iat: Some(at.issued_at),
            sub: Some(at.subject),
            aud: Some(match at.audience.as_slice() {
                [one] => serde_json::Value::from(one.as_str()),
                many => serde_json::Value::from(many.to_vec()),
            }),
            iss: Some(ctx.issuer.to_owned()),
            jti: Some(at.jti),
        });
    }
    let Some(refresh) = refresh_tokens::find(ctx.pool, &secrets::hash(token)).await? else {
        return Ok(Introspection::inactive());
    };
    if refresh.client_id != client.id.as_ref()
        || refresh.used_at.is_some()
        || ctx.now >= refresh.expiry()
    {
        return Ok(Introspection::inactive());
    }
    let Some(grant) = grants::find(ctx.pool, &refresh.grant_id)
        .await?
        .filter(|g| !g.is_revoked())
    else {
        return Ok(Introspection::inactive());
    };
    Ok(Introspection {
        active: true,
        scope: Some(refresh.scope.clone()),
        client_id: Some(refresh.client_id.clone()),
        token_type: Some("refresh_token"),
        exp: Some(refresh.expiry()),
        iat: Some(refresh.created_at),
        sub: Some(grant.user_id),
        aud: None,
        iss: Some(ctx.issuer.to_owned()),
        jti: None,
    })
}
