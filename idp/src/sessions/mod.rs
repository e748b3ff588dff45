//! Sign-in sessions: what a person sees on the account page and can end from anywhere.
//!
//! - [`records`]: the sign-in records (browser and JSON API alike), their idle timeout
//!   and absolute lifetime, and ending them (with the grants made in them).
//! - [`api`]: the first-party JSON API's sign-ins and refreshes, which start and rotate
//!   those records and hand out tokens.
//! - [`device`]: the device a sign-in came from, as people are shown it.
//! - [`store`]: their SQL.
//!
//! The browser's session cookie (tower-sessions) is HTTP plumbing and lives in
//! [`crate::http::browser_session`]; a signed-in browser points at one record here.

pub mod api;
pub mod device;
pub mod records;
pub mod store;
