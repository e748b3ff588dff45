//! Token introspection (RFC 7662) for authenticated confidential clients: is this token
//! active, and what does it say. Tokens are told apart by their shape, as for
//! revocation ([`super::revocation`]).

use serde::Serialize;

use crate::guards::secrets;
use crate::oauth::access::{self, Standing};
use crate::oauth::clients::Client;
use crate::oauth::revocation::{Context, looks_like_jwt};
use crate::oauth::store::{grants, refresh_tokens};

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
