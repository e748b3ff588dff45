//! One struct per page, each rendering a template from `templates/` that extends
//! `base.html`. Values are HTML-escaped by askama; nothing here builds HTML by hand.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const SITE_NAME: &str = "idp";

/// The `Content-Type` of every page.
pub const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");

/// What every page template receives.
pub struct PageContext {
    pub site_name: &'static str,
    /// This session's CSRF token, for the page's forms; empty on pages without one.
    pub csrf_token: String,
    /// A one-time notice about what the last form did ("Session ended.").
    pub flash: Option<String>,
}

impl PageContext {
    pub fn without_form() -> Self {
        Self {
            site_name: SITE_NAME,
            csrf_token: String::new(),
            flash: None,
        }
    }

    /// Shows `flash` (see `BrowserSession::take_flash`) above the page's content.
    pub fn with_flash(self, flash: Option<String>) -> Self {
        Self { flash, ..self }
    }
}

/// Renders a page as a 200 HTML response (a 500 if the template fails).
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => ([(header::CONTENT_TYPE, HTML)], html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "Failed to render a page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Renders a page with another status (a form shown again with its errors).
pub fn render_with_status(status: StatusCode, page: &impl Template) -> Response {
    let mut response = render(page);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub ctx: PageContext,
    pub signed_in_as: Option<String>,
    pub account_path: &'static str,
    pub logout_path: &'static str,
    pub login_path: &'static str,
    pub register_path: &'static str,
    pub discovery_path: &'static str,
    pub jwks_path: &'static str,
    pub health_path: &'static str,
}

/// `GET /login`, and `POST /login` shown again after a failure.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub ctx: PageContext,
    /// The waiting authorization request this sign-in continues.
    pub request: Option<&'a str>,
    /// The page of ours to go back to afterwards (already checked to be one).
    pub return_to: Option<&'a str>,
    /// The application the user is signing in to.
    pub client_name: Option<&'a str>,
    /// Kept after a failure (never the password).
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub register_href: &'a str,
    /// The idp can have passkeys (its issuer is on a domain).
    pub passkeys: bool,
}

/// `GET /password/forgot`, and the same form after a refusal.
#[derive(Template)]
#[template(path = "forgot_password.html")]
pub struct ForgotPasswordPage<'a> {
    pub ctx: PageContext,
    pub email: &'a str,
    /// Set once the request was taken: the page then says to check the mail.
    pub sent: bool,
}

/// `GET /password/reset?token=...` with a live link, and the form after an error.
#[derive(Template)]
#[template(path = "reset_password.html")]
pub struct ResetPasswordPage<'a> {
    pub ctx: PageContext,
    pub token: &'a str,
    pub password_error: Option<String>,
    pub confirmation_error: Option<String>,
}

/// What a link from a mail did ("Email address confirmed").
#[derive(Template)]
#[template(path = "done.html")]
pub struct DonePage<'a> {
    pub ctx: PageContext,
    pub title: &'a str,
    pub message: &'a str,
    /// Where to go next: the path and its label.
    pub next: (&'a str, &'a str),
}

/// What is wrong with each field of the registration form.
#[derive(Default)]
pub struct RegisterErrors {
    pub email: Option<String>,
    pub name: Option<String>,
    pub password: Option<String>,
    pub password_confirmation: Option<String>,
}

impl RegisterErrors {
    pub fn any(&self) -> bool {
        self.email.is_some()
            || self.name.is_some()
            || self.password.is_some()
            || self.password_confirmation.is_some()
    }
}

#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage<'a> {
    pub ctx: PageContext,
    pub request: Option<&'a str>,
    pub client_name: Option<&'a str>,
    pub email: &'a str,
    pub name: &'a str,
    pub errors: RegisterErrors,
    pub login_href: &'a str,
}

/// One line of the consent page.
pub struct ScopeLine {
    pub token: String,
    pub description: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub ctx: PageContext,
    pub request: &'a str,
    pub client_name: &'a str,
    pub user_email: &'a str,
    pub scopes: Vec<ScopeLine>,
    /// Where the user will be sent, so they can recognise the application.
    pub destination: &'a str,
}

/// The confirmation asked before ending a session (RP-Initiated Logout §2).
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub ctx: PageContext,
    pub user_email: &'a str,
    pub client_name: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
    pub home_path: &'static str,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage<'a> {
    pub ctx: PageContext,
    pub client_name: Option<&'a str>,
    pub login_path: &'static str,
}

/// One live session on the account page.
pub struct SessionLine {
    pub id: String,
    /// "Firefox on Linux", or the user agent itself when that is unknown (a hint, not
    /// proof).
    pub device: String,
    /// How it signed in, when that was not a browser ("App").
    pub kind: Option<&'static str>,
    pub ip: String,
    /// "5 minutes ago", and the same instant in RFC 3339 for `<time datetime>`.
    pub last_active: String,
    pub last_active_at: String,
    pub signed_in: String,
    pub signed_in_at: String,
    /// The session of the browser looking at the page.
    pub current: bool,
}

/// One sign-in attempt on the account page.
pub struct ActivityLine {
    pub at: String,
    pub at_rfc3339: String,
    /// In words ("Signed in", "Wrong password").
    pub outcome: &'static str,
    pub succeeded: bool,
    pub ip: String,
    pub device: String,
}

/// What is wrong with each field of the password change form.
#[derive(Default)]
pub struct PasswordErrors {
    pub current_password: Option<String>,
    pub new_password: Option<String>,
    pub new_password_confirmation: Option<String>,
}

impl PasswordErrors {
    pub fn any(&self) -> bool {
        self.current_password.is_some()
            || self.new_password.is_some()
            || self.new_password_confirmation.is_some()
    }
}

/// `GET /account`, and the password form shown again with its errors.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub ctx: PageContext,
    pub email: &'a str,
    /// Whether the address was verified; the page asks to verify it otherwise.
    pub email_verified: bool,
    pub verify_path: &'static str,
    /// What is wrong with the account deletion form.
    pub delete_error: Option<String>,
    pub delete_path: &'static str,
    /// The change-of-address form: what was submitted, and what is wrong with it.
    pub new_email: String,
    pub email_change_error: Option<String>,
    pub email_path: &'static str,
    /// Whether signing in takes a second factor.
    pub two_step_on: bool,
    pub two_step_path: &'static str,
    /// The display name field: the stored name, or what was submitted with an error.
    pub name: String,
    pub name_error: Option<String>,
    /// This device first, then the most recently used.
    pub sessions: Vec<SessionLine>,
    /// Newest first.
    pub activity: Vec<ActivityLine>,
    pub password_errors: PasswordErrors,
    /// How long an access token lives ("15 minutes"): what ending a session cannot take
    /// back at resource servers that receive no security events.
    pub access_lifetime: String,
    pub end_session_path: &'static str,
    pub end_others_path: &'static str,
    pub password_path: &'static str,
    pub name_path: &'static str,
    pub logout_path: &'static str,
}

impl AccountPage<'_> {
    pub fn has_other_sessions(&self) -> bool {
        self.sessions.iter().any(|s| !s.current)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub ctx: PageContext,
    pub title: &'a str,
    pub message: &'a str,
    pub code: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub request_id: Option<String>,
}

/// One authenticator app or passkey on the two-step page.
#[derive(Clone)]
pub struct AuthenticatorLine {
    pub id: String,
    pub name: String,
    /// "Authenticator app" or "Passkey".
    pub kind: &'static str,
    /// "3 Dec 2026, 14:05 UTC".
    pub added: String,
}

/// `/account/two-step`: the authenticator apps and recovery codes.
#[derive(Template)]
#[template(path = "two_step.html")]
pub struct TwoStepPage<'a> {
    pub ctx: PageContext,
    pub authenticators: Vec<AuthenticatorLine>,
    pub passkeys: Vec<AuthenticatorLine>,
    /// Both kinds, for the removal form.
    pub factors: Vec<AuthenticatorLine>,
    pub recovery_codes_left: i64,
    pub error: Option<&'a str>,
    pub enrol_path: &'static str,
    pub remove_path: &'static str,
    pub codes_path: &'static str,
    pub passkey_path: &'static str,
    pub passkey_options_path: &'static str,
    /// The idp can have passkeys (its issuer is on a domain).
    pub passkeys_available: bool,
}

/// Adding an authenticator app: the QR code and key, then the first code.
#[derive(Template)]
#[template(path = "totp_enrol.html")]
pub struct TotpEnrolPage<'a> {
    pub ctx: PageContext,
    pub id: &'a str,
    /// Inline SVG drawn by the idp (no remote image, nothing a CSP would refuse).
    pub qr_svg: &'a str,
    /// The secret in base32, to type into an app that cannot scan.
    pub secret: &'a str,
    pub name: &'a str,
    pub error: Option<&'a str>,
    /// The waiting authorization request adding the app continues, and its client.
    pub request: Option<&'a str>,
    pub client_name: Option<&'a str>,
    pub action: &'static str,
    pub back: &'static str,
}

/// A set of recovery codes, shown this once.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage<'a> {
    pub ctx: PageContext,
    pub message: &'a str,
    pub codes: Vec<String>,
    /// Where to go next: the path and its label.
    pub next: (&'a str, &'a str),
}

/// `/login/second-factor`: a code from an authenticator app, or a recovery code.
#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage<'a> {
    pub ctx: PageContext,
    pub action: &'static str,
    /// The recovery code form rather than the app's.
    pub recovery: bool,
    /// The user has an authenticator app, and a passkey.
    pub apps: bool,
    pub passkey: bool,
    pub error: Option<&'a str>,
}
