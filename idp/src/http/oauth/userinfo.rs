//! `GET` and `POST /userinfo` (OIDC Core §5.3): the Bearer token from the
//! Authorization header (RFC 6750 §2.1); errors per RFC 6750 §3.1, with a JSON body
//! and a `WWW-Authenticate: Bearer` challenge.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use service_kit::clock::Clock;
use service_kit::db::Database;

use crate::http::endpoints;
use crate::http::oauth::json::{
    BearerToken, OAuthJsonError, bearer_token, no_store, no_store_json,
};
use crate::http::state::{AppState, Issuer};
use crate::keys::KeyRing;
use crate::oauth::userinfo::{self, UserInfoError};
use crate::oauth::{ErrorCode, OAuthError};

pub fn routes() -> Router<AppState> {
    Router::new().route(endpoints::USERINFO, get(userinfo).post(userinfo))
}

#[tracing::instrument(skip_all)]
async fn userinfo(
    State(db): State<Database>,
    State(keys): State<KeyRing>,
    State(Issuer(issuer)): State<Issuer>,
    State(clock): State<Clock>,
    headers: HeaderMap,
) -> Response {
    let token = match bearer_token(&headers) {
        BearerToken::Present(token) => token,
        // RFC 6750 §3.1: no credentials, no error code.
        BearerToken::Missing => {
            return no_store((
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            ));
        }
        BearerToken::Malformed => return invalid_token(),
    };
    let now = clock.now().timestamp();
    match userinfo::userinfo(&db.pool, &keys, &issuer, &token, now).await {
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
