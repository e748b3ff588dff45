//! `POST /revoke` (RFC 7009): a form body, client authentication as at the token
//! endpoint, a never-cached answer. `POST /introspect` takes the same form and
//! authentication ([`super::introspection`]).

use std::net::IpAddr;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;

use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::oauth::json::{
    self as oauth_json, Allowed, MAX_BODY_BYTES, OAuthForm, OAuthJsonError, no_store,
};
use crate::http::state::AppState;
use crate::oauth::clients::Client;
use crate::oauth::revocation::{self, Context, RevocationError};
use crate::oauth::{ErrorCode, OAuthError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::REVOKE, post(revoke))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

#[derive(Deserialize)]
pub struct TokenForm {
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

/// Authenticates the client as at the token endpoint and takes the required `token`.
pub async fn client_and_token(
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

pub fn context(state: &AppState) -> Context<'_> {
    Context {
        pool: &state.db.pool,
        keys: &state.keys,
        issuer: &state.issuer.0,
        now: state.clock.now().timestamp(),
    }
}
