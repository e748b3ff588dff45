//! Offline validation of RS256 JWT access tokens (RFC 9068) issued by one trusted idp.
//!
//! Nothing here knows about profiles: this module is meant to become a library any of
//! our resource servers can use. It owns
//! - [`jws`]: strict compact-JWS parsing and the header rules (RS256 only, `typ` at+jwt,
//!   `kid` required, no `crit`, key-carrying headers ignored);
//! - [`jwks`]: the cache of the issuer's signing keys (discovery -> `jwks_uri`, bounded
//!   staleness, single-flight refetch with a cooldown);
//! - [`claims`]: the typed claims of an access token;
//! - [`validator`]: the pipeline tying these together;
//! - [`extractor`]: the axum extractor [`BearerClaims`] and the RFC 6750 responses.
//!
//! Every rejection of a presented token looks the same to the caller (401
//! `invalid_token`); the reason is only logged, at debug level, and the token never is.

pub mod claims;
pub mod error;
pub mod extractor;
pub mod jwks;
pub mod jws;
pub mod validator;

pub use claims::{AccessTokenClaims, Scopes};
pub use error::TokenError;
pub use extractor::{AuthRejection, BearerClaims, insufficient_scope};
pub use jwks::{JwksCache, JwksConfig, JwksStatus};
pub use validator::{TokenValidator, ValidationConfig};
