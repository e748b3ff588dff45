//! `/email/verify?token=...`, the page an email verification link opens: it confirms the
//! address (the link's purpose is to be opened) or says the link does not work.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::accounts::verification::VerifyError;
use crate::http::browser_session::BrowserSession;
use crate::http::endpoints;
use crate::http::pages::views::EmailVerifiedPage;
use crate::http::pages::{self, PageError};
use crate::http::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route(endpoints::EMAIL_VERIFY_PAGE, get(verify))
}

#[derive(Deserialize)]
struct LinkQuery {
    #[serde(default)]
    token: String,
}

async fn verify(
    State(state): State<AppState>,
    session: BrowserSession,
    Query(query): Query<LinkQuery>,
) -> Result<Response, PageError> {
    match state.accounts.verify_email(&query.token).await {
        Ok(()) => Ok(pages::render(&EmailVerifiedPage {
            ctx: session.page_context().await?,
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
