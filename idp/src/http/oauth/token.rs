//! `POST /token` (RFC 6749 §3.2, §4.1.3, §4.4.2, §6): authenticates the client, parses
//! the grant and hands it to [`TokenService`]. Every answer is JSON and never cached.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;

use crate::guards::secrets::Secret;
use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::oauth::json::{
    self as oauth_json, Allowed, MAX_BODY_BYTES, OAuthForm, OAuthJsonError, no_store_json,
};
use crate::http::state::AppState;
use crate::oauth::clients::{Clients, GrantType};
use crate::oauth::grants::{
    TokenError, TokenRequest, TokenService, authorization_code, client_credentials, refresh_token,
};
use crate::oauth::{ErrorCode, OAuthError, Scope};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::TOKEN, post(token))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn token(
    State(service): State<TokenService>,
    State(clients): State<Clients>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> Result<Response, OAuthJsonError> {
    let client = oauth_json::authenticate_client(
        &clients,
        &headers,
        ip,
        form.client_id.clone(),
        form.client_secret.clone(),
        Allowed::AnyRegistered,
    )
    .await?;
    let request = parse_request(form)?;
    match service.exchange(&client, request).await {
        Ok(response) => Ok(no_store_json(response)),
        Err(TokenError::Rejected(e)) => Err(e.into()),
        Err(TokenError::Unexpected(e)) => Err(OAuthJsonError::unexpected(&e)),
    }
}

fn parse_request(form: TokenForm) -> Result<TokenRequest, OAuthJsonError> {
    let grant_type = form
        .grant_type
        .ok_or(OAuthJsonError::invalid_request("grant_type is required"))?;
    // There is no password grant (RFC 9700 §2.4), nor any other we did not build.
    let grant_type = GrantType::parse(&grant_type).ok_or(OAuthError::new(
        ErrorCode::UnsupportedGrantType,
        "The grant_type is not supported",
    ))?;
    Ok(match grant_type {
        GrantType::AuthorizationCode => {
            TokenRequest::AuthorizationCode(authorization_code::Request {
                code: Secret::from_presented(
                    form.code
                        .ok_or(OAuthJsonError::invalid_request("code is required"))?,
                ),
                redirect_uri: form
                    .redirect_uri
                    .ok_or(OAuthJsonError::invalid_request("redirect_uri is required"))?,
                code_verifier: form.code_verifier,
            })
        }
        GrantType::RefreshToken => TokenRequest::RefreshToken(refresh_token::Request {
            refresh_token: Secret::from_presented(
                form.refresh_token
                    .ok_or(OAuthJsonError::invalid_request("refresh_token is required"))?,
            ),
            scope: parse_scope(form.scope)?,
        }),
        GrantType::ClientCredentials => {
            TokenRequest::ClientCredentials(client_credentials::Request {
                scope: parse_scope(form.scope)?,
            })
        }
    })
}

fn parse_scope(scope: Option<String>) -> Result<Option<Scope>, OAuthJsonError> {
    scope
        .map(|s| Scope::parse(&s))
        .transpose()
        .map_err(|_| OAuthError::new(ErrorCode::InvalidScope, "The scope is malformed").into())
}
