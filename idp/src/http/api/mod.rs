//! The first-party JSON API: registration and sign-in ([`auth`]), the session endpoints
//! ([`sessions`]), password reset ([`recovery`]), email verification ([`email`]) and the refresh-token cookie they share
//! ([`refresh_cookie`]).

pub mod auth;
pub mod email;
pub mod recovery;
pub mod refresh_cookie;
pub mod sessions;
