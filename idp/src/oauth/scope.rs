//! Scopes (RFC 6749 §3.3): a set of space-delimited tokens; order is irrelevant.

use std::collections::BTreeSet;
use std::fmt;

/// A set of scope tokens, kept sorted so equal sets print equally.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the scope contains characters RFC 6749 does not allow")]
pub struct ScopeError;

impl Scope {
    pub const OPENID: &'static str = "openid";

    /// Parses `scope-token *( SP scope-token )`; repeated spaces and duplicates are
    /// tolerated, other characters are not.
    pub fn parse(input: &str) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        for token in input.split(' ').filter(|t| !t.is_empty()) {
            // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if !token
                .bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
            {
                return Err(ScopeError);
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The tokens of `self` that `allowed` does not contain.
    pub fn difference(&self, allowed: &Scope) -> Scope {
        Self(self.0.difference(&allowed.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_repetition_do_not_matter() {
        let a = Scope::parse("openid email  profile").unwrap();
        let b = Scope::parse("profile openid email email").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "email openid profile");
    }

    #[test]
    fn forbidden_characters_are_refused() {
        assert_eq!(Scope::parse("open\"id"), Err(ScopeError));
        assert_eq!(Scope::parse("caf\u{e9}"), Err(ScopeError));
        assert_eq!(Scope::parse("a\tb"), Err(ScopeError));
    }

    #[test]
    fn subsets_and_differences() {
        let allowed = Scope::parse("openid email").unwrap();
        let asked = Scope::parse("openid admin").unwrap();
        assert!(!asked.is_subset_of(&allowed));
        assert_eq!(asked.difference(&allowed).to_string(), "admin");
    }
}
