//! HTTP surface of the idp: each module extracts and parses a request, calls one
//! service function and maps the outcome to a response.

pub mod auth;
pub mod discovery;
pub mod health;
