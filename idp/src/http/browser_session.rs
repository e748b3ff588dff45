//! Browser sessions: a server-side session per browser (tower-sessions, stored in the
//! idp's own database so every instance sees it), the typed data it holds, and CSRF
//! tokens bound to it.
//!
//! A session holds:
//! - the signed-in user (id, email for display, `auth_time`, how they signed in (`amr`),
//!   and a random `sid` that names this sign-in for OIDC and for logout, stable for the
//!   session's life);
//! - or, between a right password and its second factor, a pending sign-in (who, where
//!   to go next, five minutes at most), which signs nobody in;
//! - a CSRF token for the forms this browser is shown;
//! - the authorization requests waiting for sign-in or consent, keyed by a random id so
//!   several tabs can each have their own;
//! - a one-time notice ("flash") for the page shown after a form's redirect.
//!
//! The sign-in itself is also a [`UserSessions`] record (its id is the `sid`): that is
//! what the user sees on the account page and can end from anywhere, and what enforces
//! the idle timeout and absolute lifetime on our clock. A browser whose record has
//! ended is signed out on its next request.
//!
//! Only the browser routes wear the layer (pages, `/authorize`, `/logout`); the JSON API
//! and JWKS never see a session cookie.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use subtle::ConstantTimeEq;
use tower_sessions::cookie::SameSite;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::accounts::amr::Amr;
use crate::guards::secrets;
use crate::http::client_ip::ClientIp;
use crate::http::config::HttpConfig;
use crate::http::pages::PageError;
use crate::http::pages::views::{PageContext, SITE_NAME};
use crate::oauth::authorize::AuthorizationRequest;
use crate::sessions::device::Device;
use crate::sessions::records::{EndReason, SessionKind, UserSessions};
use service_kit::db::Backend;

/// The cookie's name over plain http (local use).
pub const COOKIE_NAME: &str = "idp_session";
/// The cookie's name over https: the `__Host-` prefix makes browsers refuse it unless
/// it is `Secure`, host-only and `Path=/`, so a sibling subdomain cannot plant one.
pub const SECURE_COOKIE_NAME: &str = "__Host-idp_session";

/// How many authorization requests one browser may have waiting at once; the oldest
/// is dropped first.
const MAX_PENDING: usize = 8;
/// A waiting authorization request older than this is forgotten.
const PENDING_TTL_SECS: i64 = 3600;
/// How often expired sessions are deleted from the database.
const DELETION_PERIOD: Duration = Duration::from_secs(300);

const USER_KEY: &str = "user";
const CSRF_KEY: &str = "csrf";
const PENDING_KEY: &str = "pending";
const FLASH_KEY: &str = "flash";
const SECOND_STEP_KEY: &str = "second_step";
/// Recovery codes made by a JSON call (a first passkey), until their page shows them.
const NEW_CODES_KEY: &str = "new_recovery_codes";
/// How long a right password waits for its second factor.
const SECOND_STEP_TTL_SECS: i64 = 300;

/// Where the session store lives and how the cookie behaves.
#[derive(Clone, Debug)]
pub struct BrowserSessionConfig {
    /// The idp's database (`sqlite://...` or `postgres://...`).
    pub database_url: String,
    /// The idp's pool size; the store takes at most 4 of its own.
    pub database_max_connections: u32,
    /// A session unused this long expires (the sign-in record's idle timeout).
    pub idle_timeout_secs: u64,
    /// The issuer is https: `Secure` cookie named with the `__Host-` prefix.
    pub https: bool,
}

/// The session store on the idp's database backend, and the cookie settings.
#[derive(Clone)]
pub struct Sessions {
    store: Store,
    cookie_name: &'static str,
    secure: bool,
    idle_timeout: time::Duration,
}

#[derive(Clone, Debug)]
enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Sessions {
    /// Opens a pool of the concrete backend type (the store needs one; the rest of the
    /// idp uses `AnyPool`), creates the session table, and starts deleting expired
    /// sessions in the background.
    pub async fn connect(config: &BrowserSessionConfig) -> anyhow::Result<Self> {
        let max_connections = config.database_max_connections.clamp(1, 4);
        let store = match Backend::from_url(&config.database_url)? {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(&config.database_url)
                    .context("Failed to parse IDP_DATABASE_URL for the session store")?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await
                    .context("Failed to connect the session store")?;
                let store = SqliteStore::new(pool);
                migrate_with_retry(|| store.migrate()).await?;
                tokio::spawn(delete_expired(store.clone()));
                Store::Sqlite(store)
            }
            Backend::Postgres => {
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(&config.database_url)
                    .await
                    .context("Failed to connect the session store")?;
                let store = PostgresStore::new(pool);
                migrate_with_retry(|| store.migrate()).await?;
                tokio::spawn(delete_expired(store.clone()));
                Store::Postgres(store)
            }
        };
        let idle_secs = i64::try_from(config.idle_timeout_secs)
            .context("IDP_SESSION_IDLE_TIMEOUT_SECS overflows")?;
        let secure = config.https;
        Ok(Self {
            store,
            cookie_name: if secure {
                SECURE_COOKIE_NAME
            } else {
                COOKIE_NAME
            },
            secure,
            idle_timeout: time::Duration::seconds(idle_secs),
        })
    }

    /// Gives the routes of `router` a [`Session`]: cookie `HttpOnly`, `SameSite=Lax`
    /// (`Strict` would drop it on the redirect back from a relying party), `Path=/`,
    /// `Secure` over https, ending after `IDP_SESSION_IDLE_TIMEOUT_SECS` of inactivity.
    pub fn layer<S>(&self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        match &self.store {
            Store::Sqlite(store) => router.layer(self.configure(store.clone())),
            Store::Postgres(store) => router.layer(self.configure(store.clone())),
        }
    }

    fn configure<T: SessionStore + Clone>(&self, store: T) -> SessionManagerLayer<T> {
        SessionManagerLayer::new(store)
            .with_name(self.cookie_name)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(self.secure)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(self.idle_timeout))
            // Saving on every request is what makes the expiry "on inactivity": the
            // stored expiry moves forward whenever the session is used.
            .with_always_save(true)
    }
}

/// Two instances starting at once may race to create the table; the loser retries.
async fn migrate_with_retry<F, Fut>(migrate: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = sqlx::Result<()>>,
{
    if migrate().await.is_ok() {
        return Ok(());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    migrate()
        .await
        .context("Failed to create the session table")
}

async fn delete_expired<T: ExpiredDeletion + Clone>(store: T) {
    if let Err(e) = store.continuously_delete_expired(DELETION_PERIOD).await {
        tracing::error!(error = %e, "Deleting expired sessions stopped");
    }
}

/// The signed-in user of a browser session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignedInUser {
    pub user_id: String,
    /// For display only ("Signed in as ...").
    pub email: String,
    /// When the user last entered their password (OIDC `auth_time`), Unix seconds.
    pub auth_time: i64,
    /// OIDC session id and the id of the sign-in's [`UserSessions`] record: names
    /// this sign-in in codes and grants, so ending it ends what was issued within it.
    pub sid: String,
    /// How the user signed in: [`Amr`]'s stored form. Empty in sessions from before
    /// second factors, which [`Amr::parse`] reads as the password alone.
    #[serde(default)]
    pub amr: String,
}

/// A right password waiting for its second factor: nobody is signed in yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub user_id: String,
    pub email: String,
    /// The waiting authorization request's id, if the sign-in is for one.
    pub request: Option<String>,
    /// The page of ours that asked for the sign-in, if no request waits.
    pub return_to: Option<String>,
    pub expires_at: i64,
}

impl PendingSignIn {
    pub fn new(
        user_id: &str,
        email: &str,
        request: Option<&str>,
        return_to: Option<&str>,
        now: i64,
    ) -> Self {
        Self {
            user_id: user_id.to_owned(),
            email: email.to_owned(),
            request: request.map(str::to_owned),
            return_to: return_to.map(str::to_owned),
            expires_at: now + SECOND_STEP_TTL_SECS,
        }
    }
}

/// An authorization request waiting for the user, and how far it got.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub request: AuthorizationRequest,
    pub created_at: i64,
    /// The user entered their password for this request (satisfies `prompt=login`,
    /// `max_age` and an `id_token_hint` naming someone else, once).
    pub authenticated: bool,
    /// The user answered the consent page for this request (satisfies
    /// `prompt=consent`, once).
    pub consented: bool,
}

/// The session of the current request, with typed accessors, and where the request
/// came from (for the sign-in's record).
#[derive(Clone)]
pub struct BrowserSession {
    session: Session,
    records: UserSessions,
    device: Device,
    ip: Option<IpAddr>,
}

impl<S> FromRequestParts<S> for BrowserSession
where
    S: Send + Sync,
    UserSessions: FromRef<S>,
    Arc<HttpConfig>: FromRef<S>,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = parts.extensions.get::<Session>().cloned().ok_or_else(|| {
            PageError::internal(&anyhow::anyhow!("No session layer on this route"))
        })?;
        let Ok(device) = Device::from_request_parts(parts, state).await;
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
        Ok(Self {
            session,
            records: UserSessions::from_ref(state),
            device,
            ip,
        })
    }
}

impl BrowserSession {
    /// The context of a page with a form: carries this session's CSRF token.
    pub async fn page_context(&self) -> Result<PageContext, PageError> {
        Ok(PageContext {
            site_name: SITE_NAME,
            csrf_token: self
                .csrf_token()
                .await
                .map_err(|e| PageError::internal(&e))?,
            flash: None,
        })
    }

    /// The signed-in user, unless their sign-in has ended (signed out elsewhere, idle,
    /// past its lifetime): then this browser is signed out now.
    pub async fn user(&self) -> anyhow::Result<Option<SignedInUser>> {
        let user: Option<SignedInUser> = self
            .session
            .get(USER_KEY)
            .await
            .context("Failed to read the session")?;
        let Some(user) = user else { return Ok(None) };
        if self.records.live(&user.sid).await?.is_some() {
            return Ok(Some(user));
        }
        self.session
            .remove_value(USER_KEY)
            .await
            .context("Failed to sign out an ended session")?;
        Ok(None)
    }

    /// Records a successful password check. The session id changes (no fixation: an id
    /// planted before sign-in is worthless after it) and so does the CSRF token. The
    /// sign-in (and its `sid`) is kept when the same user signs in again; otherwise a
    /// new one starts, and another user's sign-in in this browser ends.
    pub async fn sign_in(
        &self,
        user_id: &str,
        email: &str,
        now: i64,
        amr: &Amr,
    ) -> anyhow::Result<SignedInUser> {
        let sid = match self.user().await? {
            Some(previous) if previous.user_id == user_id => previous.sid,
            previous => {
                if let Some(previous) = previous {
                    self.records
                        .end(
                            &previous.user_id,
                            &previous.sid,
                            EndReason::SignedOut,
                            self.ip,
                        )
                        .await?;
                }
                let started = self
                    .records
                    .start(user_id, SessionKind::Browser, &self.device, self.ip, amr)
                    .await?;
                started.session.id
            }
        };
        let user = SignedInUser {
            user_id: user_id.to_owned(),
            email: email.to_owned(),
            auth_time: now,
            sid,
            amr: amr.stored(),
        };
        self.session
            .remove_value(SECOND_STEP_KEY)
            .await
            .context("Failed to end a pending sign-in")?;
        self.session
            .cycle_id()
            .await
            .context("Failed to rotate the session id")?;
        self.session
            .insert(USER_KEY, &user)
            .await
            .context("Failed to record the sign-in")?;
        self.session
            .insert(CSRF_KEY, secrets::random_token(32))
            .await
            .context("Failed to rotate the CSRF token")?;
        Ok(user)
    }

    /// Ends the session: the sign-in's record ends (with the grants made in it), its
    /// data is deleted from the store and the cookie removed.
    pub async fn sign_out(&self) -> anyhow::Result<()> {
        if let Some(user) = self.user().await? {
            self.records
                .end(&user.user_id, &user.sid, EndReason::SignedOut, self.ip)
                .await?;
        }
        self.session
            .flush()
            .await
            .context("Failed to end the session")
    }

    /// After a right password, when a second factor must follow: the session id
    /// changes (as at sign-in) and the pending sign-in replaces any earlier one. Whoever
    /// was signed in in this browser stays so until the second step succeeds.
    pub async fn begin_second_step(&self, pending: &PendingSignIn) -> anyhow::Result<()> {
        self.session
            .cycle_id()
            .await
            .context("Failed to rotate the session id")?;
        self.session
            .insert(SECOND_STEP_KEY, pending)
            .await
            .context("Failed to store a pending sign-in")
    }

    /// The pending sign-in, unless it expired.
    pub async fn pending_sign_in(&self, now: i64) -> anyhow::Result<Option<PendingSignIn>> {
        let pending: Option<PendingSignIn> = self
            .session
            .get(SECOND_STEP_KEY)
            .await
            .context("Failed to read the session")?;
        Ok(pending.filter(|p| p.expires_at > now))
    }

    /// Keeps a WebAuthn ceremony's state (its challenge) until the browser answers;
    /// one per `kind`, a new one replacing it.
    pub async fn begin_ceremony<T: Serialize>(&self, kind: &str, state: &T) -> anyhow::Result<()> {
        self.session
            .insert(&format!("ceremony:{kind}"), state)
            .await
            .context("Failed to keep a ceremony")
    }

    /// The state of the `kind` ceremony, used up.
    pub async fn end_ceremony<T: DeserializeOwned>(&self, kind: &str) -> anyhow::Result<Option<T>> {
        self.session
            .remove(&format!("ceremony:{kind}"))
            .await
            .context("Failed to read a ceremony")
    }

    /// Keeps new recovery codes for the one page that shows them.
    pub async fn keep_new_recovery_codes(&self, codes: &[String]) -> anyhow::Result<()> {
        self.session
            .insert(NEW_CODES_KEY, codes)
            .await
            .context("Failed to keep recovery codes")
    }

    /// The recovery codes kept to be shown, taken out of the session.
    pub async fn take_new_recovery_codes(&self) -> anyhow::Result<Option<Vec<String>>> {
        self.session
            .remove(NEW_CODES_KEY)
            .await
            .context("Failed to read recovery codes")
    }

    /// This session's CSRF token, created on first use.
    pub async fn csrf_token(&self) -> anyhow::Result<String> {
        if let Some(token) = self
            .session
            .get::<String>(CSRF_KEY)
            .await
            .context("Failed to read the session")?
        {
            return Ok(token);
        }
        let token = secrets::random_token(32);
        self.session
            .insert(CSRF_KEY, &token)
            .await
            .context("Failed to store a CSRF token")?;
        Ok(token)
    }

    /// Leaves `message` for the next page this browser is shown: the page a form
    /// redirects to after it succeeded (Post/Redirect/Get).
    pub async fn set_flash(&self, message: &str) -> anyhow::Result<()> {
        self.session
            .insert(FLASH_KEY, message)
            .await
            .context("Failed to store a notice")
    }

    /// The notice left for this page, if any; it is shown once.
    pub async fn take_flash(&self) -> anyhow::Result<Option<String>> {
        self.session
            .remove(FLASH_KEY)
            .await
            .context("Failed to read the session")
    }

    /// Whether `presented` is this session's CSRF token; see [`csrf_matches`].
    pub async fn csrf_matches(&self, presented: &str) -> anyhow::Result<bool> {
        csrf_matches(&self.session, presented).await
    }

    async fn pending_map(
        &self,
        now: i64,
    ) -> anyhow::Result<BTreeMap<String, PendingAuthorization>> {
        let mut map: BTreeMap<String, PendingAuthorization> = self
            .session
            .get(PENDING_KEY)
            .await
            .context("Failed to read the session")?
            .unwrap_or_default();
        map.retain(|_, p| now - p.created_at <= PENDING_TTL_SECS);
        Ok(map)
    }

    async fn store_pending_map(
        &self,
        map: &BTreeMap<String, PendingAuthorization>,
    ) -> anyhow::Result<()> {
        self.session
            .insert(PENDING_KEY, map)
            .await
            .context("Failed to store the waiting authorization requests")
    }

    /// Keeps `request` until the user has signed in or answered the consent page;
    /// returns its id.
    pub async fn add_pending(
        &self,
        request: AuthorizationRequest,
        now: i64,
    ) -> anyhow::Result<String> {
        let mut map = self.pending_map(now).await?;
        while map.len() >= MAX_PENDING {
            let oldest = map
                .iter()
                .min_by_key(|(_, p)| p.created_at)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => map.remove(&id),
                None => break,
            };
        }
        let id = secrets::random_token(16);
        map.insert(
            id.clone(),
            PendingAuthorization {
                request,
                created_at: now,
                authenticated: false,
                consented: false,
            },
        );
        self.store_pending_map(&map).await?;
        Ok(id)
    }

    pub async fn pending(
        &self,
        id: &str,
        now: i64,
    ) -> anyhow::Result<Option<PendingAuthorization>> {
        Ok(self.pending_map(now).await?.remove(id))
    }

    /// Replaces the waiting request `id` (if it still exists).
    pub async fn update_pending(
        &self,
        id: &str,
        pending: PendingAuthorization,
        now: i64,
    ) -> anyhow::Result<()> {
        let mut map = self.pending_map(now).await?;
        if let Some(slot) = map.get_mut(id) {
            *slot = pending;
            self.store_pending_map(&map).await?;
        }
        Ok(())
    }

    /// Forgets the waiting request `id`: it was answered.
    pub async fn remove_pending(&self, id: &str, now: i64) -> anyhow::Result<()> {
        let mut map = self.pending_map(now).await?;
        if map.remove(id).is_some() {
            self.store_pending_map(&map).await?;
        }
        Ok(())
    }
}

/// Whether `presented` is the CSRF token of `session` (constant-time comparison). A
/// session without a token matches nothing.
pub async fn csrf_matches(session: &Session, presented: &str) -> anyhow::Result<bool> {
    let Some(expected) = session
        .get::<String>(CSRF_KEY)
        .await
        .context("Failed to read the session")?
    else {
        return Ok(false);
    };
    Ok(!presented.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes())))
}
