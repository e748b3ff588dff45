//! What each message says, as plain text and HTML from askama templates
//! (`templates/mail/`): the product's look, no remote images, links built from the
//! issuer URL.

use askama::Template;

use crate::mail::Mail;

/// Tells a person their password changed, with when, from which device and address,
/// and what to do if it was not them.
pub struct PasswordChanged<'a> {
    /// "3 Dec 2026, 14:05 UTC".
    pub when: &'a str,
    pub device: &'a str,
    pub ip: &'a str,
    /// The account page, where sessions can be ended.
    pub account_url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_changed.txt")]
struct PasswordChangedText<'a> {
    n: &'a PasswordChanged<'a>,
}

#[derive(Template)]
#[template(path = "mail/password_changed.html")]
struct PasswordChangedHtml<'a> {
    n: &'a PasswordChanged<'a>,
}

impl PasswordChanged<'_> {
    pub fn to(&self, recipient: &str) -> anyhow::Result<Mail> {
        Ok(Mail {
            to: recipient.to_owned(),
            subject: "Your password was changed".to_owned(),
            text: PasswordChangedText { n: self }.render()?,
            html: PasswordChangedHtml { n: self }.render()?,
        })
    }
}

/// A single-use link to set a new password.
pub struct PasswordReset<'a> {
    pub link: &'a str,
    /// "30 minutes".
    pub valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_reset.txt")]
struct PasswordResetText<'a> {
    n: &'a PasswordReset<'a>,
}

#[derive(Template)]
#[template(path = "mail/password_reset.html")]
struct PasswordResetHtml<'a> {
    n: &'a PasswordReset<'a>,
}

impl PasswordReset<'_> {
    pub fn to(&self, recipient: &str) -> anyhow::Result<Mail> {
        Ok(Mail {
            to: recipient.to_owned(),
            subject: "Reset your password".to_owned(),
            text: PasswordResetText { n: self }.render()?,
            html: PasswordResetHtml { n: self }.render()?,
        })
    }
}

/// A single-use link proving the address belongs to the account's owner.
pub struct EmailVerification<'a> {
    pub link: &'a str,
    /// "24 hours".
    pub valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_verification.txt")]
struct EmailVerificationText<'a> {
    n: &'a EmailVerification<'a>,
}

#[derive(Template)]
#[template(path = "mail/email_verification.html")]
struct EmailVerificationHtml<'a> {
    n: &'a EmailVerification<'a>,
}

impl EmailVerification<'_> {
    pub fn to(&self, recipient: &str) -> anyhow::Result<Mail> {
        Ok(Mail {
            to: recipient.to_owned(),
            subject: "Confirm your email address".to_owned(),
            text: EmailVerificationText { n: self }.render()?,
            html: EmailVerificationHtml { n: self }.render()?,
        })
    }
}

/// To the new address: a single-use link that makes it the account's.
pub struct EmailChangeConfirmation<'a> {
    pub link: &'a str,
    pub valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_change_confirmation.txt")]
struct EmailChangeConfirmationText<'a> {
    n: &'a EmailChangeConfirmation<'a>,
}

#[derive(Template)]
#[template(path = "mail/email_change_confirmation.html")]
struct EmailChangeConfirmationHtml<'a> {
    n: &'a EmailChangeConfirmation<'a>,
}

impl EmailChangeConfirmation<'_> {
    pub fn to(&self, recipient: &str) -> anyhow::Result<Mail> {
        Ok(Mail {
            to: recipient.to_owned(),
            subject: "Confirm your new email address".to_owned(),
            text: EmailChangeConfirmationText { n: self }.render()?,
            html: EmailChangeConfirmationHtml { n: self }.render()?,
        })
    }
}

/// To the old address: a change to `new_email` was asked for, or (`done`) made.
pub struct EmailChangeNotice<'a> {
    pub new_email: &'a str,
    pub done: bool,
    /// "3 Dec 2026, 14:05 UTC".
    pub when: &'a str,
    /// Where the request came from (not known for the confirmation, a link opened).
    pub origin: Option<(&'a str, &'a str)>,
    pub account_url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_change_notice.txt")]
struct EmailChangeNoticeText<'a> {
    n: &'a EmailChangeNotice<'a>,
}

#[derive(Template)]
#[template(path = "mail/email_change_notice.html")]
struct EmailChangeNoticeHtml<'a> {
    n: &'a EmailChangeNotice<'a>,
}

impl EmailChangeNotice<'_> {
    pub fn to(&self, recipient: &str) -> anyhow::Result<Mail> {
        let subject = if self.done {
            "Your email address was changed"
        } else {
            "A change of your email address was requested"
        };
        Ok(Mail {
            to: recipient.to_owned(),
            subject: subject.to_owned(),
            text: EmailChangeNoticeText { n: self }.render()?,
            html: EmailChangeNoticeHtml { n: self }.render()?,
        })
    }
}

/// The last message to a deleted account's address.
pub struct AccountDeleted<'a> {
    pub when: &'a str,
}

#[derive(Template)]
#[template(path = "mail/account_deleted.txt")]
struct AccountDeletedText<'a> {
    n: &'a AccountDeleted<'a>,
}

#[derive(Template)]
#[template(path = "mail/account_deleted.html")]
struct AccountDeletedHtml<'a> {
    n: &'a AccountDeleted<'a>,
}

impl AccountDeleted<'_> {
    pub fn to(&self, recipient: &str) -> anyhow::Result<Mail> {
        Ok(Mail {
            to: recipient.to_owned(),
            subject: "Your account was deleted".to_owned(),
            text: AccountDeletedText { n: self }.render()?,
            html: AccountDeletedHtml { n: self }.render()?,
        })
    }
}

/// How a notice says when something happened: "3 Dec 2026, 14:05 UTC".
pub const NOTICE_TIME: &str = "%-d %b %Y, %H:%M UTC";

/// How long a link works, as a message says it: "30 minutes", "24 hours".
pub fn in_words(secs: i64) -> String {
    match secs {
        s if s % 3600 == 0 && s >= 3600 => match s / 3600 {
            1 => "1 hour".to_owned(),
            h => format!("{h} hours"),
        },
        s => match (s / 60).max(1) {
            1 => "1 minute".to_owned(),
            m => format!("{m} minutes"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_lifetimes_are_said_in_words() {
        assert_eq!(in_words(1800), "30 minutes");
        assert_eq!(in_words(3600), "1 hour");
        assert_eq!(in_words(86_400), "24 hours");
        assert_eq!(in_words(5400), "90 minutes");
    }
}

/// A change to how the account signs in (a second factor added or removed, recovery
/// codes made or used): what, when, from which device and address, and what to do if
/// it was not them.
pub struct SecurityChange<'a> {
    /// The subject and heading: "An authenticator app was added to your account".
    pub subject: &'a str,
    /// One or two sentences on what changed.
    pub what: &'a str,
    pub when: &'a str,
    pub device: &'a str,
    pub ip: &'a str,
    pub account_url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/security_change.txt")]
struct SecurityChangeText<'a> {
    n: &'a SecurityChange<'a>,
}

#[derive(Template)]
#[template(path = "mail/security_change.html")]
struct SecurityChangeHtml<'a> {
    n: &'a SecurityChange<'a>,
}

impl SecurityChange<'_> {
    pub fn to(&self, recipient: &str) -> anyhow::Result<Mail> {
        Ok(Mail {
            to: recipient.to_owned(),
            subject: self.subject.to_owned(),
            text: SecurityChangeText { n: self }.render()?,
            html: SecurityChangeHtml { n: self }.render()?,
        })
    }
}
