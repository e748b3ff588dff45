//! The JSON API's refresh cookie, for browser clients that should not hold the refresh
//! token in script-readable storage: `HttpOnly`, `SameSite=Strict`, `Path=/auth` (sent
//! only to the auth API), `Secure` and the `__Secure-` prefix over https. Calls it
//! authenticates must also carry the session's CSRF token in `X-CSRF-Token`.

use axum::http::{HeaderMap, HeaderValue, header};
use tower_sessions::cookie::{Cookie, SameSite};

const NAME: &str = "idp_refresh";
const SECURE_NAME: &str = "__Secure-idp_refresh";
const PATH: &str = "/auth";

pub fn name(secure: bool) -> &'static str {
    if secure { SECURE_NAME } else { NAME }
}

/// `Set-Cookie` for `token`, living `max_age_secs`.
pub fn set(secure: bool, token: &str, max_age_secs: i64) -> HeaderValue {
    build(secure, token, max_age_secs)
}

/// `Set-Cookie` that removes the cookie.
pub fn clear(secure: bool) -> HeaderValue {
    build(secure, "", 0)
}

fn build(secure: bool, value: &str, max_age_secs: i64) -> HeaderValue {
    let cookie = Cookie::build((name(secure), value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path(PATH)
        .max_age(time::Duration::seconds(max_age_secs.max(0)))
        .build();
    // Cookie values here are base64url: always a valid header value.
    HeaderValue::try_from(cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// The refresh token from the request's cookies (either name: a deployment may have
/// switched to https since the cookie was set).
pub fn read(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| (c.name() == NAME || c.name() == SECURE_NAME) && !c.value().is_empty())
        .map(|c| c.value().to_owned())
}
