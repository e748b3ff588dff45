//! OpenID Connect Discovery 1.0 (`/.well-known/openid-configuration`) and the JWKS.
//! Only what is implemented is advertised.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::endpoints;
use crate::keys::KeyRing;
use crate::startup::{AppState, Issuer};

/// How long clients may cache the JWKS and the discovery document. Key rotation must
/// publish a key at least this long before it signs.
const CACHE_CONTROL: &str = "public, max-age=300";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::DISCOVERY, get(discovery))
        .route(endpoints::JWKS, get(jwks))
}

async fn discovery(State(Issuer(issuer)): State<Issuer>) -> impl IntoResponse {
    let document = json!({
        "issuer": *issuer,
        "jwks_uri": format!("{issuer}{}", endpoints::JWKS),
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
