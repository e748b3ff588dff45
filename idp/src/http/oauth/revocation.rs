//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662): form bodies, client
//! authentication as at the token endpoint (introspection: confidential clients only),
//! never-cached answers.

use std::net::IpAddr;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;

use crate::clients::Client;
use crate::endpoints;
use crate::oauth::revocation::{self, Context, RevocationError};
use crate::oauth::{ErrorCode, OAuthError};
use crate::routes::client_ip::ClientIp;
use crate::routes::oauth_json::{
    self, Allowed, MAX_BODY_BYTES, OAuthForm, OAuthJsonError, no_store, no_store_json,
};
use crate::startup::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::REVOKE, post(revoke))
        .route(endpoints::INTROSPECT, post(introspect))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

#[derive(Deserialize)]
struct TokenForm {
    token: Option<String>,
    /// Accepted and ignored: our tokens' shape says what they are (RFC 7009 §2.1 lets
    /// us), so an unknown hint is no error either.
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn revoke(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> Result<Response, OAuthJsonError> {
    let (client, token) =
        client_and_token(&state, &headers, ip, form, Allowed::AnyRegistered).await?;
    match revocation::revoke(&context(&state), &client, &token).await {
        // §2.2: 200 whether or not there was anything to revoke; the body is ignored.
        Ok(()) => Ok(no_store(StatusCode::OK)),
        Err(RevocationError::IssuedToAnotherClient) => Err(OAuthError::new(
            ErrorCode::InvalidGrant,
            "The token was issued to another client",
        )
        .into()),
        Err(RevocationError::Unexpected(e)) => Err(OAuthJsonError::unexpected(&e)),
    }
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
    revocation::introspect(&context(&state), &client, &token)
        .await
        .map(no_store_json)
        .map_err(|e| OAuthJsonError::unexpected(&e))
}

/// Authenticates the client as at the token endpoint and takes the required `token`.
async fn client_and_token(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
    form: TokenForm,
    allowed: Allowed,
) -> Result<(Client, String), OAuthJsonError> {
    let client = oauth_json::authenticate_client(
        &state.clients,
        headers,
        ip,
        form.client_id,
        form.client_secret,
        allowed,
    )
    .await?;
    let token = form
        .token
        .ok_or(OAuthJsonError::invalid_request("token is required"))?;
    Ok((client, token))
}

fn context(state: &AppState) -> Context<'_> {
    Context {
        pool: &state.db.pool,
        keys: &state.keys,
        issuer: &state.issuer.0,
        now: state.clock.now().timestamp(),
    }
}
