//! What a receiver expects of the SETs pushed to it, and how long it remembers them.

use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How old a SET's `iat` may be: an older SET is a replay (or was held up so long that
/// the issuer will have re-signed it).
pub const DEFAULT_MAX_SET_AGE: Duration = Duration::from_secs(300);
/// How far in the future a SET's `iat` may be: clock skew between issuer and receiver.
pub const DEFAULT_MAX_SET_FUTURE: Duration = Duration::from_secs(60);
/// How long a revocation is kept: the longest access-token lifetime the issuer grants
/// (a day) plus the validator's largest leeway. After that every token it could refuse
/// has expired anyway.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(86_400 + 60);
/// How often expired revocations and remembered `jti`s are deleted.
pub const DEFAULT_PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// How often an instance reads the revocations other instances wrote to a shared
/// database.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    /// `iss` must equal this string exactly, and so must the `iss` of every `sub_id`.
    pub issuer: String,
    /// `aud` must contain this string.
    pub audience: String,
    /// The `Authorization` header value the transmitter must send; `None`: no check
    /// (the SET's signature still authenticates the issuer).
    pub authorization: Option<ReceiverAuthorization>,
    /// SETs signed longer ago are refused ([`DEFAULT_MAX_SET_AGE`]).
    pub max_set_age: Duration,
    /// SETs signed further in the future are refused ([`DEFAULT_MAX_SET_FUTURE`]).
    pub max_set_future: Duration,
    /// How long a revocation outlives the moment it names ([`DEFAULT_RETENTION`]). It
    /// must be at least the issuer's longest access-token lifetime plus the leeway, or
    /// revoked tokens come back to life.
    pub retention: Duration,
    /// How often expired entries are deleted ([`DEFAULT_PRUNE_INTERVAL`]).
    pub prune_interval: Duration,
    /// How often revocations written by other instances are read
    /// ([`DEFAULT_SYNC_INTERVAL`]).
    pub sync_interval: Duration,
}

impl ReceiverConfig {
    /// The defaults for SETs from `issuer` to `audience`, without an `Authorization` check.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            authorization: None,
            max_set_age: DEFAULT_MAX_SET_AGE,
            max_set_future: DEFAULT_MAX_SET_FUTURE,
            retention: DEFAULT_RETENTION,
            prune_interval: DEFAULT_PRUNE_INTERVAL,
            sync_interval: DEFAULT_SYNC_INTERVAL,
        }
    }
}

/// The `Authorization` header value a transmitter must present (SSF 1.0's
/// `authorization_header`), e.g. `Bearer 5f1c...`. A secret: `Debug` does not show it
/// and it is compared in constant time.
#[derive(Clone, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ReceiverAuthorization(String);

#[derive(Debug, thiserror::Error)]
#[error("an Authorization header value must be non-empty visible ASCII")]
pub struct InvalidAuthorization;

impl ReceiverAuthorization {
    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidAuthorization> {
        let value = value.into();
        // What an HTTP client can send as a header value and we can compare byte for byte.
        let fits = !value.is_empty()
            && value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
            && value.trim() == value;
        if fits {
            Ok(Self(value))
        } else {
            Err(InvalidAuthorization)
        }
    }

    /// Whether `presented` is this value. Both sides are hashed first, so the time taken
    /// says nothing about the expected value, not even its length.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let expected = Sha256::digest(self.0.as_bytes());
        let presented = Sha256::digest(presented);
        expected[..].ct_eq(&presented[..]).into()
    }
}

impl TryFrom<String> for ReceiverAuthorization {
    type Error = InvalidAuthorization;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl fmt::Debug for ReceiverAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReceiverAuthorization([redacted])")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_value_matches() {
        let expected = ReceiverAuthorization::parse("Bearer s3cret").unwrap();
        assert!(expected.matches(b"Bearer s3cret"));
        for other in [
            &b"Bearer s3cre"[..],
            b"bearer s3cret",
            b"Bearer s3cret ",
            b"",
        ] {
            assert!(!expected.matches(other));
        }
    }

    #[test]
    fn values_that_cannot_be_a_header_are_refused_and_none_is_shown() {
        for bad in ["", " Bearer x", "Bearer x\n", "Bearer \u{e9}"] {
            assert!(ReceiverAuthorization::parse(bad).is_err(), "{bad:?}");
        }
        let secret = ReceiverAuthorization::parse("Bearer s3cret").unwrap();
        assert!(!format!("{secret:?}").contains("s3cret"));
    }
}
