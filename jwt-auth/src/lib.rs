//! Offline validation of RS256 JWT access tokens (RFC 9068) issued by one trusted
//! OpenID Connect provider, for axum services.
//!
//! The crate knows nothing about what a service protects: it turns an
//! `Authorization: Bearer` header into typed [`AccessTokenClaims`], or into the one
//! RFC 6750 answer every bad token gets. It owns
//! - [`jws`]: strict compact-JWS parsing and the header rules (RS256 only, `typ` at+jwt,
//!   `kid` required, no `crit`, key-carrying headers ignored, no member named twice in
//!   the header or the payload: [`unique_members`]);
//! - [`jwks`]: the cache of the issuer's signing keys (discovery -> `jwks_uri`,
//!   `Cache-Control: max-age` within bounds, ETag revalidation, refresh in the
//!   background before expiry, bounded staleness when the issuer is down, single-flight
//!   refetch with a cooldown);
//! - [`claims`]: the typed claims of an access token;
//! - [`validator`]: the pipeline tying these together ([`TokenValidator`]), with a
//!   bounded cache of verified tokens (keyed by a hash, never used past `exp`, dropped
//!   when the key that verified a token leaves the key set);
//! - [`extractor`]: the axum extractor [`BearerClaims`], its rejection [`AuthRejection`],
//!   the [`AuthError`] responses, [`insufficient_scope`] for 403s and
//!   [`insufficient_user_authentication`] (RFC 9470) for a sign-in too weak for a route;
//! - [`clock`]: where "now" comes from ([`Clock`]: the system's, or the service's own);
//! - [`revocation`]: the tokens the issuer revoked since it signed them
//!   ([`RevocationIndex`]), checked by the validator after everything else, on every
//!   request, cached token or not;
//! - [`events`]: receiving the issuer's security events (Security Event Tokens pushed
//!   per RFC 8935: CAEP `session-revoked` and `credential-change`, RISC
//!   `account-disabled` and `account-enabled`) into that index, and keeping them in the
//!   service's database with the `events-store` feature.
//!
//! It needs nothing else of ours: any axum service can take it as it is.
//!
//! Every rejection of a presented token looks the same to the caller (401
//! `invalid_token`); the reason is only logged, at debug level, and the token never is.
//!
//! # Adopting it in an axum service
//!
//! Build one [`TokenValidator`], put it in the router state, make it reachable with
//! [`FromRef`](axum::extract::FromRef), take [`BearerClaims`] in the handlers, and run
//! the key cache's background refresher for as long as the server runs:
//!
//! ```no_run
//! use axum::extract::FromRef;
//! use axum::routing::get;
//! use axum::Router;
//! use jwt_auth::{BearerClaims, Clock, JwksCache, JwksConfig, TokenValidator, ValidationConfig};
//!
//! #[derive(Clone)]
//! struct AppState {
//!     validator: TokenValidator,
//!     // ... the service's own state
//! }
//!
//! impl FromRef<AppState> for TokenValidator {
//!     fn from_ref(state: &AppState) -> Self {
//!         state.validator.clone()
//!     }
//! }
//!
//! async fn whoami(BearerClaims(claims): BearerClaims) -> Result<String, axum::response::Response> {
//!     if !claims.scopes.contains("orders:read") {
//!         return Err(axum::response::IntoResponse::into_response(
//!             jwt_auth::insufficient_scope("orders:read"),
//!         ));
//!     }
//!     Ok(claims.subject)
//! }
//!
//! # async fn run() -> anyhow::Result<()> {
//! let issuer = "https://idp.example";
//! let clock = Clock::system();
//! // Defaults: 300 s without max-age, max-age clamped to [30 s, 1 h], one fetch per
//! // 30 s at most, 1 h of stale keys when the issuer is down, 5 s fetch timeout.
//! let keys = JwksCache::new(JwksConfig::new(issuer), clock.clone())?;
//! let validator = TokenValidator::new(
//!     ValidationConfig {
//!         issuer: issuer.to_owned(),
//!         audience: "https://orders.example".to_owned(),
//!         leeway: std::time::Duration::from_secs(30),
//!     },
//!     keys,
//!     clock,
//! );
//! // Refreshes the keys before they expire; stops when dropped.
//! let _refresher = validator.keys().spawn_refresher();
//!
//! let app = Router::new()
//!     .route("/whoami", get(whoami))
//!     .with_state(AppState { validator });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Receiving security events
//!
//! When the issuer pushes security events, the service adds one route and gives its
//! validator the index the events fill. With the `events-store` feature, the store keeps
//! them in the service's own database (it creates its two tables, `jwt_auth_revocations`
//! and `jwt_auth_seen_events`, if missing), so revocations survive a restart and reach
//! the other instances; [`events::EventStore::in_memory`] keeps them in the process only.
//!
//! ```no_run
//! # #[cfg(feature = "events-store")]
//! # async fn run(pool: sqlx::AnyPool, validator: jwt_auth::TokenValidator) -> anyhow::Result<()> {
//! use axum::extract::FromRef;
//! use axum::Router;
//! use jwt_auth::events::{push_endpoint, EventReceiver, EventStore, ReceiverAuthorization, ReceiverConfig};
//! use jwt_auth::{Clock, RevocationIndex, TokenValidator};
//!
//! #[derive(Clone)]
//! struct AppState {
//!     validator: TokenValidator,
//!     events: EventReceiver,
//! }
//!
//! impl FromRef<AppState> for EventReceiver {
//!     fn from_ref(state: &AppState) -> Self {
//!         state.events.clone()
//!     }
//! }
//!
//! let clock = Clock::system();
//! let revocations = RevocationIndex::new();
//! let store = EventStore::sql(pool, revocations.clone(), clock.now().timestamp()).await?;
//! let validator = validator.with_revocations(revocations);
//! let events = EventReceiver::new(
//!     ReceiverConfig {
//!         // What the transmitter sends as `Authorization` (optional: the SET's signature
//!         // authenticates the issuer either way).
//!         authorization: Some(ReceiverAuthorization::parse("Bearer 5f1c...")?),
//!         ..ReceiverConfig::new("https://idp.example", "https://orders.example")
//!     },
//!     validator.keys().clone(),
//!     store,
//!     clock,
//! );
//! // Prunes expired revocations and reads other instances' ones; stops when dropped.
//! let _maintenance = events.spawn_maintenance();
//!
//! let app: Router = Router::new()
//!     .route("/events", push_endpoint())
//!     .with_state(AppState { validator, events });
//! # Ok(())
//! # }
//! ```

pub mod claims;
pub mod clock;
pub mod error;
pub mod events;
pub mod extractor;
pub mod jwks;
pub mod jws;
pub mod revocation;
pub mod unique_members;
pub mod validator;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod test_issuer;

pub use claims::{AccessTokenClaims, Scopes};
pub use clock::Clock;
pub use error::TokenError;
pub use extractor::{
    AuthError, AuthRejection, BearerClaims, INVALID_TOKEN_MESSAGE, REQUEST_ID, insufficient_scope,
    insufficient_user_authentication,
};
pub use jwks::{Freshness, JwksCache, JwksConfig, JwksStatus, RefreshTask};
pub use revocation::{Revocation, RevocationIndex};
pub use validator::{TokenValidator, ValidationConfig};
