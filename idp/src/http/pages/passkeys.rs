//! The passkey ceremonies behind the pages' buttons (`static/passkeys.js`): each is a
//! pair of JSON calls made with the browser session's cookie, the first for the
//! options `navigator.credentials` needs, the second with the browser's answer. The
//! ceremony's state stays in the browser session in between, and every call carries the
//! session's CSRF token in its body. Answers are JSON: `{"next": path}` to go on, or the
//! error shape with a message the page shows.
//!
//! - Adding a passkey (two-step page, signed in, with the current password).
//! - Signing in without a password (sign-in page).
//! - The second step after a password (second-step page, pending sign-in).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use service_kit::api_error::ApiError;

use crate::accounts::amr::Amr;
use crate::accounts::reauth::ReauthError;
use crate::accounts::store as users;
use crate::factors::{Actor, ChangeError, CheckError};
use crate::http::browser_session::{BrowserSession, PendingSignIn, SignedInUser};
use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::pages::login::{ACCOUNT_DISABLED, next_after, record_sign_in};
use crate::http::pages::views::RecoveryCodesPage;
use crate::http::pages::{self, PageError};
use crate::http::state::AppState;
use crate::sessions::device::Device;

const REGISTRATION: &str = "passkey_registration";
const SIGN_IN: &str = "passkey_sign_in";
const SECOND_STEP: &str = "passkey_second_step";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::PASSKEY_OPTIONS, post(registration_options))
        .route(endpoints::PASSKEY, post(register))
        .route(endpoints::NEW_RECOVERY_CODES, get(new_recovery_codes))
        .route(endpoints::LOGIN_PASSKEY_OPTIONS, post(sign_in_options))
        .route(endpoints::LOGIN_PASSKEY, post(sign_in))
        .route(
            endpoints::SECOND_FACTOR_PASSKEY_OPTIONS,
            post(second_step_options),
        )
        .route(endpoints::SECOND_FACTOR_PASSKEY, post(second_step))
}

/// What the buttons post: their form's fields, and the browser's answer the second time.
#[derive(Deserialize)]
struct Ceremony {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    current_password: String,
    request: Option<String>,
    return_to: Option<String>,
    credential: Option<Value>,
}

/// Why a call is refused: the error shape with a message the page shows, or a fault.
enum Refusal {
    Client(StatusCode, &'static str, &'static str),
    Internal(anyhow::Error),
    Page(PageError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Client(status, code, message) => {
                ApiError::new(status, code, message).into_response()
            }
            Self::Internal(e) => ApiError::internal(&e).into_response(),
            Self::Page(e) => e.into_response(),
        }
    }
}

fn error(status: StatusCode, code: &'static str, message: &'static str) -> Refusal {
    Refusal::Client(status, code, message)
}

fn internal(e: &anyhow::Error) -> Refusal {
    Refusal::Internal(anyhow::anyhow!("{e:#}"))
}

fn go_to(path: &str) -> Response {
    Json(json!({ "next": path })).into_response()
}

/// The body, if its CSRF token is this session's.
async fn checked(session: &BrowserSession, body: Value) -> Result<Ceremony, Refusal> {
    let body: Ceremony = serde_json::from_value(body).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request could not be read.",
        )
    })?;
    let valid = session
        .csrf_matches(&body.csrf_token)
        .await
        .map_err(|e| internal(&e))?;
    if !valid {
        return Err(error(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "This page is out of date: reload it and try again.",
        ));
    }
    Ok(body)
}

/// The browser's answer, as `webauthn-rs` reads it.
fn credential<T: DeserializeOwned>(body: &Ceremony) -> Result<T, Refusal> {
    body.credential
        .clone()
        .and_then(|c| serde_json::from_value(c).ok())
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_credential",
                "The browser's answer could not be read.",
            )
        })
}

/// The state kept for `kind` between the two calls.
async fn ceremony_state<T: DeserializeOwned>(
    session: &BrowserSession,
    kind: &str,
) -> Result<T, Refusal> {
    session
        .end_ceremony(kind)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "no_ceremony",
                "This took too long or was started elsewhere: try again.",
            )
        })
}

/// Passkeys need the issuer on a domain; without one these calls do not exist.
fn available(state: &AppState) -> Result<(), Refusal> {
    if state.factors.passkeys_available() {
        Ok(())
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            "passkeys_unavailable",
            "Passkeys are not available on this site.",
        ))
    }
}

/// The signed-in user, for the calls of the two-step page.
async fn user(session: &BrowserSession) -> Result<SignedInUser, Refusal> {
    session
        .user()
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(not_signed_in)
}

/// The sign-in waiting for its second step, for the calls of that page.
async fn pending(state: &AppState, session: &BrowserSession) -> Result<PendingSignIn, Refusal> {
    let now = state.clock.now().timestamp();
    session
        .pending_sign_in(now)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(not_signed_in)
}

/// The options for the browser, the ceremony's state kept until its answer.
async fn offer(
    session: &BrowserSession,
    kind: &str,
    options: Value,
    ceremony: &impl Serialize,
) -> Result<Response, Refusal> {
    session
        .begin_ceremony(kind, ceremony)
        .await
        .map_err(|e| internal(&e))?;
    Ok(Json(options).into_response())
}

fn not_signed_in() -> Refusal {
    error(
        StatusCode::UNAUTHORIZED,
        "not_signed_in",
        "Sign in again, then try again.",
    )
}

// ---- adding a passkey -------------------------------------------------------------

async fn registration_options(
    State(state): State<AppState>,
    session: BrowserSession,
    Json(body): Json<Value>,
) -> Result<Response, Refusal> {
    available(&state)?;
    checked(&session, body).await?;
    let user = user(&session).await?;
    let (options, ceremony) = state
        .factors
        .begin_passkey(&user.user_id, &user.email)
        .await
        .map_err(|e| internal(&e))?;
    offer(&session, REGISTRATION, options, &ceremony).await
}

async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    session: BrowserSession,
    Json(body): Json<Value>,
) -> Result<Response, Refusal> {
    available(&state)?;
    let body = checked(&session, body).await?;
    let user = user(&session).await?;
    let ceremony = ceremony_state(&session, REGISTRATION).await?;
    let credential = credential(&body)?;
    let actor = Actor {
        user_id: &user.user_id,
        ip,
        device: &device,
    };
    let added = state
        .factors
        .finish_passkey(
            &actor,
            &ceremony,
            &credential,
            &body.name,
            body.current_password,
        )
        .await;
    match added {
        Ok(Some(codes)) => {
            session
                .keep_new_recovery_codes(&codes)
                .await
                .map_err(|e| internal(&e))?;
            Ok(go_to(endpoints::NEW_RECOVERY_CODES))
        }
        Ok(None) => {
            session
                .set_flash("Passkey added.")
                .await
                .map_err(|e| internal(&e))?;
            Ok(go_to(endpoints::TWO_STEP_PAGE))
        }
        Err(ChangeError::Reauth(ReauthError::WrongCurrentPassword)) => Err(error(
            StatusCode::FORBIDDEN,
            "wrong_current_password",
            "The current password is incorrect.",
        )),
        Err(ChangeError::Reauth(ReauthError::Throttled { .. })) => Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many wrong passwords from your network. Wait a few minutes, then try again.",
        )),
        Err(ChangeError::InvalidName(message)) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
            message,
        )),
        Err(ChangeError::PasskeyRefused) => Err(error(
            StatusCode::BAD_REQUEST,
            "passkey_refused",
            "That passkey could not be added. Try again, or use another device.",
        )),
        Err(e) => Err(Refusal::Internal(anyhow::anyhow!("{e}"))),
    }
}

/// The recovery codes that came with a first passkey, shown once.
async fn new_recovery_codes(session: BrowserSession) -> Result<Response, PageError> {
    let codes = session
        .take_new_recovery_codes()
        .await
        .map_err(|e| PageError::internal(&e))?;
    let Some(codes) = codes else {
        return crate::http::oauth::authorize::see_other(endpoints::TWO_STEP_PAGE);
    };
    let page = RecoveryCodesPage {
        ctx: session.page_context().await?,
        message: "Two-step sign-in is on. If you lose your passkeys and authenticator apps, \
                  these codes sign you in instead.",
        codes,
        next: (endpoints::TWO_STEP_PAGE, "I have saved them"),
    };
    Ok(pages::render(&page))
}

// ---- signing in without a password --------------------------------------------------

async fn sign_in_options(
    State(state): State<AppState>,
    session: BrowserSession,
    Json(body): Json<Value>,
) -> Result<Response, Refusal> {
    available(&state)?;
    checked(&session, body).await?;
    let (options, ceremony) = state
        .factors
        .begin_passkey_sign_in()
        .map_err(|e| internal(&e))?;
    offer(&session, SIGN_IN, options, &ceremony).await
}

async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    session: BrowserSession,
    Json(body): Json<Value>,
) -> Result<Response, Refusal> {
    available(&state)?;
    let body = checked(&session, body).await?;
    let ceremony = ceremony_state(&session, SIGN_IN).await?;
    let credential = credential(&body)?;
    let user_id = state
        .factors
        .finish_passkey_sign_in(ceremony, &credential, ip, &device)
        .await
        .map_err(check_error)?;
    let user = users::find_by_id(&state.db.pool, &user_id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(not_signed_in)?;
    if state.accounts.requires_verified_email() && !user.email_verified {
        return Err(error(
            StatusCode::FORBIDDEN,
            "email_not_verified",
            "Confirm your email address first: open the link we sent to it.",
        ));
    }
    let (request, return_to) = (body.request.as_deref(), body.return_to.as_deref());
    let signed = (user.id.as_str(), user.email.as_str());
    complete(
        &state,
        &session,
        signed,
        &Amr::passkey(),
        (request, return_to),
    )
    .await
}

/// The sign-in recorded, and where the page goes next.
async fn complete(
    state: &AppState,
    session: &BrowserSession,
    user: (&str, &str),
    amr: &Amr,
    (request, return_to): (Option<&str>, Option<&str>),
) -> Result<Response, Refusal> {
    let next = next_after(state, session, request, return_to)
        .await
        .map_err(Refusal::Page)?;
    let path = record_sign_in(&state.clock, session, user, amr, next)
        .await
        .map_err(Refusal::Page)?;
    Ok(go_to(&path))
}

fn check_error(e: CheckError) -> Refusal {
    match e {
        CheckError::WrongCode => error(
            StatusCode::UNAUTHORIZED,
            "passkey_refused",
            "That passkey was not accepted.",
        ),
        CheckError::Throttled { .. } => error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many failed sign-ins from your network. Wait a few minutes, then try again.",
        ),
        CheckError::AccountDisabled => {
            error(StatusCode::FORBIDDEN, "account_disabled", ACCOUNT_DISABLED)
        }
        CheckError::Unexpected(e) => Refusal::Internal(e),
    }
}

// ---- the second step ----------------------------------------------------------------

async fn second_step_options(
    State(state): State<AppState>,
    session: BrowserSession,
    Json(body): Json<Value>,
) -> Result<Response, Refusal> {
    available(&state)?;
    checked(&session, body).await?;
    let pending = pending(&state, &session).await?;
    let started = state
        .factors
        .begin_passkey_check(&pending.user_id)
        .await
        .map_err(|e| internal(&e))?;
    let Some((options, ceremony)) = started else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "no_passkey",
            "This account has no passkey: use a code instead.",
        ));
    };
    offer(&session, SECOND_STEP, options, &ceremony).await
}

async fn second_step(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    session: BrowserSession,
    Json(body): Json<Value>,
) -> Result<Response, Refusal> {
    available(&state)?;
    let body = checked(&session, body).await?;
    let pending = pending(&state, &session).await?;
    let ceremony = ceremony_state(&session, SECOND_STEP).await?;
    let credential = credential(&body)?;
    let actor = Actor {
        user_id: &pending.user_id,
        ip,
        device: &device,
    };
    state
        .factors
        .finish_passkey_check(&actor, &ceremony, &credential)
        .await
        .map_err(check_error)?;
    let (request, return_to) = (pending.request.as_deref(), pending.return_to.as_deref());
    let user = (pending.user_id.as_str(), pending.email.as_str());
    let amr = Amr::password_and_passkey();
    complete(&state, &session, user, &amr, (request, return_to)).await
}
