//! The axum side of token validation: the [`BearerClaims`] extractor and the RFC 6750
//! responses (401 for a missing or invalid token, 403 for a missing scope).

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, http::HeaderName};
use serde_json::json;

use crate::{AccessTokenClaims, TokenValidator};

/// The request id a service's middleware puts on the request (or the caller sent),
/// passed on to the issuer when the keys are fetched for this request.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The message of every invalid-token answer, whatever the reason.
pub const INVALID_TOKEN_MESSAGE: &str = "The access token is invalid or expired.";

/// The claims of a valid access token sent as `Authorization: Bearer <token>`
/// (RFC 6750 §2.1; the only place we look for a token). Needs a [`TokenValidator`] in
/// the router state (`TokenValidator: FromRef<S>`).
#[derive(Debug, Clone)]
pub struct BearerClaims(pub AccessTokenClaims);

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRejection {
    /// No bearer token: 401 with a bare `WWW-Authenticate: Bearer` (RFC 6750 §3.1).
    MissingToken,
    /// Any problem with the token: 401 `invalid_token`, always the same answer.
    InvalidToken,
}

impl<S> FromRequestParts<S> for BearerClaims
where
    S: Send + Sync,
    TokenValidator: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        let validator = TokenValidator::from_ref(state);
        let request_id = parts
            .headers
            .get(&REQUEST_ID)
            .and_then(|id| id.to_str().ok());
        match validator.validate(token, request_id).await {
            Ok(claims) => Ok(Self(claims)),
            Err(reason) => {
                tracing::debug!(%reason, "Refused an access token");
                Err(AuthRejection::InvalidToken)
            }
        }
    }
}

/// The token of a single `Authorization: Bearer` header; the scheme is case-insensitive.
/// Another scheme counts as no token at all.
fn bearer_token(parts: &Parts) -> Result<&str, AuthRejection> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthRejection::MissingToken);
    };
    if values.next().is_some() {
        return Err(AuthRejection::InvalidToken);
    }
    let value = value.to_str().map_err(|_| AuthRejection::InvalidToken)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthRejection::MissingToken);
    }
    let token = token.trim_matches(' ');
    if token.is_empty() {
        return Err(AuthRejection::InvalidToken);
    }
    Ok(token)
}

/// An RFC 6750 error response in the JSON error shape
/// `{"error": "<code>", "message": "<for people>"}`, with its `WWW-Authenticate`.
#[derive(Debug, Clone)]
pub struct AuthError {
    pub status: StatusCode,
    /// Stable and machine-readable: `missing_token`, `invalid_token`,
    /// `insufficient_scope`.
    pub code: &'static str,
    pub message: String,
    pub www_authenticate: HeaderValue,
}

impl From<AuthRejection> for AuthError {
    fn from(rejection: AuthRejection) -> Self {
        match rejection {
            AuthRejection::MissingToken => Self {
                status: StatusCode::UNAUTHORIZED,
                code: "missing_token",
                message: "This request needs an access token: send Authorization: Bearer <token>."
                    .to_owned(),
                www_authenticate: HeaderValue::from_static("Bearer"),
            },
            AuthRejection::InvalidToken => Self {
                status: StatusCode::UNAUTHORIZED,
                code: "invalid_token",
                message: INVALID_TOKEN_MESSAGE.to_owned(),
                www_authenticate: HeaderValue::from_static("Bearer error=\"invalid_token\""),
            },
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.code, "message": self.message}));
        (
            self.status,
            [(header::WWW_AUTHENTICATE, self.www_authenticate)],
            body,
        )
            .into_response()
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        AuthError::from(self).into_response()
    }
}

/// 403 `insufficient_scope` naming the scopes the request needs (RFC 6750 §3.1).
/// `needed` is a space-separated scope list, so it is always a valid header value.
pub fn insufficient_scope(needed: &str) -> AuthError {
    let www_authenticate = HeaderValue::from_str(&format!(
        "Bearer error=\"insufficient_scope\", scope=\"{needed}\""
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"insufficient_scope\""));
    AuthError {
        status: StatusCode::FORBIDDEN,
        code: "insufficient_scope",
        message: format!("This request needs the scope(s): {needed}."),
        www_authenticate,
    }
}

/// 401 `insufficient_user_authentication` (RFC 9470 §3): the token is valid but the
/// sign-in behind it is not the one this request needs. `acr_values` (space-separated)
/// tells the client what to ask the authorization server for, as `acr_values` in a new
/// authorization request (step-up). Check with [`AccessTokenClaims::acr`].
pub fn insufficient_user_authentication(acr_values: &str) -> AuthError {
    let www_authenticate = HeaderValue::from_str(&format!(
        "Bearer error=\"insufficient_user_authentication\", \
         error_description=\"A different authentication level is required\", \
         acr_values=\"{acr_values}\""
    ))
    .unwrap_or_else(|_| {
        HeaderValue::from_static("Bearer error=\"insufficient_user_authentication\"")
    });
    AuthError {
        status: StatusCode::UNAUTHORIZED,
        code: "insufficient_user_authentication",
        message: format!(
            "This request needs a stronger sign-in: get a new token with acr_values={acr_values}."
        ),
        www_authenticate,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(headers: &[&str]) -> Parts {
        let mut builder = Request::builder();
        for h in headers {
            builder = builder.header(header::AUTHORIZATION, *h);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token(&parts(&["Bearer abc"])), Ok("abc"));
        assert_eq!(bearer_token(&parts(&["bEaReR abc"])), Ok("abc"));
    }

    #[test]
    fn no_header_or_another_scheme_is_a_missing_token() {
        assert_eq!(bearer_token(&parts(&[])), Err(AuthRejection::MissingToken));
        assert_eq!(
            bearer_token(&parts(&["Basic dTpw"])),
            Err(AuthRejection::MissingToken)
        );
        assert_eq!(
            bearer_token(&parts(&["Bearerabc"])),
            Err(AuthRejection::MissingToken)
        );
    }

    #[test]
    fn an_empty_token_or_two_headers_are_invalid() {
        assert_eq!(
            bearer_token(&parts(&["Bearer "])),
            Err(AuthRejection::InvalidToken)
        );
        assert_eq!(
            bearer_token(&parts(&["Bearer"])),
            Err(AuthRejection::InvalidToken)
        );
        assert_eq!(
            bearer_token(&parts(&["Bearer a", "Bearer b"])),
            Err(AuthRejection::InvalidToken)
        );
    }
}
