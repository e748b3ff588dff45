//! The key cache: lazy first fetch, one single-flight refetch per cooldown for unknown
//! kids, stale keys served while the idp is down (for a bounded time), rotation.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    KEY_TWO, TestUser, USER_SCOPES, assert_invalid_token, spawn_app, spawn_app_with,
};

fn random_kid_token(app: &crate::helpers::TestApp) -> String {
    let user = TestUser::generate();
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": uuid::Uuid::new_v4().to_string()});
    app.issuer.sign(
        &header,
        &app.issuer.claims(&user.id, Some(&user.email), USER_SCOPES),
    )
}

/// Sends `n` requests with random kids at once; all must be refused.
async fn flood_with_random_kids(app: &crate::helpers::TestApp, n: usize) {
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..n {
        let request = app
            .client
            .get(app.url("/users/me"))
            .bearer_auth(random_kid_token(app));
        requests.spawn(async move { request.send().await.map(|r| r.status()) });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap().unwrap(), 401);
    }
}

#[tokio::test]
async fn keys_are_fetched_only_when_a_token_first_needs_them() {
    let app = spawn_app().await;
    let health: Value = app.get("/health", None).await.json().await.unwrap();
    assert_eq!(health["jwks"]["status"], "not_fetched");
    assert_eq!(app.issuer.jwks_fetches(), 0);

    let token = app.token_for(&TestUser::generate(), USER_SCOPES);
    assert_eq!(app.get("/users/me", Some(&token)).await.status(), 200);
    assert_eq!(app.get("/users/me", Some(&token)).await.status(), 200);
    assert_eq!(app.issuer.jwks_fetches(), 1);

    let health: Value = app.get("/health", None).await.json().await.unwrap();
    assert_eq!(health["jwks"]["status"], "fresh");
    assert_eq!(health["jwks"]["keys"], 1);
}

#[tokio::test]
async fn a_flood_of_random_kids_costs_at_most_one_fetch() {
    let app = spawn_app().await;
    flood_with_random_kids(&app, 50).await;
    assert_eq!(app.issuer.jwks_fetches(), 1);
    assert_eq!(app.validator.keys().fetch_count(), 1);

    // The keys that one fetch brought serve valid tokens without another.
    let token = app.token_for(&TestUser::generate(), USER_SCOPES);
    assert_eq!(app.get("/users/me", Some(&token)).await.status(), 200);
    assert_eq!(app.issuer.jwks_fetches(), 1);
}

#[tokio::test]
async fn after_the_cooldown_a_flood_of_random_kids_costs_one_more_fetch() {
    let app = spawn_app_with(|s| s.jwks_refetch_cooldown_secs = 1).await;
    let token = app.token_for(&TestUser::generate(), USER_SCOPES);
    assert_eq!(app.get("/users/me", Some(&token)).await.status(), 200);
    assert_eq!(app.issuer.jwks_fetches(), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    flood_with_random_kids(&app, 50).await;
    assert_eq!(app.issuer.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_new_signing_key_is_picked_up_through_an_unknown_kid_refetch() {
    let app = spawn_app_with(|s| s.jwks_refetch_cooldown_secs = 1).await;
    let user = TestUser::generate();
    assert_eq!(
        app.get("/users/me", Some(&app.token_for(&user, USER_SCOPES)))
            .await
            .status(),
        200
    );
    app.issuer.rotate_to(&KEY_TWO, "key-two", false);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let token = app.token_for(&user, USER_SCOPES);
    assert_eq!(app.get("/users/me", Some(&token)).await.status(), 200);
    assert_eq!(app.issuer.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_key_the_issuer_removed_stops_validating_after_a_refresh() {
    let app = spawn_app_with(|s| {
        s.jwks_cache_secs = 1;
        s.jwks_refetch_cooldown_secs = 1;
    })
    .await;
    let user = TestUser::generate();
    let old_token = app.token_for(&user, USER_SCOPES);
    assert_eq!(app.get("/users/me", Some(&old_token)).await.status(), 200);

    app.issuer.rotate_to(&KEY_TWO, "key-two", true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_invalid_token(app.get("/users/me", Some(&old_token)).await).await;
    let new_token = app.token_for(&user, USER_SCOPES);
    assert_eq!(app.get("/users/me", Some(&new_token)).await.status(), 200);
}

#[tokio::test]
async fn known_keys_keep_validating_while_the_issuer_is_down() {
    let app = spawn_app_with(|s| {
        s.jwks_cache_secs = 1;
        s.jwks_refetch_cooldown_secs = 1;
    })
    .await;
    let token = app.token_for(&TestUser::generate(), USER_SCOPES);
    assert_eq!(app.get("/users/me", Some(&token)).await.status(), 200);

    app.issuer.go_down();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get("/users/me", Some(&token)).await.status(), 200);
    // The refresh was attempted (the discovery document failed), and the last good keys
    // kept serving.
    assert_eq!(app.validator.keys().fetch_count(), 2);
    let health: Value = app.get("/health", None).await.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["jwks"]["status"], "stale");
}

#[tokio::test]
async fn keys_older_than_the_max_stale_time_fail_closed() {
    let app = spawn_app_with(|s| {
        s.jwks_cache_secs = 1;
        s.jwks_refetch_cooldown_secs = 1;
        s.jwks_max_stale_secs = 1;
    })
    .await;
    let token = app.token_for(&TestUser::generate(), USER_SCOPES);
    assert_eq!(app.get("/users/me", Some(&token)).await.status(), 200);

    app.issuer.go_down();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_invalid_token(app.get("/users/me", Some(&token)).await).await;
}

#[tokio::test]
async fn the_server_starts_while_the_idp_is_unreachable_and_refuses_tokens() {
    // Port 1 on loopback: nothing listens there.
    let app = spawn_app_with(|s| s.issuer = "http://127.0.0.1:1".to_owned()).await;
    let health = app.get("/health", None).await;
    assert_eq!(health.status(), 200);
    let user = TestUser::generate();
    let mut claims = app.issuer.claims(&user.id, Some(&user.email), USER_SCOPES);
    claims["iss"] = json!("http://127.0.0.1:1");
    let token = app.issuer.token(&claims);
    assert_invalid_token(app.get("/users/me", Some(&token)).await).await;
}

#[tokio::test]
async fn the_request_id_is_passed_on_to_the_idp() {
    let app = spawn_app().await;
    let token = app.token_for(&TestUser::generate(), USER_SCOPES);
    let response = app
        .client
        .get(app.url("/users/me"))
        .bearer_auth(&token)
        .header("X-Request-Id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    assert_eq!(app.issuer.last_request_id().as_deref(), Some("trace-me-42"));
}
