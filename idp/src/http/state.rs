//! [`AppState`]: everything handlers need, each part reachable as `State<Part>` through
//! `FromRef`. The wiring ([`crate::app`]) builds it; the HTTP layer only reads it.

use std::sync::Arc;

use axum::extract::FromRef;
use service_kit::clock::Clock;
use service_kit::db::Database;

use crate::accounts::Accounts;
use crate::factors::Factors;
use crate::http::browser_session::Sessions;
use crate::http::config::HttpConfig;
use crate::keys::KeyRing;
use crate::oauth::clients::Clients;
use crate::oauth::grants::TokenService;
use crate::sessions::api::ApiSessions;
use crate::sessions::records::UserSessions;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: Database,
    pub accounts: Accounts,
    pub factors: Factors,
    pub clients: Clients,
    pub keys: KeyRing,
    /// The token endpoint's grants.
    pub token_service: TokenService,
    pub issuer: Issuer,
    pub config: Arc<HttpConfig>,
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
