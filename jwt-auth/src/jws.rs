//! Strict parsing of a compact JWS (RFC 7515 §7.1) and the header rules shared by the
//! JWTs we accept: access tokens (`typ` at+jwt) and Security Event Tokens (`typ`
//! secevent+jwt). The signature itself is checked by josekit afterwards ([`crate::validator`],
//! [`crate::events`]); this module decides, before any key is looked up, whether a token
//! is even worth it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::TokenError;
use crate::unique_members::jws_members_are_unique;

/// Tokens longer than this are refused unparsed. Our access tokens are well under 2 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The only algorithm we accept. Fixed here, never read from the token (RFC 8725 §3.1).
pub const ALGORITHM: &str = "RS256";

/// The `typ` of a JWT access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The `typ` of a Security Event Token (RFC 8417 §2.3).
pub const SECURITY_EVENT_TYPE: &str = "secevent+jwt";

/// The checked header of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedHeader {
    pub kid: String,
}

/// Checks the shape of `token` and its header, whose `typ` must be `expected_typ` (such
/// as [`ACCESS_TOKEN_TYPE`]), with or without the `application/` prefix, in any case
/// (RFC 7515 §4.1.9). `jku`, `x5u`, `jwk` and `x5c` are ignored: keys come only from the
/// configured issuer's JWKS. A header or payload that names a member twice is refused:
/// parsers disagree on which one counts.
pub fn parse_header(token: &str, expected_typ: &str) -> Result<CheckedHeader, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err(TokenError::Malformed("not three dot-separated parts"));
    };
    for part in [header, payload, signature] {
        if part.is_empty() || !part.bytes().all(is_base64url) {
            return Err(TokenError::Malformed("a part is empty or not base64url"));
        }
    }
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed("the header is not base64url"))?;
    let header: Map<String, Value> = serde_json::from_slice(&header)
        .map_err(|_| TokenError::Malformed("the header is not a JSON object"))?;
    if !jws_members_are_unique(token) {
        return Err(TokenError::DuplicateMember);
    }

    if header.get("alg").and_then(Value::as_str) != Some(ALGORITHM) {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    // RFC 9068 §4 and RFC 8417 §2.3: explicit typing keeps one kind of JWT from being
    // taken for another (an ID token for an access token, an access token for a SET).
    let typ_ok = header
        .get("typ")
        .and_then(Value::as_str)
        .is_some_and(|typ| names_type(typ, expected_typ));
    if !typ_ok {
        return Err(TokenError::WrongType);
    }
    // We understand no extension, so any `crit` must be refused (RFC 7515 §4.1.11).
    if header.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    match header.get("kid").and_then(Value::as_str) {
        Some(kid) if !kid.is_empty() => Ok(CheckedHeader {
            kid: kid.to_owned(),
        }),
        _ => Err(TokenError::MissingKeyId),
    }
}

/// `typ` is the media type `expected`, the `application/` prefix being optional.
fn names_type(typ: &str, expected: &str) -> bool {
    let bare = match typ.split_once('/') {
        Some((top, sub)) if top.eq_ignore_ascii_case("application") => sub,
        _ => typ,
    };
    bare.eq_ignore_ascii_case(expected)
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token_with_header(header: &Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        format!("{h}.e30.c2ln")
    }

    #[test]
    fn a_well_formed_access_token_header_yields_its_kid() {
        let token = token_with_header(&json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}));
        assert_eq!(parse_header(&token, ACCESS_TOKEN_TYPE).unwrap().kid, "k1");
        let token =
            token_with_header(&json!({"alg": "RS256", "typ": "Application/AT+JWT", "kid": "k1"}));
        assert!(parse_header(&token, ACCESS_TOKEN_TYPE).is_ok());
    }

    #[test]
    fn a_security_event_token_is_checked_against_its_own_typ() {
        for typ in ["secevent+jwt", "application/secevent+jwt", "SecEvent+JWT"] {
            let token = token_with_header(&json!({"alg": "RS256", "typ": typ, "kid": "k1"}));
            assert!(parse_header(&token, SECURITY_EVENT_TYPE).is_ok(), "{typ}");
        }
        // Neither kind passes for the other, nor with another prefix.
        let access = token_with_header(&json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}));
        assert!(matches!(
            parse_header(&access, SECURITY_EVENT_TYPE),
            Err(TokenError::WrongType)
        ));
        let set = token_with_header(&json!({"alg": "RS256", "typ": "secevent+jwt", "kid": "k1"}));
        assert!(matches!(
            parse_header(&set, ACCESS_TOKEN_TYPE),
            Err(TokenError::WrongType)
        ));
        let other =
            token_with_header(&json!({"alg": "RS256", "typ": "text/secevent+jwt", "kid": "k1"}));
        assert!(matches!(
            parse_header(&other, SECURITY_EVENT_TYPE),
            Err(TokenError::WrongType)
        ));
    }

    #[test]
    fn algorithms_other_than_rs256_are_refused() {
        for alg in [
            json!("none"),
            json!("HS256"),
            json!("rs256"),
            json!("PS256"),
            json!(null),
        ] {
            let token = token_with_header(&json!({"alg": alg, "typ": "at+jwt", "kid": "k1"}));
            assert!(matches!(
                parse_header(&token, ACCESS_TOKEN_TYPE),
                Err(TokenError::UnsupportedAlgorithm)
            ));
        }
    }

    #[test]
    fn an_id_token_typ_is_refused() {
        for typ in [json!("JWT"), json!(null), json!(["at+jwt"])] {
            let token = token_with_header(&json!({"alg": "RS256", "typ": typ, "kid": "k1"}));
            assert!(matches!(
                parse_header(&token, ACCESS_TOKEN_TYPE),
                Err(TokenError::WrongType)
            ));
        }
    }

    #[test]
    fn crit_and_missing_kid_are_refused() {
        let crit = json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1", "crit": ["exp"]});
        assert!(matches!(
            parse_header(&token_with_header(&crit), ACCESS_TOKEN_TYPE),
            Err(TokenError::CriticalHeader)
        ));
        let no_kid = json!({"alg": "RS256", "typ": "at+jwt"});
        assert!(matches!(
            parse_header(&token_with_header(&no_kid), ACCESS_TOKEN_TYPE),
            Err(TokenError::MissingKeyId)
        ));
        let empty_kid = json!({"alg": "RS256", "typ": "at+jwt", "kid": ""});
        assert!(matches!(
            parse_header(&token_with_header(&empty_kid), ACCESS_TOKEN_TYPE),
            Err(TokenError::MissingKeyId)
        ));
    }

    #[test]
    fn a_member_named_twice_in_the_header_or_the_payload_is_refused() {
        let header = r#"{"alg":"RS256","typ":"at+jwt","kid":"k1","kid":"k2"}"#;
        let token = format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header));
        assert!(matches!(
            parse_header(&token, ACCESS_TOKEN_TYPE),
            Err(TokenError::DuplicateMember)
        ));
        let good = token_with_header(&json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}));
        let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":"a","sub":"b"}"#);
        let token = good.replacen("e30", &payload, 1);
        assert!(matches!(
            parse_header(&token, ACCESS_TOKEN_TYPE),
            Err(TokenError::DuplicateMember)
        ));
    }

    #[test]
    fn malformed_compact_serialisations_are_refused() {
        let good = token_with_header(&json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}));
        for bad in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "..",
            &format!("{good}."),
            &good.replacen('.', "=.", 1),
            &good.replacen('.', "+.", 1),
            "e30.e30.", // an unsigned token
        ] {
            assert!(
                matches!(
                    parse_header(bad, ACCESS_TOKEN_TYPE),
                    Err(TokenError::Malformed(_))
                ),
                "{bad} was accepted"
            );
        }
        let oversize = format!("{good}{}", "A".repeat(MAX_TOKEN_BYTES));
        assert!(matches!(
            parse_header(&oversize, ACCESS_TOKEN_TYPE),
            Err(TokenError::TooLarge)
        ));
    }
}
