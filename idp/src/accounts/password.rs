//! Passwords per OWASP ASVS V2.1: 8 to 128 characters, never truncated, any printable
//! Unicode, no composition rules, and none of the most common passwords.
//!
//! The list is Django's `common-passwords.txt` (20,000 passwords, BSD-3-Clause,
//! compiled by Royce Williams), keeping the 8,354 entries long enough to pass the length
//! rule anyway.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// A password that passed the policy. `Debug` never shows it; it is not `Clone` or
/// comparable, so it cannot leak into logs or be compared in variable time.
pub struct Password(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("Use at least 8 characters.")]
    TooShort,
    #[error("Use at most 128 characters.")]
    TooLong,
    #[error("Passwords cannot contain control characters.")]
    ControlCharacter,
    #[error("This password is too common. Choose one that is harder to guess.")]
    TooCommon,
}

/// The refused passwords, loaded once at start-up (lower-cased).
#[derive(Clone)]
pub struct CommonPasswords(Arc<HashSet<&'static str>>);

impl CommonPasswords {
    pub fn load() -> Self {
        Self(Arc::new(
            COMMON_PASSWORDS.lines().filter(|l| !l.is_empty()).collect(),
        ))
    }

    fn contains(&self, candidate: &str) -> bool {
        self.0.contains(candidate.to_lowercase().as_str())
    }
}

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(input: String, common: &CommonPasswords) -> Result<Self, PasswordError> {
        let chars = input.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        if input.chars().any(char::is_control) {
            return Err(PasswordError::ControlCharacter);
        }
        if common.contains(&input) {
            return Err(PasswordError::TooCommon);
        }
        Ok(Self(input))
    }

    /// A password as typed at login: checked against the stored hash, not the policy
    /// (the policy may have changed since it was set).
    pub fn for_login(input: String) -> Self {
        Self(input)
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Password, PasswordError> {
        Password::parse(s.to_owned(), &CommonPasswords::load())
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        assert_eq!(parse("ab3$efg").err(), Some(PasswordError::TooShort));
        assert!(parse("ключ-ключ").is_ok(), "8+ Unicode characters");
        assert!(
            parse(&"ü".repeat(128)).is_ok(),
            "128 two-byte chars, 256 bytes"
        );
        assert_eq!(parse(&"ü".repeat(129)).err(), Some(PasswordError::TooLong));
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        assert_eq!(parse("password").err(), Some(PasswordError::TooCommon));
        assert_eq!(parse("PassWord1").err(), Some(PasswordError::TooCommon));
        assert_eq!(parse("12345678").err(), Some(PasswordError::TooCommon));
        assert!(parse("S3cureP@ss").is_ok());
    }

    #[test]
    fn control_characters_are_refused_but_spaces_are_fine() {
        assert_eq!(
            parse("abc\u{0}defgh").err(),
            Some(PasswordError::ControlCharacter)
        );
        assert!(parse("correct horse battery").is_ok());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let p = Password::for_login("hunter2hunter2".to_owned());
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
