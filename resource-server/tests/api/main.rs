//! The resource server's one integration-test binary: real HTTP on port 0, a fresh
//! database per test (SQLite, or PostgreSQL with `TEST_DATABASE=postgres`), a fake
//! issuer for forged tokens and the real idp for the end-to-end flow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod end_to_end;
mod events;
mod health;
mod helpers;
mod jwks_cache;
mod key_rotation;
mod listing;
mod profile_cache;
mod profiles;
mod real_idp;
mod token_validation;
