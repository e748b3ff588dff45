//! Building and running the server: connect and migrate the database, set up the token
//! validator and the receiver of the idp's security events (which revoke tokens), bind
//! the listener first (so tests can use port 0), serve until shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use service_kit::clock::Clock;
use service_kit::db::{Backend, Database};
use service_kit::http::{shutdown_signal, with_common_layers};
use tokio::net::TcpListener;

use crate::auth::events::{EventReceiver, EventStore, ReceiverConfig};
use crate::auth::{self, JwksCache, JwksConfig, RevocationIndex, TokenValidator, ValidationConfig};
use crate::profile_cache::{ProfileCache, Sharing};
use crate::profile_changes::ChangeListener;
use crate::profiles::Profiles;
use crate::routes;
use crate::routes::state::AppState;
use crate::settings::Settings;
use crate::storage::MIGRATIONS;

/// How often the background JWKS refresher looks at the clock (cheap: one read lock).
const JWKS_REFRESH_CHECK_INTERVAL: Duration = Duration::from_secs(1);

impl AppState {
    /// Connects to the database, applies the migrations, loads the revocations and
    /// prepares the (still empty) key and profile caches: the idp is not contacted until
    /// a token or a security event needs checking.
    pub async fn build(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        settings.validate()?;
        let db = connect_and_migrate(&settings).await?;
        let token_clock = auth::validator_clock(&clock);
        let keys = JwksCache::new(
            JwksConfig {
                issuer: settings.issuer.clone(),
                default_ttl: settings.jwks_cache(),
                min_ttl: settings.jwks_min_cache(),
                max_ttl: settings.jwks_max_cache(),
                refetch_cooldown: settings.jwks_refetch_cooldown(),
                max_stale: settings.jwks_max_stale(),
                fetch_timeout: settings.jwks_fetch_timeout(),
                refresh_check_interval: JWKS_REFRESH_CHECK_INTERVAL,
            },
            token_clock.clone(),
        )?;
        // The security events the idp pushes fill the index the validator checks.
        let revocations = RevocationIndex::new();
        let store = EventStore::sql(
            db.pool.clone(),
            revocations.clone(),
            token_clock.now().timestamp(),
        )
        .await?;
        let validator = TokenValidator::new(
            ValidationConfig {
                issuer: settings.issuer.clone(),
                audience: settings.audience.clone(),
                leeway: settings.clock_leeway(),
            },
            keys,
            token_clock.clone(),
        )
        .with_revocations(revocations);
        let events = EventReceiver::new(
            ReceiverConfig {
                authorization: settings.events_authorization.clone(),
                retention: settings.revocation_retention(),
                ..ReceiverConfig::new(&settings.issuer, &settings.audience)
            },
            validator.keys().clone(),
            store,
            token_clock,
        );
        let sharing = match db.backend {
            Backend::Sqlite => Sharing::Exclusive,
            Backend::Postgres => Sharing::Shared,
        };
        let cache = ProfileCache::new(
            settings.profile_cache_capacity,
            settings.profile_cache_ttl(),
            sharing,
        );
        Ok(Self {
            settings: Arc::new(settings),
            profiles: Profiles::new(db.clone(), clock, cache),
            db,
            validator,
            events,
        })
    }
}

/// The whole HTTP application: routes, state and the shared middleware.
pub fn router(state: AppState) -> Router {
    let timeout = state.settings.request_timeout();
    let app = routes::routes()
        .fallback(service_kit::api_error::not_found)
        .method_not_allowed_fallback(service_kit::api_error::method_not_allowed)
        .with_state(state);
    with_common_layers(app, timeout)
}

/// Connects to `settings.database_url` and applies pending migrations.
pub async fn connect_and_migrate(settings: &Settings) -> anyhow::Result<Database> {
    let db = Database::connect(&settings.database_url, settings.database_max_connections).await?;
    db.migrate(&MIGRATIONS).await?;
    Ok(db)
}

pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
}

impl Application {
    /// Binds `settings.listen`, then builds.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let listener = TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("Failed to bind RS_LISTEN={}", settings.listen))?;
        Self::build_with_listener(settings, listener).await
    }

    /// Builds around a listener the caller bound (tests bind port 0).
    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, listener, Clock::system()).await
    }

    /// Builds around a listener the caller bound, on `clock` (tests shift it to move
    /// token and key-cache time without sleeping).
    pub async fn build_with_clock(
        settings: Settings,
        listener: TcpListener,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let port = listener
            .local_addr()
            .context("Failed to read the listener's address")?
            .port();
        let state = AppState::build(settings, clock).await?;
        Ok(Self {
            listener,
            port,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &Database {
        &self.state.db
    }

    /// The profile service, whose cache tests can observe.
    pub fn profiles(&self) -> &Profiles {
        &self.state.profiles
    }

    /// The token validator, whose key cache and revocations tests can observe.
    pub fn validator(&self) -> &TokenValidator {
        &self.state.validator
    }

    /// The receiver of security events, whose upkeep (prune, sync) tests can drive.
    pub fn events(&self) -> &EventReceiver {
        &self.state.events
    }

    /// Serves until SIGTERM or ctrl-c, then drains connections.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves, then drains connections. The background JWKS
    /// refresher, the upkeep of the revocations and, on PostgreSQL, the profile change
    /// listener run for exactly as long.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(
            port = self.port,
            issuer = %self.state.settings.issuer,
            "Resource server listening"
        );
        if self.state.settings.events_authorization.is_none() {
            tracing::info!(
                "POST /events checks no Authorization header (RS_EVENTS_AUTHORIZATION is \
                 unset); the security events' signature authenticates the idp"
            );
        }
        let refresher = self.state.validator.keys().spawn_refresher();
        let maintenance = self.state.events.spawn_maintenance();
        let changes = (self.state.db.backend == Backend::Postgres).then(|| {
            ChangeListener::spawn(
                self.state.settings.database_url.clone(),
                self.state.profiles.cache().clone(),
            )
        });
        let limits = self.state.settings.connection_limits();
        service_kit::serve::serve(self.listener, router(self.state), limits, shutdown).await;
        refresher.stop();
        maintenance.stop();
        if let Some(changes) = changes {
            changes.stop();
        }
        Ok(())
    }
}
