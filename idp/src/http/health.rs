//! `GET /health`: 200 when the database answers, 503 when it does not.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use service_kit::db::Database;

use crate::http::endpoints;
use crate::http::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route(endpoints::HEALTH, get(health))
}

async fn health(State(db): State<Database>) -> impl IntoResponse {
    if db.is_healthy().await {
        (
            StatusCode::OK,
            Json(json!({"status": "ok", "database": "ok"})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "database": "unavailable"})),
        )
    }
}
