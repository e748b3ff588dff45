//! The identity provider: accounts, RS256 access tokens, discovery and JWKS.
//!
//! Layers, in one direction: [`routes`] (HTTP) -> services ([`accounts`], [`tokens`],
//! [`keys`], [`passwords`]) -> [`storage`] (SQL). [`startup`] wires them together.

pub mod accounts;
pub mod api_sessions;
pub mod audit;
pub mod cli;
pub mod client_ip;
pub mod clients;
pub mod device;
pub mod domain;
pub mod endpoints;
pub mod keys;
pub mod maintenance;
pub mod oauth;
pub mod pages;
pub mod passwords;
pub mod routes;
pub mod secrets;
pub mod sessions;
pub mod settings;
pub mod startup;
pub mod storage;
pub mod throttle;
pub mod tokens;
pub mod user_sessions;
