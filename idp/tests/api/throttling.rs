//! Abuse resistance (issue 5): throttling per account and per IP address on every
//! credential check, shared by every instance on one database, never a permanent
//! lockout, and a locked account indistinguishable from a wrong password.

use chrono::Duration;
use reqwest::Response;
use serde_json::Value;
use service_kit::clock::Clock;
use service_kit::testing::fresh_database;

use crate::browser_helpers::{assert_page_headers, browser, csrf_token, page};
use crate::helpers::{PASSWORD, TestApp, answer, error_code, spawn_app_with, spawn_app_with_clock};
use crate::oauth_helpers::{Auth, TestClient, oauth_error, post_form, service_client};

const VICTIM: &str = "victim@example.com";
const WRONG: &str = "wrong password here";

fn retry_after(response: &Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn app_with_clock(
    customise: impl FnOnce(&mut idp::app::settings::Settings),
) -> (TestApp, Clock) {
    let clock = Clock::system();
    let app = spawn_app_with_clock(fresh_database("idp").await, clock.clone(), customise).await;
    (app, clock)
}

#[tokio::test]
async fn a_locked_account_answers_exactly_like_a_wrong_password_until_the_lock_ends() {
    let (app, clock) = app_with_clock(|_| {}).await;
    app.register(VICTIM).await;
    let mut wrong = None;
    for _ in 0..5 {
        wrong = Some(answer(app.post_login(VICTIM, WRONG).await).await);
    }
    let wrong = wrong.unwrap();
    assert_eq!(wrong.0, 401);

    // Locked for 60 s: even the right password gets the wrong-password answer, and
    // so does a case variant of the email.
    let locked = answer(app.post_login(VICTIM, PASSWORD).await).await;
    assert_eq!(locked, wrong);
    let variant = answer(app.post_login("Victim@Example.COM", PASSWORD).await).await;
    assert_eq!(variant, wrong);

    clock.shift(Duration::seconds(61));
    app.login(VICTIM).await;
}

#[tokio::test]
async fn locks_double_with_further_failures_but_always_end() {
    let (app, clock) = app_with_clock(|_| {}).await;
    app.register(VICTIM).await;
    for _ in 0..5 {
        assert_eq!(app.post_login(VICTIM, WRONG).await.status(), 401);
    }
    clock.shift(Duration::seconds(61));
    // The 6th failure in the window locks for 120 s.
    assert_eq!(app.post_login(VICTIM, WRONG).await.status(), 401);
    clock.shift(Duration::seconds(61));
    assert_eq!(app.post_login(VICTIM, PASSWORD).await.status(), 401);
    clock.shift(Duration::seconds(60));
    app.login(VICTIM).await;
    // Success reset the count: the next failure does not lock.
    assert_eq!(app.post_login(VICTIM, WRONG).await.status(), 401);
    app.login(VICTIM).await;
}

#[tokio::test]
async fn unknown_emails_are_throttled_like_known_ones() {
    let (app, _clock) = app_with_clock(|_| {}).await;
    app.register(VICTIM).await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..6 {
        known.push(answer(app.post_login(VICTIM, WRONG).await).await);
        unknown.push(answer(app.post_login("nobody@example.com", WRONG).await).await);
    }
    assert_eq!(known, unknown);
}

#[tokio::test]
async fn too_many_failures_from_one_address_get_429_with_retry_after() {
    let (app, clock) = app_with_clock(|s| s.login_max_failures_per_ip = 3).await;
    app.register(VICTIM).await;
    for i in 0..3 {
        let response = app
            .post_login(&format!("guess{i}@example.com"), WRONG)
            .await;
        assert_eq!(response.status(), 401);
    }
    // Before any check, whatever the account and even with the right password.
    let response = app.post_login(VICTIM, PASSWORD).await;
    assert_eq!(response.status(), 429);
    let wait = retry_after(&response);
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(error_code(response).await, "too_many_requests");

    // The sign-in page answers the same address with a 429 page.
    let browser = browser();
    let html = page(&browser, &app.url("/login")).await;
    let response = browser
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("email", VICTIM),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(retry_after(&response) >= 1);
    assert_page_headers(&response, "429 page");

    clock.shift(Duration::seconds(61));
    app.login(VICTIM).await;
}

/// The newcomer's side, with the default limits: a few typos and taken addresses among
/// twenty new accounts from one address lock nobody out (every attempt used to count,
/// ten an hour). The bulk side: the twenty-first account in a row waits for the
/// sustained rate, one every six minutes.
#[tokio::test]
async fn registration_counts_accounts_created_with_a_burst_not_attempts() {
    let (app, clock) = app_with_clock(|_| {}).await;
    for i in 0..20 {
        if i % 4 == 0 {
            let typo = app
                .post_register(&format!("user{i}@example"), PASSWORD)
                .await;
            assert_eq!(typo.status(), 422);
            let weak = app
                .post_register(&format!("user{i}@example.com"), "password")
                .await;
            assert_eq!(weak.status(), 422);
        }
        let created = app
            .post_register(&format!("user{i}@example.com"), PASSWORD)
            .await;
        assert_eq!(created.status(), 201, "account {i}");
        if i == 10 {
            let taken = app.post_register("user0@example.com", PASSWORD).await;
            assert_eq!(taken.status(), 409, "a taken address keeps its 409");
            assert_eq!(error_code(taken).await, "email_taken");
        }
    }
    let response = app.post_register("user20@example.com", PASSWORD).await;
    assert_eq!(response.status(), 429);
    let wait = retry_after(&response);
    assert!((1..=360).contains(&wait), "{wait}");
    assert_eq!(error_code(response).await, "too_many_requests");
    // Signing in is another budget.
    app.login("user0@example.com").await;

    clock.shift(Duration::seconds(360));
    let next = app.post_register("user20@example.com", PASSWORD).await;
    assert_eq!(next.status(), 201);
    let again = app.post_register("user21@example.com", PASSWORD).await;
    assert_eq!(again.status(), 429);
}

/// Failed attempts have a budget of their own, so a taken email's 409 cannot be used to
/// harvest accounts at scale; it locks the address until the window ends, even for a
/// valid new account, and costs nothing of the accounts allowance.
#[tokio::test]
async fn failed_registrations_have_their_own_budget() {
    let (app, clock) = app_with_clock(|s| s.registration_max_failures_per_ip = 3).await;
    app.register("a@example.com").await;
    assert_eq!(app.post_register("a@example", PASSWORD).await.status(), 422);
    assert_eq!(
        app.post_register("b@example.com", "short").await.status(),
        422
    );
    let taken = app.post_register("a@example.com", PASSWORD).await;
    assert_eq!(error_code(taken).await, "email_taken");

    let response = app.post_register("b@example.com", PASSWORD).await;
    assert_eq!(response.status(), 429);
    let wait = retry_after(&response);
    assert!((3000..=3600).contains(&wait), "{wait}");
    assert_eq!(error_code(response).await, "too_many_requests");

    clock.shift(Duration::seconds(3601));
    assert_eq!(
        app.post_register("b@example.com", PASSWORD).await.status(),
        201
    );
}

#[tokio::test]
async fn client_authentication_failures_at_the_token_endpoint_are_throttled_per_address() {
    let (app, clock) = app_with_clock(|s| s.login_max_failures_per_ip = 3).await;
    let client = service_client(&app, "users:read").await;
    let wrong = TestClient {
        secret: Some("not-the-secret".to_owned()),
        ..client.clone()
    };
    let grant = &[("grant_type", "client_credentials")];
    for _ in 0..3 {
        let response = post_form(&app, "/token", &wrong, Auth::Registered, grant).await;
        assert_eq!(oauth_error(response, 401).await, "invalid_client");
    }
    let response = post_form(&app, "/token", &client, Auth::Registered, grant).await;
    let wait = retry_after(&response);
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(oauth_error(response, 429).await, "temporarily_unavailable");
    // Revocation and introspection authenticate clients the same way.
    let response = post_form(
        &app,
        "/introspect",
        &client,
        Auth::Registered,
        &[("token", "x")],
    )
    .await;
    assert_eq!(oauth_error(response, 429).await, "temporarily_unavailable");

    clock.shift(Duration::seconds(61));
    let response = post_form(&app, "/token", &client, Auth::Registered, grant).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn limits_are_shared_by_instances_on_one_database() {
    let database = fresh_database("idp").await;
    let (first, second) = tokio::join!(
        spawn_app_with(database.clone(), |_| {}),
        spawn_app_with(database, |_| {}),
    );
    first.register(VICTIM).await;
    for app in [&first, &second, &first, &second, &first] {
        assert_eq!(app.post_login(VICTIM, WRONG).await.status(), 401);
    }
    for app in [&first, &second] {
        let response = app.post_login(VICTIM, PASSWORD).await;
        assert_eq!(response.status(), 401, "locked on every instance");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_credentials");
    }
}
