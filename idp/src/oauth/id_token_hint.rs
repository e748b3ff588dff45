//! `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout 1.0 §2): an ID token we
//! issued, presented back to us as a hint about the user. Our signature (a published
//! key, RS256, its `kid`) and our issuer are required; expiry is not checked, since
//! the spec expects expired tokens here. An access token (`typ: at+jwt`) is not an ID
//! token and is refused.

use josekit::jwt;
use jwt_auth::unique_members::jws_members_are_unique;
use serde_json::Value;

use crate::keys::KeyRing;

/// What a valid hint tells us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdTokenHint {
    pub subject: String,
    /// The clients the token was issued to.
    pub audience: Vec<String>,
    /// The authorized party, when the token names one.
    pub authorized_party: Option<String>,
    /// The OIDC session id, when the token carries one.
    pub sid: Option<String>,
}

impl IdTokenHint {
    /// The client the token was issued to: `azp` if present, else the only audience.
    pub fn client_id(&self) -> Option<&str> {
        match (&self.authorized_party, self.audience.as_slice()) {
            (Some(azp), _) => Some(azp),
            (None, [only]) => Some(only),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the id_token_hint is not a valid ID token from this provider")]
pub struct InvalidHint;

/// Longer than any ID token we sign; a bigger input is refused before any parsing.
const MAX_LEN: usize = 8 * 1024;

pub fn verify(token: &str, keys: &KeyRing, issuer: &str) -> Result<IdTokenHint, InvalidHint> {
    // A member named twice makes the token mean different things to different parsers.
    if token.len() > MAX_LEN || !jws_members_are_unique(token) {
        return Err(InvalidHint);
    }
    let header = jwt::decode_header(token).map_err(|_| InvalidHint)?;
    let kid = match header.claim("kid") {
        Some(Value::String(kid)) => kid.clone(),
        _ => return Err(InvalidHint),
    };
    match header.claim("typ") {
        None => {}
        Some(Value::String(typ)) if typ.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(InvalidHint),
    }
    let verifier = keys.verifier(&kid).ok_or(InvalidHint)?;
    // The verifier fixes the algorithm (RS256) and the kid; the header cannot choose.
    let (payload, _) =
        jwt::decode_with_verifier(token, verifier.as_ref()).map_err(|_| InvalidHint)?;
    if payload.issuer() != Some(issuer) {
        return Err(InvalidHint);
    }
    let subject = payload.subject().ok_or(InvalidHint)?.to_owned();
    let audience: Vec<String> = payload
        .audience()
        .ok_or(InvalidHint)?
        .into_iter()
        .map(str::to_owned)
        .collect();
    if audience.is_empty() {
        return Err(InvalidHint);
    }
    let text = |name: &str| match payload.claim(name) {
        Some(Value::String(v)) => Ok(Some(v.clone())),
        None => Ok(None),
        Some(_) => Err(InvalidHint),
    };
    Ok(IdTokenHint {
        subject,
        audience,
        authorized_party: text("azp")?,
        sid: text("sid")?,
    })
}
