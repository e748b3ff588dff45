//! `GET /health`: 200 when the database answers, 503 when it does not. The key cache and
//! the number of revocations in force are reported for information only: the idp being
//! down does not make us unhealthy.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::paths;
use crate::auth::JwksStatus;
use crate::auth::jwks::Freshness;
use crate::routes::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route(paths::HEALTH, get(health))
}

#[tracing::instrument(skip_all)]
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database_ok = state.db.is_healthy().await;
    let jwks = match state.validator.keys().status().await {
        JwksStatus::NotFetched => json!({"status": "not_fetched"}),
        JwksStatus::Loaded {
            keys,
            age_secs,
            ttl_secs,
            freshness,
        } => json!({
            "status": match freshness {
                Freshness::Fresh => "fresh",
                Freshness::Stale => "stale",
                Freshness::Expired => "expired",
            },
            "keys": keys,
            "age_seconds": age_secs,
            "ttl_seconds": ttl_secs,
        }),
    };
    let (status, word) = if database_ok {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let revocations = json!({"entries": state.validator.revocations().len()});
    (
        status,
        Json(json!({
            "status": word,
            "database": word,
            "jwks": jwks,
            "revocations": revocations,
        })),
    )
}
