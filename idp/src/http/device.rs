//! A short description of the device a request came from ("Firefox on Linux"), for
//! people looking at their sessions and sign-in activity. Parsed from the User-Agent by
//! `woothee`; it is a hint the client controls, never a security decision.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

/// Longest description kept; user agents are client-controlled text.
const MAX_CHARS: usize = 80;
const UNKNOWN: &str = "Unknown device";

/// The device description of the current request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Device {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Ok(Self(describe(agent)))
    }
}

/// "Browser on OS", or what part of it is known.
pub fn describe(user_agent: Option<&str>) -> String {
    let Some(parsed) = user_agent.and_then(|ua| woothee::parser::Parser::new().parse(ua)) else {
        return UNKNOWN.to_owned();
    };
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    let text = match (known(parsed.name), known(parsed.os)) {
        (true, true) => format!("{} on {}", parsed.name, parsed.os),
        (true, false) => parsed.name.to_owned(),
        (false, true) => parsed.os.to_owned(),
        (false, false) => return UNKNOWN.to_owned(),
    };
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_browsers_are_named_with_their_system() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(describe(Some(firefox)), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(describe(Some(chrome)), "Chrome on Windows 10");
    }

    #[test]
    fn no_or_unrecognised_agents_are_an_unknown_device() {
        assert_eq!(describe(None), UNKNOWN);
        assert_eq!(describe(Some("")), UNKNOWN);
        assert_eq!(describe(Some("\u{1}\u{2}")), UNKNOWN);
    }
}
