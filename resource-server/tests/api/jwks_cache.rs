//! The key cache: lazy first fetch, one single-flight refetch per cooldown for unknown
//! kids, `max-age` within bounds, conditional refreshes (ETag/304), background refresh
//! before expiry, stale keys served while the idp is down (for a bounded time), rotation.
//!
//! Time moves by shifting the server's clock (`app.advance`); the only real waits are
//! for the background refresher's 1 s tick, bounded at a few seconds.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    KEY_TWO, TestApp, TestUser, USER_SCOPES, assert_invalid_token, spawn_app, spawn_app_with,
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

/// The `jwks` part of `/health`.
async fn jwks_health(app: &TestApp) -> Value {
    let health: Value = app.get("/health", None).await.json().await.unwrap();
    health["jwks"].clone()
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.get("/users/me", Some(token)).await.status().as_u16()
}

/// Gives the background refresher (1 s tick) time to act, for tests that check it did not.
async fn let_the_refresher_tick() {
    tokio::time::sleep(Duration::from_millis(1300)).await;
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

    let health = jwks_health(&app).await;
    assert_eq!(health["status"], "fresh");
    assert_eq!(health["keys"], 1);
    // No max-age from the issuer: RS_JWKS_CACHE_SECS.
    assert_eq!(health["ttl_seconds"], 300);
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
    let app = spawn_app().await;
    let token = app.token_for(&TestUser::generate(), USER_SCOPES);
    assert_eq!(me_status(&app, &token).await, 200);
    assert_eq!(app.issuer.jwks_fetches(), 1);

    // Within the cooldown (30 s) nothing more is fetched.
    app.advance(25);
    flood_with_random_kids(&app, 50).await;
    assert_eq!(app.issuer.jwks_fetches(), 1);

    app.advance(6);
    flood_with_random_kids(&app, 50).await;
    assert_eq!(app.issuer.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_new_signing_key_is_picked_up_through_an_unknown_kid_refetch() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );
    app.issuer.rotate_to(&KEY_TWO, "key-two", false);
    app.advance(31);
    let token = app.token_for(&user, USER_SCOPES);
    assert_eq!(me_status(&app, &token).await, 200);
    assert_eq!(app.issuer.jwks_fetches(), 2);
}

#[tokio::test]
async fn max_age_is_honoured_within_the_configured_bounds() {
    let app = spawn_app().await;
    let token = || app.token_for(&TestUser::generate(), USER_SCOPES);

    // Below the minimum (30 s): clamped up.
    app.issuer.set_cache_control(Some("public, max-age=5"));
    assert_eq!(me_status(&app, &token()).await, 200);
    assert_eq!(jwks_health(&app).await["ttl_seconds"], 30);

    // Above the maximum (3600 s): clamped down. 80% of 30 s and the cooldown have passed,
    // so the background refresher fetches.
    app.issuer.set_cache_control(Some("public, max-age=86400"));
    app.advance(31);
    app.wait_for_fetch_count(2).await;
    assert_eq!(jwks_health(&app).await["ttl_seconds"], 3600);

    // Within bounds: as sent.
    app.issuer.set_cache_control(Some("max-age=600"));
    app.advance(2881);
    app.wait_for_fetch_count(3).await;
    let health = jwks_health(&app).await;
    assert_eq!(health["ttl_seconds"], 600);
    assert_eq!(health["status"], "fresh");

    // That set is not refreshed before 80% of its 600 s ...
    app.advance(470);
    let_the_refresher_tick().await;
    assert_eq!(app.validator.keys().fetch_count(), 3);
    assert_eq!(me_status(&app, &token()).await, 200);
    assert_eq!(app.validator.keys().fetch_count(), 3);

    // ... and no max-age at all means RS_JWKS_CACHE_SECS.
    app.issuer.set_cache_control(None);
    app.advance(11);
    app.wait_for_fetch_count(4).await;
    assert_eq!(jwks_health(&app).await["ttl_seconds"], 300);
    assert_eq!(app.issuer.jwks_fetches(), 4);
}

#[tokio::test]
async fn an_etag_revalidation_answered_304_keeps_the_keys_fresh() {
    let app = spawn_app().await;
    app.issuer.enable_etags();
    app.issuer.set_cache_control(Some("max-age=60"));
    let user = TestUser::generate();
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );

    // 80% of 60 s: the background refresher revalidates with If-None-Match.
    app.advance(49);
    app.wait_for_fetch_count(2).await;
    assert_eq!(app.issuer.not_modified_count(), 1);
    let health = jwks_health(&app).await;
    assert_eq!(health["status"], "fresh");
    assert_eq!(health["keys"], 1);
    assert_eq!(health["ttl_seconds"], 60);
    assert!(health["age_seconds"].as_i64().unwrap() < 5);

    // Past the first set's 60 s, the revalidated keys still serve without a fetch.
    app.advance(20);
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );
    assert_eq!(app.validator.keys().fetch_count(), 2);

    // Once the key set changes, the ETag does too, and the refresh brings the new set.
    app.issuer.rotate_to(&KEY_TWO, "key-two", true);
    app.advance(29);
    app.wait_for_fetch_count(3).await;
    assert_eq!(app.issuer.not_modified_count(), 1);
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );
    assert_eq!(app.validator.keys().fetch_count(), 3);
}

#[tokio::test]
async fn the_key_set_is_refreshed_in_the_background_before_it_expires() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );
    assert_eq!(app.validator.keys().fetch_count(), 1);

    // 200 s of 300: not due yet.
    app.advance(200);
    let_the_refresher_tick().await;
    assert_eq!(app.validator.keys().fetch_count(), 1);

    // 241 s of 300 (> 80%): refreshed without any request asking.
    app.advance(41);
    app.wait_for_fetch_count(2).await;
    assert_eq!(app.issuer.jwks_fetches(), 2);
    let health = jwks_health(&app).await;
    assert_eq!(health["status"], "fresh");
    assert!(health["age_seconds"].as_i64().unwrap() < 5);

    // Requests find fresh keys and fetch nothing.
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );
    assert_eq!(app.validator.keys().fetch_count(), 2);
}

#[tokio::test]
async fn the_background_refresh_stops_with_the_server() {
    let mut app = spawn_app().await;
    let token = app.token_for(&TestUser::generate(), USER_SCOPES);
    assert_eq!(me_status(&app, &token).await, 200);
    app.stop().await;

    app.advance(241);
    let_the_refresher_tick().await;
    assert_eq!(app.validator.keys().fetch_count(), 1);
    assert_eq!(app.issuer.jwks_fetches(), 1);
}

#[tokio::test]
async fn a_key_the_issuer_removed_stops_validating_after_a_refresh() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let old_token = app.token_for(&user, USER_SCOPES);
    assert_eq!(me_status(&app, &old_token).await, 200);

    app.issuer.rotate_to(&KEY_TWO, "key-two", true);
    app.advance(241);
    app.wait_for_fetch_count(2).await;
    assert_invalid_token(app.get("/users/me", Some(&old_token)).await).await;
    let new_token = app.token_for(&user, USER_SCOPES);
    assert_eq!(me_status(&app, &new_token).await, 200);
}

#[tokio::test]
async fn during_an_outage_known_keys_serve_for_the_stale_window_without_a_fetch_storm() {
    // Freshness 300 s, cooldown 30 s, stale window 3600 s (the defaults).
    let app = spawn_app().await;
    let user = TestUser::generate();
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );

    app.issuer.go_down();
    // The background refresh at 80% fails; the keys keep serving.
    app.advance(241);
    app.wait_for_fetch_count(2).await;
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );

    // A flood of random kids within the cooldown costs nothing ...
    flood_with_random_kids(&app, 50).await;
    assert_eq!(app.validator.keys().fetch_count(), 2);
    // ... and after it, at most one fetch per cooldown window, whatever asks.
    for window in 1..=3 {
        app.advance(31);
        flood_with_random_kids(&app, 50).await;
        let_the_refresher_tick().await;
        assert_eq!(app.validator.keys().fetch_count(), 2 + window);
    }

    // Past freshness (344 s), within the stale window: known keys still serve, at once.
    app.advance(10);
    let health = jwks_health(&app).await;
    assert_eq!(health["status"], "stale");
    let health: Value = app.get("/health", None).await.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let started = std::time::Instant::now();
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // Late in the stale window (3880 s of 3900; the margin covers the real seconds this
    // test spends): still serving.
    app.advance(3880 - 344);
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );
    let fetches = app.validator.keys().fetch_count();

    // Past freshness + stale window (3900 s): fail closed, still without a storm.
    app.advance(25);
    assert_eq!(jwks_health(&app).await["status"], "expired");
    assert_invalid_token(
        app.get("/users/me", Some(&app.token_for(&user, USER_SCOPES)))
            .await,
    )
    .await;
    flood_with_random_kids(&app, 50).await;
    let_the_refresher_tick().await;
    assert!(app.validator.keys().fetch_count() <= fetches + 1);
    assert!(app.issuer.jwks_fetches() as u64 <= app.validator.keys().fetch_count());

    // The idp is back: after the cooldown, the next token brings fresh keys.
    app.issuer.come_back();
    app.advance(31);
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );
    assert_eq!(jwks_health(&app).await["status"], "fresh");
}

#[tokio::test]
async fn keys_older_than_the_max_stale_time_fail_closed() {
    let app = spawn_app_with(|s| s.jwks_max_stale_secs = 60).await;
    let user = TestUser::generate();
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );

    app.issuer.go_down();
    app.advance(350);
    assert_eq!(
        me_status(&app, &app.token_for(&user, USER_SCOPES)).await,
        200
    );
    app.advance(15);
    assert_invalid_token(
        app.get("/users/me", Some(&app.token_for(&user, USER_SCOPES)))
            .await,
    )
    .await;
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
