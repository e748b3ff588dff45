//! The real idp and the resource server together: a user registers and logs in at the
//! idp, and the resource server accepts the idp's token offline.

use std::time::{Duration, Instant};

use idp::accounts::status::AccountStatus;
use idp::events::Events;
use idp::sessions::records::UserSessions;
use jwt_auth::events::ReceiverAuthorization;
use serde_json::{Value, json};
use service_kit::clock::Clock;
use service_kit::testing::fresh_database;

use crate::helpers::{TestApp, assert_invalid_token, spawn_app_with};
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
async fn without_events_an_access_token_outlives_its_ended_session() {
    // Validation is offline: with no stream from the idp, ending a session there ends its
    // refresh tokens, but an access token already issued keeps working here until its
    // `exp`. With a stream (below) it is refused at once.
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

// ---- Security events: revocations reach the resource server ------------------------

const EVENTS_AUTHORIZATION: &str = "Bearer end-to-end-events";

/// The real idp and a resource server receiving its security events, as `cargo run`
/// wires them.
async fn connected() -> (RealIdp, TestApp) {
    let idp = spawn(Clock::system()).await;
    let app = spawn_app_with(|s| {
        s.issuer = idp.issuer.clone();
        s.events_authorization = Some(ReceiverAuthorization::parse(EVENTS_AUTHORIZATION).unwrap());
    })
    .await;
    idp.stream_to(&app.address, EVENTS_AUTHORIZATION).await;
    (idp, app)
}

async fn accepted(app: &TestApp, token: &str) -> bool {
    match app.get("/users/me", Some(token)).await.status().as_u16() {
        200 => true,
        401 => false,
        other => panic!("GET /users/me answered {other}"),
    }
}

/// Asks until `token` is refused; fails if that takes a second or more.
async fn refused_within_a_second(app: &TestApp, token: &str) {
    let started = Instant::now();
    while accepted(app, token).await {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the token was still accepted a second after the change"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn idp_call(idp: &RealIdp, method: reqwest::Method, path: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .request(method, format!("{}{path}", idp.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn signing_out_makes_the_resource_server_refuse_that_session_s_token_within_a_second() {
    let (idp, app) = connected().await;
    let signed_out = register_and_log_in(&idp, "ada@example.com").await;
    let other_session = idp.login("ada@example.com").await;
    let other_user = register_and_log_in(&idp, "bob@example.com").await;
    for token in [&signed_out, &other_session, &other_user] {
        assert!(accepted(&app, token).await);
    }

    assert_eq!(
        idp_call(&idp, reqwest::Method::POST, "/auth/logout", &signed_out).await,
        204
    );
    refused_within_a_second(&app, &signed_out).await;
    assert!(
        accepted(&app, &other_session).await,
        "another session goes on"
    );
    assert!(
        accepted(&app, &other_user).await,
        "another user is untouched"
    );
    assert_invalid_token(app.get("/users/me", Some(&signed_out)).await).await;
}

#[tokio::test]
async fn ending_the_other_sessions_refuses_their_tokens_and_keeps_the_current_one() {
    let (idp, app) = connected().await;
    let current = register_and_log_in(&idp, "ada@example.com").await;
    let other = idp.login("ada@example.com").await;
    assert!(accepted(&app, &other).await);

    assert_eq!(
        idp_call(&idp, reqwest::Method::DELETE, "/auth/sessions", &current).await,
        200
    );
    refused_within_a_second(&app, &other).await;
    assert!(accepted(&app, &current).await);
}

#[tokio::test]
async fn a_password_change_refuses_every_older_token_of_the_user() {
    let (idp, app) = connected().await;
    let current = register_and_log_in(&idp, "ada@example.com").await;
    let other = idp.login("ada@example.com").await;
    let other_user = register_and_log_in(&idp, "bob@example.com").await;
    let response = reqwest::Client::new()
        .post(format!("{}/auth/password", idp.address))
        .bearer_auth(&current)
        .json(&json!({"current_password": crate::real_idp::PASSWORD, "new_password": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    refused_within_a_second(&app, &other).await;
    refused_within_a_second(&app, &current).await;
    assert!(accepted(&app, &other_user).await);
}

#[tokio::test]
async fn a_disabled_account_s_tokens_are_refused_until_it_is_enabled() {
    let (idp, app) = connected().await;
    let token = register_and_log_in(&idp, "ada@example.com").await;
    let other_user = register_and_log_in(&idp, "bob@example.com").await;
    let sessions = UserSessions::new(
        idp.db.pool.clone(),
        idp.clock.clone(),
        idp::app::settings::Settings::default().session_policy(),
        Events::new(&idp.issuer, idp.clock.clone()),
    );
    let status = AccountStatus::new(idp.db.pool.clone(), idp.clock.clone(), sessions);

    status.disable("ada@example.com").await.unwrap();
    // Queued as `idp users disable` would, from another process: the idp's delivery
    // task finds it.
    idp.event_delivery.deliver_due().await.unwrap();
    refused_within_a_second(&app, &token).await;
    assert!(accepted(&app, &other_user).await);
    assert!(
        crate::real_idp::login(&reqwest::Client::new(), &idp.address, "ada@example.com")
            .await
            .is_err()
    );

    status.enable("ada@example.com").await.unwrap();
    idp.event_delivery.deliver_due().await.unwrap();
    // A token issued in the second of an event counts as issued before it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = idp.login("ada@example.com").await;
    assert!(accepted(&app, &fresh).await);
    assert!(
        !accepted(&app, &token).await,
        "tokens from before the disable stay refused"
    );
}

#[tokio::test]
async fn a_resource_server_that_was_down_applies_each_missed_event_once_when_back() {
    let (idp, app) = connected().await;
    let first = register_and_log_in(&idp, "ada@example.com").await;
    let second = idp.login("ada@example.com").await;
    assert!(accepted(&app, &first).await && accepted(&app, &second).await);

    let app = app
        .down_while(async {
            for token in [&first, &second] {
                assert_eq!(
                    idp_call(&idp, reqwest::Method::POST, "/auth/logout", token).await,
                    204
                );
            }
            // The first push finds nobody listening and waits for its retry.
            tokio::time::sleep(Duration::from_millis(300)).await;
        })
        .await;
    idp.clock.shift(chrono::Duration::seconds(10));
    idp.event_delivery.deliver_due().await.unwrap();

    refused_within_a_second(&app, &first).await;
    refused_within_a_second(&app, &second).await;
    let (seen,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM jwt_auth_seen_events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(seen, 2, "each event applied once");
    assert!(
        idp::events::store::undelivered(&idp.db.pool)
            .await
            .unwrap()
            .is_empty(),
        "the idp knows both were delivered"
    );
}
