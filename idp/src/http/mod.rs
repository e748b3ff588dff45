//! HTTP surface of the idp: each module extracts and parses a request, calls one
//! service function and maps the outcome to a response.

pub mod account;
pub mod auth;
pub mod auth_sessions;
pub mod authorize;
pub mod client_ip;
pub mod discovery;
pub mod health;
pub mod login_pages;
pub mod logout;
pub mod oauth_json;
pub mod refresh_cookie;
pub mod revocation;
pub mod token;
pub mod userinfo;
