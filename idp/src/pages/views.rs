//! One struct per page, each rendering a template from `templates/` that extends
//! `base.html`. Values are HTML-escaped by askama; nothing here builds HTML by hand.

use askama::Template;

use crate::pages::PageContext;

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub ctx: PageContext,
    pub signed_in_as: Option<String>,
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
    /// The application the user is signing in to.
    pub client_name: Option<&'a str>,
    /// Kept after a failure (never the password).
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub register_href: &'a str,
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
