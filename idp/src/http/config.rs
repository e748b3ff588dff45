//! [`HttpConfig`]: what the HTTP layer itself needs from the settings.

use crate::guards::client_ip::TrustedProxies;

#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// The issuer is an https URL: `Secure` cookies with the `__Host-` prefix, HSTS.
    pub https: bool,
    /// Lifetime of access tokens, which the pages and the JSON API report.
    pub access_token_ttl_secs: u64,
    /// Life of an authorization code.
    pub authorization_code_ttl_secs: u64,
    /// `Cache-Control: max-age` of `GET /jwks`.
    pub jwks_max_age_secs: u64,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// Every client gets codes only for sign-ins with a second factor.
    pub require_mfa: bool,
}
