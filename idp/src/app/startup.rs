//! Wiring: settings in, a bound listener and a router out. Binding happens first so
//! tests can ask for port 0 and learn the real port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::FromRef;
use service_kit::api_error;
use service_kit::clock::Clock;
use service_kit::db::Database;
use tokio::net::TcpListener;

use crate::accounts::Accounts;
use crate::api_sessions::ApiSessions;
use crate::clients::Clients;
use crate::keys::lifecycle::{KeyManager, KeyRotation, KeySchedule};
use crate::keys::{KeyEncryptionKey, KeyRing};
use crate::maintenance::Housekeeping;
use crate::pages;
use crate::passwords::PasswordHasher;
use crate::routes;
use crate::sessions::Sessions;
use crate::settings::Settings;
use crate::storage;
use crate::throttle::{Policies, Throttle};
use crate::tokens::TokenIssuer;
use crate::user_sessions::{SessionPolicy, UserSessions};

/// Everything handlers need; each part is reachable with `State<Part>` via `FromRef`.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: Database,
    pub accounts: Accounts,
    pub clients: Clients,
    pub keys: KeyRing,
    pub tokens: TokenIssuer,
    pub issuer: Issuer,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    /// Browser sessions (the store behind the session cookie).
    pub sessions: Sessions,
    /// Sign-in sessions (browser and JSON API) people can see and end.
    pub user_sessions: UserSessions,
    /// The JSON API's sign-ins and refreshes.
    pub api_sessions: ApiSessions,
}

/// The issuer URL (`iss`, discovery base).
#[derive(Clone)]
pub struct Issuer(pub Arc<str>);

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(routes::auth::routes())
        .merge(routes::auth_sessions::routes())
        .merge(routes::discovery::routes())
        .merge(routes::health::routes())
        .merge(routes::token::routes())
        .merge(routes::userinfo::routes())
        .merge(routes::revocation::routes())
        .merge(pages::routes(&state))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(api_error::method_not_allowed)
        .with_state(state)
}

pub struct Application {
    listener: TcpListener,
    port: u16,
    router: Router,
    db: Database,
    key_rotation: KeyRotation,
    key_check_interval: Duration,
    housekeeping: Housekeeping,
}

impl Application {
    /// Binds `settings.listen` and builds the service.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("Failed to bind IDP_LISTEN={}", settings.listen))?;
        Self::build_with_listener(settings, listener, Clock::system()).await
    }

    /// Builds the service on an already bound listener, with the given clock.
    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        let port = listener.local_addr()?.port();
        let db =
            Database::connect(&settings.database_url, settings.database_max_connections).await?;
        db.migrate(&storage::MIGRATIONS).await?;
        let kek = KeyEncryptionKey::load_or_create(
            settings.key_encryption_key.as_ref().map(|k| k.0.as_str()),
            &settings.keys_dir,
        )?;
        let keys = KeyRing::load_or_create(&db.pool, &kek, clock.now().timestamp()).await?;
        let key_rotation = KeyRotation::new(
            KeyManager::new(
                db.pool.clone(),
                Arc::new(kek),
                KeySchedule::from_settings(&settings),
                clock.clone(),
            ),
            keys.clone(),
        );
        let hasher = PasswordHasher::new(settings.max_concurrent_hashes)?;
        let tokens = TokenIssuer::new(&settings.issuer, keys.clone(), clock.clone());
        let throttle = Throttle::new(
            db.pool.clone(),
            clock.clone(),
            Policies::from_settings(&settings),
        );
        let user_sessions = UserSessions::new(
            db.pool.clone(),
            clock.clone(),
            SessionPolicy::from_settings(&settings),
        );
        let accounts = Accounts::new(
            db.pool.clone(),
            hasher,
            clock.clone(),
            throttle.clone(),
            user_sessions.clone(),
        );
        let api_sessions = ApiSessions::new(
            accounts.clone(),
            user_sessions.clone(),
            tokens.clone(),
            db.pool.clone(),
            &settings,
        );
        let housekeeping = Housekeeping::new(db.pool.clone(), clock.clone(), &settings);
        let state = AppState {
            db: db.clone(),
            accounts,
            clients: Clients::new(db.pool.clone(), clock.clone()).with_throttle(throttle),
            keys,
            tokens,
            issuer: Issuer(Arc::from(settings.issuer.as_str())),
            settings: Arc::new(settings.clone()),
            clock,
            sessions: Sessions::connect(&settings).await?,
            user_sessions,
            api_sessions,
        };
        let router = service_kit::http::with_common_layers(
            router(state),
            Duration::from_secs(settings.request_timeout_secs),
        );
        Ok(Self {
            listener,
            port,
            router,
            db,
            key_rotation,
            key_check_interval: Duration::from_secs(settings.key_check_interval_secs),
            housekeeping,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The key maintenance of this instance; its `tick()` is what the background task
    /// runs every `IDP_KEY_CHECK_INTERVAL_SECS` (tests call it to tick deterministically).
    /// The housekeeping task's work, for tests that purge on demand.
    pub fn housekeeping(&self) -> Housekeeping {
        self.housekeeping.clone()
    }

    pub fn key_rotation(&self) -> KeyRotation {
        self.key_rotation.clone()
    }

    /// Serves until SIGTERM or ctrl-c, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(service_kit::http::shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(port = self.port, "idp listening");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let housekeeping = tokio::spawn(self.housekeeping.run(stopped.clone()));
        let maintenance = tokio::spawn(self.key_rotation.run(self.key_check_interval, stopped));
        // With the peer address, for per-IP throttling (`routes::client_ip`).
        let app = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("The idp server failed");
        let _ = stop.send(true);
        if let Err(e) = maintenance.await {
            tracing::error!(error = %e, "The key maintenance task panicked");
        }
        if let Err(e) = housekeeping.await {
            tracing::error!(error = %e, "The housekeeping task panicked");
        }
        self.db.pool.close().await;
        served
    }
}
