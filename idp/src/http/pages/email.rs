//! The pages links about the account's address open: `/email/verify?token=...` confirms
//! the address, `/email/change?token=...` moves the account to the new one (each link's
//! purpose is to be opened), or they say the link does not work.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::accounts::email_change::ConfirmEmailChangeError;
use crate::accounts::verification::VerifyError;
use crate::http::browser_session::BrowserSession;
use crate::http::endpoints;
use crate::http::pages::views::DonePage;
use crate::http::pages::{self, PageError};
use crate::http::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::EMAIL_VERIFY_PAGE, get(verify))
        .route(endpoints::EMAIL_CHANGE_PAGE, get(change))
}

/// The query of a page a mailed link opens.
#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    pub token: String,
}

async fn verify(
    State(state): State<AppState>,
    session: BrowserSession,
    Query(query): Query<LinkQuery>,
) -> Result<Response, PageError> {
    match state.accounts.verify_email(&query.token).await {
        Ok(()) => Ok(pages::render(&DonePage {
            ctx: session.page_context().await?,
            title: "Email address confirmed",
            message: "Thank you: your email address is confirmed. Applications you sign in \
                      to can now rely on it.",
            next: (endpoints::ACCOUNT_PAGE, "Go to your account"),
        })),
        Err(VerifyError::InvalidLink) => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "This link does not work",
            "Confirmation links work once, for a day, and only the newest one. Your account \
             page can send a new one.",
        )),
        Err(VerifyError::Unexpected(e)) => Err(PageError::internal(&e)),
    }
}

async fn change(
    State(state): State<AppState>,
    session: BrowserSession,
    Query(query): Query<LinkQuery>,
) -> Result<Response, PageError> {
    match state.accounts.confirm_email_change(&query.token).await {
        Ok(()) => Ok(pages::render(&DonePage {
            ctx: session.page_context().await?,
            title: "Email address changed",
            message: "Your account now signs in with this address, and mail about it comes \
                      here.",
            next: (endpoints::ACCOUNT_PAGE, "Go to your account"),
        })),
        Err(ConfirmEmailChangeError::InvalidLink) => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "This link does not work",
            "Links to change your address work once, for a day, and only the newest one. \
             Ask again on your account page.",
        )),
        Err(ConfirmEmailChangeError::EmailTaken) => Err(PageError::new(
            StatusCode::CONFLICT,
            "This address is taken",
            "Another account uses this address now, so yours stays as it was.",
        )),
        Err(ConfirmEmailChangeError::Unexpected(e)) => Err(PageError::internal(&e)),
    }
}
