//! The first-party JSON API's entry points: `POST /auth/register`, `POST /auth/login`
//! (and its second step, `POST /auth/login/mfa`), `POST /auth/refresh`,
//! `POST /auth/logout` and `GET /auth/config`. The calls made
//! within a session are in [`super::sessions`]. Errors use the shared JSON shape
//! (`service_kit::api_error`).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use service_kit::api_error::{ApiError, ApiJson, optional_json};

use super::refresh_cookie;
use super::sessions::{
    ApiSession, CSRF_HEADER, csrf_failed, csrf_header, invalid_name, rfc3339, too_many_requests,
};
use crate::accounts::password::Password;
use crate::accounts::profile::DisplayName;
use crate::accounts::{Accounts, LoginError, RegisterError};
use crate::factors::CheckError;
use crate::guards::secrets::Secret;
use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::state::AppState;
use crate::sessions::api::{CHALLENGE_TTL_SECS, LoginOutcome, SecondStepError, SessionTokens};
use crate::sessions::device::Device;
use crate::sessions::records::{EndReason, RefreshError, UserSessions};
use crate::sessions::store::SessionRow;

/// Far above any valid credential pair (254-byte email, 128 4-byte characters).
const MAX_BODY_BYTES: usize = 4 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::REGISTER, post(register))
        .route(endpoints::LOGIN, post(login))
        .route(endpoints::LOGIN_SECOND_FACTOR, post(login_second_factor))
        .route(endpoints::REFRESH, post(refresh))
        .route(endpoints::LOGOUT, post(logout))
        .route(endpoints::AUTH_CONFIG, get(config))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    email: String,
    password: String,
    /// Optional, beyond the contract's `{email,password}`: the display name released with
    /// the `profile` scope. The answer stays the contract's `{id,email,created_at}`.
    #[serde(default)]
    name: Option<String>,
}

#[derive(Serialize)]
struct RegisterResponse {
    id: String,
    email: String,
    created_at: String,
}

#[tracing::instrument(skip_all)]
async fn register(
    State(accounts): State<Accounts>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Registration>,
) -> Result<Response, ApiError> {
    let name =
        DisplayName::parse(body.name.as_deref().unwrap_or_default()).map_err(invalid_name)?;
    let user = accounts
        .register(&body.email, name, body.password, ip)
        .await
        .map_err(register_error)?;
    let body = RegisterResponse {
        id: user.id.to_string(),
        email: user.email.as_ref().to_owned(),
        created_at: user.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[tracing::instrument(skip_all)]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let outcome = state
        .api_sessions
        .login(&body.email, body.password, ip, &device)
        .await
        .map_err(|e| match e {
            LoginError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "The email or password is incorrect.",
            ),
            LoginError::Throttled { retry_after_secs } => too_many_requests(
                retry_after_secs,
                "Too many failed sign-ins from this address. Retry later.",
            ),
            LoginError::EmailNotVerified => ApiError::new(
                StatusCode::FORBIDDEN,
                "email_not_verified",
                "Confirm your email address first: a new link is on its way to it.",
            ),
            LoginError::AccountDisabled => ApiError::new(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "This account is disabled. Ask the service's operator.",
            ),
            LoginError::Unexpected(e) => ApiError::internal(&e),
        })?;
    match outcome {
        LoginOutcome::Tokens(tokens) => Ok(session_tokens(&state, *tokens)),
        LoginOutcome::SecondFactorRequired { mfa_token, methods } => {
            Ok(mfa_required(&mfa_token, &methods))
        }
    }
}

/// `403 mfa_required`: the password was right and a second factor must follow, with the
/// challenge that `POST /auth/login/mfa` completes. The error shape, plus the challenge.
fn mfa_required(mfa_token: &Secret, methods: &[&str]) -> Response {
    let body = json!({
        "error": "mfa_required",
        "message": "This account uses two-step sign-in: send a code with the mfa_token.",
        "mfa_token": mfa_token.expose(),
        "expires_in": CHALLENGE_TTL_SECS,
        "methods": methods,
    });
    (
        StatusCode::FORBIDDEN,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecondStep {
    mfa_token: String,
    /// A code from an authenticator app, or a recovery code.
    code: String,
}

/// `POST /auth/login/mfa`: the second step of a login answered with `mfa_required`.
#[tracing::instrument(skip_all)]
async fn login_second_factor(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    ApiJson(body): ApiJson<SecondStep>,
) -> Result<Response, ApiError> {
    let tokens = state
        .api_sessions
        .complete_login(&body.mfa_token, &body.code, ip, &device)
        .await
        .map_err(|e| match e {
            SecondStepError::InvalidChallenge => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_mfa_token",
                "The mfa_token is unknown, used or expired: log in again.",
            ),
            SecondStepError::Check(CheckError::WrongCode) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_code",
                "The code is incorrect.",
            ),
            SecondStepError::Check(CheckError::Throttled { retry_after_secs }) => {
                too_many_requests(
                    retry_after_secs,
                    "Too many failed sign-ins from this address. Retry later.",
                )
            }
            SecondStepError::Check(CheckError::AccountDisabled) => ApiError::new(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "This account is disabled. Ask the service's operator.",
            ),
            SecondStepError::Check(CheckError::Unexpected(e)) | SecondStepError::Unexpected(e) => {
                ApiError::internal(&e)
            }
        })?;
    Ok(session_tokens(&state, tokens))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: Option<String>,
}

/// `POST /auth/refresh`: the refresh token from the body, or else from the cookie (then
/// `X-CSRF-Token` must carry the session's CSRF token). New access, refresh and CSRF
/// tokens; the presented refresh token is used up, and presenting it again ends the
/// session.
#[tracing::instrument(skip_all)]
async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: RefreshBody = optional_json(&headers, &body)?;
    let (presented, csrf) = match body.refresh_token {
        Some(token) => (token, None),
        None => match refresh_cookie::read(&headers) {
            Some(token) => (token, Some(csrf_header(&headers))),
            None => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Send the refresh token in the body or the refresh cookie.",
                ));
            }
        },
    };
    let tokens = state
        .api_sessions
        .refresh(&Secret::from_presented(presented), csrf, ip)
        .await
        .map_err(|e| match e {
            RefreshError::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_refresh_token",
                "The refresh token is invalid, expired or revoked. Sign in again.",
            ),
            RefreshError::Csrf => csrf_failed(),
            RefreshError::Unexpected(e) => ApiError::internal(&e),
        })?;
    Ok(session_tokens(&state, tokens))
}

/// `POST /auth/logout`: ends the session named by the bearer access token, the refresh
/// token in the body, or the refresh cookie (with `X-CSRF-Token`). 204, and the cookie
/// is cleared. A session that already ended is not an error.
#[tracing::instrument(skip_all)]
async fn logout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: RefreshBody = optional_json(&headers, &body)?;
    let session = if headers.contains_key(header::AUTHORIZATION) {
        Some(ApiSession::from_headers(&state, &headers).await?.session)
    } else if let Some(token) = body.refresh_token {
        session_of(&state, token).await?
    } else if let Some(token) = refresh_cookie::read(&headers) {
        let session = session_of(&state, token).await?;
        if let Some(session) = &session
            && !UserSessions::csrf_matches(session, csrf_header(&headers))
        {
            return Err(csrf_failed());
        }
        session
    } else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Send the access token, the refresh token or the refresh cookie.",
        ));
    };
    if let Some(session) = session {
        state
            .user_sessions
            .end(&session.user_id, &session.id, EndReason::SignedOut, ip)
            .await
            .map_err(|e| ApiError::internal(&e))?;
    }
    let clear = refresh_cookie::clear(state.config.https);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

async fn session_of(state: &AppState, token: String) -> Result<Option<SessionRow>, ApiError> {
    state
        .user_sessions
        .of_refresh_token(&Secret::from_presented(token))
        .await
        .map_err(|e| ApiError::internal(&e))
}

/// `GET /auth/config`: public, what a client needs to plan its refreshes.
async fn config(State(state): State<AppState>) -> Json<Value> {
    let policy = state.user_sessions.policy();
    Json(json!({
        "session_idle_timeout_secs": policy.idle_timeout_secs,
        "session_lifetime_secs": policy.lifetime_secs,
        "max_sessions_per_user": policy.max_per_user,
        "access_token_ttl_secs": state.config.access_token_ttl_secs,
        "password_min_length": Password::MIN_CHARS,
        "password_max_length": Password::MAX_CHARS,
        "refresh_cookie": refresh_cookie::name(state.config.https),
        "csrf_header": CSRF_HEADER,
    }))
}

#[derive(Serialize)]
struct SessionTokensBody {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    session_id: String,
    session_expires_at: String,
    csrf_token: String,
}

/// The token response of login and refresh: `no-store` (RFC 6749 §5.1), and the
/// refresh token also as an `HttpOnly` cookie for browser clients.
fn session_tokens(state: &AppState, tokens: SessionTokens) -> Response {
    let now = state.clock.now().timestamp();
    let cookie = refresh_cookie::set(
        state.config.https,
        tokens.refresh_token.expose(),
        tokens.session.expires_at - now,
    );
    let body = SessionTokensBody {
        access_token: tokens.access.token,
        token_type: "Bearer",
        expires_in: tokens.access.expires_in,
        refresh_token: tokens.refresh_token.expose().to_owned(),
        session_id: tokens.session.id,
        session_expires_at: rfc3339(tokens.session.expires_at),
        csrf_token: tokens.csrf_token,
    };
    (
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        [(header::SET_COOKIE, cookie)],
        Json(body),
    )
        .into_response()
}

fn register_error(e: RegisterError) -> ApiError {
    match e {
        RegisterError::InvalidEmail(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
            e.to_string(),
        ),
        RegisterError::InvalidPassword(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_password",
            e.to_string(),
        ),
        RegisterError::EmailTaken => ApiError::new(
            StatusCode::CONFLICT,
            "email_taken",
            "An account with this email already exists.",
        ),
        RegisterError::Throttled { retry_after_secs } => too_many_requests(
            retry_after_secs,
            "Too many registrations from this address. Retry later.",
        ),
        RegisterError::Unexpected(e) => ApiError::internal(&e),
    }
}
