//! OAuth 2.0 and OpenID Connect protocol logic, free of HTTP: error codes, scopes,
//! PKCE. Endpoint handlers in `routes/` translate to and from the wire.

pub mod error;
pub mod pkce;
pub mod scope;

pub use error::{ErrorCode, OAuthError};
pub use scope::Scope;
