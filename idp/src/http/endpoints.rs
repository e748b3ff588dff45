//! Every path the idp serves, used by both the router and the discovery document so
//! the two cannot drift apart.

// Discovery, keys, health.
pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const JWKS: &str = "/jwks";
pub const HEALTH: &str = "/health";

// First-party JSON API.
pub const REGISTER: &str = "/auth/register";
pub const LOGIN: &str = "/auth/login";
/// The second step of a login answered with `mfa_required`.
pub const LOGIN_SECOND_FACTOR: &str = "/auth/login/mfa";
pub const REFRESH: &str = "/auth/refresh";
pub const LOGOUT: &str = "/auth/logout";
pub const ME: &str = "/auth/me";
pub const SESSION: &str = "/auth/session";
pub const SESSIONS: &str = "/auth/sessions";
pub const ONE_SESSION: &str = "/auth/sessions/{id}";
pub const ACTIVITY: &str = "/auth/activity";
pub const PASSWORD: &str = "/auth/password";
pub const AUTH_CONFIG: &str = "/auth/config";

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
pub const PASSKEYS_SCRIPT: &str = "/static/passkeys.js";
pub const FAVICON: &str = "/static/favicon.svg";
pub const LOGIN_PAGE: &str = "/login";
/// After a right password, for an account with two-step sign-in.
pub const SECOND_FACTOR_PAGE: &str = "/login/second-factor";
pub const REGISTER_PAGE: &str = "/register";
pub const CONSENT_PAGE: &str = "/consent";
pub const ACCOUNT_PAGE: &str = "/account";
/// Where the account page's forms post: end one session, end all but this one, change
/// the password.
pub const ACCOUNT_END_SESSION: &str = "/account/sessions/end";
pub const ACCOUNT_END_OTHER_SESSIONS: &str = "/account/sessions/end-others";
pub const ACCOUNT_PASSWORD: &str = "/account/password";
pub const ACCOUNT_NAME: &str = "/account/name";
pub const PASSWORD_FORGOT_PAGE: &str = "/password/forgot";
pub const PASSWORD_RESET_PAGE: &str = "/password/reset";
pub const PASSWORD_FORGOT: &str = "/auth/password/forgot";
pub const PASSWORD_RESET: &str = "/auth/password/reset";
pub const EMAIL_VERIFY_PAGE: &str = "/email/verify";
pub const EMAIL_VERIFY: &str = "/auth/email/verify";
pub const EMAIL_VERIFY_RESEND: &str = "/auth/email/verify/resend";
pub const ACCOUNT_EMAIL_VERIFY: &str = "/account/email/verify";
pub const ACCOUNT_EMAIL: &str = "/account/email";
pub const ACCOUNT_DELETE: &str = "/account/delete";
/// Two-step sign-in: its page, adding an authenticator app (the QR code, then the first
/// code), removing one, a new set of recovery codes.
pub const TWO_STEP_PAGE: &str = "/account/two-step";
pub const TWO_STEP_TOTP: &str = "/account/two-step/totp";
pub const TWO_STEP_REMOVE: &str = "/account/two-step/remove";
pub const TWO_STEP_RECOVERY_CODES: &str = "/account/two-step/recovery-codes";
/// Passkeys: adding one (options, then the browser's answer), the recovery codes a
/// first one brings, signing in without a password, and the second step with one.
pub const PASSKEY_OPTIONS: &str = "/account/two-step/passkey/options";
pub const PASSKEY: &str = "/account/two-step/passkey";
pub const NEW_RECOVERY_CODES: &str = "/account/two-step/recovery-codes/new";
pub const LOGIN_PASSKEY_OPTIONS: &str = "/login/passkey/options";
pub const LOGIN_PASSKEY: &str = "/login/passkey";
pub const SECOND_FACTOR_PASSKEY_OPTIONS: &str = "/login/second-factor/passkey/options";
pub const SECOND_FACTOR_PASSKEY: &str = "/login/second-factor/passkey";
pub const EMAIL_CHANGE_PAGE: &str = "/email/change";
pub const EMAIL: &str = "/auth/email";
pub const EMAIL_CHANGE_CONFIRM: &str = "/auth/email/change/confirm";
