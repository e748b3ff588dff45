//! The JSON session API (issue 5): sessions started by `/auth/login`, refreshed with
//! rotation and reuse detection (body or cookie + CSRF), listed, ended one by one or all
//! but the current, idle and absolute expiry on a driven clock, the per-user cap, logout
//! and password change.

use chrono::Duration as Shift;
use reqwest::Response;
use reqwest::header::{AUTHORIZATION, SET_COOKIE, USER_AGENT};
use serde_json::{Value, json};
use service_kit::clock::Clock;
use service_kit::testing::fresh_database;

use crate::helpers::{PASSWORD, TestApp, decode_jwt, error_code, spawn_app, spawn_app_with_clock};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

/// What `/auth/login` and `/auth/refresh` answer.
#[derive(Clone, Debug)]
struct Tokens {
    access: String,
    refresh: String,
    session_id: String,
    csrf: String,
}

impl Tokens {
    async fn from(response: Response) -> Self {
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        let text = |k: &str| body[k].as_str().unwrap().to_owned();
        Self {
            access: text("access_token"),
            refresh: text("refresh_token"),
            session_id: text("session_id"),
            csrf: text("csrf_token"),
        }
    }
}

async fn log_in(app: &TestApp, email: &str) -> Tokens {
    log_in_as(app, email, FIREFOX).await
}

async fn log_in_as(app: &TestApp, email: &str, user_agent: &str) -> Tokens {
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header(USER_AGENT, user_agent)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    Tokens::from(response).await
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Response {
    app.post_json("/auth/refresh", &json!({ "refresh_token": refresh_token }))
        .await
}

async fn get(app: &TestApp, path: &str, access: &str) -> Response {
    app.client
        .get(app.url(path))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn delete(app: &TestApp, path: &str, access: &str) -> Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn session_ids(app: &TestApp, access: &str) -> Vec<String> {
    let response = get(app, "/auth/sessions", access).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn assert_session_over(app: &TestApp, tokens: &Tokens) {
    let response = get(app, "/auth/session", &tokens.access).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(error_code(response).await, "invalid_token");
    let response = refresh(app, &tokens.refresh).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "invalid_refresh_token");
}

/// The display name released with `profile`: optional at registration (the answer
/// keeps the contract's three fields), changed with `PATCH /auth/me`, validated, and
/// `updated_at` moves with it.
#[tokio::test]
async fn the_display_name_is_set_at_registration_and_changed_through_the_api() {
    let app = spawn_app().await;
    let bad = app
        .post_json(
            "/auth/register",
            &json!({"email": "b@b.com", "password": PASSWORD, "name": "Bad\u{7}"}),
        )
        .await;
    assert_eq!(bad.status(), 422);
    assert_eq!(error_code(bad).await, "invalid_name");
    assert_eq!(app.post_login("b@b.com", PASSWORD).await.status(), 401);

    let response = app
        .post_json(
            "/auth/register",
            &json!({"email": "a@b.com", "password": PASSWORD, "name": "  Ada Lovelace "}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let registered: Value = response.json().await.unwrap();
    let mut keys: Vec<&String> = registered.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["created_at", "email", "id"]);
    let tokens = log_in(&app, "a@b.com").await;
    let me: Value = get(&app, "/auth/me", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "Ada Lovelace");
    assert_eq!(me["updated_at"], registered["created_at"]);

    app.clock.shift(Shift::minutes(5));
    let patch = |body: Value| {
        app.client
            .patch(app.url("/auth/me"))
            .bearer_auth(&tokens.access)
            .json(&body)
            .send()
    };
    let changed = patch(json!({"name": "Ada King"})).await.unwrap();
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["name"], "Ada King");
    assert!(changed["updated_at"].as_str() > me["updated_at"].as_str());

    for bad in [json!({"name": "x".repeat(101)}), json!({"name": "a\u{0}b"})] {
        let response = patch(bad).await.unwrap();
        assert_eq!(response.status(), 422);
        assert_eq!(error_code(response).await, "invalid_name");
    }
    let response = patch(json!({})).await.unwrap();
    assert!(response.status().is_client_error());
    let after: Value = get(&app, "/auth/me", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after, changed, "refused changes change nothing");

    let removed: Value = patch(json!({"name": " "}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(removed["name"], Value::Null);
}

/// Agents the parser does not know are still told apart, by their own user agent,
/// in sessions and in sign-in activity; control characters never reach the record.
#[tokio::test]
async fn unknown_agents_are_told_apart_by_their_user_agent() {
    let app = spawn_app().await;
    app.register("a@b.com").await;
    let a = log_in_as(&app, "a@b.com", "DeviceA/1.0").await;
    log_in_as(&app, "a@b.com", "DeviceB/1.0 \t(build\t7)").await;
    let tokens = log_in(&app, "a@b.com").await;

    let body: Value = get(&app, "/auth/sessions", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    let mut seen: Vec<(String, Value)> = body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["device"].as_str().unwrap().to_owned(),
                s["user_agent"].clone(),
            )
        })
        .collect();
    seen.sort_by_key(|(_, agent)| agent.to_string());
    assert_eq!(
        seen,
        [
            ("Unknown device".to_owned(), json!("DeviceA/1.0")),
            ("Unknown device".to_owned(), json!("DeviceB/1.0 (build 7)")),
            ("Firefox on Linux".to_owned(), json!(FIREFOX)),
        ]
    );
    let activity: Value = get(&app, "/auth/activity", &a.access)
        .await
        .json()
        .await
        .unwrap();
    let agents: Vec<&Value> = activity["sign_ins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["user_agent"])
        .collect();
    assert_eq!(
        agents,
        [
            &json!(FIREFOX),
            &json!("DeviceB/1.0 (build 7)"),
            &json!("DeviceA/1.0")
        ]
    );
}

#[tokio::test]
async fn a_login_starts_a_session_the_user_can_see() {
    let app = spawn_app().await;
    let id = app.register("a@b.com").await;
    let tokens = log_in(&app, "a@b.com").await;
    assert_eq!(
        decode_jwt(&tokens.access).1["sid"],
        tokens.session_id.as_str()
    );

    let response = get(&app, "/auth/session", &tokens.access).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["id"], tokens.session_id.as_str());
    assert_eq!(session["kind"], "api");
    assert_eq!(session["device"], "Firefox on Linux");
    assert_eq!(session["current"], true);
    for field in [
        "created_at",
        "last_seen_at",
        "expires_at",
        "idle_expires_at",
    ] {
        assert!(
            session[field].as_str().is_some_and(|t| t.ends_with('Z')),
            "{field}"
        );
    }

    let me: Value = get(&app, "/auth/me", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], id.as_str());
    assert_eq!(me["email"], "a@b.com");
    assert_eq!(session_ids(&app, &tokens.access).await, [tokens.session_id]);
}

#[tokio::test]
async fn session_calls_refuse_missing_foreign_and_non_first_party_tokens() {
    let app = spawn_app().await;
    app.register("a@b.com").await;
    let tokens = log_in(&app, "a@b.com").await;
    let no_token = app.client.get(app.url("/auth/me")).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    for bad in ["", "garbage", &format!("{}x", tokens.access)] {
        assert_eq!(get(&app, "/auth/me", bad).await.status(), 401, "{bad:?}");
    }
    // Another provider's token with the same claims would fail the signature; a token
    // of ours without a session (here: a refresh token is not an access token) fails.
    assert_eq!(get(&app, "/auth/me", &tokens.refresh).await.status(), 401);
}

#[tokio::test]
async fn refresh_rotates_the_token_and_a_reused_one_ends_the_session() {
    let app = spawn_app().await;
    app.register("a@b.com").await;
    let first = log_in(&app, "a@b.com").await;
    let second = Tokens::from(refresh(&app, &first.refresh).await).await;
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    assert_eq!(second.session_id, first.session_id);
    assert_eq!(
        get(&app, "/auth/session", &second.access).await.status(),
        200
    );

    // The first token again: someone holds a copy. The whole session ends, so the
    // legitimate holder's newer tokens stop working too.
    let response = refresh(&app, &first.refresh).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "invalid_refresh_token");
    assert_session_over(&app, &second).await;
}

#[tokio::test]
async fn refresh_refuses_bad_input_without_changing_anything() {
    let app = spawn_app().await;
    app.register("a@b.com").await;
    let tokens = log_in(&app, "a@b.com").await;
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_request");
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .header("content-type", "text/plain")
        .body(tokens.refresh.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = refresh(&app, "unknown").await;
    assert_eq!(response.status(), 401);
    // The real token still works once.
    Tokens::from(refresh(&app, &tokens.refresh).await).await;
}

#[tokio::test]
async fn the_refresh_cookie_is_http_only_strict_and_needs_the_csrf_token() {
    let app = spawn_app().await;
    app.register("a@b.com").await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let response = browser
        .post(app.url("/auth/login"))
        .json(&json!({"email": "a@b.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for part in [
        "idp_refresh=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/auth",
        "Max-Age=",
    ] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    let tokens = Tokens::from(response).await;
    assert!(cookie.contains(&tokens.refresh));

    // The cookie alone, as a cross-site request would send it: refused, nothing used up.
    let response = browser.post(app.url("/auth/refresh")).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(response).await, "csrf_failed");
    let response = browser
        .post(app.url("/auth/refresh"))
        .header("x-csrf-token", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let response = browser
        .post(app.url("/auth/refresh"))
        .header("x-csrf-token", &tokens.csrf)
        .send()
        .await
        .unwrap();
    let next = Tokens::from(response).await;
    assert_ne!(
        next.csrf, tokens.csrf,
        "the CSRF token rotates with the refresh token"
    );

    // The old CSRF token no longer works; logout with the cookie needs the new one.
    let response = browser
        .post(app.url("/auth/logout"))
        .header("x-csrf-token", &tokens.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = browser
        .post(app.url("/auth/logout"))
        .header("x-csrf-token", &next.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("idp_refresh=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_session_over(&app, &next).await;
}

#[tokio::test]
async fn logout_with_the_access_token_ends_the_session_and_its_refresh_tokens() {
    let app = spawn_app().await;
    app.register("a@b.com").await;
    let tokens = log_in(&app, "a@b.com").await;
    let other = log_in(&app, "a@b.com").await;
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .header(AUTHORIZATION, format!("Bearer {}", tokens.access))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_session_over(&app, &tokens).await;
    assert_eq!(
        session_ids(&app, &other.access).await,
        std::slice::from_ref(&other.session_id)
    );

    // Logging out with the refresh token works as well.
    let response = app
        .post_json("/auth/logout", &json!({"refresh_token": other.refresh}))
        .await;
    assert_eq!(response.status(), 204);
    assert_session_over(&app, &other).await;

    let response = app
        .client
        .post(app.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_session_ends_after_the_idle_timeout_and_the_absolute_lifetime() {
    let clock = Clock::system();
    let app = spawn_app_with_clock(fresh_database("idp").await, clock.clone(), |s| {
        s.session_idle_timeout_secs = 600;
        s.session_lifetime_secs = 1800;
    })
    .await;
    app.register("a@b.com").await;

    // Idle: used at 590 s, so still live at 1180 s; unused for 601 s, over.
    let tokens = log_in(&app, "a@b.com").await;
    clock.shift(Shift::seconds(590));
    assert_eq!(
        get(&app, "/auth/session", &tokens.access).await.status(),
        200
    );
    clock.shift(Shift::seconds(590));
    let mut tokens = Tokens::from(refresh(&app, &tokens.refresh).await).await;
    clock.shift(Shift::seconds(601));
    assert_session_over(&app, &tokens).await;

    // Absolute: used every 500 s, it still ends 1800 s after it began.
    tokens = log_in(&app, "a@b.com").await;
    for _ in 0..3 {
        clock.shift(Shift::seconds(500));
        tokens = Tokens::from(refresh(&app, &tokens.refresh).await).await;
    }
    clock.shift(Shift::seconds(301));
    assert_session_over(&app, &tokens).await;
}

#[tokio::test]
async fn past_the_cap_the_oldest_session_is_ended() {
    let app = spawn_app_with_clock(fresh_database("idp").await, Clock::system(), |s| {
        s.max_sessions_per_user = 2;
    })
    .await;
    app.register("a@b.com").await;
    let oldest = log_in(&app, "a@b.com").await;
    app.clock.shift(Shift::seconds(1));
    let middle = log_in(&app, "a@b.com").await;
    app.clock.shift(Shift::seconds(1));
    let newest = log_in(&app, "a@b.com").await;
    assert_session_over(&app, &oldest).await;
    let mut live = session_ids(&app, &newest.access).await;
    live.sort();
    let mut expected = vec![middle.session_id, newest.session_id];
    expected.sort();
    assert_eq!(live, expected);
}

#[tokio::test]
async fn a_user_ends_one_session_or_all_but_the_current_one() {
    let app = spawn_app().await;
    app.register("a@b.com").await;
    app.register("c@d.com").await;
    let (a, b, c) = (
        log_in(&app, "a@b.com").await,
        log_in(&app, "a@b.com").await,
        log_in(&app, "a@b.com").await,
    );
    let stranger = log_in(&app, "c@d.com").await;

    let response = delete(&app, &format!("/auth/sessions/{}", b.session_id), &a.access).await;
    assert_eq!(response.status(), 204);
    assert_session_over(&app, &b).await;

    // Someone else's session, an unknown id, one already ended: 404, nothing changes.
    for id in [&stranger.session_id, "nope", &b.session_id] {
        let response = delete(&app, &format!("/auth/sessions/{id}"), &a.access).await;
        assert_eq!(response.status(), 404, "{id}");
        assert_eq!(error_code(response).await, "session_not_found");
    }
    assert_eq!(
        get(&app, "/auth/session", &stranger.access).await.status(),
        200
    );

    let response = delete(&app, "/auth/sessions", &a.access).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ended"], 1);
    assert_session_over(&app, &c).await;
    assert_eq!(
        session_ids(&app, &a.access).await,
        std::slice::from_ref(&a.session_id)
    );
    assert_eq!(
        get(&app, "/auth/session", &stranger.access).await.status(),
        200
    );
}

async fn change_password(app: &TestApp, access: &str, current: &str, new: &str) -> Response {
    app.client
        .post(app.url("/auth/password"))
        .bearer_auth(access)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    app.register("a@b.com").await;
    let here = log_in(&app, "a@b.com").await;
    let elsewhere = log_in(&app, "a@b.com").await;
    const NEW: &str = "an entirely new passphrase";

    let response = change_password(&app, &here.access, "not my password", NEW).await;
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(response).await, "wrong_current_password");
    let response = change_password(&app, &here.access, PASSWORD, "short").await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "invalid_password");
    assert_eq!(
        get(&app, "/auth/session", &elsewhere.access).await.status(),
        200
    );

    let response = change_password(&app, &here.access, PASSWORD, NEW).await;
    assert_eq!(response.status(), 204);
    assert_session_over(&app, &elsewhere).await;
    assert_eq!(get(&app, "/auth/session", &here.access).await.status(), 200);
    assert_eq!(app.post_login("a@b.com", PASSWORD).await.status(), 401);
    assert_eq!(app.post_login("a@b.com", NEW).await.status(), 200);

    let events = idp::guards::audit::store::latest(&app.db.pool, 50)
        .await
        .unwrap();
    let changes: Vec<_> = events
        .iter()
        .filter(|e| e.event == "password_changed")
        .map(|e| e.outcome.as_str())
        .collect();
    assert_eq!(changes, ["success", "failure"]);
    assert!(
        events
            .iter()
            .any(|e| e.event == "session_ended" && e.detail.as_deref() == Some("password_changed"))
    );
}

#[tokio::test]
async fn activity_lists_recent_sign_ins_and_a_heartbeat_moves_the_idle_timeout() {
    let app = spawn_app().await;
    app.register("a@b.com").await;
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header(USER_AGENT, FIREFOX)
        .json(&json!({"email": "a@b.com", "password": "wrong password!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let tokens = log_in(&app, "a@b.com").await;

    let body: Value = get(&app, "/auth/activity", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    let sign_ins = body["sign_ins"].as_array().unwrap();
    let outcomes: Vec<_> = sign_ins
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["success", "failure"]);
    assert!(sign_ins.iter().all(|e| e["device"] == "Firefox on Linux"));

    let before: Value = get(&app, "/auth/session", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    app.clock.shift(Shift::seconds(120));
    let response = app
        .client
        .post(app.url("/auth/activity"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let after: Value = get(&app, "/auth/session", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(after["last_seen_at"], before["last_seen_at"]);
    assert_ne!(after["idle_expires_at"], before["idle_expires_at"]);
}

#[tokio::test]
async fn the_session_config_is_public() {
    let app = spawn_app().await;
    let config = app.get_json("/auth/config").await;
    assert_eq!(config["session_idle_timeout_secs"], 8 * 3600);
    assert_eq!(config["session_lifetime_secs"], 7 * 86_400);
    assert_eq!(config["max_sessions_per_user"], 10);
    assert_eq!(config["access_token_ttl_secs"], 900);
    assert_eq!(config["csrf_header"], "x-csrf-token");
}
