//! Our own access tokens, presented back to us (userinfo, introspection, revocation):
//! our signature with a published key (RS256, the header's `kid`), `typ: at+jwt` (an ID
//! token is not an access token, RFC 9068 §4), our `iss`, and then what only the
//! database knows: whether it was revoked, alone or with its grant.

use josekit::jwt::{self, JwtPayload};
use jwt_auth::unique_members::jws_members_are_unique;
use serde_json::Value;
use sqlx::AnyPool;

use crate::keys::KeyRing;
use crate::keys::signing::ACCESS_TOKEN_TYPE;
use crate::oauth::Scope;
use crate::oauth::store::access_tokens::{self, TokenState};

/// Longer than any access token we sign; a bigger input is refused before parsing.
const MAX_LEN: usize = 8 * 1024;

/// The claims of a genuine access token of ours.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub jti: String,
    pub subject: String,
    pub client_id: String,
    pub scope: Scope,
    pub audience: Vec<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The first-party session the token was issued in (JSON login and refresh).
    pub session_id: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessTokenError {
    /// Not a JWS, not signed by us, not an access token, or not from our issuer.
    #[error("not an access token from this provider")]
    Invalid,
    /// Ours, but past `exp`.
    #[error("the access token has expired")]
    Expired(Box<ExpiredToken>),
}

/// Who an expired token belonged to (revocation answers differently for another
/// client's token).
#[derive(Debug, PartialEq, Eq)]
pub struct ExpiredToken {
    pub client_id: String,
}

/// Checks signature, type, issuer and expiry; not revocation (see [`standing`]). A token
/// whose header or payload names a member twice is refused, however well signed.
pub fn verify(
    token: &str,
    keys: &KeyRing,
    issuer: &str,
    now: i64,
) -> Result<AccessToken, AccessTokenError> {
    use AccessTokenError::Invalid;
    if token.len() > MAX_LEN || !jws_members_are_unique(token) {
        return Err(Invalid);
    }
    let header = jwt::decode_header(token).map_err(|_| Invalid)?;
    let kid = match header.claim("kid") {
        Some(Value::String(kid)) => kid.clone(),
        _ => return Err(Invalid),
    };
    // RFC 9068 §4: `at+jwt`, or its full media type; compared case-insensitively.
    let typ_ok = match header.claim("typ") {
        Some(Value::String(typ)) => {
            let typ = typ.to_ascii_lowercase();
            typ == ACCESS_TOKEN_TYPE || typ == format!("application/{ACCESS_TOKEN_TYPE}")
        }
        _ => false,
    };
    if !typ_ok {
        return Err(Invalid);
    }
    let verifier = keys.verifier(&kid).ok_or(Invalid)?;
    // The verifier fixes the algorithm (RS256) and the kid; the header cannot choose.
    let (payload, _) = jwt::decode_with_verifier(token, verifier.as_ref()).map_err(|_| Invalid)?;
    if payload.issuer() != Some(issuer) {
        return Err(Invalid);
    }
    let claims = parse_claims(&payload).ok_or(Invalid)?;
    if now >= claims.expires_at {
        return Err(AccessTokenError::Expired(Box::new(ExpiredToken {
            client_id: claims.client_id,
        })));
    }
    Ok(claims)
}

fn parse_claims(payload: &JwtPayload) -> Option<AccessToken> {
    let text = |name: &str| match payload.claim(name) {
        Some(Value::String(v)) => Some(v.clone()),
        _ => None,
    };
    let number = |name: &str| payload.claim(name).and_then(Value::as_i64);
    let audience = match payload.claim("aud") {
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    Some(AccessToken {
        jti: text("jti")?,
        subject: text("sub")?,
        client_id: text("client_id")?,
        scope: Scope::parse(&text("scope")?).ok()?,
        audience,
        issued_at: number("iat")?,
        expires_at: number("exp")?,
        session_id: text("sid"),
    })
}

/// Whether a verified token still stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Issued within a live grant of `user_id`.
    UserGrant {
        user_id: String,
    },
    /// Issued without a grant (client_credentials, first-party login) and not revoked.
    NoGrant,
    Revoked,
}

pub async fn standing(pool: &AnyPool, token: &AccessToken) -> anyhow::Result<Standing> {
    Ok(match access_tokens::state(pool, &token.jti).await? {
        TokenState::Live { user_id, .. } => Standing::UserGrant { user_id },
        TokenState::Unrecorded | TokenState::LiveWithoutGrant => Standing::NoGrant,
        TokenState::Revoked => Standing::Revoked,
    })
}
