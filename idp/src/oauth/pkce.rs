//! PKCE (RFC 7636), S256 only: `plain` would let anyone who sees the authorization
//! request redeem the code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A `code_challenge` for S256: the base64url (no padding) SHA-256 of a verifier, so
/// exactly 43 characters of the base64url alphabet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    pub fn parse(input: &str) -> Option<Self> {
        let ok = input.len() == 43
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(input.to_owned()))
    }

    /// RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge.
    pub fn is_satisfied_by(&self, verifier: &CodeVerifier) -> bool {
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.0.as_bytes()));
        computed.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

impl AsRef<str> for CodeChallenge {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A `code_verifier`: 43 to 128 unreserved characters (RFC 7636 §4.1).
pub struct CodeVerifier(String);

impl CodeVerifier {
    pub fn parse(input: &str) -> Option<Self> {
        let ok = (43..=128).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        ok.then(|| Self(input.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_appendix_b_vector_verifies() {
        let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        let challenge =
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap();
        assert!(challenge.is_satisfied_by(&verifier));
        let other = CodeVerifier::parse(&"a".repeat(43)).unwrap();
        assert!(!challenge.is_satisfied_by(&other));
    }

    #[test]
    fn verifier_and_challenge_syntax_is_strict() {
        assert!(CodeVerifier::parse(&"a".repeat(42)).is_none());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_none());
        assert!(CodeVerifier::parse(&format!("{}+", "a".repeat(43))).is_none());
        assert!(CodeVerifier::parse(&"~._-".repeat(11)).is_some());
        assert!(CodeChallenge::parse(&"a".repeat(44)).is_none());
        assert!(CodeChallenge::parse(&format!("{}=", "a".repeat(42))).is_none());
    }
}
