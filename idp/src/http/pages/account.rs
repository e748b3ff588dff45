//! The account page, `/account`: the display name released to applications, the
//! signed-in user's live sessions (this browser's marked), ending one or all the
//! others, changing the password, and recent sign-in activity. Only for a signed-in browser; anyone else is sent to the sign-in page,
//! which comes back here.
//!
//! Each form carries the session's CSRF token ([`CsrfForm`]) and, once it did its
//! work, redirects back here with a notice (Post/Redirect/Get), so a reload never
//! posts twice. Ending a session ends its refresh tokens and revokes the grants made
//! in it ([`UserSessions::end`](crate::sessions::records::UserSessions::end)); a browser
//! whose session ended is signed out on its next request.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::DateTime;
use serde::Deserialize;

use crate::accounts::PasswordChangeError;
use crate::accounts::email_change::EmailChangeError;
use crate::accounts::profile::NameChangeError;
use crate::accounts::reauth::ReauthError;
use crate::accounts::store as users;
use crate::accounts::verification::ResendError;
use crate::guards::audit::events;
use crate::guards::audit::store::AuditRow;
use crate::http::api::sessions::rfc3339;
use crate::http::browser_session::{BrowserSession, SignedInUser};
use crate::http::client_ip::ClientIp;
use crate::http::endpoints;
use crate::http::oauth::authorize::see_other;
use crate::http::pages::login::{CsrfForm, CsrfProtected, login_returning_to, too_many_requests};
use crate::http::pages::views::{AccountPage, ActivityLine, DonePage, PasswordErrors, SessionLine};
use crate::http::pages::{self, PageContext, PageError};
use crate::http::state::AppState;
use crate::sessions::device::Device;
use crate::sessions::records::EndReason;
use crate::sessions::store::SessionRow;

const SESSION_ENDED: &str = "Session ended. That device is signed out.";
/// For an unknown id, one already over, and another user's: the same answer.
const SESSION_ALREADY_OVER: &str = "That session had already ended.";
const PASSWORD_CHANGED: &str = "Password changed. Your other sessions were signed out.";
const WRONG_CURRENT_PASSWORD: &str = "The current password is incorrect.";
const PASSWORDS_DIFFER: &str = "The passwords do not match.";
const NAME_SAVED: &str = "Name saved.";
const NAME_REMOVED: &str = "Name removed.";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::ACCOUNT_PAGE, get(account_page))
        .route(endpoints::ACCOUNT_END_SESSION, post(end_session))
        .route(
            endpoints::ACCOUNT_END_OTHER_SESSIONS,
            post(end_other_sessions),
        )
        .route(endpoints::ACCOUNT_PASSWORD, post(change_password))
        .route(endpoints::ACCOUNT_NAME, post(change_name))
        .route(endpoints::ACCOUNT_EMAIL_VERIFY, post(resend_verification))
        .route(endpoints::ACCOUNT_EMAIL, post(change_email))
        .route(endpoints::ACCOUNT_DELETE, post(delete_account))
}

/// The signed-in user, or the redirect to the sign-in page (which returns here).
async fn signed_in(session: &BrowserSession) -> Result<Result<SignedInUser, Response>, PageError> {
    signed_in_or_redirect(session, endpoints::ACCOUNT_PAGE).await
}

/// The signed-in user, or the redirect to the sign-in page, which returns to `page`.
pub(super) async fn signed_in_or_redirect(
    session: &BrowserSession,
    page: &str,
) -> Result<Result<SignedInUser, Response>, PageError> {
    match session.user().await.map_err(|e| PageError::internal(&e))? {
        Some(user) => Ok(Ok(user)),
        None => Ok(Err(see_other(&login_returning_to(page))?)),
    }
}

/// Back to the account page with `notice` shown once there.
async fn back_with(session: &BrowserSession, notice: &str) -> Result<Response, PageError> {
    back_to(session, notice, endpoints::ACCOUNT_PAGE).await
}

/// Back to `page` with `notice` shown once there.
pub(super) async fn back_to(
    session: &BrowserSession,
    notice: &str,
    page: &str,
) -> Result<Response, PageError> {
    session
        .set_flash(notice)
        .await
        .map_err(|e| PageError::internal(&e))?;
    see_other(page)
}

#[tracing::instrument(skip_all)]
async fn account_page(
    State(state): State<AppState>,
    session: BrowserSession,
) -> Result<Response, PageError> {
    let user = match signed_in(&session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let flash = session
        .take_flash()
        .await
        .map_err(|e| PageError::internal(&e))?;
    let ctx = session.page_context().await?.with_flash(flash);
    render(&state, ctx, &user, FormErrors::default(), StatusCode::OK).await
}

/// What is wrong with a form the page shows again.
#[derive(Default)]
struct FormErrors {
    password: PasswordErrors,
    /// The submitted name and what is wrong with it.
    name: Option<(String, String)>,
    /// The submitted new address and what is wrong with the request.
    email_change: Option<(String, String)>,
    delete: Option<String>,
}

/// The account page as `user` sees it now.
async fn render(
    state: &AppState,
    ctx: PageContext,
    user: &SignedInUser,
    errors: FormErrors,
    status: StatusCode,
) -> Result<Response, PageError> {
    let now = state.clock.now().timestamp();
    let account = users::find_by_id(&state.db.pool, &user.user_id)
        .await
        .map_err(|e| PageError::internal(&e))?
        .ok_or_else(|| PageError::internal(&anyhow::anyhow!("A signed-in user has no account")))?;
    let (new_email, email_change_error) = errors.email_change.unzip();
    let (name, name_error) = match errors.name {
        Some((submitted, error)) => (submitted, Some(error)),
        None => (account.name.unwrap_or_default(), None),
    };
    let mut sessions = state
        .user_sessions
        .list(&user.user_id)
        .await
        .map_err(|e| PageError::internal(&e))?;
    // This device first; the rest stay most recently used first (a stable sort).
    sessions.sort_by_key(|s| s.id != user.sid);
    let activity = state
        .user_sessions
        .sign_in_activity(&user.user_id)
        .await
        .map_err(|e| PageError::internal(&e))?;
    let two_step_on = state
        .factors
        .required(&user.user_id)
        .await
        .map_err(|e| PageError::internal(&e))?;
    let access_lifetime = i64::try_from(state.config.access_token_ttl_secs).unwrap_or(i64::MAX);
    let page = AccountPage {
        ctx,
        email: &account.email,
        email_verified: account.email_verified,
        verify_path: endpoints::ACCOUNT_EMAIL_VERIFY,
        new_email: new_email.unwrap_or_default(),
        email_change_error,
        email_path: endpoints::ACCOUNT_EMAIL,
        delete_error: errors.delete,
        delete_path: endpoints::ACCOUNT_DELETE,
        two_step_on,
        two_step_path: endpoints::TWO_STEP_PAGE,
        name,
        name_error,
        sessions: sessions
            .iter()
            .map(|s| session_line(s, &user.sid, now))
            .collect(),
        activity: activity
            .iter()
            .map(|row| activity_line(row, two_step_on))
            .collect(),
        password_errors: errors.password,
        access_lifetime: duration(access_lifetime),
        end_session_path: endpoints::ACCOUNT_END_SESSION,
        end_others_path: endpoints::ACCOUNT_END_OTHER_SESSIONS,
        password_path: endpoints::ACCOUNT_PASSWORD,
        name_path: endpoints::ACCOUNT_NAME,
        logout_path: endpoints::END_SESSION,
    };
    Ok(pages::render_with_status(status, &page))
}

fn session_line(session: &SessionRow, current: &str, now: i64) -> SessionLine {
    SessionLine {
        id: session.id.clone(),
        device: Device::label(Some(&session.device), session.user_agent.as_deref()),
        kind: (session.kind != "browser").then_some("App"),
        ip: session.ip.clone().unwrap_or_else(|| "Unknown".to_owned()),
        last_active: ago(now, session.last_seen_at),
        last_active_at: rfc3339(session.last_seen_at),
        signed_in: date(session.created_at),
        signed_in_at: rfc3339(session.created_at),
        current: session.id == current,
    }
}

/// `two_step`: the account has a second factor, so a right password alone is not a
/// sign-in.
fn activity_line(row: &AuditRow, two_step: bool) -> ActivityLine {
    ActivityLine {
        at: date(row.at),
        at_rfc3339: rfc3339(row.at),
        outcome: outcome_in_words(&row.event, &row.outcome, two_step),
        succeeded: row.outcome == "success",
        ip: row.ip.clone().unwrap_or_else(|| "Unknown".to_owned()),
        device: Device::label(row.device.as_deref(), row.user_agent.as_deref()),
    }
}

/// The audit trail's sign-in outcomes, as the account's owner reads them. With
/// two-step sign-in a right password is only the first step: a wrong code after it
/// means someone else may know the password.
fn outcome_in_words(event: &str, outcome: &str, two_step: bool) -> &'static str {
    match (event == events::SECOND_FACTOR, outcome) {
        (false, "success") if two_step => "Right password",
        (false, "success") => "Signed in",
        (false, "failure") => "Wrong password",
        (false, "locked") => "Refused: account locked after repeated wrong passwords",
        (_, "throttled") => "Refused: too many attempts from that network",
        (true, "success") => "Second step passed",
        (true, "failure") => "Wrong code at the second step",
        (true, "locked") => "Refused: second step locked after repeated wrong codes",
        _ => "Other",
    }
}

/// "23 Nov 2026, 08:30 UTC".
pub(super) fn date(unix_secs: i64) -> String {
    DateTime::from_timestamp(unix_secs, 0)
        .unwrap_or_default()
        .format("%-d %b %Y, %H:%M UTC")
        .to_string()
}

/// "Just now", "5 minutes ago", "3 hours ago", "2 days ago".
fn ago(now: i64, then: i64) -> String {
    let secs = now.saturating_sub(then);
    if secs < 60 {
        "Just now".to_owned()
    } else {
        format!("{} ago", duration(secs))
    }
}

/// A duration in its largest whole unit: "1 minute", "15 minutes", "2 hours", "7 days".
fn duration(secs: i64) -> String {
    let (count, unit) = match secs {
        ..3_600 => ((secs / 60).max(1), "minute"),
        3_600..86_400 => (secs / 3_600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

#[derive(Deserialize)]
struct EndSessionForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    session_id: String,
}

impl CsrfProtected for EndSessionForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn end_session(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<EndSessionForm>,
) -> Result<Response, PageError> {
    let user = match signed_in(&session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    if form.session_id == user.sid {
        // This browser's own session: that is signing out.
        session
            .sign_out()
            .await
            .map_err(|e| PageError::internal(&e))?;
        return see_other(endpoints::HOME);
    }
    // Only the user's own sessions end: any other id changes nothing.
    let ended = state
        .user_sessions
        .end(&user.user_id, &form.session_id, EndReason::EndedByUser, ip)
        .await
        .map_err(|e| PageError::internal(&e))?;
    back_with(
        &session,
        if ended {
            SESSION_ENDED
        } else {
            SESSION_ALREADY_OVER
        },
    )
    .await
}

#[derive(Deserialize)]
struct EndOthersForm {
    #[serde(default)]
    csrf_token: String,
}

impl CsrfProtected for EndOthersForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn end_other_sessions(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: BrowserSession,
    CsrfForm(_form): CsrfForm<EndOthersForm>,
) -> Result<Response, PageError> {
    let user = match signed_in(&session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let ended = state
        .user_sessions
        .end_others(&user.user_id, Some(&user.sid), EndReason::EndedByUser, ip)
        .await
        .map_err(|e| PageError::internal(&e))?;
    let notice = match ended {
        0 => "You were not signed in anywhere else.".to_owned(),
        1 => "Ended 1 other session.".to_owned(),
        n => format!("Ended {n} other sessions."),
    };
    back_with(&session, &notice).await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirmation: String,
}

impl CsrfProtected for PasswordForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, PageError> {
    let user = match signed_in(&session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let mut errors = PasswordErrors::default();
    // A typo in the confirmation is caught before the current password is checked, so
    // it costs no attempt.
    if form.new_password != form.new_password_confirmation {
        errors.new_password_confirmation = Some(PASSWORDS_DIFFER.to_owned());
    } else {
        let changed = state
            .accounts
            .change_password(
                &user.user_id,
                &user.sid,
                form.current_password,
                form.new_password,
                ip,
                &device,
            )
            .await;
        match changed {
            Ok(()) => return back_with(&session, PASSWORD_CHANGED).await,
            Err(PasswordChangeError::WrongCurrentPassword) => {
                errors.current_password = Some(WRONG_CURRENT_PASSWORD.to_owned());
            }
            Err(PasswordChangeError::InvalidPassword(e)) => {
                errors.new_password = Some(e.to_string());
            }
            Err(PasswordChangeError::Throttled { retry_after_secs }) => {
                return Ok(too_many_requests(
                    retry_after_secs,
                    "Too many wrong passwords from your network. Wait a few minutes, then \
                     try again.",
                ));
            }
            Err(PasswordChangeError::Unexpected(e)) => return Err(PageError::internal(&e)),
        }
    }
    let ctx = session.page_context().await?;
    let errors = FormErrors {
        password: errors,
        ..FormErrors::default()
    };
    render(&state, ctx, &user, errors, StatusCode::UNPROCESSABLE_ENTITY).await
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    current_password: String,
    /// The "I understand" checkbox: absent unless ticked.
    confirm: Option<String>,
}

impl CsrfProtected for DeleteForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn delete_account(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, PageError> {
    let user = match signed_in(&session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let error = if form.confirm.is_none() {
        "Tick the box to confirm that you want to delete your account.".to_owned()
    } else {
        match state
            .accounts
            .delete_account(&user.user_id, form.current_password, ip)
            .await
        {
            Ok(()) => {
                session
                    .sign_out()
                    .await
                    .map_err(|e| PageError::internal(&e))?;
                return Ok(pages::render(&DonePage {
                    ctx: PageContext::without_form(),
                    title: "Your account was deleted",
                    message: "Your account, its sessions and everything it allowed applications \
                              to do are gone. We sent a last message to its address.",
                    next: (endpoints::HOME, "Go to the home page"),
                }));
            }
            Err(ReauthError::WrongCurrentPassword) => WRONG_CURRENT_PASSWORD.to_owned(),
            Err(ReauthError::Throttled { retry_after_secs }) => {
                return Ok(too_many_requests(
                    retry_after_secs,
                    "Too many wrong passwords from your network. Wait a few minutes, then \
                     try again.",
                ));
            }
            Err(ReauthError::Unexpected(e)) => return Err(PageError::internal(&e)),
        }
    };
    let ctx = session.page_context().await?;
    let errors = FormErrors {
        delete: Some(error),
        ..FormErrors::default()
    };
    render(&state, ctx, &user, errors, StatusCode::UNPROCESSABLE_ENTITY).await
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    current_password: String,
}

impl CsrfProtected for EmailForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn change_email(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    device: Device,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Result<Response, PageError> {
    let user = match signed_in(&session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let requested = state
        .accounts
        .request_email_change(
            &user.user_id,
            form.current_password,
            &form.new_email,
            ip,
            &device,
        )
        .await;
    let error = match requested {
        Ok(new) => {
            let notice = format!(
                "We sent a link to {}. Your address changes when you open it.",
                new.as_ref()
            );
            return back_with(&session, &notice).await;
        }
        Err(EmailChangeError::Reauth(ReauthError::Throttled { retry_after_secs })) => {
            return Ok(too_many_requests(
                retry_after_secs,
                "Too many wrong passwords from your network. Wait a few minutes, then try \
                 again.",
            ));
        }
        Err(EmailChangeError::Reauth(ReauthError::WrongCurrentPassword)) => {
            WRONG_CURRENT_PASSWORD.to_owned()
        }
        Err(EmailChangeError::EmailTaken) => {
            "Another account uses this address, or one that looks like it.".to_owned()
        }
        Err(EmailChangeError::SameAddress) => "That is already your address.".to_owned(),
        Err(EmailChangeError::InvalidEmail(e)) => e.to_string(),
        Err(
            EmailChangeError::Reauth(ReauthError::Unexpected(e)) | EmailChangeError::Unexpected(e),
        ) => return Err(PageError::internal(&e)),
    };
    let ctx = session.page_context().await?;
    let errors = FormErrors {
        email_change: Some((form.new_email, error)),
        ..FormErrors::default()
    };
    render(&state, ctx, &user, errors, StatusCode::UNPROCESSABLE_ENTITY).await
}

#[derive(Deserialize)]
struct ResendForm {
    #[serde(default)]
    csrf_token: String,
}

impl CsrfProtected for ResendForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn resend_verification(
    State(state): State<AppState>,
    session: BrowserSession,
    CsrfForm(_form): CsrfForm<ResendForm>,
) -> Result<Response, PageError> {
    let user = match signed_in(&session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let notice = match state.accounts.resend_verification(&user.user_id).await {
        Ok(()) => format!("We sent a new link to {}. It works for a day.", user.email),
        Err(ResendError::AlreadyVerified) => "Your email address is already confirmed.".to_owned(),
        Err(ResendError::Throttled { .. }) => {
            "We already sent several links in the last hour. Use the newest one, or try again \
             later."
                .to_owned()
        }
        Err(ResendError::Unexpected(e)) => return Err(PageError::internal(&e)),
    };
    back_with(&session, &notice).await
}

#[derive(Deserialize)]
struct NameForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
}

impl CsrfProtected for NameForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[tracing::instrument(skip_all)]
async fn change_name(
    State(state): State<AppState>,
    session: BrowserSession,
    CsrfForm(form): CsrfForm<NameForm>,
) -> Result<Response, PageError> {
    let user = match signed_in(&session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    match state.accounts.change_name(&user.user_id, &form.name).await {
        Ok(()) if form.name.trim().is_empty() => back_with(&session, NAME_REMOVED).await,
        Ok(()) => back_with(&session, NAME_SAVED).await,
        Err(NameChangeError::Invalid(e)) => {
            let ctx = session.page_context().await?;
            let errors = FormErrors {
                name: Some((form.name, e.to_string())),
                ..FormErrors::default()
            };
            render(&state, ctx, &user, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(NameChangeError::Unexpected(e)) => Err(PageError::internal(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_said_in_their_largest_whole_unit() {
        assert_eq!(duration(0), "1 minute");
        assert_eq!(duration(60), "1 minute");
        assert_eq!(duration(900), "15 minutes");
        assert_eq!(duration(3_600), "1 hour");
        assert_eq!(duration(3 * 3_600 + 59), "3 hours");
        assert_eq!(duration(7 * 86_400), "7 days");
    }

    #[test]
    fn last_activity_is_relative_to_now() {
        assert_eq!(ago(1_000, 1_000), "Just now");
        assert_eq!(ago(1_000, 1_100), "Just now", "a clock a little behind");
        assert_eq!(ago(1_000, 941), "Just now");
        assert_eq!(ago(1_000, 880), "2 minutes ago");
        assert_eq!(ago(200_000, 0), "2 days ago");
    }

    #[test]
    fn dates_are_utc_and_readable() {
        assert_eq!(date(1_795_422_600), "23 Nov 2026, 08:30 UTC");
        assert_eq!(date(1_795_422_600 - 8 * 86_400), "15 Nov 2026, 08:30 UTC");
    }

    #[test]
    fn every_recorded_outcome_has_words() {
        for event in [events::SIGN_IN, events::SECOND_FACTOR] {
            for outcome in ["success", "failure", "locked", "throttled"] {
                for two_step in [false, true] {
                    let words = outcome_in_words(event, outcome, two_step);
                    assert_ne!(words, "Other", "{event} {outcome}");
                }
            }
        }
    }
}
