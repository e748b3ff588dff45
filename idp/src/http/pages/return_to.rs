//! Where a sign-in page sends the browser afterwards (`return_to`): only a path on this
//! origin, so the parameter cannot be turned into an open redirect.

/// Longest path accepted; ours are short.
const MAX_LEN: usize = 512;

/// A same-origin relative path: one leading `/`, then no second `/` or `\` (browsers
/// read `//host` and `/\host` as another origin), and only printable ASCII without a
/// backslash (anything else is percent-encoded by whoever built the link).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnTo(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("return_to must be a path on this site")]
pub struct ReturnToError;

impl ReturnTo {
    pub fn parse(candidate: &str) -> Result<Self, ReturnToError> {
        let mut chars = candidate.chars();
        let well_formed = candidate.len() <= MAX_LEN
            && chars.next() == Some('/')
            && !matches!(chars.next(), Some('/' | '\\'))
            && candidate.chars().all(|c| c.is_ascii_graphic() && c != '\\');
        if well_formed {
            Ok(Self(candidate.to_owned()))
        } else {
            Err(ReturnToError)
        }
    }
}

impl AsRef<str> for ReturnTo {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_on_this_site_are_accepted() {
        for path in [
            "/",
            "/account",
            "/account?tab=sessions",
            "/a/b#c",
            "/caf%C3%A9",
        ] {
            assert_eq!(ReturnTo::parse(path).map(|r| r.0), Ok(path.to_owned()));
        }
    }

    #[test]
    fn anything_that_could_leave_the_site_is_refused() {
        for candidate in [
            "",
            "account",
            "//evil.example",
            "//evil.example/account",
            "/\\evil.example",
            "/a\\b",
            "\\\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            " /account",
            "/\t/evil.example",
            "/account\r\nSet-Cookie: x=y",
            "/a b",
            "/café",
        ] {
            assert_eq!(
                ReturnTo::parse(candidate),
                Err(ReturnToError),
                "{candidate:?}"
            );
        }
        assert!(ReturnTo::parse(&format!("/{}", "a".repeat(MAX_LEN))).is_err());
    }
}
