//! The password reset pages: `/password/forgot` asks for the address and always says
//! the same ("if an account uses it, we sent a link"); `/password/reset?token=...`
//! shows the new-password form only for a live link, and only its POST spends the
//! link, so a mail scanner opening it changes nothing. Afterwards the browser goes to
//! the sign-in page with a notice.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::accounts::recovery::{ResetError, ResetRequestError};
use crate::http::browser_session::BrowserSession;
use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::oauth::authorize::see_other;
use crate::http::pages::email::LinkQuery;
use crate::http::pages::login::{CsrfForm, CsrfProtected, too_many_requests};
use crate::http::pages::views::{ForgotPasswordPage, ResetPasswordPage};
use crate::http::pages::{self, PageError};
use crate::http::state::AppState;
use crate::sessions::device::Device;

const PASSWORD_RESET_DONE: &str = "Your password was changed. Sign in with the new one.";
const PASSWORDS_DIFFER: &str = "The passwords do not match.";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            endpoints::PASSWORD_FORGOT_PAGE,
            get(forgot_page).post(forgot),
        )
        .route(endpoints::PASSWORD_RESET_PAGE, get(reset_page).post(reset))
}

/// The page for a link that does not work: unknown, tampered with, used or expired.
fn dead_link() -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        "Password reset links work once, for a short while, and only the newest one. Ask \
         for a new link on the sign-in page (\"Forgot your password?\").",
    )
}

async fn forgot_page(session: BrowserSession) -> Result<Response, PageError> {
    Ok(pages::render(&ForgotPasswordPage {
        ctx: session.page_context().await?,
        email: "",
        sent: false,
    }))
}

#[derive(Deserialize)]
struct ForgotForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
}

impl CsrfProtected for ForgotForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn forgot(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<ForgotForm>,
) -> Result<Response, PageError> {
    match state.accounts.request_password_reset(&form.email, ip).await {
        Ok(()) => {}
        Err(ResetRequestError::Throttled { retry_after_secs }) => {
            return Ok(too_many_requests(
                retry_after_secs,
                "Too many password reset requests from your network. Wait a few minutes, \
                 then try again.",
            ));
        }
        Err(ResetRequestError::Unexpected(e)) => return Err(PageError::internal(&e)),
    }
    Ok(pages::render(&ForgotPasswordPage {
        ctx: session.page_context().await?,
        email: form.email.trim(),
        sent: true,
    }))
}

async fn reset_page(
    State(state): State<AppState>,
    session: BrowserSession,
    Query(query): Query<LinkQuery>,
) -> Result<Response, PageError> {
    let works = state
        .accounts
        .reset_link_works(&query.token)
        .await
        .map_err(|e| PageError::internal(&e))?;
    if !works {
        return Err(dead_link());
    }
    Ok(pages::render(&ResetPasswordPage {
        ctx: session.page_context().await?,
        token: &query.token,
        password_error: None,
        confirmation_error: None,
    }))
}

#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

impl CsrfProtected for ResetForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<ResetForm>,
) -> Result<Response, PageError> {
    let (mut password_error, mut confirmation_error) = (None, None);
    if form.password != form.password_confirmation {
        confirmation_error = Some(PASSWORDS_DIFFER.to_owned());
    } else {
        match state
            .accounts
            .reset_password(&form.token, form.password, ip, &device)
            .await
        {
            Ok(()) => {
                session
                    .set_flash(PASSWORD_RESET_DONE)
                    .await
                    .map_err(|e| PageError::internal(&e))?;
                return see_other(endpoints::LOGIN_PAGE);
            }
            Err(ResetError::InvalidLink) => return Err(dead_link()),
            Err(ResetError::InvalidPassword(e)) => password_error = Some(e.to_string()),
            Err(ResetError::Unexpected(e)) => return Err(PageError::internal(&e)),
        }
    }
    Ok(pages::render_with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &ResetPasswordPage {
            ctx: session.page_context().await?,
            token: &form.token,
            password_error,
            confirmation_error,
        },
    ))
}
