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
