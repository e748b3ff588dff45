//! The device a sign-in came from, for people looking at their sessions and sign-in
//! activity: a short description ("Firefox on Linux") parsed from the User-Agent by
//! `woothee`, and the User-Agent itself (sanitised, truncated) for agents the parser does
//! not know, so two API clients called `DeviceA/1.0` and `DeviceB/1.0` can be told
//! apart. Both are hints the client controls, never a security decision.

/// Longest description kept.
const MAX_DESCRIPTION_CHARS: usize = 80;
/// Longest user agent kept: enough for any real one's product and version.
const MAX_USER_AGENT_CHARS: usize = 200;

/// A request's device, as stored with sessions and sign-in attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// "Browser on OS", what part of it is known, or [`Device::UNKNOWN`].
    pub description: String,
    /// The User-Agent without control characters, at most 200 characters; `None` when
    /// absent or empty.
    pub user_agent: Option<String>,
}

impl Device {
    pub const UNKNOWN: &str = "Unknown device";

    pub fn from_user_agent(user_agent: Option<&str>) -> Self {
        Self {
            description: describe(user_agent),
            user_agent: user_agent.and_then(|ua| sanitise(ua, MAX_USER_AGENT_CHARS)),
        }
    }

    /// This device as people are shown it (see [`Device::label`]).
    pub fn shown(&self) -> String {
        Self::label(Some(&self.description), self.user_agent.as_deref())
    }

    /// What people are shown: the description, or the user agent itself when the parser
    /// did not recognise it.
    pub fn label(description: Option<&str>, user_agent: Option<&str>) -> String {
        match (description, user_agent) {
            (Some(known), _) if known != Self::UNKNOWN => known.to_owned(),
            (_, Some(agent)) => agent.to_owned(),
            _ => Self::UNKNOWN.to_owned(),
        }
    }
}

fn describe(user_agent: Option<&str>) -> String {
    let Some(parsed) = user_agent.and_then(|ua| woothee::parser::Parser::new().parse(ua)) else {
        return Device::UNKNOWN.to_owned();
    };
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    let text = match (known(parsed.name), known(parsed.os)) {
        (true, true) => format!("{} on {}", parsed.name, parsed.os),
        (true, false) => parsed.name.to_owned(),
        (false, true) => parsed.os.to_owned(),
        (false, false) => return Device::UNKNOWN.to_owned(),
    };
    sanitise(&text, MAX_DESCRIPTION_CHARS).unwrap_or_else(|| Device::UNKNOWN.to_owned())
}

/// Without control characters, whitespace runs collapsed, at most `max_chars`; `None`
/// if nothing is left.
fn sanitise(text: &str, max_chars: usize) -> Option<String> {
    let kept: String = text
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max_chars)
        .collect();
    let kept = kept.trim_end().to_owned();
    (!kept.is_empty()).then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_browsers_are_named_with_their_system() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        let device = Device::from_user_agent(Some(firefox));
        assert_eq!(device.description, "Firefox on Linux");
        assert_eq!(device.user_agent.as_deref(), Some(firefox));
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(
            Device::from_user_agent(Some(chrome)).description,
            "Chrome on Windows 10"
        );
    }

    #[test]
    fn no_or_unrecognised_agents_are_an_unknown_device() {
        for agent in [None, Some(""), Some("\u{1}\u{2}"), Some("   ")] {
            assert_eq!(
                Device::from_user_agent(agent),
                Device {
                    description: Device::UNKNOWN.to_owned(),
                    user_agent: None
                },
                "{agent:?}"
            );
        }
    }

    #[test]
    fn unrecognised_agents_are_labelled_by_their_user_agent() {
        let a = Device::from_user_agent(Some("DeviceA/1.0"));
        let b = Device::from_user_agent(Some("DeviceB/1.0"));
        assert_eq!(a.description, Device::UNKNOWN);
        let label = |d: &Device| Device::label(Some(&d.description), d.user_agent.as_deref());
        assert_eq!(label(&a), "DeviceA/1.0");
        assert_eq!(label(&b), "DeviceB/1.0");
        assert_eq!(Device::label(None, None), Device::UNKNOWN);
        assert_eq!(
            Device::label(Some("Firefox on Linux"), Some("x")),
            "Firefox on Linux"
        );
    }

    #[test]
    fn user_agents_are_stripped_of_control_characters_and_truncated() {
        let device = Device::from_user_agent(Some("Tool/1.0\r\nX-Injected: yes\t\u{7}"));
        assert_eq!(
            device.user_agent.as_deref(),
            Some("Tool/1.0 X-Injected: yes")
        );
        let long = format!("Tool/{}", "9".repeat(500));
        let kept = Device::from_user_agent(Some(&long)).user_agent.unwrap();
        assert_eq!(kept.chars().count(), MAX_USER_AGENT_CHARS);
        assert!(long.starts_with(&kept));
    }
}
