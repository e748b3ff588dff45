//! Two-step sign-in on the account's side, `/account/two-step`: the authenticator apps
//! (add one with a QR code and a first code, remove one) and the recovery codes (how
//! many are left, a new set). Every change asks for the current password; recovery
//! codes are shown once, on the answer to the form that made them (pages are
//! `no-store`).

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::accounts::amr::Amr;
use crate::accounts::reauth::ReauthError;
use crate::factors::{Actor, ChangeError};
use crate::http::browser_session::{BrowserSession, SignedInUser};
use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::oauth::authorize::see_other;
use crate::http::pages::account::{back_to, date, signed_in_or_redirect};
use crate::http::pages::login::{
    CsrfForm, CsrfProtected, Next, WaitingRequest, record_sign_in, too_many_requests,
    waiting_request,
};
use crate::http::pages::views::{AuthenticatorLine, RecoveryCodesPage, TotpEnrolPage, TwoStepPage};
use crate::http::pages::{self, PageError};
use crate::http::state::AppState;
use crate::sessions::device::Device;

const WRONG_CURRENT_PASSWORD: &str = "The current password is incorrect.";
const FIRST_CODES: &str = "Two-step sign-in is on. If you lose your authenticator app, these codes sign you in \
     instead.";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::TWO_STEP_PAGE, get(two_step_page))
        .route(endpoints::TWO_STEP_TOTP, get(enrol_page).post(confirm))
        .route(endpoints::TWO_STEP_REMOVE, post(remove))
        .route(endpoints::TWO_STEP_RECOVERY_CODES, post(new_recovery_codes))
}

#[tracing::instrument(skip_all)]
async fn two_step_page(
    State(state): State<AppState>,
    session: BrowserSession,
) -> Result<Response, PageError> {
    let user = match signed_in_or_redirect(&session, endpoints::TWO_STEP_PAGE).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let flash = session
        .take_flash()
        .await
        .map_err(|e| PageError::internal(&e))?;
    render(&state, &session, &user, flash, None, StatusCode::OK).await
}

async fn render(
    state: &AppState,
    session: &BrowserSession,
    user: &SignedInUser,
    flash: Option<String>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let overview = state
        .factors
        .overview(&user.user_id)
        .await
        .map_err(|e| PageError::internal(&e))?;
    let authenticators: Vec<AuthenticatorLine> = overview
        .authenticators
        .into_iter()
        .map(|a| AuthenticatorLine {
            id: a.id,
            name: a.name,
            kind: "Authenticator app",
            added: date(a.confirmed_at),
        })
        .collect();
    let passkeys: Vec<AuthenticatorLine> = overview
        .passkeys
        .into_iter()
        .map(|p| AuthenticatorLine {
            id: p.id,
            name: p.name,
            kind: "Passkey",
            added: date(p.created_at),
        })
        .collect();
    let page = TwoStepPage {
        ctx: session.page_context().await?.with_flash(flash),
        factors: authenticators.iter().chain(&passkeys).cloned().collect(),
        authenticators,
        passkeys,
        recovery_codes_left: overview.recovery_codes_left,
        error,
        enrol_path: endpoints::TWO_STEP_TOTP,
        remove_path: endpoints::TWO_STEP_REMOVE,
        codes_path: endpoints::TWO_STEP_RECOVERY_CODES,
        passkey_path: endpoints::PASSKEY,
        passkey_options_path: endpoints::PASSKEY_OPTIONS,
        passkeys_available: state.factors.passkeys_available(),
    };
    Ok(pages::render_with_status(status, &page))
}

/// The unfinished enrolment, or a new one.
#[tracing::instrument(skip_all)]
async fn enrol_page(
    State(state): State<AppState>,
    session: BrowserSession,
    Query(query): Query<RequestQuery>,
) -> Result<Response, PageError> {
    let user = match signed_in_or_redirect(&session, endpoints::TWO_STEP_TOTP).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let now = state.clock.now().timestamp();
    let waiting = waiting_request(&state, &session, query.request.as_deref(), now).await?;
    render_enrolment(&state, &session, &user, waiting.as_ref(), "", None).await
}

/// `?request=<id>`: an authorization request whose client requires a second factor
/// the user does not have yet; adding one continues it.
#[derive(Deserialize)]
struct RequestQuery {
    request: Option<String>,
}

async fn render_enrolment(
    state: &AppState,
    session: &BrowserSession,
    user: &SignedInUser,
    waiting: Option<&WaitingRequest>,
    name: &str,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let factors = &state.factors;
    let enrolment = match factors.enrolment(&user.user_id, &user.email).await {
        Ok(Some(enrolment)) => enrolment,
        Ok(None) => factors
            .begin_totp(&user.user_id, &user.email)
            .await
            .map_err(|e| PageError::internal(&e))?,
        Err(e) => return Err(PageError::internal(&e)),
    };
    let page = TotpEnrolPage {
        ctx: session.page_context().await?,
        id: &enrolment.id,
        qr_svg: &enrolment.provisioning.qr_svg,
        secret: &enrolment.provisioning.secret_base32,
        name,
        error,
        request: waiting.map(|w| w.id.as_str()),
        client_name: waiting.map(|w| w.client_name.as_str()),
        action: endpoints::TWO_STEP_TOTP,
        back: endpoints::TWO_STEP_PAGE,
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(pages::render_with_status(status, &page))
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    current_password: String,
    /// The waiting authorization request this enrolment continues, if any.
    request: Option<String>,
}

impl CsrfProtected for ConfirmForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<Response, PageError> {
    let user = match signed_in_or_redirect(&session, endpoints::TWO_STEP_TOTP).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let actor = Actor {
        user_id: &user.user_id,
        ip,
        device: &device,
    };
    let confirmed = state
        .factors
        .confirm_totp(
            &actor,
            &form.id,
            &form.name,
            &form.code,
            form.current_password,
        )
        .await;
    let now = state.clock.now().timestamp();
    let waiting = waiting_request(&state, &session, form.request.as_deref(), now).await?;
    let error = match confirmed {
        Ok(codes) if waiting.is_some() => {
            // The password and the app's first code: a sign-in with a second factor,
            // which the waiting request needed.
            let client = waiting.as_ref().map(|w| w.client_name.clone());
            let next = Next {
                waiting,
                return_to: None,
            };
            let user = (user.user_id.as_str(), user.email.as_str());
            let amr = Amr::password_and_code();
            let path = record_sign_in(&state.clock, &session, user, &amr, next).await?;
            let Some(codes) = codes else {
                return see_other(&path);
            };
            let label = format!("Continue to {}", client.unwrap_or_default());
            return recovery_codes(&session, FIRST_CODES, codes, (&path, &label)).await;
        }
        Ok(Some(codes)) => {
            let next = (endpoints::TWO_STEP_PAGE, "I have saved them");
            return recovery_codes(&session, FIRST_CODES, codes, next).await;
        }
        Ok(None) => return back_with_to(&session, "Authenticator app added.").await,
        Err(ChangeError::WrongCode) => {
            "That code is not the one the app shows now. Check \
                                        the app's clock, or scan the QR code again."
        }
        Err(ChangeError::InvalidName(message)) => message,
        Err(ChangeError::Reauth(ReauthError::WrongCurrentPassword)) => WRONG_CURRENT_PASSWORD,
        Err(ChangeError::Reauth(ReauthError::Throttled { retry_after_secs })) => {
            return Ok(throttled(retry_after_secs));
        }
        Err(ChangeError::NotFound | ChangeError::NoSecondFactor | ChangeError::PasskeyRefused) => {
            "This setup expired. Scan the new QR code below."
        }
        Err(ChangeError::Reauth(ReauthError::Unexpected(e)) | ChangeError::Unexpected(e)) => {
            return Err(PageError::internal(&e));
        }
    };
    let name = form.name.trim();
    render_enrolment(&state, &session, &user, waiting.as_ref(), name, Some(error)).await
}

#[derive(Deserialize)]
struct RemoveForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    current_password: String,
}

impl CsrfProtected for RemoveForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn remove(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<RemoveForm>,
) -> Result<Response, PageError> {
    let user = match signed_in_or_redirect(&session, endpoints::TWO_STEP_PAGE).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let actor = Actor {
        user_id: &user.user_id,
        ip,
        device: &device,
    };
    let removed = state
        .factors
        .remove_factor(&actor, &form.id, form.current_password)
        .await;
    let error = match removed {
        Ok(()) => return back_with_to(&session, "Removed.").await,
        Err(ChangeError::Reauth(ReauthError::WrongCurrentPassword)) => WRONG_CURRENT_PASSWORD,
        Err(ChangeError::NotFound) => "That one had already been removed.",
        Err(ChangeError::Reauth(ReauthError::Throttled { retry_after_secs })) => {
            return Ok(throttled(retry_after_secs));
        }
        Err(e) => return Err(unexpected(e)),
    };
    render(
        &state,
        &session,
        &user,
        None,
        Some(error),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

#[derive(Deserialize)]
struct CodesForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    current_password: String,
}

impl CsrfProtected for CodesForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn new_recovery_codes(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<CodesForm>,
) -> Result<Response, PageError> {
    let user = match signed_in_or_redirect(&session, endpoints::TWO_STEP_PAGE).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let actor = Actor {
        user_id: &user.user_id,
        ip,
        device: &device,
    };
    let made = state
        .factors
        .regenerate_recovery_codes(&actor, form.current_password)
        .await;
    let error = match made {
        Ok(codes) => {
            let message = "New recovery codes made. The earlier ones no longer work.";
            let next = (endpoints::TWO_STEP_PAGE, "I have saved them");
            return recovery_codes(&session, message, codes, next).await;
        }
        Err(ChangeError::Reauth(ReauthError::WrongCurrentPassword)) => WRONG_CURRENT_PASSWORD,
        Err(ChangeError::NoSecondFactor) => "Add an authenticator app first.",
        Err(ChangeError::Reauth(ReauthError::Throttled { retry_after_secs })) => {
            return Ok(throttled(retry_after_secs));
        }
        Err(e) => return Err(unexpected(e)),
    };
    render(
        &state,
        &session,
        &user,
        None,
        Some(error),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// The one showing of a set of recovery codes.
async fn recovery_codes(
    session: &BrowserSession,
    message: &str,
    codes: Vec<String>,
    next: (&str, &str),
) -> Result<Response, PageError> {
    let page = RecoveryCodesPage {
        ctx: session.page_context().await?,
        message,
        codes,
        next,
    };
    Ok(pages::render(&page))
}

async fn back_with_to(session: &BrowserSession, notice: &str) -> Result<Response, PageError> {
    back_to(session, notice, endpoints::TWO_STEP_PAGE).await
}

fn throttled(retry_after_secs: u64) -> Response {
    too_many_requests(
        retry_after_secs,
        "Too many wrong passwords from your network. Wait a few minutes, then try again.",
    )
}

/// The errors no form shows: too many wrong passwords, or a fault.
fn unexpected(e: ChangeError) -> PageError {
    match e {
        ChangeError::Reauth(ReauthError::Unexpected(e)) | ChangeError::Unexpected(e) => {
            PageError::internal(&e)
        }
        other => PageError::internal(&anyhow::anyhow!("Unexpected answer: {other}")),
    }
}
