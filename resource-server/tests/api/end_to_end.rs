//! The real idp and the resource server together: a user registers and logs in at the
//! idp, and the resource server accepts the idp's token offline.

use serde_json::{Value, json};
use service_kit::clock::Clock;
use service_kit::testing::{TestDatabase, fresh_database};
use tokio::net::TcpListener;

use crate::helpers::{AUDIENCE, assert_invalid_token, spawn_app_with};

const PASSWORD: &str = "correct horse battery staple 42";

struct TestIdp {
    issuer: String,
    _database: TestDatabase,
}

/// Starts the real idp on port 0 with its own fresh database, on `clock`.
async fn spawn_idp(clock: Clock) -> TestIdp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let database = fresh_database("rs_idp").await;
    let settings = idp::settings::Settings {
        issuer: issuer.clone(),
        audience: AUDIENCE.to_owned(),
        database_url: database.url.clone(),
        keys_dir: database.path().join("keys"),
        ..idp::settings::Settings::default()
    };
    let app = idp::startup::Application::build_with_listener(settings, listener, clock)
        .await
        .expect("Failed to build the idp");
    tokio::spawn(app.run_until(std::future::pending()));
    TestIdp {
        issuer,
        _database: database,
    }
}

/// Registers `email` at the idp and logs in; returns the access token.
async fn register_and_log_in(idp: &TestIdp, email: &str) -> String {
    let client = reqwest::Client::new();
    let credentials = json!({"email": email, "password": PASSWORD});
    let response = client
        .post(format!("{}/auth/register", idp.issuer))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = client
        .post(format!("{}/auth/login", idp.issuer))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_user_logged_in_at_the_idp_gets_their_profile() {
    let idp = spawn_idp(Clock::system()).await;
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
    let idp = spawn_idp(clock).await;
    let app = spawn_app_with(|s| s.issuer = idp.issuer.clone()).await;
    let token = register_and_log_in(&idp, "late@example.com").await;
    assert_invalid_token(app.get("/users/me", Some(&token)).await).await;
}
