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
        json!({
            "status": "ok",
            "database": "ok",
            "jwks": {"status": "not_fetched"},
            "revocations": {"entries": 0},
        })
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

#[tokio::test]
async fn slow_header_clients_are_cut_off_while_others_are_served() {
    use std::time::Duration;
    let app = crate::helpers::spawn_app_with(|s| {
        s.header_read_timeout_secs = 1;
        s.max_connections = 3;
    })
    .await;
    let addr: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    // Two slow clients hold two of the three connection slots until the header timeout
    // closes them; the third serves everyone else meanwhile.
    let slow = [(); 2].map(|()| {
        tokio::spawn(service_kit::testing::slow_headers_client(
            addr,
            Duration::from_millis(200),
            Duration::from_secs(15),
        ))
    });
    assert_eq!(app.get("/health", None).await.status(), 200);
    for client in slow {
        let closed_after = client
            .await
            .unwrap()
            .expect("a slow client was never cut off");
        assert!(
            closed_after >= Duration::from_millis(900),
            "{closed_after:?}"
        );
    }
    // A new connection: the pooled one idled past the header timeout and was closed.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response = fresh.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}
