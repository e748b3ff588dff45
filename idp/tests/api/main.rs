//! The idp's integration suite: one binary (linking dominates on 2 cores), a module per
//! feature. Every test talks HTTP to a real server on port 0 with a fresh database
//! (SQLite by default, PostgreSQL with TEST_DATABASE=postgres).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account_page;
mod architecture;
mod audit;
mod authorize;
mod browser;
mod browser_helpers;
mod browser_pages;
mod connections;
mod deletion;
mod discovery;
mod email_change;
mod event_sink;
mod events;
mod health;
mod helpers;
mod housekeeping;
mod introspection;
mod keys;
mod login;
mod logout;
mod mail;
mod oauth_helpers;
mod oidc_client;
mod oidc_helpers;
mod pages;
mod persistence;
mod recovery;
mod register;
mod revocation;
mod second_factors;
mod session_api;
mod smtp_sink;
mod throttling;
mod token_authorization_code;
mod token_client_auth;
mod token_client_credentials;
mod token_refresh;
mod userinfo;
mod verification;
