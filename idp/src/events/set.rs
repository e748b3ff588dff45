//! The claims of the tokens the outbox delivers: Security Event Tokens (RFC 8417, as
//! SSF 1.0 §4 profiles them) and back-channel logout tokens (OIDC Back-Channel Logout
//! 1.0 §2.4). What is known when the event happens is stored; `aud`, `iat` and `exp`
//! are added when the token is signed, at each delivery attempt ([`complete`]).

use serde_json::{Map, Value, json};

use crate::events::SecurityEvent;

/// RFC 8417 §2.3 via SSF 1.0 §4.1.1.
pub const SET_TYPE: &str = "secevent+jwt";
/// OIDC Back-Channel Logout 1.0 §2.4.
pub const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";
/// The `events` member of a logout token (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is good for after it is signed: long enough for clock skew,
/// short enough that a captured one soon means nothing (§2.4 recommends two minutes).
const LOGOUT_TOKEN_LIFETIME_SECS: i64 = 120;

/// A user, as RFC 9493 §3.2.5 `iss_sub` names one.
fn user(issuer: &str, user_id: &str) -> Value {
    json!({ "format": "iss_sub", "iss": issuer, "sub": user_id })
}

/// A SET's claims but `aud` and `iat`: one event (SSF 1.0 §4.1.3), the subject in
/// `sub_id` (no `sub`, no `exp`), `txn` shared by the SETs of one cause.
pub fn security_event(
    issuer: &str,
    jti: &str,
    txn: &str,
    event: &SecurityEvent<'_>,
    now: i64,
) -> Map<String, Value> {
    let (sub_id, payload) = match *event {
        SecurityEvent::SessionRevoked {
            user_id,
            session_id,
            initiator,
            reason,
        } => (
            json!({
                "format": "complex",
                "user": user(issuer, user_id),
                "session": { "format": "opaque", "id": session_id },
            }),
            json!({
                "event_timestamp": now,
                "initiating_entity": initiator.as_str(),
                "reason_admin": { "en": reason },
            }),
        ),
        SecurityEvent::CredentialChange {
            user_id,
            credential,
            change,
            initiator,
        } => (
            user(issuer, user_id),
            json!({
                "event_timestamp": now,
                "initiating_entity": initiator.as_str(),
                "credential_type": credential.as_str(),
                "change_type": change.as_str(),
            }),
        ),
        SecurityEvent::AccountDisabled { user_id } | SecurityEvent::AccountEnabled { user_id } => {
            (user(issuer, user_id), json!({}))
        }
    };
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.into());
    claims.insert("jti".into(), jti.into());
    claims.insert("txn".into(), txn.into());
    claims.insert("sub_id".into(), sub_id);
    claims.insert(
        "events".into(),
        json!({ event.event_type().to_owned(): payload }),
    );
    claims
}

/// A logout token's claims but `iat` and `exp`: `sub` and `sid` both, the logout
/// event, and never a `nonce` (§2.4).
pub fn logout_token(
    issuer: &str,
    jti: &str,
    client_id: &str,
    user_id: &str,
    session_id: &str,
) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.into());
    claims.insert("aud".into(), client_id.into());
    claims.insert("jti".into(), jti.into());
    claims.insert("sub".into(), user_id.into());
    claims.insert("sid".into(), session_id.into());
    claims.insert("events".into(), json!({ BACKCHANNEL_LOGOUT: {} }));
    claims
}

/// Which kind of token a stored row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    SecurityEvent,
    Logout,
}

impl TokenKind {
    pub fn typ(self) -> &'static str {
        match self {
            Self::SecurityEvent => SET_TYPE,
            Self::Logout => LOGOUT_TOKEN_TYPE,
        }
    }
}

/// Adds what is set at signing: `iat`, and `aud` (a SET's receiver) or `exp` (a logout
/// token, whose `aud` is its client's id from the start).
pub fn complete(claims: &mut Map<String, Value>, kind: TokenKind, audience: &str, now: i64) {
    claims.insert("iat".into(), now.into());
    match kind {
        TokenKind::SecurityEvent => {
            claims.insert("aud".into(), audience.into());
        }
        TokenKind::Logout => {
            claims.insert("exp".into(), (now + LOGOUT_TOKEN_LIFETIME_SECS).into());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::events::{Initiator, SESSION_REVOKED};

    #[test]
    fn a_session_event_names_user_and_session_and_has_no_sub_or_exp() {
        let event = SecurityEvent::SessionRevoked {
            user_id: "u1",
            session_id: "s1",
            initiator: Initiator::User,
            reason: "Signed out",
        };
        let mut claims = security_event("https://idp", "j1", "t1", &event, 100);
        complete(&mut claims, TokenKind::SecurityEvent, "https://rs", 105);
        let claims = Value::Object(claims);
        assert_eq!(claims["sub_id"]["format"], "complex");
        assert_eq!(claims["sub_id"]["user"]["sub"], "u1");
        assert_eq!(claims["sub_id"]["session"]["id"], "s1");
        assert_eq!(claims["events"][SESSION_REVOKED]["event_timestamp"], 100);
        assert_eq!(
            claims["events"][SESSION_REVOKED]["initiating_entity"],
            "user"
        );
        assert_eq!(claims["aud"], "https://rs");
        assert_eq!(claims["iat"], 105);
        assert!(claims.get("sub").is_none() && claims.get("exp").is_none());
        assert_eq!(claims["events"].as_object().unwrap().len(), 1);
    }

    #[test]
    fn a_logout_token_expires_soon_and_has_no_nonce() {
        let mut claims = logout_token("https://idp", "j1", "c1", "u1", "s1");
        complete(&mut claims, TokenKind::Logout, "ignored", 100);
        let claims = Value::Object(claims);
        assert_eq!(claims["aud"], "c1");
        assert_eq!(claims["exp"], 220);
        assert_eq!(claims["events"][BACKCHANNEL_LOGOUT], json!({}));
        assert!(claims.get("nonce").is_none());
    }
}
