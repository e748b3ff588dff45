//! Every path the idp serves, used by both the router and the discovery document so
//! the two cannot drift apart.

pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const JWKS: &str = "/jwks";
pub const HEALTH: &str = "/health";
pub const REGISTER: &str = "/auth/register";
pub const LOGIN: &str = "/auth/login";
pub const HOME: &str = "/";
pub const STYLESHEET: &str = "/static/style.css";
