//! Email addresses, normalised so that one mailbox is one account.
//!
//! The policy, in the order it is applied:
//!
//! 1. **NFKC.** Compatibility forms become their plain letters: a fullwidth `ｋ` is `k`.
//! 2. **Case.** The local part is lower-cased (as it always was here: no mail provider
//!    people use tells `Alice` from `alice`), and a Turkish dotted `İ` becomes `i` as it
//!    does in Turkish (Unicode's default lower case for it is `i` plus a combining dot,
//!    which no address can contain). The domain goes through IDNA processing
//!    (UTS #46, with the STD3 hostname rules), which folds case and maps a Unicode
//!    domain to its A-label, so `bücher.example` and `xn--bcher-kva.example` are one
//!    address. The stored address carries the A-label: it is what mail servers and
//!    relying parties reading the `email` claim (RFC 5322 syntax) expect.
//! 3. **Characters.** Every non-ASCII character of the local part must be allowed in
//!    identifiers by UTS #39's General Security Profile: no invisible characters, no
//!    symbols. (The domain's characters are IDNA's business.)
//! 4. **Scripts.** The letters of the local part and of each domain label must be
//!    "highly restrictive" in UTS #39's sense: one script, or Latin with Han and the
//!    Japanese or Korean scripts. A Cyrillic `к` among Latin letters is refused.
//! 5. **Confusables.** Each address has a key in which every non-ASCII character is
//!    replaced by its UTS #39 confusable prototype (a dotless `ı` becomes `i`, a whole
//!    Cyrillic `рау` becomes `pay`). The key is unique, so an address that only looks like an existing one is taken. ASCII is kept
//!    as it is: `rn` and `m`, or `1` and `l`, are different mailboxes people really have.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};

/// A syntactically valid, normalised email address and its confusable key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    address: String,
    key: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("Enter an email address like name@example.com.")]
    Invalid,
    #[error("An email address can be at most 254 characters long.")]
    TooLong,
    #[error("This address contains a character that email addresses here cannot use.")]
    DisallowedCharacter,
    #[error(
        "This address mixes letters from different alphabets. Type it as your mail provider shows it."
    )]
    MixedScripts,
}

impl Email {
    /// RFC 5321 §4.5.3.1.3 caps a path at 256 octets, so an address at 254.
    pub const MAX_LEN: usize = 254;

    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        // Checked before normalising too, so no work is spent on a huge input.
        if trimmed.len() > Self::MAX_LEN * 4 {
            return Err(EmailError::TooLong);
        }
        // ASCII is its own NFKC form. Nearly every address is ASCII, and skipping the
        // Unicode tables for it keeps sign-in cheap and them out of memory.
        let normalised: Cow<str> = if trimmed.is_ascii() {
            Cow::Borrowed(trimmed)
        } else {
            Cow::Owned(trimmed.nfkc().collect())
        };
        let (local, domain) = normalised.rsplit_once('@').ok_or(EmailError::Invalid)?;
        let local = local.replace('\u{130}', "i").to_lowercase();
        let ascii_domain = idna::domain_to_ascii_strict(domain).map_err(|_| EmailError::Invalid)?;
        let address = format!("{local}@{ascii_domain}");
        if address.len() > Self::MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if local
            .chars()
            .any(|c| !c.is_ascii() && !c.identifier_allowed())
        {
            return Err(EmailError::DisallowedCharacter);
        }
        // `email_address` follows RFC 5322's addr-spec; we additionally require a dot in
        // the domain (no intranet hostnames) and refuse the display-name form.
        let valid = email_address::EmailAddress::is_valid(&address)
            && !address.contains(['<', '>', ' '])
            && ascii_domain.contains('.')
            && !ascii_domain.ends_with('.');
        if !valid {
            return Err(EmailError::Invalid);
        }
        // An ASCII address without A-labels is one script and its own confusable key.
        if local.is_ascii()
            && !ascii_domain
                .split('.')
                .any(|label| label.starts_with("xn--"))
        {
            return Ok(Self {
                key: address.clone(),
                address,
            });
        }
        let (unicode_domain, _) = idna::domain_to_unicode(&ascii_domain);
        if !one_script(&local) || !unicode_domain.split('.').all(one_script) {
            return Err(EmailError::MixedScripts);
        }
        let key = confusable_key(&format!("{local}@{unicode_domain}"));
        Ok(Self { address, key })
    }

    /// The key unique among accounts: equal for addresses that only look different.
    pub fn confusable_key(&self) -> &str {
        &self.key
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.address
    }
}

/// Whether the letters and digits of `part` are at most UTS #39 "highly restrictive".
/// ASCII punctuation (`.`, `+`, `-`, `_`…) belongs to no script and is left out.
fn one_script(part: &str) -> bool {
    let letters: String = part
        .chars()
        .filter(|c| !c.is_ascii() || c.is_ascii_alphanumeric())
        .collect();
    letters.as_str().detect_restriction_level() <= RestrictionLevel::HighlyRestrictive
}

fn confusable_key(address: &str) -> String {
    let mut key = String::with_capacity(address.len());
    let mut buffer = [0; 4];
    for c in address.nfd() {
        if c.is_ascii() {
            key.push(c);
        } else {
            key.extend(unicode_security::skeleton(c.encode_utf8(&mut buffer)));
        }
    }
    key.to_lowercase().nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(input: &str) -> (String, String) {
        let email = Email::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        (email.as_ref().to_owned(), email.confusable_key().to_owned())
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            parsed("  Alice@Example.COM "),
            (
                "alice@example.com".to_owned(),
                "alice@example.com".to_owned()
            )
        );
    }

    #[test]
    fn compatibility_forms_are_their_plain_letters() {
        assert_eq!(parsed("mi\u{ff4b}e@example.com").0, "mike@example.com");
        assert_eq!(parsed("mike\u{ff20}example.com").0, "mike@example.com");
    }

    #[test]
    fn unicode_domains_are_stored_as_their_a_label() {
        assert_eq!(parsed("a@B\u{fc}cher.example").0, "a@xn--bcher-kva.example");
        assert_eq!(
            parsed("a@xn--bcher-kva.example").0,
            "a@xn--bcher-kva.example"
        );
        assert_eq!(parsed("a@B\u{fc}cher.example").1, "a@b\u{fc}cher.example");
    }

    #[test]
    fn lookalikes_share_a_key() {
        let key = |input| parsed(input).1;
        assert_eq!(key("m\u{131}ke@example.com"), "mike@example.com");
        assert_eq!(key("m\u{130}ke@example.com"), "mike@example.com");
        assert_eq!(key("\u{440}\u{430}\u{443}@example.com"), "pay@example.com");
        // ASCII is never folded: these are different mailboxes.
        assert_eq!(key("rnike@example.com"), "rnike@example.com");
        assert_eq!(key("john1@example.com"), "john1@example.com");
    }

    #[test]
    fn mixed_scripts_are_refused() {
        for bad in [
            "mi\u{43a}e@example.com",
            "mike@exam\u{440}le.com",
            "mike@ex\u{430}mple.com",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::MixedScripts), "{bad:?}");
        }
    }

    #[test]
    fn single_script_addresses_in_other_alphabets_are_accepted() {
        for good in [
            "\u{438}\u{432}\u{430}\u{43d}@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}",
            "j\u{f6}rg@b\u{fc}cher.example",
            "\u{7530}\u{4e2d}\u{3072}\u{308d}\u{3057}@example.jp",
            "first.last+tag@example.com",
        ] {
            assert!(Email::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn invisible_and_symbol_characters_are_refused() {
        for bad in ["mi\u{200b}ke@example.com", "mike\u{2764}@example.com"] {
            assert_eq!(
                Email::parse(bad),
                Err(EmailError::DisallowedCharacter),
                "{bad:?}"
            );
        }
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
            "a@exa_mple.com",
            "a@xn--zz.example",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn overlong_emails_are_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
        let huge = "a".repeat(10_000);
        assert_eq!(Email::parse(&huge), Err(EmailError::TooLong));
    }
}
