//! The second step of a sign-in, `/login/second-factor`: after a right password, an
//! account with two-step sign-in is not signed in yet. The browser session holds a
//! pending sign-in instead (who, where to go next, five minutes at most), which no
//! other page takes for a signed-in user; a code from an authenticator app or a
//! recovery code completes it.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::accounts::amr::Amr;
use crate::factors::{Actor, CheckError, SecondFactor};
use crate::http::browser_session::{BrowserSession, PendingSignIn};
use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::oauth::authorize::see_other;
use crate::http::pages::login::{
    ACCOUNT_DISABLED, CsrfForm, CsrfProtected, next_after, signed_in, too_many_requests,
};
use crate::http::pages::views::SecondFactorPage;
use crate::http::pages::{self, PageError};
use crate::http::state::AppState;
use crate::sessions::device::Device;

const WRONG_CODE: &str = "That code is not right. Codes from the app change every 30 \
                          seconds and work once; recovery codes work once each.";

pub fn routes() -> Router<AppState> {
    Router::new().route(
        endpoints::SECOND_FACTOR_PAGE,
        get(second_factor_page).post(submit),
    )
}

#[derive(Deserialize)]
struct MethodQuery {
    method: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn second_factor_page(
    State(state): State<AppState>,
    session: BrowserSession,
    Query(query): Query<MethodQuery>,
) -> Result<Response, PageError> {
    let now = state.clock.now().timestamp();
    let Some(pending) = pending(&session, now).await? else {
        return see_other(endpoints::LOGIN_PAGE);
    };
    let recovery = query.method.as_deref() == Some("recovery");
    render(&state, &session, &pending, recovery, None).await
}

/// The page for `pending`'s user: the forms of the factors they have.
async fn render(
    state: &AppState,
    session: &BrowserSession,
    pending: &PendingSignIn,
    recovery: bool,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let overview = state
        .factors
        .overview(&pending.user_id)
        .await
        .map_err(|e| PageError::internal(&e))?;
    let page = SecondFactorPage {
        ctx: session.page_context().await?,
        action: endpoints::SECOND_FACTOR_PAGE,
        recovery,
        apps: !overview.authenticators.is_empty(),
        passkey: !overview.passkeys.is_empty(),
        error,
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(pages::render_with_status(status, &page))
}

async fn pending(session: &BrowserSession, now: i64) -> Result<Option<PendingSignIn>, PageError> {
    session
        .pending_sign_in(now)
        .await
        .map_err(|e| PageError::internal(&e))
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    code: String,
    /// `recovery` when the recovery code form was used (to show it again).
    #[serde(default)]
    method: String,
}

impl CsrfProtected for CodeForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, PageError> {
    let now = state.clock.now().timestamp();
    let Some(pending) = pending(&session, now).await? else {
        return see_other(endpoints::LOGIN_PAGE);
    };
    let actor = Actor {
        user_id: &pending.user_id,
        ip,
        device: &device,
    };
    match state
        .factors
        .check(&actor, &pending.email, &form.code)
        .await
    {
        Ok(factor) => {
            let (request, return_to) = (pending.request.as_deref(), pending.return_to.as_deref());
            let next = next_after(&state, &session, request, return_to).await?;
            let amr = match factor {
                SecondFactor::Totp | SecondFactor::RecoveryCode => Amr::password_and_code(),
                SecondFactor::Passkey => Amr::password_and_passkey(),
            };
            let user = (pending.user_id.as_str(), pending.email.as_str());
            signed_in(&state.clock, &session, user, &amr, next).await
        }
        Err(CheckError::WrongCode) => {
            let recovery = form.method == "recovery";
            render(&state, &session, &pending, recovery, Some(WRONG_CODE)).await
        }
        Err(CheckError::Throttled { retry_after_secs }) => Ok(too_many_requests(
            retry_after_secs,
            "Too many failed sign-ins from your network. Wait a few minutes, then try again.",
        )),
        Err(CheckError::AccountDisabled) => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Account disabled",
            ACCOUNT_DISABLED,
        )),
        Err(CheckError::Unexpected(e)) => Err(PageError::internal(&e)),
    }
}
