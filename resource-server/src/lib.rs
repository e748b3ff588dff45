//! The resource server: a profile API (`/users`) that trusts access tokens from one
//! idp and checks them offline, against the idp's cached public keys.
//!
//! Layers: [`routes`] (HTTP, with its `AppState`) -> [`profiles`] (use cases and authorization, on the
//! [`domain`] types) -> [`storage`] (SQL). [`auth`] validates tokens and knows nothing
//! of profiles. [`profile_cache`] keeps single profiles in memory, and on PostgreSQL
//! [`profile_changes`] keeps it coherent with the writes of other instances. [`startup`]
//! wires them together; nothing but `main.rs` and tests imports it.

pub mod auth;
pub mod domain;
pub mod profile_cache;
pub mod profile_changes;
pub mod profiles;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod storage;

pub use routes::state::AppState;
pub use settings::Settings;
pub use startup::{Application, router};
