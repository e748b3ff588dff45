//! A user's profile and the parts of it a client may change. The email comes from the
//! idp's token when the profile is created and is never changed by a client.

use chrono::{DateTime, Utc};

use super::UserId;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_BIO_CHARS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: UserId,
    pub name: ProfileName,
    pub email: String,
    pub bio: Bio,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileValidationError {
    #[error("The name must be at most {MAX_NAME_CHARS} characters long.")]
    NameTooLong,
    #[error("The name must not contain control characters.")]
    NameHasControlCharacters,
    #[error("The bio must be at most {MAX_BIO_CHARS} characters long.")]
    BioTooLong,
    #[error("The bio must not contain control characters other than tabs and line breaks.")]
    BioHasControlCharacters,
}

/// A display name: at most 100 characters, no control characters. May be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileName(String);

impl ProfileName {
    pub fn parse(value: String) -> Result<Self, ProfileValidationError> {
        if value.chars().count() > MAX_NAME_CHARS {
            return Err(ProfileValidationError::NameTooLong);
        }
        if value.chars().any(char::is_control) {
            return Err(ProfileValidationError::NameHasControlCharacters);
        }
        Ok(Self(value))
    }
}

impl AsRef<str> for ProfileName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Free text: at most 1000 characters; line breaks and tabs allowed, other control
/// characters (NUL among them, which PostgreSQL cannot store) refused. May be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bio(String);

impl Bio {
    pub fn parse(value: String) -> Result<Self, ProfileValidationError> {
        if value.chars().count() > MAX_BIO_CHARS {
            return Err(ProfileValidationError::BioTooLong);
        }
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ProfileValidationError::BioHasControlCharacters);
        }
        Ok(Self(value))
    }
}

impl AsRef<str> for Bio {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What a `PUT` may change; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub name: Option<ProfileName>,
    pub bio: Option<Bio>,
}

impl ProfileUpdate {
    pub fn parse(
        name: Option<String>,
        bio: Option<String>,
    ) -> Result<Self, ProfileValidationError> {
        Ok(Self {
            name: name.map(ProfileName::parse).transpose()?,
            bio: bio.map(Bio::parse).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_limited_to_100_characters_not_bytes() {
        assert!(ProfileName::parse("é".repeat(100)).is_ok());
        assert_eq!(
            ProfileName::parse("a".repeat(101)),
            Err(ProfileValidationError::NameTooLong)
        );
        assert!(ProfileName::parse(String::new()).is_ok());
    }

    #[test]
    fn names_refuse_control_characters() {
        for bad in ["a\nb", "a\tb", "nul\0", "\u{7f}", "\u{85}"] {
            assert_eq!(
                ProfileName::parse(bad.to_owned()),
                Err(ProfileValidationError::NameHasControlCharacters)
            );
        }
        assert!(ProfileName::parse("Zoë O'Brien-Łukasz 🙂".to_owned()).is_ok());
    }

    #[test]
    fn bios_allow_line_breaks_but_not_other_control_characters() {
        assert!(Bio::parse("line one\r\nline two\ttabbed".to_owned()).is_ok());
        assert_eq!(
            Bio::parse("nul\0".to_owned()),
            Err(ProfileValidationError::BioHasControlCharacters)
        );
        assert!(Bio::parse("b".repeat(1000)).is_ok());
        assert_eq!(
            Bio::parse("b".repeat(1001)),
            Err(ProfileValidationError::BioTooLong)
        );
    }
}
