//! The sign-in, registration and consent pages. Each form carries the session's CSRF
//! token ([`CsrfForm`]); a waiting authorization request travels as the `request`
//! field, an id into the session, so the only places the browser is sent afterwards
//! are our own fixed paths, or a `return_to` path on this site (a [`ReturnTo`]: no
//! open redirect).

use axum::Form;
use axum::Router;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use service_kit::clock::Clock;

use crate::accounts::amr::Amr;
use crate::accounts::email::Email;
use crate::accounts::profile::DisplayName;
use crate::accounts::{Accounts, LoginError, RegisterError};
use crate::http::browser_session::{BrowserSession, PendingAuthorization, PendingSignIn};
use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::oauth::authorize::{Waiting, load_waiting, proceed, see_other};
use crate::http::pages::return_to::ReturnTo;
use crate::http::pages::views::{
    ConsentPage, DonePage, LoginPage, RegisterErrors, RegisterPage, ScopeLine,
};
use crate::http::pages::{self, PageError};
use crate::http::state::AppState;
use crate::oauth::consent;
use crate::oauth::{ErrorCode, OAuthError, Scope};
use crate::sessions::device::Device;

/// The one message for an unknown email and a wrong password (no enumeration).
const LOGIN_FAILED: &str = "The email or password is incorrect.";
const EMAIL_NOT_VERIFIED: &str = "Confirm your email address first: we have sent a new link \
                                  to it. Open it, then sign in again.";
pub(super) const ACCOUNT_DISABLED: &str =
    "This account is disabled. Ask the service's operator to enable it.";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::LOGIN_PAGE, get(login_page).post(login))
        .route(endpoints::REGISTER_PAGE, get(register_page).post(register))
        .route(
            endpoints::CONSENT_PAGE,
            get(consent_page).post(consent_answer),
        )
}

/// A form whose `csrf_token` field must match the session's token; anything else is
/// refused with a 403 page before the handler runs, so it changes nothing.
pub struct CsrfForm<T>(pub T);

/// A form with a CSRF token field.
pub trait CsrfProtected {
    fn csrf_token(&self) -> &str;
}

impl<S, T> FromRequest<S> for CsrfForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned + CsrfProtected + Send,
{
    type Rejection = PageError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let session = request
            .extensions()
            .get::<tower_sessions::Session>()
            .cloned()
            .ok_or_else(|| {
                PageError::internal(&anyhow::anyhow!("No session layer on this route"))
            })?;
        let Form(form) = Form::<T>::from_request(request, state)
            .await
            .map_err(|_| PageError::bad_form())?;
        let valid = crate::http::browser_session::csrf_matches(&session, form.csrf_token())
            .await
            .map_err(|e| PageError::internal(&e))?;
        if !valid {
            tracing::warn!("Form refused: missing or wrong CSRF token");
            return Err(PageError::csrf());
        }
        Ok(Self(form))
    }
}

/// `?request=<id>` of the pages that continue an authorization request, and
/// `?return_to=<path>` of a page of ours that asked for a sign-in.
#[derive(Deserialize)]
struct PageQuery {
    request: Option<String>,
    return_to: Option<String>,
}

/// A `return_to` worth keeping: a path on this site, else nothing (the browser goes
/// home after signing in, as without one).
fn return_to(candidate: Option<&str>) -> Option<ReturnTo> {
    candidate.and_then(|path| ReturnTo::parse(path).ok())
}

/// The sign-in page's address that comes back to `path` afterwards.
pub fn login_returning_to(path: &str) -> String {
    format!(
        "{}?return_to={}",
        endpoints::LOGIN_PAGE,
        url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
    )
}

/// An authorization request waiting for the user to sign in.
pub(super) struct WaitingRequest {
    pub(super) id: String,
    pub(super) client_name: String,
    pending: PendingAuthorization,
}

/// What the sign-in pages carry over from the waiting request, if there is one: its id
/// (a hidden field) and the client's name.
fn carried(waiting: Option<&WaitingRequest>) -> (Option<&str>, Option<&str>) {
    (
        waiting.map(|w| w.id.as_str()),
        waiting.map(|w| w.client_name.as_str()),
    )
}

/// The waiting request named by `id`, if it still exists in this session. A stale id
/// is not an error on the sign-in pages: the user just signs in to the idp itself.
pub(super) async fn waiting_request(
    state: &AppState,
    session: &BrowserSession,
    id: Option<&str>,
    now: i64,
) -> Result<Option<WaitingRequest>, PageError> {
    let Some(id) = id.filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    match load_waiting(state, session, id, now).await {
        Ok((client, pending)) => Ok(Some(WaitingRequest {
            id: id.to_owned(),
            client_name: client.name,
            pending,
        })),
        Err(e) if e.status == StatusCode::BAD_REQUEST => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn with_request(path: &str, request: Option<&str>) -> String {
    match request {
        Some(id) => format!(
            "{path}?request={}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        ),
        None => path.to_owned(),
    }
}

#[tracing::instrument(skip_all)]
async fn login_page(
    State(state): State<AppState>,
    session: BrowserSession,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let now = state.clock.now().timestamp();
    let waiting = waiting_request(&state, &session, query.request.as_deref(), now).await?;
    let (request, client_name) = carried(waiting.as_ref());
    let email = waiting
        .as_ref()
        .and_then(|w| w.pending.request.login_hint.as_deref())
        .unwrap_or_default();
    let return_to = return_to(query.return_to.as_deref());
    // "Your password was changed" after a reset, for one showing.
    let flash = session
        .take_flash()
        .await
        .map_err(|e| PageError::internal(&e))?;
    Ok(pages::render(&LoginPage {
        ctx: session.page_context().await?.with_flash(flash),
        request,
        // A waiting authorization request decides where the sign-in goes next.
        return_to: return_to
            .as_ref()
            .filter(|_| request.is_none())
            .map(AsRef::as_ref),
        client_name,
        email,
        error: None,
        register_href: &with_request(endpoints::REGISTER_PAGE, request),
        passkeys: state.factors.passkeys_available(),
    }))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf_token: String,
    request: Option<String>,
    return_to: Option<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

impl CsrfProtected for LoginForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn login(
    State(state): State<AppState>,
    State(accounts): State<Accounts>,
    ClientIp(ip): ClientIp,
    device: Device,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<Response, PageError> {
    let now = state.clock.now().timestamp();
    let waiting = waiting_request(&state, &session, form.request.as_deref(), now).await?;
    let return_to = return_to(form.return_to.as_deref()).filter(|_| waiting.is_none());
    match accounts
        .authenticate(&form.email, form.password, ip, &device)
        .await
    {
        Ok(user) => {
            let second_step = state
                .factors
                .required(&user.id)
                .await
                .map_err(|e| PageError::internal(&e))?;
            if second_step {
                let pending = PendingSignIn::new(
                    &user.id,
                    &user.email,
                    waiting.as_ref().map(|w| w.id.as_str()),
                    return_to.as_ref().map(AsRef::as_ref),
                    now,
                );
                // Nobody is signed in until the second step (`second_factor.rs`).
                session
                    .begin_second_step(&pending)
                    .await
                    .map_err(|e| PageError::internal(&e))?;
                return see_other(endpoints::SECOND_FACTOR_PAGE);
            }
            let next = Next { waiting, return_to };
            let user = (user.id.as_str(), user.email.as_str());
            signed_in(&state.clock, &session, user, &Amr::password(), next).await
        }
        Err(
            e @ (LoginError::InvalidCredentials
            | LoginError::EmailNotVerified
            | LoginError::AccountDisabled),
        ) => {
            let (status, error) = match e {
                LoginError::EmailNotVerified => (StatusCode::FORBIDDEN, EMAIL_NOT_VERIFIED),
                LoginError::AccountDisabled => (StatusCode::FORBIDDEN, ACCOUNT_DISABLED),
                _ => (StatusCode::UNPROCESSABLE_ENTITY, LOGIN_FAILED),
            };
            let (request, client_name) = carried(waiting.as_ref());
            Ok(pages::render_with_status(
                status,
                &LoginPage {
                    ctx: session.page_context().await?,
                    request,
                    return_to: return_to.as_ref().map(AsRef::as_ref),
                    client_name,
                    email: form.email.trim(),
                    error: Some(error),
                    register_href: &with_request(endpoints::REGISTER_PAGE, request),
                    passkeys: state.factors.passkeys_available(),
                },
            ))
        }
        Err(LoginError::Throttled { retry_after_secs }) => Ok(too_many_requests(
            retry_after_secs,
            "Too many failed sign-ins from your network. Wait a few minutes, then try again.",
        )),
        Err(LoginError::Unexpected(e)) => Err(PageError::internal(&e)),
    }
}

/// The 429 error page (with the headers of every page) and `Retry-After` in seconds.
pub fn too_many_requests(retry_after_secs: u64, message: &'static str) -> Response {
    (
        [(header::RETRY_AFTER, HeaderValue::from(retry_after_secs))],
        PageError::new(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", message),
    )
        .into_response()
}

/// Where the browser goes once signed in.
pub(super) struct Next {
    pub waiting: Option<WaitingRequest>,
    /// Only when no authorization request is waiting.
    pub return_to: Option<ReturnTo>,
}

/// After a password check (and its second factor) or a registration: a new session id,
/// the user recorded with how they signed in (`amr`), and a 303 (never a 307: the
/// password must not be re-posted) to the waiting request, the page that asked for the
/// sign-in, or home.
pub(super) async fn signed_in(
    clock: &Clock,
    session: &BrowserSession,
    user: (&str, &str),
    amr: &Amr,
    next: Next,
) -> Result<Response, PageError> {
    see_other(&record_sign_in(clock, session, user, amr, next).await?)
}

/// Where a sign-in that began on the sign-in page goes once complete: the waiting
/// request `request` names if it still exists, else the page `return_to` names.
pub(super) async fn next_after(
    state: &AppState,
    session: &BrowserSession,
    request: Option<&str>,
    return_to: Option<&str>,
) -> Result<Next, PageError> {
    let now = state.clock.now().timestamp();
    let waiting = waiting_request(state, session, request, now).await?;
    Ok(Next {
        return_to: self::return_to(return_to).filter(|_| waiting.is_none()),
        waiting,
    })
}

/// [`signed_in`]'s work: the sign-in recorded (and the waiting request marked as
/// signed in for); where the browser goes next.
pub(super) async fn record_sign_in(
    clock: &Clock,
    session: &BrowserSession,
    user: (&str, &str),
    amr: &Amr,
    next: Next,
) -> Result<String, PageError> {
    let (user_id, email) = user;
    let now = clock.now().timestamp();
    session
        .sign_in(user_id, email, now, amr)
        .await
        .map_err(|e| PageError::internal(&e))?;
    tracing::info!(user_id, "Signed in to a browser session");
    let Some(WaitingRequest {
        id, mut pending, ..
    }) = next.waiting
    else {
        let path = next.return_to;
        return Ok(path
            .as_ref()
            .map_or(endpoints::HOME, AsRef::as_ref)
            .to_owned());
    };
    pending.authenticated = true;
    session
        .update_pending(&id, pending, now)
        .await
        .map_err(|e| PageError::internal(&e))?;
    Ok(with_request(endpoints::AUTHORIZE_CONTINUE, Some(&id)))
}

#[tracing::instrument(skip_all)]
async fn register_page(
    State(state): State<AppState>,
    session: BrowserSession,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let now = state.clock.now().timestamp();
    let waiting = waiting_request(&state, &session, query.request.as_deref(), now).await?;
    let (request, client_name) = carried(waiting.as_ref());
    let email = waiting
        .as_ref()
        .and_then(|w| w.pending.request.login_hint.as_deref())
        .unwrap_or_default();
    Ok(pages::render(&RegisterPage {
        ctx: session.page_context().await?,
        request,
        client_name,
        email,
        name: "",
        errors: RegisterErrors::default(),
        login_href: &with_request(endpoints::LOGIN_PAGE, request),
    }))
}

#[derive(Deserialize)]
struct RegisterForm {
    #[serde(default)]
    csrf_token: String,
    request: Option<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

impl CsrfProtected for RegisterForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn register(
    State(state): State<AppState>,
    State(accounts): State<Accounts>,
    ClientIp(ip): ClientIp,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<RegisterForm>,
) -> Result<Response, PageError> {
    let now = state.clock.now().timestamp();
    let waiting = waiting_request(&state, &session, form.request.as_deref(), now).await?;
    // What can be checked here is checked together, so every such error shows at
    // once; the password policy and uniqueness are the registration's to decide.
    let mut errors = RegisterErrors::default();
    if let Err(e) = Email::parse(&form.email) {
        errors.email = Some(e.to_string());
    }
    let name = match DisplayName::parse(&form.name) {
        Ok(name) => name,
        Err(e) => {
            errors.name = Some(e.to_string());
            None
        }
    };
    if form.password != form.password_confirmation {
        errors.password_confirmation = Some("The passwords do not match.".to_owned());
    }
    if !errors.any() {
        match accounts
            .register(&form.email, name, form.password, ip)
            .await
        {
            Ok(user) if accounts.requires_verified_email() => {
                let (request, _) = carried(waiting.as_ref());
                return Ok(pages::render_with_status(
                    StatusCode::CREATED,
                    &DonePage {
                        ctx: session.page_context().await?,
                        title: "Check your mail",
                        message: &format!(
                            "We have sent a link to {}. Open it to confirm your address, \
                             then sign in.",
                            user.email.as_ref()
                        ),
                        next: (&with_request(endpoints::LOGIN_PAGE, request), "Sign in"),
                    },
                ));
            }
            Ok(user) => {
                let next = Next {
                    waiting,
                    return_to: None,
                };
                let user = (user.id.to_string(), user.email);
                let user = (user.0.as_str(), user.1.as_ref());
                return signed_in(&state.clock, &session, user, &Amr::password(), next).await;
            }
            Err(RegisterError::InvalidEmail(e)) => errors.email = Some(e.to_string()),
            Err(RegisterError::InvalidPassword(e)) => errors.password = Some(e.to_string()),
            Err(RegisterError::EmailTaken) => {
                errors.email =
                    Some("An account with this email already exists. Sign in instead.".to_owned());
            }
            Err(RegisterError::Throttled { retry_after_secs }) => {
                return Ok(too_many_requests(
                    retry_after_secs,
                    "Too many registrations from your network. Try again later.",
                ));
            }
            Err(RegisterError::Unexpected(e)) => return Err(PageError::internal(&e)),
        }
    }
    let (request, client_name) = carried(waiting.as_ref());
    Ok(pages::render_with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &RegisterPage {
            ctx: session.page_context().await?,
            request,
            client_name,
            email: form.email.trim(),
            name: form.name.trim(),
            errors,
            login_href: &with_request(endpoints::LOGIN_PAGE, request),
        },
    ))
}

#[derive(Deserialize)]
struct ConsentQuery {
    #[serde(default)]
    request: String,
}

#[tracing::instrument(skip_all)]
async fn consent_page(
    State(state): State<AppState>,
    session: BrowserSession,
    Query(query): Query<ConsentQuery>,
) -> Result<Response, PageError> {
    let now = state.clock.now().timestamp();
    let (client, pending) = load_waiting(&state, &session, &query.request, now).await?;
    let Some(user) = session.user().await.map_err(|e| PageError::internal(&e))? else {
        // Signed out (elsewhere) since: sign in first, then come back.
        return see_other(&with_request(endpoints::LOGIN_PAGE, Some(&query.request)));
    };
    // `openid` first: who you are, then what about you.
    let mut tokens: Vec<&str> = pending.request.scope.iter().collect();
    tokens.sort_by_key(|token| *token != Scope::OPENID);
    let scopes = tokens
        .into_iter()
        .map(|token| ScopeLine {
            token: token.to_owned(),
            description: consent::describe(token),
        })
        .collect();
    Ok(pages::render(&ConsentPage {
        ctx: session.page_context().await?,
        request: &query.request,
        client_name: &client.name,
        user_email: &user.email,
        scopes,
        destination: &destination(&pending.request.reply.redirect_uri),
    }))
}

/// The origin of a redirect URI (what a user can recognise), or the URI itself for
/// private-use schemes.
fn destination(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(url) if url.has_host() => url.origin().ascii_serialization(),
        _ => redirect_uri.to_owned(),
    }
}

#[derive(Deserialize)]
struct ConsentForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    request: String,
    #[serde(default)]
    decision: String,
}

impl CsrfProtected for ConsentForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn consent_answer(
    State(state): State<AppState>,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<ConsentForm>,
) -> Result<Response, PageError> {
    let now = state.clock.now().timestamp();
    let (client, mut pending) = load_waiting(&state, &session, &form.request, now).await?;
    let Some(user) = session.user().await.map_err(|e| PageError::internal(&e))? else {
        return see_other(&with_request(endpoints::LOGIN_PAGE, Some(&form.request)));
    };
    match form.decision.as_str() {
        "allow" => {
            consent::grant(
                &state.db.pool,
                &user.user_id,
                client.id.as_ref(),
                &pending.request.scope,
                now,
            )
            .await
            .map_err(|e| PageError::internal(&e))?;
            pending.consented = true;
            session
                .update_pending(&form.request, pending.clone(), now)
                .await
                .map_err(|e| PageError::internal(&e))?;
            proceed(
                &state,
                &session,
                &client,
                Waiting::Stored(form.request, pending),
            )
            .await
        }
        "deny" => {
            session
                .remove_pending(&form.request, now)
                .await
                .map_err(|e| PageError::internal(&e))?;
            tracing::info!(client_id = %client.id, user_id = %user.user_id, "Consent denied");
            let error = OAuthError::new(ErrorCode::AccessDenied, "The user denied the request");
            see_other(&pending.request.reply.with_error(&error, &state.issuer.0))
        }
        _ => Err(PageError::bad_form()),
    }
}
