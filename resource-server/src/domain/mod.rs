//! The profile service's domain types: parsed once at the edge, trusted after. No axum,
//! no SQL, no status codes here.

mod access;
mod page;
mod profile;
mod user_id;

pub use access::{Access, AccessDenied, Action, Caller, CallerUser, Scope};
pub use page::{Page, PageRequest, PageRequestError};
pub use profile::{Bio, Profile, ProfileName, ProfileUpdate, ProfileValidationError};
pub use user_id::UserId;
