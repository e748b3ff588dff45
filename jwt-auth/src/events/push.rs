//! The HTTP side of push delivery (RFC 8935): `POST` with `Content-Type:
//! application/secevent+jwt` and the SET as the body, answered `202 Accepted` with an
//! empty body once the SET is recorded, or `400 Bad Request` with `{"err": <RFC 8935
//! §2.4 code>, "description": ...}` (§2.3), which covers a missing or wrong
//! `Authorization` too (`authentication_failed`). Failures that are ours are 5xx, so
//! the transmitter tries again: 503 when the issuer's keys cannot be fetched, 500 when
//! the store fails. A body over [`MAX_SET_BYTES`] is 413.
//!
//! Logs name the event type, `jti` and outcome, or the error code; never the SET or the
//! `Authorization` value.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use serde_json::json;

use super::SetError;
use super::receiver::{EventReceiver, Receipt};
use crate::extractor::REQUEST_ID;

/// Larger bodies are refused unread. A SET is well under 2 KiB.
pub const MAX_SET_BYTES: usize = 16 * 1024;

/// The media type of a SET (RFC 8417 §7.2).
pub const SET_MEDIA_TYPE: &str = "application/secevent+jwt";

/// The push endpoint, for a router whose state makes an [`EventReceiver`] reachable
/// through [`FromRef`]: `.route("/events", push_endpoint())`.
pub fn push_endpoint<S>() -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
    EventReceiver: FromRef<S>,
{
    post(receive).layer(DefaultBodyLimit::max(MAX_SET_BYTES))
}

#[tracing::instrument(skip_all)]
async fn receive(
    State(receiver): State<EventReceiver>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match accept(&receiver, &headers, body).await {
        Ok(Receipt { set, outcome }) => {
            tracing::info!(
                event_type = set.event.event_type(),
                jti = %set.jti,
                outcome = outcome.as_str(),
                "Received a security event"
            );
            StatusCode::ACCEPTED.into_response()
        }
        Err(error) => refusal(&error),
    }
}

async fn accept(
    receiver: &EventReceiver,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Receipt, SetError> {
    // Who is calling comes first: an unauthenticated caller learns nothing else.
    if let Some(expected) = &receiver.config().authorization {
        let mut presented = headers.get_all(header::AUTHORIZATION).iter();
        match (presented.next(), presented.next()) {
            (Some(value), None) if expected.matches(value.as_bytes()) => {}
            _ => return Err(SetError::AuthenticationFailed),
        }
    }
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or_default().trim());
    if !media_type.is_some_and(|media_type| media_type.eq_ignore_ascii_case(SET_MEDIA_TYPE)) {
        return Err(SetError::InvalidRequest(
            "the Content-Type is not application/secevent+jwt",
        ));
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            SetError::TooLarge(MAX_SET_BYTES)
        } else {
            SetError::InvalidRequest("the body could not be read")
        }
    })?;
    let token = std::str::from_utf8(&body)
        .map_err(|_| SetError::InvalidRequest("the body is not a compact JWS"))?
        .trim_ascii();
    let request_id = headers.get(&REQUEST_ID).and_then(|id| id.to_str().ok());
    receiver.receive(token, request_id).await
}

/// RFC 8935 §2.3: 400 and the error code; ours are 5xx with an empty body.
fn refusal(error: &SetError) -> Response {
    let Some(code) = error.code() else {
        return match error {
            SetError::KeysUnavailable => {
                tracing::warn!(
                    "Could not check a security event: the issuer's keys are unavailable"
                );
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
            _ => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "Failed to record a security event"
                );
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        };
    };
    tracing::warn!(err = code, description = %error, "Refused a security event");
    let status = match error {
        SetError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = Json(json!({"err": code, "description": error.to_string()}));
    (status, body).into_response()
}
