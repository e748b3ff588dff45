//! Email verification in the JSON API: `POST /auth/email/verify {"token"}` with the
//! mailed link's token, and `POST /auth/email/verify/resend` (signed in) for a new link.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use service_kit::api_error::{ApiError, ApiJson};

use crate::accounts::verification::{ResendError, VerifyError};
use crate::http::api::sessions::ApiSession;
use crate::http::endpoints;
use crate::http::state::AppState;

const MAX_BODY_BYTES: usize = 4 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::EMAIL_VERIFY, post(verify))
        .route(endpoints::EMAIL_VERIFY_RESEND, post(resend))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Verify {
    token: String,
}

async fn verify(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Verify>,
) -> Result<Response, ApiError> {
    state
        .accounts
        .verify_email(&body.token)
        .await
        .map_err(|e| match e {
            VerifyError::InvalidLink => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_verification_token",
                "This link is unknown, used, superseded, expired or for a former address.",
            ),
            VerifyError::Unexpected(e) => ApiError::internal(&e),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn resend(State(state): State<AppState>, auth: ApiSession) -> Result<Response, ApiError> {
    state
        .accounts
        .resend_verification(&auth.session.user_id)
        .await
        .map_err(|e| match e {
            ResendError::AlreadyVerified => ApiError::new(
                StatusCode::CONFLICT,
                "already_verified",
                "The address is already verified.",
            ),
            ResendError::Throttled { retry_after_secs } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many verification mails in the last hour. Retry later.",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after_secs)),
            ResendError::Unexpected(e) => ApiError::internal(&e),
        })?;
    let body = serde_json::json!({"message": "A new verification link is on its way."});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
