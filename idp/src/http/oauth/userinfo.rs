//! `GET` and `POST /userinfo` (OIDC Core §5.3): the Bearer token from the
//! Authorization header (RFC 6750 §2.1) or, on a POST, from the form-encoded body
//! (§2.2), one of the two only; errors per RFC 6750 §3.1, with a JSON body and a
//! `WWW-Authenticate: Bearer` challenge.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::endpoints;
use crate::http::oauth::json::{
    BearerToken, MAX_BODY_BYTES, OAuthJsonError, no_store, no_store_json, presented_token,
};
use crate::http::state::AppState;
use crate::oauth::userinfo::{self, UserInfoError};
use crate::oauth::{ErrorCode, OAuthError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::USERINFO, get(userinfo).post(userinfo))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The body of a form-encoded POST: where RFC 6750 §2.2 allows the token.
fn form_body<'a>(method: &Method, headers: &HeaderMap, body: &'a Bytes) -> Option<&'a [u8]> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    (method == Method::POST && form).then_some(body.as_ref())
}

#[tracing::instrument(skip_all)]
async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return OAuthJsonError::invalid_request("The request body is too large or unreadable")
            .into_response();
    };
    let form = form_body(&method, &headers, &body);
    let token = match presented_token(&headers, uri.query(), form) {
        BearerToken::Present(token) => token,
        // RFC 6750 §3.1: no credentials, no error code.
        BearerToken::Missing => {
            return no_store((
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            ));
        }
        BearerToken::Malformed => return invalid_token(),
        BearerToken::Refused(description) => {
            return OAuthJsonError::invalid_request(description)
                .with_www_authenticate(HeaderValue::from_static(
                    r#"Bearer error="invalid_request""#,
                ))
                .into_response();
        }
    };
    let now = state.clock.now().timestamp();
    match userinfo::userinfo(&state.db.pool, &state.keys, &state.issuer.0, &token, now).await {
        Ok(info) => no_store_json(info),
        Err(UserInfoError::InvalidToken) => invalid_token(),
        Err(UserInfoError::InsufficientScope) => OAuthJsonError::new(OAuthError::new(
            ErrorCode::InsufficientScope,
            "The access token does not carry the openid scope",
        ))
        .with_www_authenticate(HeaderValue::from_static(
            r#"Bearer error="insufficient_scope", scope="openid""#,
        ))
        .into_response(),
        Err(UserInfoError::Unexpected(e)) => OAuthJsonError::unexpected(&e).into_response(),
    }
}

fn invalid_token() -> Response {
    OAuthJsonError::new(OAuthError::new(
        ErrorCode::InvalidToken,
        "The access token is invalid, expired or revoked",
    ))
    .with_www_authenticate(HeaderValue::from_static(r#"Bearer error="invalid_token""#))
    .into_response()
}
