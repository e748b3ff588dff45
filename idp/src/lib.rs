//! The identity provider: accounts, sessions, OAuth 2.0 and OpenID Connect, signing
//! keys. See `ARCHITECTURE.md` at the repository root for the map.
//!
//! Dependencies run one way: [`http`] (the only layer that knows axum) -> the
//! capabilities ([`accounts`], [`sessions`], [`oauth`], [`keys`], [`mail`], [`events`], with the
//! [`guards`] they share) -> [`storage`] (the migrations) and each capability's own `store`
//! (SQL). [`app`] wires them together and is imported by nobody but `main.rs`, the
//! [`cli`] and tests.

pub mod accounts;
pub mod app;
pub mod cli;
pub mod events;
pub mod factors;
pub mod guards;
pub mod http;
pub mod keys;
pub mod mail;
pub mod oauth;
pub mod sessions;
pub mod storage;
