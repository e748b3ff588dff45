//! Email addresses: syntax checked, trimmed and lower-cased so uniqueness is
//! case-insensitive.

/// A syntactically valid, normalised email address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("Enter an email address like name@example.com.")]
    Invalid,
    #[error("An email address can be at most 254 characters long.")]
    TooLong,
}

impl Email {
    /// RFC 5321 §4.5.3.1.3 caps a path at 256 octets, so an address at 254.
    pub const MAX_LEN: usize = 254;

    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.len() > Self::MAX_LEN {
            return Err(EmailError::TooLong);
        }
        // `email_address` follows RFC 5322's addr-spec; we additionally require a dot in
        // the domain (no intranet hostnames) and refuse the display-name form.
        let valid = email_address::EmailAddress::is_valid(trimmed)
            && !trimmed.contains(['<', '>', ' '])
            && trimmed
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.contains('.') && !domain.ends_with('.'));
        if !valid {
            return Err(EmailError::Invalid);
        }
        Ok(Self(trimmed.to_lowercase()))
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").map(|e| e.as_ref().to_owned()),
            Ok("alice@example.com".to_owned())
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@b.",
            "a b@example.com",
            "Alice <a@example.com>",
            "a@@example.com",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn overlong_emails_are_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }
}
