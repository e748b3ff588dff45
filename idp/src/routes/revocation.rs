//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662): form bodies, client
//! authentication as at the token endpoint (introspection: confidential clients only),
//! never-cached answers.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;
use service_kit::clock::Clock;
use service_kit::db::Database;

use crate::clients::Clients;
use crate::endpoints;
use crate::keys::KeyRing;
use crate::oauth::revocation::{self, Context, RevocationError};
use crate::oauth::{ErrorCode, OAuthError};
use crate::routes::oauth_json::{
    self, Allowed, MAX_BODY_BYTES, OAuthForm, OAuthJsonError, no_store, no_store_json,
};
use crate::startup::{AppState, Issuer};

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
    State(clients): State<Clients>,
    State(db): State<Database>,
    State(keys): State<KeyRing>,
    State(Issuer(issuer)): State<Issuer>,
    State(clock): State<Clock>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> Result<Response, OAuthJsonError> {
    let client = oauth_json::authenticate_client(
        &clients,
        &headers,
        form.client_id,
        form.client_secret,
        Allowed::AnyRegistered,
    )
    .await?;
    let token = form
        .token
        .ok_or(OAuthJsonError::invalid_request("token is required"))?;
    let ctx = Context {
        pool: &db.pool,
        keys: &keys,
        issuer: &issuer,
        now: clock.now().timestamp(),
    };
    match revocation::revoke(&ctx, &client, &token).await {
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
    State(clients): State<Clients>,
    State(db): State<Database>,
    State(keys): State<KeyRing>,
    State(Issuer(issuer)): State<Issuer>,
    State(clock): State<Clock>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> Result<Response, OAuthJsonError> {
    let client = oauth_json::authenticate_client(
        &clients,
        &headers,
        form.client_id,
        form.client_secret,
        Allowed::ConfidentialOnly,
    )
    .await?;
    let token = form
        .token
        .ok_or(OAuthJsonError::invalid_request("token is required"))?;
    let ctx = Context {
        pool: &db.pool,
        keys: &keys,
        issuer: &issuer,
        now: clock.now().timestamp(),
    };
    revocation::introspect(&ctx, &client, &token)
        .await
        .map(no_store_json)
        .map_err(|e| OAuthJsonError::unexpected(&e))
}
