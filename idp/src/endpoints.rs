//! Every path the idp serves, used by both the router and the discovery document so
//! the two cannot drift apart.

// Discovery, keys, health.
pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const JWKS: &str = "/jwks";
pub const HEALTH: &str = "/health";

// First-party JSON API.
pub const REGISTER: &str = "/auth/register";
pub const LOGIN: &str = "/auth/login";

// OAuth 2.0 / OpenID Connect.
pub const AUTHORIZE: &str = "/authorize";
/// Where the sign-in and consent pages hand a waiting authorization request back.
pub const AUTHORIZE_CONTINUE: &str = "/authorize/continue";
pub const TOKEN: &str = "/token";
pub const USERINFO: &str = "/userinfo";
pub const REVOKE: &str = "/revoke";
pub const INTROSPECT: &str = "/introspect";
pub const END_SESSION: &str = "/logout";
/// Where the logout confirmation page posts.
pub const END_SESSION_CONFIRM: &str = "/logout/confirm";

// Pages.
pub const HOME: &str = "/";
pub const STYLESHEET: &str = "/static/style.css";
pub const FAVICON: &str = "/static/favicon.svg";
pub const LOGIN_PAGE: &str = "/login";
pub const REGISTER_PAGE: &str = "/register";
pub const CONSENT_PAGE: &str = "/consent";
