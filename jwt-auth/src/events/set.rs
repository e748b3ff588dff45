//! Verifying a Security Event Token (RFC 8417) the way RFC 8935 §2 and SSF 1.0 §4 ask
//! of a receiver, in order: the header rules of [`crate::jws`] with `typ`
//! secevent+jwt, the issuer's key by `kid` from the [`JwksCache`], the RS256
//! signature, `iss` exact, `aud` containing us, `jti`, `iat` within a window around
//! now (an older SET is a replay), then exactly one event and its subject.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::SetError;
use super::config::ReceiverConfig;
use super::event::SecurityEvent;
use crate::claims::Audience;
use crate::jwks::KeyLookupError;
use crate::{JwksCache, TokenError, jws};

/// Longer `jti`s are refused: ids are short, and they are stored.
const MAX_JTI_BYTES: usize = 256;

/// A verified SET. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEventToken {
    /// The same for every delivery of one SET.
    pub jti: String,
    pub issued_at: i64,
    /// Shared by the SETs of one cause, when given.
    pub txn: Option<String>,
    pub event: SecurityEvent,
}

#[derive(Deserialize)]
struct RawSet {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    txn: Option<String>,
    #[serde(default)]
    sub_id: Option<Value>,
    #[serde(default)]
    events: Option<Map<String, Value>>,
}

/// Verifies `token` against `config`, `now` being unix seconds. `request_id` is passed
/// on to the issuer if the keys must be fetched.
pub async fn verify(
    token: &str,
    config: &ReceiverConfig,
    keys: &JwksCache,
    now: i64,
    request_id: Option<&str>,
) -> Result<SecurityEventToken, SetError> {
    let header = jws::parse_header(token, jws::SECURITY_EVENT_TYPE).map_err(header_error)?;
    let key = keys
        .verifier(&header.kid, request_id)
        .await
        .map_err(|e| match e {
            KeyLookupError::UnknownKid => {
                SetError::InvalidKey("no signing key of the issuer has this kid")
            }
            KeyLookupError::Unavailable => SetError::KeysUnavailable,
        })?;
    let (payload, _header) =
        josekit::jws::deserialize_compact(token, key.as_ref()).map_err(|e| match e {
            josekit::JoseError::InvalidSignature(_) => {
                SetError::InvalidKey("the signature does not verify")
            }
            _ => SetError::InvalidRequest("the SET is not a JWS we can verify"),
        })?;
    let raw: RawSet = serde_json::from_slice(&payload).map_err(|_| {
        SetError::InvalidRequest("the claims are not a JSON object of the expected types")
    })?;

    match raw.iss {
        None => return Err(SetError::InvalidRequest("iss is missing")),
        Some(iss) if iss != config.issuer => return Err(SetError::InvalidIssuer),
        Some(_) => {}
    }
    if !raw
        .aud
        .is_some_and(|aud| aud.into_vec().contains(&config.audience))
    {
        return Err(SetError::InvalidAudience);
    }
    let jti = match raw.jti {
        Some(jti) if !jti.is_empty() && jti.len() <= MAX_JTI_BYTES => jti,
        _ => {
            return Err(SetError::InvalidRequest(
                "jti is missing, empty or too long",
            ));
        }
    };
    let issued_at = raw.iat.ok_or(SetError::InvalidRequest("iat is missing"))?;
    if issued_at < now.saturating_sub(secs(config.max_set_age)) {
        return Err(SetError::InvalidRequest("the SET was issued too long ago"));
    }
    if issued_at > now.saturating_add(secs(config.max_set_future)) {
        return Err(SetError::InvalidRequest("the SET was issued in the future"));
    }

    // SSF 1.0 §4.1.3: exactly one event per SET.
    let events = raw
        .events
        .ok_or(SetError::InvalidRequest("events is missing"))?;
    let mut events = events.into_iter();
    let (Some((event_type, members)), None) = (events.next(), events.next()) else {
        return Err(SetError::InvalidRequest(
            "the SET must carry exactly one event",
        ));
    };
    let members = match members {
        Value::Object(members) => members,
        _ => return Err(SetError::InvalidRequest("the event is not a JSON object")),
    };
    let event = SecurityEvent::parse(&event_type, &members, raw.sub_id.as_ref(), &config.issuer)?;
    Ok(SecurityEventToken {
        jti,
        issued_at,
        txn: raw.txn,
        event,
    })
}

/// Every header problem is a request we cannot read.
fn header_error(error: TokenError) -> SetError {
    SetError::InvalidRequest(match error {
        TokenError::TooLarge => "the SET is too large",
        TokenError::DuplicateMember => "the header or the claims name a member twice",
        TokenError::UnsupportedAlgorithm => "the header alg is not RS256",
        TokenError::WrongType => "the header typ is not secevent+jwt",
        TokenError::CriticalHeader => "the header has a crit parameter",
        TokenError::MissingKeyId => "the header has no kid",
        _ => "the SET is not a compact JWS",
    })
}

pub(crate) fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::events::event::SESSION_REVOKED;
    use crate::test_issuer::{Key, issuer};
    use crate::{Clock, JwksConfig};

    const AUDIENCE: &str = "https://rs.example";
    const NOW: i64 = 1_700_000_000;

    fn claims(iss: &str) -> Value {
        json!({
            "iss": iss, "aud": AUDIENCE, "jti": "j1", "iat": NOW, "txn": "t1",
            "sub_id": {"format": "complex",
                       "user": {"format": "iss_sub", "iss": iss, "sub": "u1"},
                       "session": {"format": "opaque", "id": "s1"}},
            "events": {SESSION_REVOKED: {"event_timestamp": NOW - 1, "initiating_entity": "user"}},
        })
    }

    /// The error code of verifying each (header, claims) pair, or "ok".
    async fn outcomes(cases: Vec<(&str, Value, Value, Option<&Key>)>) {
        let issuer = issuer().await;
        let key = Key::new("k1");
        *issuer.jwks.lock().unwrap() = json!({"keys": [key.public()]});
        let keys = JwksCache::new(
            JwksConfig {
                refetch_cooldown: Duration::ZERO,
                ..JwksConfig::new(&issuer.url)
            },
            Clock::system(),
        )
        .unwrap();
        let config = ReceiverConfig::new(&issuer.url, AUDIENCE);
        for (expected, header, mut claims, signer) in cases {
            // `claims` name the issuer as "ISS" so that each case can be written before
            // the issuer's URL is known.
            let text = claims.to_string().replace("ISS", &issuer.url);
            claims = serde_json::from_str(&text).unwrap();
            let token = signer.unwrap_or(&key).sign_json(&header, &claims);
            let got = match verify(&token, &config, &keys, NOW, None).await {
                Ok(_) => "ok",
                Err(error) => error.code().unwrap_or("none"),
            };
            assert_eq!(got, expected, "{header} {claims}");
        }
    }

    fn header() -> Value {
        json!({"alg": "RS256", "typ": "secevent+jwt", "kid": "k1"})
    }

    fn with(mut value: Value, name: &str, member: Value) -> Value {
        value[name] = member;
        value
    }

    fn without(mut value: Value, name: &str) -> Value {
        value.as_object_mut().unwrap().remove(name);
        value
    }

    #[tokio::test]
    async fn a_set_is_verified_into_its_event() {
        let issuer = issuer().await;
        let key = Key::new("k1");
        *issuer.jwks.lock().unwrap() = json!({"keys": [key.public()]});
        let keys = JwksCache::new(JwksConfig::new(&issuer.url), Clock::system()).unwrap();
        let config = ReceiverConfig::new(&issuer.url, AUDIENCE);
        let token = key.sign_json(&header(), &claims(&issuer.url));
        let set = verify(&token, &config, &keys, NOW, None).await.unwrap();
        assert_eq!(set.jti, "j1");
        assert_eq!(set.issued_at, NOW);
        assert_eq!(set.txn.as_deref(), Some("t1"));
        assert_eq!(
            set.event,
            SecurityEvent::SessionRevoked {
                user: "u1".into(),
                session_id: "s1".into(),
                event_timestamp: NOW - 1
            }
        );
    }

    #[tokio::test]
    async fn each_refusal_gets_its_rfc_8935_code() {
        let base = claims("ISS");
        let forger = Key::new("k1");
        let two_events = with(
            base.clone(),
            "events",
            json!({SESSION_REVOKED: {"event_timestamp": 1}, "https://example/other": {}}),
        );
        outcomes(vec![
            ("ok", header(), base.clone(), None),
            (
                "ok",
                with(header(), "typ", json!("application/SECEVENT+JWT")),
                base.clone(),
                None,
            ),
            (
                "ok",
                header(),
                with(base.clone(), "aud", json!(["x", AUDIENCE])),
                None,
            ),
            // The iat window is inclusive at both ends.
            (
                "ok",
                header(),
                with(base.clone(), "iat", json!(NOW - 300)),
                None,
            ),
            (
                "ok",
                header(),
                with(base.clone(), "iat", json!(NOW + 60)),
                None,
            ),
            (
                "invalid_request",
                with(header(), "typ", json!("at+jwt")),
                base.clone(),
                None,
            ),
            (
                "invalid_request",
                with(header(), "alg", json!("none")),
                base.clone(),
                None,
            ),
            (
                "invalid_request",
                with(header(), "crit", json!(["exp"])),
                base.clone(),
                None,
            ),
            (
                "invalid_request",
                without(header(), "kid"),
                base.clone(),
                None,
            ),
            (
                "invalid_key",
                with(header(), "kid", json!("k2")),
                base.clone(),
                None,
            ),
            ("invalid_key", header(), base.clone(), Some(&forger)),
            (
                "invalid_issuer",
                header(),
                with(base.clone(), "iss", json!("https://evil")),
                None,
            ),
            (
                "invalid_request",
                header(),
                without(base.clone(), "iss"),
                None,
            ),
            (
                "invalid_audience",
                header(),
                with(base.clone(), "aud", json!("https://other")),
                None,
            ),
            (
                "invalid_audience",
                header(),
                without(base.clone(), "aud"),
                None,
            ),
            (
                "invalid_request",
                header(),
                without(base.clone(), "jti"),
                None,
            ),
            (
                "invalid_request",
                header(),
                with(base.clone(), "jti", json!("")),
                None,
            ),
            (
                "invalid_request",
                header(),
                without(base.clone(), "iat"),
                None,
            ),
            (
                "invalid_request",
                header(),
                with(base.clone(), "iat", json!(NOW - 301)),
                None,
            ),
            (
                "invalid_request",
                header(),
                with(base.clone(), "iat", json!(NOW + 61)),
                None,
            ),
            (
                "invalid_request",
                header(),
                without(base.clone(), "events"),
                None,
            ),
            (
                "invalid_request",
                header(),
                with(base.clone(), "events", json!({})),
                None,
            ),
            ("invalid_request", header(), two_events, None),
            (
                "invalid_request",
                header(),
                without(base.clone(), "sub_id"),
                None,
            ),
        ])
        .await;
    }
}
