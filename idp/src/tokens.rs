//! Access tokens: RS256 JWTs per RFC 9068 (header `typ: at+jwt` and `kid`; claims
//! `iss sub aud exp iat jti client_id scope`, plus `email` for first-party login).
//! Signing runs on the blocking pool.

use std::sync::Arc;

use anyhow::Context;
use josekit::jws::JwsHeader;
use josekit::jwt::{self, JwtPayload};
use serde::Serialize;
use service_kit::clock::Clock;
use tracing::Instrument;

use crate::keys::KeyRing;

/// RFC 9068 §2.1.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// What an access token says, before the idp adds `iss`, `iat`, `exp` and `jti`.
pub struct AccessGrant {
    pub subject: String,
    pub audience: String,
    pub client_id: String,
    pub scope: String,
    pub email: Option<String>,
    pub lifetime_secs: u64,
}

#[derive(Serialize)]
struct AccessTokenClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    jti: String,
    client_id: String,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

/// A signed access token and its lifetime in seconds.
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
}

#[derive(Clone)]
pub struct TokenIssuer {
    issuer: Arc<str>,
    keys: KeyRing,
    clock: Clock,
}

impl TokenIssuer {
    pub fn new(issuer: &str, keys: KeyRing, clock: Clock) -> Self {
        Self {
            issuer: Arc::from(issuer),
            keys,
            clock,
        }
    }

    pub async fn access_token(&self, grant: AccessGrant) -> anyhow::Result<IssuedToken> {
        let now = self.clock.now().timestamp();
        let lifetime = i64::try_from(grant.lifetime_secs).context("Token lifetime overflows")?;
        let claims = AccessTokenClaims {
            iss: self.issuer.to_string(),
            sub: grant.subject,
            aud: grant.audience,
            exp: now + lifetime,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: grant.client_id,
            scope: grant.scope,
            email: grant.email,
        };
        let serde_json::Value::Object(map) = serde_json::to_value(claims)? else {
            anyhow::bail!("Access token claims did not serialise to an object");
        };
        let payload = JwtPayload::from_map(map).context("Invalid access token claims")?;
        let key = self.keys.signing_key();
        let mut header = JwsHeader::new();
        header.set_token_type(ACCESS_TOKEN_TYPE);
        header.set_key_id(key.kid.clone());
        let span = tracing::Span::current();
        let token = tokio::task::spawn_blocking(move || {
            span.in_scope(|| jwt::encode_with_signer(&payload, &header, &key.signer))
        })
        .instrument(tracing::Span::current())
        .await
        .context("Token signing panicked")?
        .context("Failed to sign an access token")?;
        Ok(IssuedToken {
            token,
            expires_in: grant.lifetime_secs,
        })
    }
}
