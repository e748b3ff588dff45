//! OpenID Connect Back-Channel Logout 1.0, the relying party's side: checking a logout
//! token the provider posts (§2.6) and saying whose sessions it ends (§2.7). No HTTP
//! here (the route is in `routes`) and no sessions (they are in `store`).
//!
//! The provider's keys come from its discovered `jwks_uri`: fetched on first use, kept,
//! and fetched again when a token names a `kid` we do not know, at most once a minute,
//! so tokens with made-up `kid`s cannot make us hammer the provider. Each accepted
//! `jti` is remembered until its token expires, so no token is accepted twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use josekit::jws::RS256;
use josekit::jws::alg::rsassa::RsassaJwsVerifier;
use openidconnect::reqwest;
use openidconnect::url::Url;
use serde_json::{Map, Value};

/// The member of `events` that makes a JWT a logout token (§2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Clock skew allowed on `iat` and `exp`.
const LEEWAY_SECS: i64 = 30;
/// The least time between two JWKS fetches caused by an unknown `kid`.
const REFETCH_COOLDOWN_SECS: i64 = 60;
/// The most `jti`s remembered at once. The provider's tokens live two minutes; this is
/// far more than it sends in that time.
const MAX_REMEMBERED_JTIS: usize = 10_000;

/// Whose sessions a valid logout token ends (§2.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggedOut {
    /// One provider session: the ID tokens whose `sid` was this (and whose `sub` was
    /// this user, when the token names one too).
    Session { sid: String, sub: Option<String> },
    /// Every session of a user: the token has a `sub` and no `sid`.
    User { sub: String },
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutTokenError {
    /// Not a logout token we accept: answer 400, which the provider does not retry (§2.8).
    #[error("{0}")]
    Invalid(&'static str),
    /// It could not be checked now (the provider's keys are out of reach, or too many
    /// recent tokens are remembered): worth sending again later.
    #[error("The logout token could not be checked now")]
    Unavailable(#[source] anyhow::Error),
}

/// Checks logout tokens for one client of one provider.
#[derive(Clone)]
pub struct LogoutTokens {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    client_id: String,
    keys: ProviderKeys,
    seen: Mutex<SeenTokens>,
}

impl LogoutTokens {
    /// `issuer` exactly as discovered; `http` must not follow redirects.
    pub fn new(issuer: &str, client_id: &str, jwks_uri: Url, http: reqwest::Client) -> Self {
        Self {
            inner: Arc::new(Inner {
                issuer: issuer.to_owned(),
                client_id: client_id.to_owned(),
                keys: ProviderKeys {
                    jwks_uri,
                    http,
                    cache: tokio::sync::Mutex::default(),
                },
                seen: Mutex::default(),
            }),
        }
    }

    /// §2.6, in its order: a JWS signed by the provider, then the claims (`iss`, `aud`,
    /// `iat`, `exp`; `sub` and/or `sid`; `events`; no `nonce`), then `jti` not seen
    /// before. `now` is Unix seconds.
    pub async fn validate(&self, token: &str, now: i64) -> Result<LoggedOut, LogoutTokenError> {
        let inner = &self.inner;
        let verifier = inner.keys.verifier(signing_kid(token)?, now).await?;
        // Checks the signature, and again that `alg` is RS256; refuses unknown `crit`.
        let (payload, _) = josekit::jws::deserialize_compact(token, &*verifier)
            .map_err(|_| invalid("The logout token's signature does not verify"))?;
        let claims: Map<String, Value> = serde_json::from_slice(&payload)
            .map_err(|_| invalid("The logout token's payload is not a JSON object"))?;
        let checked = check_claims(&claims, &inner.issuer, &inner.client_id, now)
            .map_err(LogoutTokenError::Invalid)?;
        inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remember(&checked.jti, checked.exp + LEEWAY_SECS, now)?;
        Ok(checked.logged_out)
    }
}

fn invalid(reason: &'static str) -> LogoutTokenError {
    LogoutTokenError::Invalid(reason)
}

/// The header, read before any key is looked up: a JWS (not a JWE: we registered no
/// encryption), `alg` RS256, explicitly typed as a logout token (§2.4: `logout+jwt`,
/// or its full media type, case-insensitively), and a `kid`. Returns the `kid`.
fn signing_kid(token: &str) -> Result<String, LogoutTokenError> {
    if token.split('.').count() != 3 {
        return Err(invalid("The logout token is not a signed JWT"));
    }
    let header = josekit::jwt::decode_header(token)
        .map_err(|_| invalid("The logout token's header is not readable"))?;
    let text = |name| header.claim(name).and_then(Value::as_str);
    if text("alg") != Some("RS256") {
        return Err(invalid("The logout token is not signed with RS256"));
    }
    let typ = text("typ").unwrap_or_default();
    if !["logout+jwt", "application/logout+jwt"]
        .iter()
        .any(|t| typ.eq_ignore_ascii_case(t))
    {
        return Err(invalid("The logout token's typ is not logout+jwt"));
    }
    text("kid")
        .map(str::to_owned)
        .ok_or_else(|| invalid("The logout token's header has no kid"))
}

/// What the claims checks yield.
#[derive(Debug, PartialEq, Eq)]
struct CheckedClaims {
    jti: String,
    exp: i64,
    logged_out: LoggedOut,
}

/// §2.6 steps 3-6, on a token whose signature verified.
fn check_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    now: i64,
) -> Result<CheckedClaims, &'static str> {
    // A string claim: absent, or a non-empty string.
    let text = |name, wrong| match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(wrong),
    };

    // Step 3: iss, aud, iat and exp as for an ID token (OIDC Core §3.1.3.7): the issuer
    // exactly, our client_id among the audiences, and the times.
    if text("iss", "The logout token's iss is not a string")?.as_deref() != Some(issuer) {
        return Err("The logout token comes from another issuer");
    }
    let for_us = match claims.get("aud") {
        Some(Value::String(aud)) => aud == client_id,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !for_us {
        return Err("The logout token is not for this client");
    }
    let iat = claims
        .get("iat")
        .and_then(numeric_date)
        .ok_or("The logout token has no iat")?;
    if iat > now + LEEWAY_SECS {
        return Err("The logout token was issued in the future");
    }
    let exp = claims
        .get("exp")
        .and_then(numeric_date)
        .ok_or("The logout token has no exp")?;
    if now > exp + LEEWAY_SECS {
        return Err("The logout token has expired");
    }

    // Step 4: whom it is about: a sub, a sid, or both.
    let sub = text("sub", "The logout token's sub is not a non-empty string")?;
    let sid = text("sid", "The logout token's sid is not a non-empty string")?;
    let logged_out = match (sid, sub) {
        (Some(sid), sub) => LoggedOut::Session { sid, sub },
        (None, Some(sub)) => LoggedOut::User { sub },
        (None, None) => return Err("The logout token has neither sub nor sid"),
    };

    // Step 5: the back-channel logout event, whose value is a JSON object.
    let is_logout = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT))
        .is_some_and(Value::is_object);
    if !is_logout {
        return Err("The logout token's events has no back-channel logout event");
    }

    // Step 6: never a nonce, so an ID token cannot pass for a logout token.
    if claims.contains_key("nonce") {
        return Err("The logout token has a nonce");
    }

    // §2.4: jti is required; step 7 (replay) is the caller's, once all else holds.
    let jti = text("jti", "The logout token's jti is not a non-empty string")?
        .ok_or("The logout token has no jti")?;
    Ok(CheckedClaims {
        jti,
        exp,
        logged_out,
    })
}

/// A NumericDate (RFC 7519 §2): seconds, possibly with a fraction (dropped).
fn numeric_date(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e15)
            .map(|f| f.floor() as i64)
    })
}

/// The `jti`s of accepted tokens, each kept until its token could no longer pass the
/// `exp` check anyway.
#[derive(Default)]
struct SeenTokens(HashMap<String, i64>);

impl SeenTokens {
    fn remember(&mut self, jti: &str, until: i64, now: i64) -> Result<(), LogoutTokenError> {
        self.0.retain(|_, kept_until| *kept_until >= now);
        if self.0.contains_key(jti) {
            return Err(invalid(
                "The logout token was already used (its jti was seen)",
            ));
        }
        if self.0.len() >= MAX_REMEMBERED_JTIS {
            // Forgetting one could let its token be replayed; refuse for now instead.
            return Err(LogoutTokenError::Unavailable(anyhow::anyhow!(
                "{MAX_REMEMBERED_JTIS} recent logout tokens are remembered already"
            )));
        }
        self.0.insert(jti.to_owned(), until);
        Ok(())
    }
}

/// The provider's signing keys, by `kid`.
struct ProviderKeys {
    jwks_uri: Url,
    http: reqwest::Client,
    /// Async: one fetch at a time, and the others wait for its result.
    cache: tokio::sync::Mutex<KeyCache>,
}

#[derive(Default)]
struct KeyCache {
    verifiers: HashMap<String, Arc<RsassaJwsVerifier>>,
    /// When the JWKS was last fetched (Unix seconds).
    fetched_at: Option<i64>,
}

impl ProviderKeys {
    async fn verifier(
        &self,
        kid: String,
        now: i64,
    ) -> Result<Arc<RsassaJwsVerifier>, LogoutTokenError> {
        let mut cache = self.cache.lock().await;
        if let Some(verifier) = cache.verifiers.get(&kid) {
            return Ok(verifier.clone());
        }
        // An unknown kid may be a key the provider published since we looked.
        if cache
            .fetched_at
            .is_some_and(|at| now - at < REFETCH_COOLDOWN_SECS)
        {
            return Err(invalid("The logout token is signed with an unknown key"));
        }
        cache.verifiers = self.fetch().await.map_err(LogoutTokenError::Unavailable)?;
        cache.fetched_at = Some(now);
        cache
            .verifiers
            .get(&kid)
            .cloned()
            .ok_or_else(|| invalid("The logout token is signed with an unknown key"))
    }

    /// The JWKS's RS256 signing keys; other keys are skipped.
    async fn fetch(&self) -> anyhow::Result<HashMap<String, Arc<RsassaJwsVerifier>>> {
        let body = self
            .http
            .get(self.jwks_uri.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("Failed to fetch the provider's JWKS")?
            .bytes()
            .await
            .context("Failed to read the provider's JWKS")?;
        let jwks = josekit::jwk::JwkSet::from_bytes(&body)
            .context("The provider's JWKS is not a JWK set")?;
        let verifiers: HashMap<_, _> = jwks
            .keys()
            .into_iter()
            .filter_map(|jwk| {
                let kid = jwk.key_id()?.to_owned();
                let verifier = RS256.verifier_from_jwk(jwk).ok()?;
                Some((kid, Arc::new(verifier)))
            })
            .collect();
        tracing::info!(keys = verifiers.len(), "Fetched the provider's JWKS");
        Ok(verifiers)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    const ISS: &str = "https://idp.example";
    const CLIENT: &str = "c_rp";
    const NOW: i64 = 1_700_000_000;

    fn claims() -> Map<String, Value> {
        let Value::Object(claims) = json!({
            "iss": ISS, "aud": CLIENT, "iat": NOW, "exp": NOW + 120, "jti": "j1",
            "sub": "u1", "sid": "s1",
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        }) else {
            unreachable!()
        };
        claims
    }

    fn check(claims: &Map<String, Value>) -> Result<CheckedClaims, &'static str> {
        check_claims(claims, ISS, CLIENT, NOW)
    }

    fn with(name: &str, value: Value) -> Map<String, Value> {
        let mut c = claims();
        c.insert(name.to_owned(), value);
        c
    }

    fn without(name: &str) -> Map<String, Value> {
        let mut c = claims();
        c.remove(name);
        c
    }

    #[test]
    fn a_token_with_sid_ends_that_session_of_that_user() {
        assert_eq!(
            check(&claims()).unwrap(),
            CheckedClaims {
                jti: "j1".to_owned(),
                exp: NOW + 120,
                logged_out: LoggedOut::Session {
                    sid: "s1".to_owned(),
                    sub: Some("u1".to_owned())
                },
            }
        );
        assert_eq!(
            check(&without("sub")).unwrap().logged_out,
            LoggedOut::Session {
                sid: "s1".to_owned(),
                sub: None
            }
        );
    }

    #[test]
    fn a_token_with_only_sub_ends_all_of_the_users_sessions() {
        assert_eq!(
            check(&without("sid")).unwrap().logged_out,
            LoggedOut::User {
                sub: "u1".to_owned()
            }
        );
    }

    #[test]
    fn aud_may_be_a_list_that_names_us() {
        assert!(check(&with("aud", json!(["other", CLIENT]))).is_ok());
        assert!(check(&with("aud", json!(["other"]))).is_err());
        assert!(check(&with("aud", json!("other"))).is_err());
        assert!(check(&without("aud")).is_err());
    }

    #[test]
    fn times_get_a_little_leeway_and_no_more() {
        assert!(check(&with("iat", json!(NOW + LEEWAY_SECS))).is_ok());
        assert!(check(&with("iat", json!(NOW + LEEWAY_SECS + 1))).is_err());
        assert!(check(&with("exp", json!(NOW - LEEWAY_SECS))).is_ok());
        assert!(check(&with("exp", json!(NOW - LEEWAY_SECS - 1))).is_err());
        assert!(check(&with("exp", json!(NOW as f64 + 0.5))).is_ok());
        assert!(check(&with("exp", json!("tomorrow"))).is_err());
        assert!(check(&without("iat")).is_err());
        assert!(check(&without("exp")).is_err());
    }

    #[test]
    fn tokens_that_are_not_logout_tokens_are_refused() {
        let refused = [
            with("iss", json!("https://idp.example/")),
            without("iss"),
            with("nonce", json!("n")),
            with("nonce", Value::Null),
            without("events"),
            with("events", json!({ BACKCHANNEL_LOGOUT_EVENT: "yes" })),
            with("events", json!({ "https://other/event": {} })),
            without("jti"),
            with("jti", json!("")),
            with("sid", json!(42)),
            with("sub", json!("")),
        ];
        for claims in refused {
            assert!(check(&claims).is_err(), "{claims:?}");
        }
        let mut neither = without("sid");
        neither.remove("sub");
        assert_eq!(
            check(&neither),
            Err("The logout token has neither sub nor sid")
        );
    }

    #[test]
    fn a_jti_is_accepted_once_until_it_expires() {
        let mut seen = SeenTokens::default();
        seen.remember("j1", NOW + 150, NOW).unwrap();
        assert!(matches!(
            seen.remember("j1", NOW + 150, NOW + 10),
            Err(LogoutTokenError::Invalid(_))
        ));
        seen.remember("j2", NOW + 150, NOW + 10).unwrap();
        // Once its token would fail the exp check, the jti is forgotten.
        seen.remember("j1", NOW + 400, NOW + 151).unwrap();
        assert_eq!(seen.0.len(), 1);
    }

    #[test]
    fn the_jti_memory_is_bounded() {
        let mut seen = SeenTokens::default();
        for i in 0..MAX_REMEMBERED_JTIS {
            seen.remember(&i.to_string(), NOW + 150, NOW).unwrap();
        }
        assert!(matches!(
            seen.remember("one more", NOW + 150, NOW),
            Err(LogoutTokenError::Unavailable(_))
        ));
    }

    #[test]
    fn the_header_must_say_rs256_logout_jwt_and_name_a_key() {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token =
            |header: Value| format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header.to_string()));
        let kid = |header: Value| signing_kid(&token(header)).map_err(|e| e.to_string());
        assert_eq!(
            kid(json!({"alg": "RS256", "typ": "logout+jwt", "kid": "k1"})).unwrap(),
            "k1"
        );
        assert!(kid(json!({"alg": "RS256", "typ": "Application/Logout+JWT", "kid": "k1"})).is_ok());
        for header in [
            json!({"alg": "HS256", "typ": "logout+jwt", "kid": "k1"}),
            json!({"alg": "none", "typ": "logout+jwt", "kid": "k1"}),
            json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}),
            json!({"alg": "RS256", "kid": "k1"}),
            json!({"alg": "RS256", "typ": "logout+jwt"}),
        ] {
            assert!(kid(header.clone()).is_err(), "{header}");
        }
        assert!(signing_kid("a.b.c.d.e").is_err());
        assert!(signing_kid("not a token").is_err());
    }
}
