//! A user's id: the UUID the idp puts in the token's `sub`, and the profile's key.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(Uuid);

impl UserId {
    /// Accepts only the canonical hyphenated form (what the idp issues), any case.
    pub fn parse(value: &str) -> Option<Self> {
        if value.len() != 36 {
            return None;
        }
        Uuid::parse_str(value).ok().map(Self)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl FromStr for UserId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or(())
    }
}

/// Lowercase hyphenated, as stored.
impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyphenated_uuids_are_user_ids() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(
            UserId::parse(id).map(|u| u.to_string()),
            Some(id.to_owned())
        );
        assert_eq!(
            UserId::parse(&id.to_uppercase()).map(|u| u.to_string()),
            Some(id.to_owned())
        );
        assert_eq!(UserId::parse("0f8fad5bd9cb469fa16570867728950e"), None);
        assert_eq!(UserId::parse("{0f8fad5b-d9cb-469f-a165-70867728950}"), None);
        assert_eq!(UserId::parse("me"), None);
        assert_eq!(UserId::parse(""), None);
    }
}
