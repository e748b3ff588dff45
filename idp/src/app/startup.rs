//! Wiring: settings in, a bound listener and a router out. Binding happens first so
//! tests can ask for port 0 and learn the real port.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use service_kit::clock::Clock;
use service_kit::db::Database;
use service_kit::serve::ConnectionLimits;
use tokio::net::TcpListener;

use crate::accounts::hashing::PasswordHasher;
use crate::accounts::store as users;
use crate::accounts::{Accounts, MailPolicy};
use crate::app::housekeeping::Housekeeping;
use crate::app::settings::Settings;
use crate::events::Events;
use crate::events::delivery::Deliverer;
use crate::events::streams::Streams;
use crate::factors::Factors;
use crate::guards::throttle::Throttle;
use crate::http::browser_session::Sessions;
use crate::http::state::{AppState, Issuer};
use crate::keys::lifecycle::{KeyManager, KeyRotation};
use crate::keys::signing::TokenIssuer;
use crate::keys::{KeyEncryptionKey, KeyRing};
use crate::mail::Outbox;
use crate::mail::sender::Sender;
use crate::oauth::clients::Clients;
use crate::oauth::grants::TokenService;
use crate::sessions::api::ApiSessions;
use crate::sessions::records::UserSessions;
use crate::{http, storage};

pub struct Application {
    listener: TcpListener,
    port: u16,
    router: Router,
    db: Database,
    key_rotation: KeyRotation,
    key_check_interval: Duration,
    housekeeping: Housekeeping,
    mail_sender: Sender,
    event_delivery: Deliverer,
    streams: Streams,
    limits: ConnectionLimits,
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
        users::backfill_email_keys(&db.pool).await?;
        let kek = KeyEncryptionKey::load_or_create(
            settings.key_encryption_key.as_ref().map(|k| k.0.as_str()),
            &settings.keys_dir,
        )?;
        let keys = KeyRing::load_or_create(&db.pool, &kek, clock.now().timestamp()).await?;
        let kek = Arc::new(kek);
        let key_rotation = KeyRotation::new(
            KeyManager::new(
                db.pool.clone(),
                kek.clone(),
                settings.key_schedule(),
                clock.clone(),
            ),
            keys.clone(),
        );
        let hasher = PasswordHasher::new(settings.max_concurrent_hashes)?;
        let tokens = TokenIssuer::new(&settings.issuer, keys.clone(), clock.clone());
        let throttle = Throttle::new(db.pool.clone(), clock.clone(), settings.throttle_policies());
        let events = Events::new(&settings.issuer, clock.clone());
        let streams = Streams::new(db.pool.clone(), kek.clone(), clock.clone());
        let event_delivery = Deliverer::new(
            db.pool.clone(),
            clock.clone(),
            tokens.clone(),
            streams.clone(),
            settings.events_config()?,
            &events,
        )?;
        let user_sessions = UserSessions::new(
            db.pool.clone(),
            clock.clone(),
            settings.session_policy(),
            events,
        );
        let mail = settings.mail_config()?;
        let outbox = Outbox::new(clock.clone(), mail.from.clone());
        let mail_sender = Sender::new(db.pool.clone(), clock.clone(), mail, &outbox)?;
        let mail_policy = MailPolicy {
            account_url: format!("{}{}", settings.issuer, http::endpoints::ACCOUNT_PAGE),
            password_reset_url: format!(
                "{}{}",
                settings.issuer,
                http::endpoints::PASSWORD_RESET_PAGE
            ),
            password_reset_ttl_secs: settings.password_reset_ttl_secs,
            email_verification_url: format!(
                "{}{}",
                settings.issuer,
                http::endpoints::EMAIL_VERIFY_PAGE
            ),
            email_verification_ttl_secs: settings.email_verification_ttl_secs,
            email_change_url: format!("{}{}", settings.issuer, http::endpoints::EMAIL_CHANGE_PAGE),
            require_verified_email: settings.require_verified_email,
        };
        let accounts = Accounts::new(
            db.pool.clone(),
            hasher,
            clock.clone(),
            throttle.clone(),
            user_sessions.clone(),
            outbox.clone(),
            mail_policy,
        );
        let factors = Factors::new(
            db.pool.clone(),
            clock.clone(),
            kek,
            throttle.clone(),
            outbox,
            accounts.clone(),
            settings.factor_policy()?,
        );
        let api_sessions = ApiSessions::new(
            (accounts.clone(), factors.clone()),
            user_sessions.clone(),
            tokens.clone(),
            db.pool.clone(),
            clock.clone(),
            settings.audience.clone(),
            settings.access_token_ttl_secs,
        );
        let housekeeping = Housekeeping::new(db.pool.clone(), clock.clone(), &settings);
        let state = AppState {
            db: db.clone(),
            accounts,
            factors,
            clients: Clients::new(db.pool.clone(), clock.clone()).with_throttle(throttle),
            keys,
            token_service: TokenService::new(
                db.pool.clone(),
                tokens,
                settings.token_policy(),
                clock.clone(),
            ),
            issuer: Issuer(Arc::from(settings.issuer.as_str())),
            config: Arc::new(settings.http_config()),
            clock,
            sessions: Sessions::connect(&settings.browser_session_config()).await?,
            user_sessions,
            api_sessions,
        };
        let router = service_kit::http::with_common_layers(
            http::router(state),
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
            mail_sender,
            event_delivery,
            streams,
            limits: settings.connection_limits(),
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

    /// The mail sender of this instance; its `deliver_due()` is what the background task
    /// runs when woken and every `IDP_MAIL_POLL_SECS` (tests call it on a driven clock).
    pub fn mail_sender(&self) -> Sender {
        self.mail_sender.clone()
    }

    /// The event delivery of this instance; its `deliver_due()` is what the background
    /// task runs when woken and every `IDP_EVENTS_POLL_SECS`.
    pub fn event_delivery(&self) -> Deliverer {
        self.event_delivery.clone()
    }

    /// The event receivers (what `idp streams` manages), for wiring a resource server
    /// in-process (the launcher) and for tests.
    pub fn streams(&self) -> Streams {
        self.streams.clone()
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
        let mail = tokio::spawn(self.mail_sender.run(stopped.clone()));
        let delivery = tokio::spawn(self.event_delivery.run(stopped.clone()));
        let maintenance = tokio::spawn(self.key_rotation.run(self.key_check_interval, stopped));
        // Handlers see the peer address, for per-IP throttling (`http::client_ip`).
        service_kit::serve::serve(self.listener, self.router, self.limits, shutdown).await;
        let _ = stop.send(true);
        if let Err(e) = maintenance.await {
            tracing::error!(error = %e, "The key maintenance task panicked");
        }
        if let Err(e) = housekeeping.await {
            tracing::error!(error = %e, "The housekeeping task panicked");
        }
        if let Err(e) = mail.await {
            tracing::error!(error = %e, "The mail sender panicked");
        }
        if let Err(e) = delivery.await {
            tracing::error!(error = %e, "The event delivery task panicked");
        }
        self.db.pool.close().await;
        Ok(())
    }
}
