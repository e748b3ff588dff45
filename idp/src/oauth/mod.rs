//! OAuth 2.0 and OpenID Connect protocol logic, free of HTTP: error codes, scopes,
//! PKCE, clients, grants and their tables. The handlers in [`crate::http::oauth`]
//! translate to and from the wire.

pub mod access;
pub mod authorize;
pub mod clients;
pub mod consent;
pub mod error;
pub mod grants;
pub mod id_token;
pub mod id_token_hint;
pub mod introspection;
pub mod pkce;
pub mod revocation;
pub mod scope;
pub mod store;
pub mod userinfo;

pub use error::{ErrorCode, OAuthError};
pub use scope::Scope;
