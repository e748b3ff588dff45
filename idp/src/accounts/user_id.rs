//! Input parsed into types at the edge: once a value is an [`Email`] or a [`Password`],
//! it is valid, and nothing downstream checks it again.

mod email;
pub mod password;
mod return_to;

pub use email::{Email, EmailError};
pub use password::{Password, PasswordError};
pub use return_to::{ReturnTo, ReturnToError};

/// A user's id: a UUID, the `sub` of their tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct UserId(pub uuid::Uuid);

impl UserId {
    /// Time-ordered (UUIDv7) so ids index well.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
