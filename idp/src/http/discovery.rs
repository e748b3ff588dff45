//! OpenID Connect Discovery 1.0 (`/.well-known/openid-configuration`) and the JWKS.
//! Only what is implemented is advertised.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::accounts::amr::ACR_VALUES;
use crate::http::config::HttpConfig;
use crate::http::endpoints;
use crate::http::state::{AppState, Issuer};
use crate::keys::{self, KeyRing};
use crate::oauth::clients::{AuthMethod, GrantType};

/// How long clients may cache the discovery document (it changes only with a deploy).
/// The JWKS's max-age is `IDP_JWKS_MAX_AGE_SECS`, which key rotation's pre-publication
/// window is validated against.
const CACHE_CONTROL: &str = "public, max-age=300";

/// Scopes clients can be allowed: OIDC's, and the resource server's.
pub const SCOPES_SUPPORTED: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "users:read",
    "users:write",
    "users:admin",
];

const CLAIMS_SUPPORTED: [&str; 15] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "amr",
    "nonce",
    "at_hash",
    "sid",
    "email",
    "email_verified",
    "name",
    "updated_at",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::DISCOVERY, get(discovery))
        .route(endpoints::JWKS, get(jwks))
}

async fn discovery(State(Issuer(issuer)): State<Issuer>) -> impl IntoResponse {
    let url = |path: &str| format!("{issuer}{path}");
    // OpenID Connect Discovery 1.0 §3, RFC 8414 and RFC 9207: exactly what is built.
    let document = json!({
        "issuer": *issuer,
        "authorization_endpoint": url(endpoints::AUTHORIZE),
        "token_endpoint": url(endpoints::TOKEN),
        "userinfo_endpoint": url(endpoints::USERINFO),
        "jwks_uri": url(endpoints::JWKS),
        "revocation_endpoint": url(endpoints::REVOKE),
        "introspection_endpoint": url(endpoints::INTROSPECT),
        "end_session_endpoint": url(endpoints::END_SESSION),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantType::SUPPORTED,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [keys::ALGORITHM],
        "token_endpoint_auth_methods_supported": AuthMethod::SUPPORTED,
        "revocation_endpoint_auth_methods_supported": AuthMethod::SUPPORTED,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": CLAIMS_SUPPORTED,
        "acr_values_supported": ACR_VALUES,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        // Back-Channel Logout 1.0 §2.1: logout tokens carry `sid` as well as `sub`.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    });
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        )],
        Json(document),
    )
}

/// The JWKS, with `Cache-Control: max-age` from the key schedule (never longer than the
/// pre-publication window, which start-up validates) and a strong `ETag`; a matching
/// `If-None-Match` gets 304 without a body (RFC 9110 §13.1.2).
async fn jwks(
    State(keys): State<KeyRing>,
    State(config): State<Arc<HttpConfig>>,
    request_headers: HeaderMap,
) -> Response {
    let (body, etag) = keys.jwks_with_etag();
    let mut headers = HeaderMap::new();
    if let Ok(value) =
        HeaderValue::from_str(&format!("public, max-age={}", config.jwks_max_age_secs))
    {
        headers.insert(header::CACHE_CONTROL, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    let matches = request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    (headers, body).into_response()
}
