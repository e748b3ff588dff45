//! The HTTP surface: each module extracts, parses, calls one service function and maps
//! the result. Paths live in [`paths`], used by the router and nowhere else spelled out.

pub mod events;
pub mod health;
pub mod state;
pub mod users;

use axum::Router;

use crate::routes::state::AppState;

/// Every endpoint path of the resource server.
pub mod paths {
    pub const HEALTH: &str = "/health";
    pub const USERS: &str = "/users";
    pub const ME: &str = "/users/me";
    pub const USER: &str = "/users/{id}";
    /// Where the idp pushes security events (RFC 8935).
    pub const EVENTS: &str = "/events";
}

/// All routes, before the shared middleware.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(health::routes())
        .merge(users::routes())
        .merge(events::routes())
}
