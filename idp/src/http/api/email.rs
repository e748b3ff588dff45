//! The account's address in the JSON API: verification (`POST /auth/email/verify
//! {"token"}` with the mailed link's token, `POST /auth/email/verify/resend` signed in
//! for a new link) and change (`POST /auth/email {"current_password","new_email"}`
//! signed in, `POST /auth/email/change/confirm {"token"}` with the link's token).

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use service_kit::api_error::{ApiError, ApiJson};

use crate::accounts::email_change::{ConfirmEmailChangeError, EmailChangeError};
use crate::accounts::verification::{ResendError, VerifyError};
use crate::http::api::sessions::{ApiSession, reauth_error, too_many_requests};
use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::state::AppState;
use crate::sessions::device::Device;

const MAX_BODY_BYTES: usize = 4 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::EMAIL_VERIFY, post(verify))
        .route(endpoints::EMAIL_VERIFY_RESEND, post(resend))
        .route(endpoints::EMAIL, post(change))
        .route(endpoints::EMAIL_CHANGE_CONFIRM, post(confirm_change))
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
            ResendError::Throttled { retry_after_secs } => too_many_requests(
                retry_after_secs,
                "Too many verification mails in the last hour. Retry later.",
            ),
            ResendError::Unexpected(e) => ApiError::internal(&e),
        })?;
    let body = serde_json::json!({"message": "A new verification link is on its way."});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    current_password: String,
    new_email: String,
}

#[tracing::instrument(skip_all)]
async fn change(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    auth: ApiSession,
    ApiJson(body): ApiJson<Change>,
) -> Result<Response, ApiError> {
    state
        .accounts
        .request_email_change(
            &auth.session.user_id,
            body.current_password,
            &body.new_email,
            ip,
            &device,
        )
        .await
        .map_err(|e| match e {
            EmailChangeError::Reauth(e) => reauth_error(e),
            EmailChangeError::InvalidEmail(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_email",
                e.to_string(),
            ),
            EmailChangeError::SameAddress => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "same_email",
                "That is already the account's address.",
            ),
            EmailChangeError::EmailTaken => ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                "An account with this email already exists.",
            ),
            EmailChangeError::Unexpected(e) => ApiError::internal(&e),
        })?;
    let body = serde_json::json!({
        "message": "A link is on its way to the new address; the address changes when it is opened.",
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn confirm_change(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Verify>,
) -> Result<Response, ApiError> {
    state
        .accounts
        .confirm_email_change(&body.token)
        .await
        .map_err(|e| match e {
            ConfirmEmailChangeError::InvalidLink => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_email_change_token",
                "This link is unknown, used, superseded or expired.",
            ),
            ConfirmEmailChangeError::EmailTaken => ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                "Another account has taken this address meanwhile.",
            ),
            ConfirmEmailChangeError::Unexpected(e) => ApiError::internal(&e),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
