//! `POST /introspect` (RFC 7662): the form and client authentication of revocation
//! ([`super::revocation`]), confidential clients only, a never-cached JSON answer.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;

use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::oauth::json::{Allowed, MAX_BODY_BYTES, OAuthForm, OAuthJsonError, no_store_json};
use crate::http::oauth::revocation::{TokenForm, client_and_token, context};
use crate::http::state::AppState;
use crate::oauth::introspection;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::INTROSPECT, post(introspect))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

#[tracing::instrument(skip_all)]
async fn introspect(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> Result<Response, OAuthJsonError> {
    let (client, token) =
        client_and_token(&state, &headers, ip, form, Allowed::ConfidentialOnly).await?;
    introspection::introspect(&context(&state), &client, &token)
        .await
        .map(no_store_json)
        .map_err(|e| OAuthJsonError::unexpected(&e))
}
