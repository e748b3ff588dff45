//! Random secrets (codes, tokens, client secrets) and their storage form. Everything
//! here is at least 128 bits from the OS CSPRNG; only SHA-256 hashes are stored, and
//! comparisons run in constant time.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `bytes` random bytes, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(buf.as_mut_slice());
    URL_SAFE_NO_PAD.encode(buf)
}

/// The stored form of a high-entropy secret: base64url SHA-256. A fast hash is right
/// for 256-bit random values (nothing to brute-force); passwords use Argon2id instead.
pub fn hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time check of `secret` against a stored [`hash`].
pub fn matches(secret: &str, stored_hash: &str) -> bool {
    hash(secret).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// A secret shown to its owner once (a client secret, a code, a refresh token).
/// `Debug` never prints it.
pub struct Secret(String);

impl Secret {
    /// 256 random bits.
    pub fn generate() -> Self {
        Self(random_token(32))
    }

    pub fn from_presented(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        hash(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn hashes_match_only_their_secret() {
        let s = Secret::generate();
        assert!(matches(s.expose(), &s.hash()));
        assert!(!matches("other", &s.hash()));
        assert!(!format!("{s:?}").contains(s.expose()));
    }
}
