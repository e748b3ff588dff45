//! The OAuth tables: authorization codes, grants and their refresh tokens, the
//! records of issued access tokens, and consents. Clients keep theirs in
//! [`crate::oauth::clients::store`].

pub mod access_tokens;
pub mod codes;
pub mod consents;
pub mod grants;
pub mod refresh_tokens;
