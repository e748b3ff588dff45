//! Access tokens: the `jwt-auth` validator, joined to this service's clock and error
//! shape.

use axum::http::header::WWW_AUTHENTICATE;
pub use jwt_auth::*;
use service_kit::api_error::ApiError;

/// The validator's time is the service's clock, so tests that move the clock move
/// token expiry and key freshness with it.
pub fn validator_clock(clock: &service_kit::clock::Clock) -> jwt_auth::Clock {
    let clock = clock.clone();
    jwt_auth::Clock::from_fn(move || clock.now())
}

/// An RFC 6750 answer as this service's [`ApiError`] (the same JSON shape).
pub fn api_error(error: AuthError) -> ApiError {
    ApiError::new(error.status, error.code, error.message)
        .with_header(WWW_AUTHENTICATE, error.www_authenticate)
}
