//! `/authorize` (GET query or POST form, one pipeline) and `/authorize/continue`, where
//! the sign-in and consent pages hand a waiting request back. The protocol decisions
//! live in [`crate::oauth::authorize`]; this module reads the browser session, stores
//! waiting requests in it and turns outcomes into redirects or pages.
//!
//! No CORS headers here: `/authorize` is for top-level browser navigation only.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::accounts::amr::{ACR_MFA, Amr};
use crate::http::browser_session::{BrowserSession, PendingAuthorization, PendingSignIn};
use crate::http::endpoints;
use crate::http::pages::PageError;
use crate::http::state::AppState;
use crate::oauth::authorize::{
    self, Authentication, AuthenticationStep, CodeSubject, ConsentStep, Context, Params, Rejection,
};
use crate::oauth::clients::{Client, ConsentPolicy};
use crate::oauth::{OAuthError, consent};

/// Room for long `state`, `nonce` and `id_token_hint` values, and no more.
const MAX_BODY_BYTES: usize = 32 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            endpoints::AUTHORIZE,
            get(authorize_get).post(authorize_post),
        )
        .route(endpoints::AUTHORIZE_CONTINUE, get(continue_waiting))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

#[tracing::instrument(skip_all)]
async fn authorize_get(
    State(state): State<AppState>,
    session: BrowserSession,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = Params::from_urlencoded(query.unwrap_or_default().as_bytes());
    authorize(&state, &session, &params).await
}

/// OIDC Core §3.1.2.1: the same parameters, form-encoded in the body.
#[tracing::instrument(skip_all)]
async fn authorize_post(
    State(state): State<AppState>,
    session: BrowserSession,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return Err(PageError::oauth(&OAuthError::invalid_request(
            "POST requests must be form-encoded",
        )));
    }
    authorize(&state, &session, &Params::from_urlencoded(&body)).await
}

async fn authorize(
    state: &AppState,
    session: &BrowserSession,
    params: &Params,
) -> Result<Response, PageError> {
    let ctx = Context {
        clients: &state.clients,
        keys: &state.keys,
        issuer: &state.issuer.0,
    };
    let (request, client) = match authorize::validate(params, &ctx).await {
        Ok(valid) => valid,
        Err(Rejection::ShowToUser(error)) => {
            tracing::info!(
                error = error.code.as_str(),
                "Authorization request refused (shown to the user)"
            );
            return Err(PageError::oauth(&error));
        }
        Err(Rejection::Redirect(reply, error)) => {
            tracing::info!(error = error.code.as_str(), "Authorization request refused");
            return see_other(&reply.with_error(&error, &state.issuer.0));
        }
        Err(Rejection::Unexpected(e)) => return Err(PageError::internal(&e)),
    };
    let pending = PendingAuthorization {
        request,
        created_at: state.clock.now().timestamp(),
        authenticated: false,
        consented: false,
    };
    proceed(state, session, &client, Waiting::New(pending)).await
}

/// A request on its way through the flow: fresh from `/authorize`, or already waiting
/// in the session under an id.
pub enum Waiting {
    New(PendingAuthorization),
    Stored(String, PendingAuthorization),
}

impl Waiting {
    fn pending(&self) -> &PendingAuthorization {
        match self {
            Self::New(p) | Self::Stored(_, p) => p,
        }
    }

    /// The id under which the request waits, storing it first if it is new.
    async fn park(self, session: &BrowserSession, now: i64) -> Result<String, PageError> {
        match self {
            Self::Stored(id, _) => Ok(id),
            Self::New(pending) => session
                .add_pending(pending.request, now)
                .await
                .map_err(|e| PageError::internal(&e)),
        }
    }

    async fn forget(&self, session: &BrowserSession, now: i64) -> Result<(), PageError> {
        if let Self::Stored(id, _) = self {
            session
                .remove_pending(id, now)
                .await
                .map_err(|e| PageError::internal(&e))?;
        }
        Ok(())
    }
}

/// Steps 8 to 10: sign-in, consent, then the code.
pub async fn proceed(
    state: &AppState,
    session: &BrowserSession,
    client: &Client,
    waiting: Waiting,
) -> Result<Response, PageError> {
    let now = state.clock.now().timestamp();
    let issuer = &state.issuer.0;
    let pending = waiting.pending();
    let request = &pending.request;
    let user = session.user().await.map_err(|e| PageError::internal(&e))?;
    let mfa = user
        .as_ref()
        .is_some_and(|u| Amr::parse(&u.amr).acr() == ACR_MFA);
    let mfa_required = client.require_mfa || state.config.require_mfa;
    // Whether the user has a second factor matters only when it is asked for.
    let can_step_up = match &user {
        Some(u) if (request.wants_mfa || mfa_required) && !mfa => state
            .factors
            .required(&u.user_id)
            .await
            .map_err(|e| PageError::internal(&e))?,
        _ => false,
    };
    let authentication = user.as_ref().map(|u| Authentication {
        user_id: &u.user_id,
        auth_time: u.auth_time,
        mfa,
        can_step_up,
    });
    let signed_in_for_this_request = pending.authenticated;
    let step = authorize::authentication(
        request,
        authentication.as_ref(),
        signed_in_for_this_request,
        mfa_required,
        now,
    );
    match step {
        Err(error) => {
            waiting.forget(session, now).await?;
            return see_other(&request.reply.with_error(&error, issuer));
        }
        Ok(AuthenticationStep::SignIn) => {
            let id = waiting.park(session, now).await?;
            return see_other(&format!("{}?request={id}", endpoints::LOGIN_PAGE));
        }
        Ok(AuthenticationStep::AddSecondFactor) => {
            let id = waiting.park(session, now).await?;
            return see_other(&format!("{}?request={id}", endpoints::TWO_STEP_TOTP));
        }
        Ok(AuthenticationStep::SecondFactor) => {
            let id = waiting.park(session, now).await?;
            let Some(user) = &user else {
                return Err(PageError::internal(&anyhow::anyhow!(
                    "A step-up without a signed-in user"
                )));
            };
            let pending = PendingSignIn::new(&user.user_id, &user.email, Some(&id), None, now);
            session
                .begin_second_step(&pending)
                .await
                .map_err(|e| PageError::internal(&e))?;
            return see_other(endpoints::SECOND_FACTOR_PAGE);
        }
        Ok(AuthenticationStep::Done) => {}
    }
    let Some(user) = user else {
        return Err(PageError::internal(&anyhow::anyhow!(
            "Authentication done without a signed-in user"
        )));
    };
    let remembered = match client.consent {
        ConsentPolicy::Skip => None,
        ConsentPolicy::Ask => {
            consent::remembered(&state.db.pool, &user.user_id, &request.client_id)
                .await
                .map_err(|e| PageError::internal(&e))?
        }
    };
    match authorize::consent(request, client, remembered.as_ref(), pending.consented) {
        Err(error) => {
            waiting.forget(session, now).await?;
            return see_other(&request.reply.with_error(&error, issuer));
        }
        Ok(ConsentStep::Ask) => {
            let id = waiting.park(session, now).await?;
            return see_other(&format!("{}?request={id}", endpoints::CONSENT_PAGE));
        }
        Ok(ConsentStep::Done) => {}
    }
    let amr = Amr::parse(&user.amr);
    let subject = CodeSubject {
        user_id: &user.user_id,
        auth_time: user.auth_time,
        amr: &amr,
        sid: &user.sid,
    };
    let code = authorize::issue_code(
        &state.db.pool,
        request,
        &subject,
        now,
        state.config.authorization_code_ttl_secs,
    )
    .await
    .map_err(|e| PageError::internal(&e))?;
    waiting.forget(session, now).await?;
    see_other(&request.reply.with_code(&code, issuer))
}

#[derive(Deserialize)]
pub struct WaitingQuery {
    #[serde(default)]
    pub request: String,
}

/// Where sign-in and registration send the browser back: the waiting request goes on
/// from step 8.
#[tracing::instrument(skip_all)]
async fn continue_waiting(
    State(state): State<AppState>,
    session: BrowserSession,
    Query(query): Query<WaitingQuery>,
) -> Result<Response, PageError> {
    let now = state.clock.now().timestamp();
    let (client, pending) = load_waiting(&state, &session, &query.request, now).await?;
    proceed(
        &state,
        &session,
        &client,
        Waiting::Stored(query.request, pending),
    )
    .await
}

/// The waiting request `id` of this session and its client, or the "expired" page.
pub async fn load_waiting(
    state: &AppState,
    session: &BrowserSession,
    id: &str,
    now: i64,
) -> Result<(Client, PendingAuthorization), PageError> {
    let pending = session
        .pending(id, now)
        .await
        .map_err(|e| PageError::internal(&e))?
        .ok_or_else(PageError::request_expired)?;
    let client = state
        .clients
        .find(&pending.request.client_id)
        .await
        .map_err(|e| PageError::internal(&e))?
        // Deleted while the user was signing in.
        .ok_or_else(PageError::request_expired)?;
    Ok((client, pending))
}

/// `303 See Other` to `location`: after a form post the browser must follow with a GET
/// (RFC 9700 §4.12), and it is as good as 302 after a GET.
pub fn see_other(location: &str) -> Result<Response, PageError> {
    let value = HeaderValue::try_from(location).map_err(|_| {
        PageError::internal(&anyhow::anyhow!(
            "A redirect target is not a valid header value"
        ))
    })?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response())
}
