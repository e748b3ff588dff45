//! `GET /health` and what survives a restart.

use serde_json::{Value, json};

use crate::helpers::{TestUser, USER_SCOPES, spawn_app};

#[tokio::test]
async fn health_reports_the_database_and_the_keys() {
    let app = spawn_app().await;
    let response = app.get("/health", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "ok", "database": "ok", "jwks": {"status": "not_fetched"}})
    );
}

#[tokio::test]
async fn health_is_503_when_the_database_is_unreachable() {
    let app = spawn_app().await;
    app.db.pool.close().await;
    let response = app.get("/health", None).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["database"], "unavailable");
}

#[tokio::test]
async fn a_database_failure_is_an_opaque_500() {
    let app = spawn_app().await;
    let token = app.token_for(&TestUser::generate(), USER_SCOPES);
    app.db.pool.close().await;
    let response = app.get("/users/me", Some(&token)).await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "internal_error");
    assert!(!body["message"].as_str().unwrap().contains("pool"));
}

#[tokio::test]
async fn profiles_survive_a_restart() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let token = app.token_for(&user, USER_SCOPES);
    let response = app
        .put(
            &format!("/users/{}", user.id),
            &token,
            &json!({"name": "Persistent"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let before: Value = response.json().await.unwrap();

    let app = app.restart().await;
    let after: Value = app
        .get("/users/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after, before);
}
