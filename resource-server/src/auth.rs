//! Token validation comes from the workspace's [`jwt_auth`] crate, which knows nothing of
//! profiles; this module re-exports it so the rest of the server says `crate::auth`.

pub use jwt_auth::*;
