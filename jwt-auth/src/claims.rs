//! The claims of a JWT access token (RFC 9068 §2.2), parsed into types. A claim of the
//! wrong JSON type makes the whole token invalid; unknown claims are ignored.

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::TokenError;

/// A verified access token's claims. Time checks are done by the validator; this type
/// only guarantees that each claim is present (when required) and well-typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenClaims {
    pub issuer: String,
    pub subject: String,
    pub audience: Vec<String>,
    /// `exp`, unix seconds.
    pub expires_at: i64,
    /// `iat`, unix seconds.
    pub issued_at: i64,
    /// `nbf`, unix seconds, when present.
    pub not_before: Option<i64>,
    pub scopes: Scopes,
    pub client_id: String,
    /// `jti`.
    pub token_id: String,
    /// Present on tokens issued to a user through first-party login.
    pub email: Option<String>,
    /// When the user signed in (RFC 9068 §2.2.1), on tokens issued to a user.
    pub auth_time: Option<i64>,
    /// The authentication context class the sign-in reached (RFC 9068 §2.2.1).
    pub acr: Option<String>,
    /// How the user signed in (RFC 8176 values); empty when the token does not say.
    pub amr: Vec<String>,
    /// `sid`: the issuer's sign-in session the token was issued in, when it says. A
    /// `session-revoked` security event names it ([`crate::revocation`]).
    pub session_id: Option<String>,
}

#[derive(Deserialize)]
struct RawClaims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
    iat: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    scope: Option<String>,
    client_id: String,
    jti: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    auth_time: Option<i64>,
    #[serde(default)]
    acr: Option<String>,
    #[serde(default)]
    amr: Vec<String>,
    #[serde(default)]
    sid: Option<String>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(aud) => vec![aud],
            Self::Many(auds) => auds,
        }
    }
}

impl AccessTokenClaims {
    pub fn parse(claims: Map<String, Value>) -> Result<Self, TokenError> {
        let raw: RawClaims = serde_json::from_value(Value::Object(claims))
            .map_err(|e| TokenError::MalformedClaims(e.to_string()))?;
        let audience = raw.aud.into_vec();
        let scopes = match raw.scope {
            Some(scope) => Scopes::parse(&scope)?,
            None => Scopes::default(),
        };
        Ok(Self {
            issuer: raw.iss,
            subject: raw.sub,
            audience,
            expires_at: raw.exp,
            issued_at: raw.iat,
            not_before: raw.nbf,
            scopes,
            client_id: raw.client_id,
            token_id: raw.jti,
            email: raw.email,
            auth_time: raw.auth_time,
            acr: raw.acr,
            amr: raw.amr,
            session_id: raw.sid,
        })
    }
}

/// The granted scopes: the space-separated `scope` claim (RFC 9068 §2.2.3, RFC 6749 §3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    pub fn parse(scope: &str) -> Result<Self, TokenError> {
        let mut scopes = BTreeSet::new();
        for token in scope.split(' ').filter(|s| !s.is_empty()) {
            // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if !token
                .bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
            {
                return Err(TokenError::MalformedClaims(
                    "scope has a bad character".into(),
                ));
            }
            scopes.insert(token.to_owned());
        }
        Ok(Self(scopes))
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined: Vec<&str> = self.iter().collect();
        f.write_str(&joined.join(" "))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Result<AccessTokenClaims, TokenError> {
        match value {
            Value::Object(map) => AccessTokenClaims::parse(map),
            _ => unreachable!(),
        }
    }

    fn base() -> Value {
        json!({
            "iss": "http://idp", "sub": "u", "aud": "http://rs", "exp": 20, "iat": 10,
            "client_id": "first-party", "jti": "j", "scope": "users:read  users:write"
        })
    }

    #[test]
    fn well_typed_claims_are_parsed() {
        let parsed = claims(base()).unwrap();
        assert_eq!(parsed.audience, vec!["http://rs".to_owned()]);
        assert!(parsed.scopes.contains("users:read") && parsed.scopes.contains("users:write"));
        assert_eq!(parsed.scopes.to_string(), "users:read users:write");
        assert_eq!(parsed.email, None);
        assert_eq!(parsed.session_id, None);
        let mut with_sid = base();
        with_sid["sid"] = json!("s1");
        assert_eq!(claims(with_sid).unwrap().session_id.as_deref(), Some("s1"));
        let mut many = base();
        many["aud"] = json!(["a", "http://rs"]);
        assert_eq!(claims(many).unwrap().audience.len(), 2);
    }

    #[test]
    fn an_absent_scope_grants_nothing() {
        let mut value = base();
        value.as_object_mut().unwrap().remove("scope");
        assert_eq!(claims(value).unwrap().scopes, Scopes::default());
    }

    #[test]
    fn missing_or_wrongly_typed_claims_are_refused() {
        let cases: Vec<(&str, Option<Value>)> = vec![
            ("exp", None),
            ("iat", None),
            ("sub", None),
            ("iss", None),
            ("aud", None),
            ("client_id", None),
            ("jti", None),
            ("exp", Some(json!("20"))),
            ("exp", Some(json!(20.5))),
            ("sub", Some(json!(42))),
            ("aud", Some(json!([1]))),
            ("scope", Some(json!(["users:read"]))),
            ("scope", Some(json!("users:read \"x"))),
            ("email", Some(json!(true))),
            ("nbf", Some(json!("now"))),
            ("sid", Some(json!(7))),
        ];
        for (name, value) in cases {
            let mut token = base();
            let map = token.as_object_mut().unwrap();
            match value {
                Some(v) => {
                    map.insert(name.to_owned(), v);
                }
                None => {
                    map.remove(name);
                }
            }
            assert!(claims(token).is_err(), "{name} was accepted");
        }
    }
}
