//! The pages: `/` (signed out: a Sign in button; signed in: the ID token's claims and
//! the resource server's answer), `/login` (start the code flow), `/callback` (finish
//! it), `/logout` (RP-initiated logout) and `/backchannel-logout`, where the idp posts
//! logout tokens (Back-Channel Logout 1.0).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use openidconnect::core::{CoreAuthenticationFlow, CoreTokenResponse};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, LogoutRequest, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, Scope, TokenResponse,
};
use serde_json::{Value, json};

use crate::backchannel::{LoggedOut, LogoutTokenError};
use crate::store::Session;
use crate::{AppState, IdToken};

const LOGIN_COOKIE: &str = "rp_login";
const SESSION_COOKIE: &str = "rp_session";
const LOGOUT_COOKIE: &str = "rp_logout";

/// Where the idp posts logout tokens; registered as the client's `backchannel_logout_uri`.
pub const BACKCHANNEL_LOGOUT: &str = "/backchannel-logout";
/// A logout token is about a kilobyte; nothing bigger is read.
const BACKCHANNEL_BODY_LIMIT: usize = 16 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .route(
            BACKCHANNEL_LOGOUT,
            post(backchannel_logout).layer(DefaultBodyLimit::max(BACKCHANNEL_BODY_LIMIT)),
        )
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

// ---- pages ---------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "signed_out.html")]
struct SignedOutPage {
    message: Option<&'static str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "signed_in.html")]
struct SignedInPage {
    subject: String,
    claims_json: String,
    resource_server_url: String,
    resource_server_status: String,
    resource_server_body: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    message: String,
}

#[derive(serde::Deserialize)]
struct HomeQuery {
    /// Present when the idp sends us back after logout.
    state: Option<String>,
}

async fn home(
    State(app): State<AppState>,
    Query(query): Query<HomeQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(session) = cookie(&headers, SESSION_COOKIE).and_then(|id| app.store.session(id)) {
        let (status, body) = call_resource_server(&app, &session).await;
        return SignedInPage {
            subject: session.subject.clone(),
            claims_json: session.claims_json.clone(),
            resource_server_url: format!("{}/users/me", app.resource_server),
            resource_server_status: status,
            resource_server_body: body,
        }
        .into_response();
    }
    // Back from the idp's logout: the state we sent must come back unchanged.
    let logged_out = matches!(
        (query.state.as_deref(), cookie(&headers, LOGOUT_COOKIE)),
        (Some(returned), Some(sent)) if returned == sent
    );
    let page = SignedOutPage {
        message: logged_out.then_some("You are signed out, here and at the identity provider."),
    };
    if logged_out {
        ([(header::SET_COOKIE, clear_cookie(LOGOUT_COOKIE))], page).into_response()
    } else {
        page.into_response()
    }
}

/// Starts the authorization code flow: fresh PKCE verifier, nonce and state, kept
/// server-side; the state also goes into a cookie so only this browser can finish.
async fn login(State(app): State<AppState>) -> Response {
    let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = app.oidc.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    // openidconnect always adds `openid` itself.
    for scope in app.scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state, nonce) = request.set_pkce_challenge(pkce_challenge).url();
    app.store
        .begin_login(state.secret().clone(), pkce_verifier, nonce);
    (
        [(
            header::SET_COOKIE,
            set_cookie(LOGIN_COOKIE, state.secret(), Some(600)),
        )],
        Redirect::to(url.as_str()),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Finishes the flow. The order matters: state (is this our request?), iss (is this the
/// provider we sent the user to?), then the code exchange and the ID token checks.
async fn callback(
    State(app): State<AppState>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let state = query
        .state
        .ok_or_else(|| AppError::bad_request("The response has no state."))?;
    if cookie(&headers, LOGIN_COOKIE) != Some(state.as_str()) {
        return Err(AppError::bad_request(
            "This sign-in was not started in this browser (state mismatch). Please start again.",
        ));
    }
    let pending = app.store.finish_login(&state).ok_or_else(|| {
        AppError::bad_request("This sign-in expired or was already used. Please start again.")
    })?;
    // RFC 9207: the provider names itself, which defeats mix-up attacks.
    if query.iss.as_deref() != Some(app.issuer.as_str()) {
        return Err(AppError::bad_request(
            "The response comes from an unexpected issuer.",
        ));
    }
    if let Some(error) = query.error {
        let description = query.error_description.unwrap_or_default();
        return Err(AppError::bad_request(format!(
            "The identity provider answered `{error}`. {description}"
        )));
    }
    let code = query
        .code
        .ok_or_else(|| AppError::bad_request("The response has no code."))?;

    let tokens: CoreTokenResponse = app
        .oidc
        .exchange_code(AuthorizationCode::new(code))
        .map_err(AppError::unexpected)?
        .set_pkce_verifier(pending.pkce_verifier)
        .request_async(&app.http)
        .await
        .map_err(|e| AppError::upstream("The code exchange failed", e))?;

    // The ID token: signature (RS256, the provider's JWKS), iss, aud, exp, nonce. Read
    // again with `sid`, which openidconnect's core claims leave out.
    let id_token: IdToken = tokens
        .id_token()
        .ok_or_else(|| AppError::upstream_msg("The token response has no ID token."))?
        .to_string()
        .parse()
        .map_err(AppError::unexpected)?;
    let verifier = app.oidc.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &pending.nonce)
        .map_err(|e| AppError::upstream("The ID token is not valid", e))?;
    // at_hash binds the access token to this ID token (OIDC Core 3.1.3.8).
    if let Some(expected) = claims.access_token_hash() {
        let actual = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().map_err(AppError::unexpected)?,
            id_token
                .signing_key(&verifier)
                .map_err(AppError::unexpected)?,
        )
        .map_err(AppError::unexpected)?;
        if actual != *expected {
            return Err(AppError::upstream_msg(
                "The access token does not match the ID token's at_hash.",
            ));
        }
    }
    let claims_json = serde_json::to_string_pretty(claims).map_err(AppError::unexpected)?;
    let provider_session = claims.additional_claims().sid.clone();
    tracing::info!(sub = %claims.subject().as_str(), sid = provider_session.as_deref(), "Signed in");

    let session_id = CsrfToken::new_random().secret().clone();
    app.store.insert_session(
        session_id.clone(),
        Session {
            id_token: id_token.clone(),
            subject: claims.subject().to_string(),
            provider_session,
            claims_json,
            access_token: tokens.access_token().clone(),
        },
    );
    let mut response = Redirect::to("/").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &session_id, None),
    );
    headers.append(header::SET_COOKIE, clear_cookie(LOGIN_COOKIE));
    Ok(response)
}

/// RP-initiated logout: forget the local session, then send the browser to the
/// provider's end_session_endpoint with the ID token as a hint, where to come back, and
/// a state to recognise the way back. A POST form: with SameSite=Lax cookies another
/// site cannot sign our users out.
async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let session = cookie(&headers, SESSION_COOKIE).and_then(|id| app.store.remove_session(id));
    let mut response = match (session, &app.end_session) {
        (Some(session), Some(end_session)) => {
            let state = CsrfToken::new_random();
            let url = LogoutRequest::from(end_session.clone())
                .set_id_token_hint(&session.id_token)
                .set_client_id(app.oidc.client_id().clone())
                .set_post_logout_redirect_uri(app.post_logout_redirect_uri.clone())
                .set_state(state.clone())
                .http_get_url();
            let mut response = Redirect::to(url.as_str()).into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(LOGOUT_COOKIE, state.secret(), Some(600)),
            );
            response
        }
        _ => Redirect::to("/").into_response(),
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
    response
}

#[derive(serde::Deserialize)]
struct BackchannelLogoutForm {
    logout_token: String,
}

/// Back-Channel Logout 1.0 §2.5-2.8: the idp posts a logout token; if it holds, end the
/// local sessions it names. 200 on success, also when no session matched (it may have
/// ended here already); 400 with a JSON error when the token or the request is not
/// acceptable; 503 when the idp's keys cannot be fetched, so that the idp retries.
#[tracing::instrument(skip_all)]
async fn backchannel_logout(
    State(app): State<AppState>,
    form: Result<Form<BackchannelLogoutForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        tracing::warn!("Back-channel logout refused: not a form with one logout_token");
        return backchannel_error(
            StatusCode::BAD_REQUEST,
            "The request must be a form with one logout_token.",
        );
    };
    let now = unix_now();
    match app.logout_tokens.validate(&form.logout_token, now).await {
        Ok(logged_out) => {
            let ended = app.store.end_sessions(&logged_out);
            let (sid, sub) = match &logged_out {
                LoggedOut::Session { sid, sub } => (Some(sid.as_str()), sub.as_deref()),
                LoggedOut::User { sub } => (None, Some(sub.as_str())),
            };
            tracing::info!(sid, sub, sessions_ended = ended, "Back-channel logout");
            (
                [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
                StatusCode::OK,
            )
                .into_response()
        }
        Err(LogoutTokenError::Invalid(reason)) => {
            tracing::warn!(reason, "Back-channel logout refused");
            backchannel_error(StatusCode::BAD_REQUEST, reason)
        }
        Err(e @ LogoutTokenError::Unavailable(_)) => {
            tracing::error!(
                error = format!("{:#}", anyhow::Error::from(e)),
                "Back-channel logout could not be checked"
            );
            backchannel_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The logout token cannot be checked now; try again later.",
            )
        }
    }
}

/// §2.8: an OAuth-style JSON error, never cached.
fn backchannel_error(status: StatusCode, description: &str) -> Response {
    let error = if status == StatusCode::BAD_REQUEST {
        "invalid_request"
    } else {
        "temporarily_unavailable"
    };
    (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `GET {resource server}/users/me` with the access token: (status line, body).
async fn call_resource_server(app: &AppState, session: &Session) -> (String, String) {
    let url = format!("{}/users/me", app.resource_server);
    let result = app
        .http
        .get(&url)
        .bearer_auth(session.access_token.secret())
        .send()
        .await;
    match result {
        Ok(response) => {
            let status = response.status().to_string();
            let text = response.text().await.unwrap_or_default();
            let body = serde_json::from_str::<Value>(&text)
                .and_then(|json| serde_json::to_string_pretty(&json))
                .unwrap_or(text);
            (status, body)
        }
        Err(e) => ("unreachable".to_owned(), e.to_string()),
    }
}

// ---- errors --------------------------------------------------------------------------

pub struct AppError {
    status: StatusCode,
    message: String,
}

impl AppError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn upstream(what: &str, error: impl std::error::Error) -> Self {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::warn!(error = %chain, "{what}");
        Self::upstream_msg(format!("{what}: {chain}"))
    }

    fn upstream_msg(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            message: message.into(),
        }
    }

    fn unexpected(error: impl std::error::Error) -> Self {
        tracing::error!(%error, "Unexpected error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "Something went wrong; the log has the details.".to_owned(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (
            self.status,
            ErrorPage {
                message: self.message,
            },
        )
            .into_response()
    }
}

// ---- cookies and headers ------------------------------------------------------------

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// HttpOnly (no script reads it) and SameSite=Lax (sent on the top-level redirect back
/// from the idp, not on cross-site POSTs). Add `Secure` when serving over https.
fn set_cookie(name: &str, value: &str, max_age: Option<u32>) -> HeaderValue {
    let max_age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax{max_age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie(name: &str) -> HeaderValue {
    set_cookie(name, "", Some(0))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    // The callback URL carries the code: never leak it in a Referer.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
