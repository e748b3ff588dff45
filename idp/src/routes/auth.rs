//! The first-party JSON API: `POST /auth/register` and `POST /auth/login`.
//! Errors use the shared JSON shape (`service_kit::api_error`).

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use service_kit::api_error::{ApiError, ApiJson};

use crate::accounts::{Accounts, LoginError, RegisterError};
use crate::endpoints;
use crate::routes::client_ip::ClientIp;
use crate::startup::AppState;

/// Far above any valid credential pair (254-byte email, 128 4-byte characters).
const MAX_BODY_BYTES: usize = 4 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::REGISTER, post(register))
        .route(endpoints::LOGIN, post(login))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Serialize)]
struct RegisterResponse {
    id: String,
    email: String,
    created_at: String,
}

#[derive(Serialize)]
struct LoginResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

#[tracing::instrument(skip_all)]
async fn register(
    State(accounts): State<Accounts>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let user = accounts
        .register(&body.email, body.password, ip)
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
    State(accounts): State<Accounts>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let issued = accounts
        .login(&body.email, body.password, ip)
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
            LoginError::Unexpected(e) => ApiError::internal(&e),
        })?;
    let body = LoginResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
    };
    // RFC 6749 §5.1: responses carrying tokens must not be cached.
    Ok((
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        Json(body),
    )
        .into_response())
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

/// 429 with `Retry-After` in seconds (RFC 6585 §4), in the API error shape.
fn too_many_requests(retry_after_secs: u64, message: &'static str) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
        .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after_secs))
}
