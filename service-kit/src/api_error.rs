//! The one error shape of our JSON APIs:
//!
//! ```json
//! {"error": "email_taken", "message": "An account with this email already exists."}
//! ```
//!
//! `error` is a stable machine-readable code; `message` is for people and may change.
//! [`ApiJson`] wraps axum's `Json` extractor so malformed bodies come out in this shape
//! instead of axum's plain-text rejections.

use std::borrow::Cow;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, http::HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub headers: HeaderMap,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: HeaderMap::new(),
        }
    }

    pub fn with_header(mut self, name: axum::http::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// A 500 whose body says nothing; the cause chain is logged here, once.
    pub fn internal(error: &anyhow::Error) -> Self {
        tracing::error!(error = format!("{error:#}"), "Request failed unexpectedly");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An unexpected error occurred. Quote the X-Request-Id header when reporting it.",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such resource.")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(Body {
            error: self.code,
            message: &self.message,
        });
        (self.status, self.headers, body).into_response()
    }
}

/// Fallback for unknown routes, in the API error shape.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// Fallback for a known route called with another method, in the API error shape
/// rather than axum's empty body.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not support this method.",
    )
}

/// `Json<T>` whose rejections are [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// An optional JSON body, for endpoints where every field is optional: an empty body
/// is `T::default()`; anything else must be `application/json` and well-formed, with
/// the same errors as [`ApiJson`].
#[allow(
    clippy::result_large_err,
    reason = "the error is the response itself, built at most once per request"
)]
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(
    headers: &axum::http::HeaderMap,
    body: &axum::body::Bytes,
) -> Result<T, ApiError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(json_rejection(&JsonRejection::MissingJsonContentType(
            Default::default(),
        )));
    }
    Json::<T>::from_bytes(body)
        .map(|Json(value)| value)
        .map_err(|e| json_rejection(&e))
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The request body must be JSON, sent with Content-Type: application/json.",
        ),
        JsonRejection::JsonSyntaxError(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "The request body is not valid JSON.",
        ),
        // serde's message names the offending field ("unknown field `x`", "missing
        // field `y`") and never echoes the values, so it is safe to return.
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!(
                "The request body has the wrong shape: {}",
                data_error_reason(e)
            ),
        ),
        JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            )
        }
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "The request body could not be read.",
        ),
    }
}

/// serde's own words for a data error, without axum's prefix.
fn data_error_reason(e: &axum::extract::rejection::JsonDataError) -> String {
    use std::error::Error;
    let mut source: Option<&dyn Error> = Some(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}
