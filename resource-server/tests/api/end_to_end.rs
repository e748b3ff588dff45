//! The real idp and the resource server together: a user registers and logs in at the
//! idp, and the resource server accepts the idp's token offline.

use serde_json::{Value, json};
use service_kit::clock::Clock;
use service_kit::testing::fresh_database;

use crate::helpers::{assert_invalid_token, spawn_app_with};
use crate::real_idp::{RealIdp, spawn_idp};

async fn spawn(clock: Clock) -> RealIdp {
    spawn_idp(fresh_database("rs_idp").await, clock, |_| {}).await
}

/// Registers `email` at the idp and logs in; returns the access token.
async fn register_and_log_in(idp: &RealIdp, email: &str) -> String {
    idp.register(email).await;
    idp.login(email).await
}

#[tokio::test]
async fn a_user_logged_in_at_the_idp_gets_their_profile() {
    let idp = spawn(Clock::system()).await;
    let app = spawn_app_with(|s| s.issuer = idp.issuer.clone()).await;
    let token = register_and_log_in(&idp, "e2e@example.com").await;

    let response = app.get("/users/me", Some(&token)).await;
    assert_eq!(response.status(), 200);
    let profile: Value = response.json().await.unwrap();
    assert_eq!(profile["email"], "e2e@example.com");

    // The same token works on the profile's own URL.
    let path = format!("/users/{}", profile["id"].as_str().unwrap());
    let response = app.put(&path, &token, &json!({"name": "End To End"})).await;
    assert_eq!(response.status(), 200);

    let health: Value = app.get("/health", None).await.json().await.unwrap();
    assert_eq!(health["jwks"]["status"], "fresh");
}

#[tokio::test]
async fn an_expired_token_from_the_idp_is_refused() {
    let clock = Clock::system();
    clock.shift(chrono::Duration::hours(-2));
    let idp = spawn(clock).await;
    let app = spawn_app_with(|s| s.issuer = idp.issuer.clone()).await;
    let token = register_and_log_in(&idp, "late@example.com").await;
    assert_invalid_token(app.get("/users/me", Some(&token)).await).await;
}

#[tokio::test]
async fn an_access_token_outlives_its_ended_session_until_it_expires() {
    // Validation is offline: ending a session at the idp ends its refresh tokens, but a
    // short-lived access token already issued keeps working here until its `exp`.
    let idp = spawn(Clock::system()).await;
    let app = spawn_app_with(|s| s.issuer = idp.issuer.clone()).await;
    let token = register_and_log_in(&idp, "ended@example.com").await;
    let response = reqwest::Client::new()
        .post(format!("{}/auth/logout", idp.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(app.get("/users/me", Some(&token)).await.status(), 200);
}
