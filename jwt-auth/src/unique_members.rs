//! JSON objects whose member names are unique at every depth. RFC 7519 §4 lets a parser
//! take the last of two members with one name, or refuse the token; two parsers that
//! choose differently read one signed token two ways, so we refuse it (RFC 8725 §2.8,
//! §3.1's spirit: no ambiguity in what was signed).

use std::collections::HashSet;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// `json` is one JSON object in which no object, at any depth, names a member twice.
pub fn is_object_with_unique_members(json: &[u8]) -> bool {
    if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return false;
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    Unique.deserialize(&mut deserializer).is_ok() && deserializer.end().is_ok()
}

/// The header and the payload of a compact JWS (`header.payload.signature`) are JSON
/// objects with unique member names. Anything that is not such a token is `false`.
pub fn jws_members_are_unique(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    [header, payload].into_iter().all(|part| {
        URL_SAFE_NO_PAD
            .decode(part)
            .is_ok_and(|json| is_object_with_unique_members(&json))
    })
}

/// Walks any JSON value, failing on a repeated member name.
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while items.next_element_seed(Unique)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<(), A::Error> {
        let mut names = HashSet::new();
        while let Some(name) = members.next_key::<String>()? {
            if !names.insert(name) {
                return Err(de::Error::custom("a member name appears twice"));
            }
            members.next_value_seed(Unique)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_repeated_at_any_depth_is_refused() {
        assert!(is_object_with_unique_members(
            br#"{"sub":"a","aud":["x","y"],"cnf":{"jkt":"k"},"n":1.5,"t":true,"z":null}"#
        ));
        assert!(!is_object_with_unique_members(br#"{"sub":"a","sub":"b"}"#));
        assert!(!is_object_with_unique_members(
            br#"{"cnf":{"jkt":"a","jkt":"b"}}"#
        ));
        assert!(!is_object_with_unique_members(br#"{"a":[{"k":1,"k":2}]}"#));
        // An escape spells the same name.
        assert!(!is_object_with_unique_members(
            br#"{"sub":"a","s\u0075b":"b"}"#
        ));
    }

    #[test]
    fn only_one_json_object_passes() {
        for not_one_object in [&b"[]"[..], b"\"x\"", b"", b"{", b"{} {}", b"{}x"] {
            assert!(!is_object_with_unique_members(not_one_object));
        }
        assert!(is_object_with_unique_members(b" {} "));
    }

    #[test]
    fn both_the_header_and_the_payload_of_a_jws_are_checked() {
        let part = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let header = part(r#"{"alg":"RS256","kid":"k1"}"#);
        let payload = part(r#"{"sub":"a"}"#);
        let twice = part(r#"{"sub":"a","sub":"b"}"#);
        let kid_twice = part(r#"{"alg":"RS256","kid":"k1","kid":"k2"}"#);
        assert!(jws_members_are_unique(&format!("{header}.{payload}.c2ln")));
        assert!(!jws_members_are_unique(&format!("{header}.{twice}.c2ln")));
        assert!(!jws_members_are_unique(&format!(
            "{kid_twice}.{payload}.c2ln"
        )));
        assert!(!jws_members_are_unique(&format!("{header}.{payload}")));
        assert!(!jws_members_are_unique(&format!(
            "{header}.{payload}.c2ln.x"
        )));
    }
}
