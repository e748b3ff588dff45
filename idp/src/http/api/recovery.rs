//! Password reset in the JSON API: `POST /auth/password/forgot {"email"}` answers `202`
//! with one body whether or not the address has an account; `POST /auth/password/reset
//! {"token","new_password"}` sets the password with the mailed link's token.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use service_kit::api_error::{ApiError, ApiJson};

use crate::accounts::recovery::{ResetError, ResetRequestError};
use crate::http::api::sessions::too_many_requests;
use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::state::AppState;
use crate::sessions::device::Device;

const MAX_BODY_BYTES: usize = 4 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::PASSWORD_FORGOT, post(forgot))
        .route(endpoints::PASSWORD_RESET, post(reset))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Forgot {
    email: String,
}

#[tracing::instrument(skip_all)]
async fn forgot(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Forgot>,
) -> Result<Response, ApiError> {
    state
        .accounts
        .request_password_reset(&body.email, ip)
        .await
        .map_err(|e| match e {
            ResetRequestError::Throttled { retry_after_secs } => too_many_requests(
                retry_after_secs,
                "Too many password reset requests from this address. Retry later.",
            ),
            ResetRequestError::Unexpected(e) => ApiError::internal(&e),
        })?;
    let body = serde_json::json!({
        "message": "If an account uses this address, a link to reset its password is on its way.",
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reset {
    token: String,
    new_password: String,
}

#[tracing::instrument(skip_all)]
async fn reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    ApiJson(body): ApiJson<Reset>,
) -> Result<Response, ApiError> {
    state
        .accounts
        .reset_password(&body.token, body.new_password, ip, &device)
        .await
        .map_err(|e| match e {
            ResetError::InvalidLink => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_reset_token",
                "This reset link is unknown, used, superseded or expired. Ask for a new one.",
            ),
            ResetError::InvalidPassword(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_password",
                e.to_string(),
            ),
            ResetError::Unexpected(e) => ApiError::internal(&e),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
