//! The HTTP layer, the only one that knows axum: each module extracts and parses a
//! request, calls one capability function and maps the outcome to a response.
//!
//! - [`api`]: the first-party JSON API (`/auth/*`);
//! - [`oauth`]: the OAuth 2.0 / OpenID Connect endpoints;
//! - [`pages`]: the HTML pages (sign-in, registration, consent, account, errors);
//! - [`discovery`] and [`health`]; the extractors ([`client_ip`], [`device`]), the
//!   browser session cookie ([`browser_session`]), the endpoint paths ([`endpoints`]),
//!   [`state`] and its [`config`].

pub mod api;
pub mod browser_session;
pub mod client_ip;
pub mod config;
pub mod device;
pub mod discovery;
pub mod endpoints;
pub mod health;
pub mod oauth;
pub mod pages;
pub mod state;

use axum::Router;
use axum::routing::get;
use service_kit::api_error;

use state::AppState;

/// Every route of the idp, on `state`.
pub fn router(state: AppState) -> Router {
    let browser = Router::new()
        .route(endpoints::HOME, get(pages::home))
        .merge(pages::login::routes())
        .merge(pages::account::routes())
        .merge(pages::two_step::routes())
        .merge(pages::second_factor::routes())
        .merge(pages::passkeys::routes())
        .merge(pages::recovery::routes())
        .merge(pages::email::routes())
        .merge(oauth::authorize::routes())
        .merge(oauth::logout::routes());
    Router::new()
        .merge(api::auth::routes())
        .merge(api::sessions::routes())
        .merge(api::recovery::routes())
        .merge(api::email::routes())
        .merge(discovery::routes())
        .merge(health::routes())
        .merge(oauth::token::routes())
        .merge(oauth::userinfo::routes())
        .merge(oauth::revocation::routes())
        .merge(oauth::introspection::routes())
        .merge(pages::with_page_layers(&state, browser))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(api_error::method_not_allowed)
        .with_state(state)
}
