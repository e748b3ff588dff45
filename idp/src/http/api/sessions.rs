//! The first-party JSON API within a session, authenticated by the access token from
//! `/auth/login` or `/auth/refresh` (`Authorization: Bearer`): the token must be ours,
//! unexpired, from the first-party login, and its session (`sid`) still live. Ending a
//! session therefore cuts these calls off at once, while resource servers keep
//! accepting its access tokens until they expire.
//!
//! - `GET /auth/me`: the account; `PATCH /auth/me` changes its display name;
//!   `DELETE /auth/me {"current_password"}` deletes it.
//! - `GET /auth/session`: this session. `POST /auth/activity`: "still here" (moves the
//!   idle timeout); `GET /auth/activity`: recent sign-in attempts on the account.
//! - `GET /auth/sessions`: every live session; `DELETE /auth/sessions/{id}` ends one,
//!   `DELETE /auth/sessions` all but this one.
//! - `POST /auth/password`: change the password (current one required); every other
//!   session ends.

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};
use service_kit::api_error::{ApiError, ApiJson};

use crate::accounts::PasswordChangeError;
use crate::accounts::profile::{DisplayNameError, NameChangeError};
use crate::accounts::reauth::ReauthError;
use crate::accounts::store as users;
use crate::guards::audit::events;
use crate::guards::audit::store::AuditRow;
use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::state::AppState;
use crate::oauth::access;
use crate::sessions::api::FIRST_PARTY_CLIENT_ID;
use crate::sessions::device::Device;
use crate::sessions::records::EndReason;
use crate::sessions::store::SessionRow;

/// The header cookie-authenticated calls echo the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
const MAX_BODY_BYTES: usize = 4 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            endpoints::ME,
            get(me).patch(change_name).delete(delete_account),
        )
        .route(endpoints::SESSION, get(current_session))
        .route(endpoints::ACTIVITY, get(activity).post(still_here))
        .route(
            endpoints::SESSIONS,
            get(sessions).delete(end_other_sessions),
        )
        .route(endpoints::ONE_SESSION, delete(end_session))
        .route(endpoints::PASSWORD, post(change_password))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The live first-party session a request's bearer access token speaks for.
pub struct ApiSession {
    pub session: SessionRow,
}

impl FromRequestParts<AppState> for ApiSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Self::from_headers(state, &parts.headers).await
    }
}

impl ApiSession {
    pub async fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Self, ApiError> {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let token = match (values.next(), values.next()) {
            (Some(value), None) => value
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim()),
            _ => None,
        }
        .ok_or_else(invalid_token)?;
        let now = state.clock.now().timestamp();
        let claims = access::verify(token, &state.keys, &state.issuer.0, now)
            .map_err(|_| invalid_token())?;
        let sid = claims
            .session_id
            .filter(|_| claims.client_id == FIRST_PARTY_CLIENT_ID)
            .ok_or_else(invalid_token)?;
        let session = state
            .user_sessions
            .live(&sid)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .filter(|s| s.user_id == claims.subject)
            .ok_or_else(invalid_token)?;
        Ok(Self { session })
    }
}

/// 401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1).
fn invalid_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "The access token is missing, invalid or expired, or its session has ended.",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer error="invalid_token""#),
    )
}

pub fn csrf_failed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_failed",
        "Calls authenticated by the refresh cookie must carry the session's CSRF token \
         in X-CSRF-Token.",
    )
}

/// The `X-CSRF-Token` header, or "" (which matches nothing).
pub fn csrf_header(headers: &HeaderMap) -> &str {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

pub fn rfc3339(unix_secs: i64) -> String {
    DateTime::from_timestamp(unix_secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Serialize)]
struct SessionView {
    id: String,
    kind: String,
    device: String,
    /// The User-Agent, sanitised: tells apart what the parser calls an unknown device.
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: String,
    last_seen_at: String,
    expires_at: String,
    /// When it ends if unused from now on.
    idle_expires_at: String,
    current: bool,
}

fn view(state: &AppState, session: &SessionRow, current: &str) -> SessionView {
    let idle = state.user_sessions.policy().idle_timeout_secs;
    SessionView {
        id: session.id.clone(),
        kind: session.kind.clone(),
        device: session.device.clone(),
        user_agent: session.user_agent.clone(),
        ip: session.ip.clone(),
        created_at: rfc3339(session.created_at),
        last_seen_at: rfc3339(session.last_seen_at),
        expires_at: rfc3339(session.expires_at),
        idle_expires_at: rfc3339((session.last_seen_at + idle).min(session.expires_at)),
        current: session.id == current,
    }
}

/// Responses about a person's sessions and account are never cached.
fn no_store(body: impl Serialize) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response()
}

async fn me(State(state): State<AppState>, auth: ApiSession) -> Result<Response, ApiError> {
    let user = users::find_by_id(&state.db.pool, &auth.session.user_id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(ApiError::not_found)?;
    Ok(no_store(serde_json::json!({
        "id": user.id,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "created_at": rfc3339(user.created_at),
        "updated_at": rfc3339(user.profile_updated_at),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameChange {
    /// Blank removes the name.
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Deletion {
    current_password: String,
}

/// `DELETE /auth/me {"current_password"}`: the account and everything hanging on it.
#[tracing::instrument(skip_all)]
async fn delete_account(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    auth: ApiSession,
    ApiJson(body): ApiJson<Deletion>,
) -> Result<Response, ApiError> {
    state
        .accounts
        .delete_account(&auth.session.user_id, body.current_password, ip)
        .await
        .map_err(reauth_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The answer to a refused re-entry of the current password.
pub fn reauth_error(e: ReauthError) -> ApiError {
    match e {
        ReauthError::WrongCurrentPassword => wrong_current_password(),
        ReauthError::Throttled { retry_after_secs } => too_many_requests(
            retry_after_secs,
            "Too many failed attempts from this address. Retry later.",
        ),
        ReauthError::Unexpected(e) => ApiError::internal(&e),
    }
}

fn wrong_current_password() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "wrong_current_password",
        "The current password is incorrect.",
    )
}

/// 429 with `Retry-After` in seconds (RFC 6585 §4), in the API error shape.
pub fn too_many_requests(retry_after_secs: u64, message: &'static str) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
        .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after_secs))
}

/// 422 `invalid_name`, from registration or a name change.
pub fn invalid_name(e: DisplayNameError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_name",
        e.to_string(),
    )
}

/// `PATCH /auth/me {"name"}`: the account, with its new display name.
async fn change_name(
    State(state): State<AppState>,
    auth: ApiSession,
    ApiJson(body): ApiJson<NameChange>,
) -> Result<Response, ApiError> {
    state
        .accounts
        .change_name(&auth.session.user_id, &body.name)
        .await
        .map_err(|e| match e {
            NameChangeError::Invalid(e) => invalid_name(e),
            NameChangeError::Unexpected(e) => ApiError::internal(&e),
        })?;
    me(State(state), auth).await
}

async fn current_session(State(state): State<AppState>, auth: ApiSession) -> Response {
    no_store(view(&state, &auth.session, &auth.session.id))
}

/// `POST /auth/activity`: the session is in use (the lookup itself records it).
async fn still_here(State(state): State<AppState>, auth: ApiSession) -> Response {
    let mut session = auth.session;
    session.last_seen_at = state.clock.now().timestamp();
    no_store(view(&state, &session, &session.id))
}

#[derive(Serialize)]
struct ActivityView {
    at: String,
    /// `password`, or `second_factor` for the second step of two-step sign-in.
    step: &'static str,
    outcome: String,
    ip: Option<String>,
    device: Option<String>,
    user_agent: Option<String>,
}

/// The account's recent sign-in attempts, as the account page shows them.
pub fn activity_views(rows: Vec<AuditRow>) -> Vec<impl Serialize> {
    rows.into_iter()
        .map(|row| ActivityView {
            at: rfc3339(row.at),
            step: if row.event == events::SECOND_FACTOR {
                "second_factor"
            } else {
                "password"
            },
            outcome: row.outcome,
            ip: row.ip,
            device: row.device,
            user_agent: row.user_agent,
        })
        .collect()
}

async fn activity(State(state): State<AppState>, auth: ApiSession) -> Result<Response, ApiError> {
    let rows = state
        .user_sessions
        .sign_in_activity(&auth.session.user_id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(no_store(
        serde_json::json!({ "sign_ins": activity_views(rows) }),
    ))
}

async fn sessions(State(state): State<AppState>, auth: ApiSession) -> Result<Response, ApiError> {
    let list = state
        .user_sessions
        .list(&auth.session.user_id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let views: Vec<_> = list
        .iter()
        .map(|s| view(&state, s, &auth.session.id))
        .collect();
    Ok(no_store(serde_json::json!({ "sessions": views })))
}

async fn end_session(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    auth: ApiSession,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ended = state
        .user_sessions
        .end(&auth.session.user_id, &id, EndReason::EndedByUser, ip)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if !ended {
        // Another user's session, an unknown id or one already over: the same answer.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "session_not_found",
            "You have no live session with this id.",
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn end_other_sessions(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    auth: ApiSession,
) -> Result<Response, ApiError> {
    let current = &auth.session;
    let ended = state
        .user_sessions
        .end_others(
            &current.user_id,
            Some(&current.id),
            EndReason::EndedByUser,
            ip,
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(no_store(serde_json::json!({ "ended": ended })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    auth: ApiSession,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, ApiError> {
    state
        .accounts
        .change_password(
            &auth.session.user_id,
            &auth.session.id,
            body.current_password,
            body.new_password,
            ip,
            &device,
        )
        .await
        .map_err(|e| match e {
            PasswordChangeError::WrongCurrentPassword => wrong_current_password(),
            PasswordChangeError::InvalidPassword(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_password",
                e.to_string(),
            ),
            PasswordChangeError::Throttled { retry_after_secs } => too_many_requests(
                retry_after_secs,
                "Too many failed attempts from this address. Retry later.",
            ),
            PasswordChangeError::Unexpected(e) => ApiError::internal(&e),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
