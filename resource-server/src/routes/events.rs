//! `POST /events`: the idp pushes its security events here (RFC 8935), and the
//! sessions, users and accounts they name lose their tokens. The endpoint, its checks
//! and its RFC 8935 answers are jwt-auth's ([`crate::auth::events`]); the events are
//! stored in this service's database.

use axum::Router;

use super::paths;
use crate::auth::events::push_endpoint;
use crate::routes::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route(paths::EVENTS, push_endpoint())
}
