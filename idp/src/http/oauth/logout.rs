//! RP-Initiated Logout 1.0 at `/logout` (GET and POST), and `/logout/confirm`, where
//! the confirmation page posts.
//!
//! A `post_logout_redirect_uri` is honoured only when it is registered, by exact string,
//! for the client named by `client_id` or by the `id_token_hint`'s audience; otherwise
//! the error page is shown, never a redirect. Signing out flushes the server session
//! and revokes the grants made in it (their refresh and access tokens die with them).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::http::browser_session::BrowserSession;
use crate::http::endpoints;
use crate::http::oauth::authorize::see_other;
use crate::http::pages::login::{CsrfForm, CsrfProtected};
use crate::http::pages::views::{LogoutPage, SignedOutPage};
use crate::http::pages::{self, PageContext, PageError};
use crate::http::state::AppState;
use crate::keys::KeyRing;
use crate::oauth::OAuthError;
use crate::oauth::authorize::Params;
use crate::oauth::clients::{Client, Clients};
use crate::oauth::id_token_hint;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::END_SESSION, get(logout_get).post(logout_post))
        .route(endpoints::END_SESSION_CONFIRM, post(confirm))
}

/// A logout request that passed validation.
struct LogoutRequest {
    client: Option<Client>,
    /// Where to send the browser afterwards, with the `state` to echo.
    redirect: Option<(String, Option<String>)>,
}

fn refuse(description: &'static str) -> PageError {
    PageError::oauth(&OAuthError::invalid_request(description))
}

/// RP-Initiated Logout 1.0 §2-3, in order: readable parameters, a valid hint, a client
/// consistent with it, a registered redirect URI.
async fn validate(
    params: &Params,
    clients: &Clients,
    keys: &KeyRing,
    issuer: &str,
) -> Result<LogoutRequest, PageError> {
    let get = |name| {
        params
            .value(name)
            .map_err(|_| refuse("A parameter was given more than once"))
    };
    let hint =
        match get("id_token_hint")? {
            Some(token) => Some(id_token_hint::verify(token, keys, issuer).map_err(|_| {
                refuse("The id_token_hint is not a valid ID token from this provider")
            })?),
            None => None,
        };
    let client_id = match (get("client_id")?, &hint) {
        (Some(id), Some(hint)) if !hint.audience.iter().any(|aud| aud == id) => {
            return Err(refuse("The client_id does not match the id_token_hint"));
        }
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(hint)) => hint.client_id().map(str::to_owned),
        (None, None) => None,
    };
    let client = match &client_id {
        Some(id) => Some(
            clients
                .find(id)
                .await
                .map_err(|e| PageError::internal(&e))?
                .ok_or_else(|| refuse("The client_id is not a registered client"))?,
        ),
        None => None,
    };
    let redirect = match get("post_logout_redirect_uri")? {
        None => None,
        Some(uri) => {
            let registered = client.as_ref().is_some_and(|c| {
                c.post_logout_redirect_uris
                    .iter()
                    .any(|r| r.as_ref() == uri)
            });
            if !registered {
                return Err(refuse(
                    "The post_logout_redirect_uri is not registered for this client",
                ));
            }
            Some((uri.to_owned(), get("state")?.map(str::to_owned)))
        }
    };
    Ok(LogoutRequest { client, redirect })
}

#[tracing::instrument(skip_all)]
async fn logout_get(
    State(state): State<AppState>,
    session: BrowserSession,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = Params::from_urlencoded(query.unwrap_or_default().as_bytes());
    logout(&state, &session, &params).await
}

#[tracing::instrument(skip_all)]
async fn logout_post(
    State(state): State<AppState>,
    session: BrowserSession,
    body: Bytes,
) -> Result<Response, PageError> {
    logout(&state, &session, &Params::from_urlencoded(&body)).await
}

/// Asks the signed-in user to confirm (the spec requires asking unless the hint proves
/// the request comes from the session's own client; we always ask, which is simpler and
/// stops cross-site logout). Nobody signed in: nothing to end, so go straight on.
async fn logout(
    state: &AppState,
    session: &BrowserSession,
    params: &Params,
) -> Result<Response, PageError> {
    let request = validate(params, &state.clients, &state.keys, &state.issuer.0).await?;
    let Some(user) = session.user().await.map_err(|e| PageError::internal(&e))? else {
        return finish(&request);
    };
    let (uri, logout_state) = match &request.redirect {
        Some((uri, s)) => (Some(uri.as_str()), s.as_deref()),
        None => (None, None),
    };
    Ok(pages::render(&LogoutPage {
        ctx: session.page_context().await?,
        user_email: &user.email,
        client_name: request.client.as_ref().map(|c| c.name.as_str()),
        client_id: request.client.as_ref().map(|c| c.id.as_ref()),
        post_logout_redirect_uri: uri,
        state: logout_state,
        home_path: endpoints::HOME,
    }))
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    csrf_token: String,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

impl CsrfProtected for ConfirmForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// The user confirmed: end the session, revoke what it issued, then leave.
#[tracing::instrument(skip_all)]
async fn confirm(
    State(state): State<AppState>,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<Response, PageError> {
    // The hidden fields come back from the browser: check them again.
    let mut params = Vec::new();
    for (name, value) in [
        ("client_id", &form.client_id),
        ("post_logout_redirect_uri", &form.post_logout_redirect_uri),
        ("state", &form.state),
    ] {
        if let Some(value) = value {
            params.push((name.to_owned(), value.clone()));
        }
    }
    let request = validate(
        &Params::from_pairs(params),
        &state.clients,
        &state.keys,
        &state.issuer.0,
    )
    .await?;
    if let Some(user) = session.user().await.map_err(|e| PageError::internal(&e))? {
        tracing::info!(user_id = %user.user_id, "Signed out");
    }
    session
        .sign_out()
        .await
        .map_err(|e| PageError::internal(&e))?;
    finish(&request)
}

/// Back to the client with its `state`, or the "signed out" page.
fn finish(request: &LogoutRequest) -> Result<Response, PageError> {
    match &request.redirect {
        Some((uri, state)) => {
            let location = match state {
                Some(state) => {
                    let query = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("state", state)
                        .finish();
                    let separator = if uri.contains('?') { '&' } else { '?' };
                    format!("{uri}{separator}{query}")
                }
                None => uri.clone(),
            };
            see_other(&location)
        }
        None => Ok(pages::render(&SignedOutPage {
            ctx: PageContext::without_form(),
            client_name: request.client.as_ref().map(|c| c.name.as_str()),
            login_path: endpoints::LOGIN_PAGE,
        })),
    }
}
