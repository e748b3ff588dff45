//! OpenID Connect Discovery 1.0 (`/.well-known/openid-configuration`) and the JWKS.
//! Only what is implemented is advertised.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::clients::{AuthMethod, GrantType};
use crate::endpoints;
use crate::keys::{self, KeyRing};
use crate::startup::{AppState, Issuer};

/// How long clients may cache the JWKS and the discovery document. Key rotation must
/// publish a key at least this long before it signs.
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

const CLAIMS_SUPPORTED: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "email",
    "email_verified",
    "name",
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
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    });
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        )],
        Json(document),
    )
}

async fn jwks(State(keys): State<KeyRing>) -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
        ],
        keys.jwks_json(),
    )
}
