//! Security events from the outbox: SETs pushed to the streams an operator configured
//! (RFC 8935), back-channel logout tokens to the clients a session signed in to, in
//! the transaction of the change, in order per user, retried, dead letters retried.

use std::time::Duration;

use axum::http::StatusCode;
use idp::accounts::status::{AccountStatus, StatusChange};
use idp::events::Events;
use idp::events::streams::NewStream;
use idp::oauth::clients::{BackchannelLogout, ClientType};
use idp::sessions::records::UserSessions;
use serde_json::{Value, json};
use service_kit::testing::fresh_database;

use crate::browser_helpers::*;
use crate::event_sink::{EventSink, Pushed, verify};
use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with};

// The wire values, spelled out here so that a typo in the code's constants fails.
const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";
const ACCOUNT_DISABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
const ACCOUNT_ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
const BACKCHANNEL_LOGOUT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A stream named `name` pushing every event to `sink`'s `/events`, with a bearer value.
async fn stream_to(app: &TestApp, sink: &EventSink, name: &str) {
    app.streams
        .create(
            NewStream {
                name: name.to_owned(),
                push_url: sink.url("/events"),
                audience: format!("https://{name}.example"),
                events: vec![],
                auth_header: Some(format!("Bearer secret-of-{name}")),
            },
            false,
        )
        .await
        .unwrap();
}

/// The event type and payload of a SET, after checking what every SET must have.
async fn event_of(app: &TestApp, pushed: &Pushed) -> (Value, String, Value) {
    assert_eq!(pushed.content_type, "application/secevent+jwt");
    let (header, claims) = verify(app, &pushed.body).await;
    assert_eq!(header["typ"], "secevent+jwt");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["iss"], app.issuer.as_str());
    for claim in ["jti", "txn"] {
        assert!(
            claims[claim].as_str().is_some_and(|v| !v.is_empty()),
            "{claim}"
        );
    }
    assert!(claims["iat"].as_i64().is_some());
    assert!(claims.get("sub").is_none() && claims.get("exp").is_none());
    let events = claims["events"].as_object().unwrap();
    assert_eq!(events.len(), 1, "one event per SET");
    let (event_type, payload) = events.iter().next().unwrap();
    (
        Value::Object(claims.clone()),
        event_type.clone(),
        payload.clone(),
    )
}

/// The undelivered events once each has failed `attempts` times (waits up to 5 s: the
/// receiver answers before the idp records the outcome).
async fn failed_attempts(app: &TestApp, attempts: i64) -> Vec<idp::events::store::Listed> {
    for _ in 0..250 {
        let undelivered = idp::events::store::undelivered(&app.db.pool).await.unwrap();
        if !undelivered.is_empty()
            && undelivered
                .iter()
                .all(|e| e.delivery.attempts == attempts && e.delivery.last_error.is_some())
        {
            return undelivered;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the events were not tried {attempts} time(s)");
}

/// Every queued event was delivered.
async fn nothing_left(app: &TestApp) {
    let undelivered = idp::events::store::undelivered(&app.db.pool).await.unwrap();
    assert!(undelivered.is_empty(), "{undelivered:?}");
}

/// Logs `email` in through the JSON API; its access and refresh tokens.
async fn api_session(app: &TestApp, email: &str) -> (String, String) {
    let response = app.post_login(email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn sign_out(app: &TestApp, access_token: &str, refresh_token: &str) {
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(access_token)
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test]
async fn a_sign_out_pushes_a_signed_session_revoked_set_to_every_stream() {
    let app = spawn_app().await;
    let (first, second) = (EventSink::start().await, EventSink::start().await);
    stream_to(&app, &first, "first").await;
    stream_to(&app, &second, "second").await;
    let user_id = app.register("ada@example.com").await;
    let (access, refresh) = api_session(&app, "ada@example.com").await;
    let sid = decode_sid(&access);

    sign_out(&app, &access, &refresh).await;

    for (sink, name) in [(&first, "first"), (&second, "second")] {
        let pushed = sink.wait_for(1).await;
        assert_eq!(pushed[0].path, "/events");
        assert_eq!(
            pushed[0].authorization.as_deref(),
            Some(format!("Bearer secret-of-{name}").as_str())
        );
        let (claims, event_type, payload) = event_of(&app, &pushed[0]).await;
        assert_eq!(event_type, SESSION_REVOKED);
        assert_eq!(claims["aud"], format!("https://{name}.example"));
        assert_eq!(claims["sub_id"]["format"], "complex");
        assert_eq!(claims["sub_id"]["user"]["format"], "iss_sub");
        assert_eq!(claims["sub_id"]["user"]["iss"], app.issuer.as_str());
        assert_eq!(claims["sub_id"]["user"]["sub"], user_id.as_str());
        assert_eq!(claims["sub_id"]["session"]["id"], sid.as_str());
        assert_eq!(payload["initiating_entity"], "user");
        assert!(payload["event_timestamp"].as_i64().is_some());
        assert!(payload["reason_admin"]["en"].as_str().is_some());
    }
    let jti = |sink: &EventSink| {
        let (_, claims) = crate::helpers::decode_jwt(&sink.received()[0].body);
        (claims["jti"].clone(), claims["txn"].clone())
    };
    let ((jti_one, txn_one), (jti_two, txn_two)) = (jti(&first), jti(&second));
    assert_ne!(jti_one, jti_two, "each SET has its own jti");
    assert_eq!(txn_one, txn_two, "the SETs of one cause share txn");
}

fn decode_sid(access_token: &str) -> String {
    let (_, claims) = crate::helpers::decode_jwt(access_token);
    claims["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_password_change_sends_credential_change_then_ends_the_other_sessions() {
    let app = spawn_app().await;
    let sink = EventSink::start().await;
    stream_to(&app, &sink, "rs").await;
    app.register("ada@example.com").await;
    let (current, _) = api_session(&app, "ada@example.com").await;
    let (other, _) = api_session(&app, "ada@example.com").await;

    let response = app
        .client
        .post(app.url("/auth/password"))
        .bearer_auth(&current)
        .json(&json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    let pushed = sink.wait_for(2).await;
    let (change, change_type, payload) = event_of(&app, &pushed[0]).await;
    assert_eq!(change_type, CREDENTIAL_CHANGE);
    assert_eq!(payload["credential_type"], "password");
    assert_eq!(payload["change_type"], "update");
    assert_eq!(change["sub_id"]["format"], "iss_sub");
    let (revoked, revoked_type, _) = event_of(&app, &pushed[1]).await;
    assert_eq!(
        revoked_type, SESSION_REVOKED,
        "in order: the change, then its effect"
    );
    assert_eq!(
        revoked["sub_id"]["session"]["id"],
        decode_sid(&other).as_str()
    );
    assert_eq!(change["txn"], revoked["txn"], "one cause, one txn");
    assert_eq!(pushed.len(), 2, "the current session goes on");
}

/// The account-status operations as `idp users` runs them, on the app's database.
fn account_status(app: &TestApp) -> AccountStatus {
    let sessions = UserSessions::new(
        app.db.pool.clone(),
        app.clock.clone(),
        app.settings.session_policy(),
        Events::new(&app.issuer, app.clock.clone()),
    );
    AccountStatus::new(app.db.pool.clone(), app.clock.clone(), sessions)
}

#[tokio::test]
async fn disabling_refuses_sign_in_ends_sessions_and_tells_the_streams() {
    let app = spawn_app().await;
    let sink = EventSink::start().await;
    stream_to(&app, &sink, "rs").await;
    let user_id = app.register("ada@example.com").await;
    api_session(&app, "ada@example.com").await;
    let status = account_status(&app);

    assert_eq!(
        status.disable("ada@example.com").await.unwrap(),
        StatusChange::Changed(user_id.clone())
    );
    assert_eq!(
        status.disable("ada@example.com").await.unwrap(),
        StatusChange::Unchanged(user_id.clone())
    );
    // Queued by another process (the CLI): the app's delivery task finds them.
    app.event_delivery.deliver_due().await.unwrap();
    let pushed = sink.wait_for(2).await;
    assert_eq!(event_of(&app, &pushed[0]).await.1, ACCOUNT_DISABLED);
    let (revoked, revoked_type, payload) = event_of(&app, &pushed[1]).await;
    assert_eq!(revoked_type, SESSION_REVOKED);
    assert_eq!(payload["initiating_entity"], "admin");
    assert_eq!(revoked["sub_id"]["user"]["sub"], user_id.as_str());

    let refused = app.post_login("ada@example.com", PASSWORD).await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "account_disabled");
    let wrong = app.post_login("ada@example.com", "not the password").await;
    assert_eq!(wrong.status(), 401, "a wrong password learns nothing");

    status.enable("ada@example.com").await.unwrap();
    app.event_delivery.deliver_due().await.unwrap();
    let pushed = sink.wait_for(3).await;
    assert_eq!(event_of(&app, &pushed[2]).await.1, ACCOUNT_ENABLED);
    api_session(&app, "ada@example.com").await;
}

#[tokio::test]
async fn a_failing_receiver_is_retried_then_dead_lettered_and_retried_by_the_operator() {
    let app = spawn_app_with(fresh_database("idp").await, |s| s.events_max_attempts = 2).await;
    let sink = EventSink::start().await;
    sink.answer(StatusCode::SERVICE_UNAVAILABLE, "");
    stream_to(&app, &sink, "rs").await;
    app.register("ada@example.com").await;
    let (access, refresh) = api_session(&app, "ada@example.com").await;
    sign_out(&app, &access, &refresh).await;
    sink.wait_for(1).await;

    let undelivered = failed_attempts(&app, 1).await;
    assert_eq!(undelivered.len(), 1);
    assert!(
        undelivered[0]
            .delivery
            .last_error
            .as_deref()
            .unwrap()
            .contains("503")
    );
    assert_eq!(undelivered[0].delivery.failed_at, None);

    app.clock.shift(chrono::Duration::seconds(10));
    app.event_delivery.deliver_due().await.unwrap();
    let undelivered = idp::events::store::undelivered(&app.db.pool).await.unwrap();
    assert_eq!(undelivered[0].delivery.attempts, 2);
    assert!(
        undelivered[0].delivery.failed_at.is_some(),
        "a dead letter after 2 tries"
    );
    app.clock.shift(chrono::Duration::seconds(3600));
    app.event_delivery.deliver_due().await.unwrap();
    assert_eq!(sink.received().len(), 2, "dead letters are not tried again");

    sink.answer(StatusCode::ACCEPTED, "");
    let now = app.clock.now().timestamp();
    assert_eq!(
        idp::storage::outbox::retry_failed(
            &app.db.pool,
            idp::storage::outbox::Table::Events,
            None,
            now
        )
        .await
        .unwrap(),
        1
    );
    app.event_delivery.deliver_due().await.unwrap();
    let pushed = sink.wait_for(3).await;
    let jti = |p: &Pushed| crate::helpers::decode_jwt(&p.body).1["jti"].clone();
    assert_eq!(
        jti(&pushed[0]),
        jti(&pushed[2]),
        "a redelivery keeps its jti"
    );
    nothing_left(&app).await;
}

#[tokio::test]
async fn a_refusal_with_an_err_code_is_recorded_and_not_retried() {
    let app = spawn_app().await;
    let sink = EventSink::start().await;
    sink.answer(
        StatusCode::BAD_REQUEST,
        r#"{"err":"invalid_audience","description":"not for us"}"#,
    );
    stream_to(&app, &sink, "rs").await;
    app.register("ada@example.com").await;
    let (access, refresh) = api_session(&app, "ada@example.com").await;
    sign_out(&app, &access, &refresh).await;
    sink.wait_for(1).await;

    let undelivered = failed_attempts(&app, 1).await;
    assert!(undelivered[0].delivery.failed_at.is_some());
    let error = undelivered[0].delivery.last_error.clone().unwrap();
    assert!(error.contains("err=invalid_audience"), "{error}");
    assert!(error.contains("not for us"), "{error}");
}

#[tokio::test]
async fn a_user_s_events_arrive_in_order_after_the_receiver_comes_back() {
    let app = spawn_app().await;
    let sink = EventSink::start().await;
    sink.answer(StatusCode::SERVICE_UNAVAILABLE, "");
    stream_to(&app, &sink, "rs").await;
    app.register("ada@example.com").await;
    let mut sids = Vec::new();
    for _ in 0..3 {
        let (access, refresh) = api_session(&app, "ada@example.com").await;
        sids.push(decode_sid(&access));
        sign_out(&app, &access, &refresh).await;
    }
    // Only the first is tried while the receiver is down: the others wait behind it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1);

    sink.answer(StatusCode::ACCEPTED, "");
    app.clock.shift(chrono::Duration::seconds(10));
    app.event_delivery.deliver_due().await.unwrap();
    let pushed = sink.wait_for(4).await;
    let delivered: Vec<String> = pushed[1..]
        .iter()
        .map(|p| {
            let claims = crate::helpers::decode_jwt(&p.body).1;
            claims["sub_id"]["session"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(delivered, sids);
}

#[tokio::test]
async fn a_slow_receiver_holds_up_neither_the_request_nor_another_receiver() {
    let app = spawn_app_with(fresh_database("idp").await, |s| s.events_timeout_secs = 3).await;
    let (slow, fast) = (EventSink::start().await, EventSink::start().await);
    slow.delay(Duration::from_secs(2));
    stream_to(&app, &slow, "slow").await;
    stream_to(&app, &fast, "fast").await;
    app.register("ada@example.com").await;
    let (access, refresh) = api_session(&app, "ada@example.com").await;

    let started = std::time::Instant::now();
    sign_out(&app, &access, &refresh).await;
    fast.wait_for(1).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the fast receiver got its SET after {:?}",
        started.elapsed()
    );
    slow.wait_for(1).await;
}

#[tokio::test]
async fn a_queued_event_survives_a_restart_of_the_idp() {
    let app = spawn_app().await;
    let sink = EventSink::start().await;
    sink.answer(StatusCode::SERVICE_UNAVAILABLE, "");
    stream_to(&app, &sink, "rs").await;
    app.register("ada@example.com").await;
    let (access, refresh) = api_session(&app, "ada@example.com").await;
    sign_out(&app, &access, &refresh).await;
    failed_attempts(&app, 1).await;
    let first_issuer = app.issuer.clone();
    let database = app.stop().await;

    sink.answer(StatusCode::ACCEPTED, "");
    let app = spawn_app_with(database, |_| {}).await;
    app.clock.shift(chrono::Duration::seconds(10));
    app.event_delivery.deliver_due().await.unwrap();
    let pushed = sink.wait_for(2).await;
    let (_, claims) = verify(&app, &pushed[1].body).await;
    assert_eq!(claims["iss"], first_issuer.as_str(), "as queued");
    assert!(claims["events"].get(SESSION_REVOKED).is_some());
    nothing_left(&app).await;
}

#[tokio::test]
async fn two_instances_on_one_database_deliver_each_event_once() {
    let app = spawn_app().await;
    let sink = EventSink::start().await;
    sink.answer(StatusCode::SERVICE_UNAVAILABLE, "");
    stream_to(&app, &sink, "rs").await;
    for n in 0..5 {
        let email = format!("user{n}@example.com");
        app.register(&email).await;
        let (access, refresh) = api_session(&app, &email).await;
        sign_out(&app, &access, &refresh).await;
    }
    sink.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tried = sink.received().len();
    let other = spawn_app_with(app.database.clone(), |s| s.events_poll_secs = 3600).await;

    sink.answer(StatusCode::ACCEPTED, "");
    app.clock.shift(chrono::Duration::seconds(10));
    other.clock.shift(chrono::Duration::seconds(10));
    let (one, two) = tokio::join!(
        app.event_delivery.deliver_due(),
        other.event_delivery.deliver_due()
    );
    one.unwrap();
    two.unwrap();
    let pushed = sink.received()[tried..].to_vec();
    let mut jtis: Vec<String> = pushed
        .iter()
        .map(|p| {
            crate::helpers::decode_jwt(&p.body).1["jti"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 5);
    assert_eq!(pushed.len(), 5, "no event went twice");
}

#[tokio::test]
async fn a_client_that_signed_in_gets_a_logout_token_when_the_session_ends() {
    let app = spawn_app().await;
    let sink = EventSink::start().await;
    let user_id = app.register("ada@example.com").await;
    let client = register_client(&app, |c| {
        c.client_type = ClientType::Public;
        c.backchannel_logout = Some(BackchannelLogout {
            uri: sink.url("/backchannel-logout"),
            session_required: true,
        });
    })
    .await;
    let bystander = register_client(&app, |_| {}).await;
    let browser = browser();
    let callback = sign_in_and_authorize(
        &app,
        &browser,
        &AuthRequest::new(&client),
        "ada@example.com",
    )
    .await;
    let code = param(&callback, "code").unwrap();
    let redeemed = app
        .client
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
            ("client_id", &client.id),
        ])
        .send()
        .await
        .unwrap();
    let tokens = crate::oauth_helpers::token_body(redeemed).await;
    let (_, id_token) = crate::helpers::decode_jwt(tokens["id_token"].as_str().unwrap());
    let sid = id_token["sid"].as_str().unwrap().to_owned();
    // A client without a back-channel URI, with a grant in the same session, gets nothing.
    sqlx::query(
        "INSERT INTO grants (id, client_id, user_id, scope, auth_time, session_id, created_at) \
         VALUES ('bystander', $1, $2, 'openid', 0, $3, 0)",
    )
    .bind(&bystander.id)
    .bind(&user_id)
    .bind(&sid)
    .execute(&app.db.pool)
    .await
    .unwrap();

    let html = page(&browser, &app.url("/logout")).await;
    let response = post_form(
        &browser,
        &app.url("/logout/confirm"),
        &[("csrf_token", &csrf_token(&html))],
    )
    .await;
    assert!(response.status().is_redirection() || response.status().is_success());

    let pushed = sink.wait_for(1).await;
    assert_eq!(pushed[0].path, "/backchannel-logout");
    assert_eq!(pushed[0].content_type, "application/x-www-form-urlencoded");
    let token = url::form_urlencoded::parse(pushed[0].body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let (header, claims) = verify(&app, &token).await;
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["aud"], client.id.as_str());
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["events"], json!({ BACKCHANNEL_LOGOUT: {} }));
    assert!(claims.get("nonce").is_none());
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(exp > iat && exp - iat <= 120);
    assert!(claims["jti"].as_str().is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.received().len(), 1, "one client, one token");
    let queued: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM event_outbox")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        queued.0, 1,
        "nothing was queued for the client without a URI"
    );
}

#[tokio::test]
async fn discovery_advertises_back_channel_logout_with_sessions() {
    let app = spawn_app().await;
    let metadata = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(metadata["backchannel_logout_supported"], true);
    assert_eq!(metadata["backchannel_logout_session_supported"], true);
}

#[tokio::test]
async fn housekeeping_deletes_delivered_events_after_a_week_and_keeps_dead_letters() {
    let app = spawn_app().await;
    let (good, bad) = (EventSink::start().await, EventSink::start().await);
    bad.answer(StatusCode::BAD_REQUEST, r#"{"err":"invalid_request"}"#);
    stream_to(&app, &good, "good").await;
    stream_to(&app, &bad, "bad").await;
    app.register("ada@example.com").await;
    let (access, refresh) = api_session(&app, "ada@example.com").await;
    sign_out(&app, &access, &refresh).await;
    good.wait_for(1).await;
    failed_attempts(&app, 1).await;
    let count = || async {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM event_outbox")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        n
    };

    app.housekeeping.purge().await.unwrap();
    assert_eq!(count().await, 2, "a delivered event stays a week");
    app.clock.shift(chrono::Duration::days(8));
    app.housekeeping.purge().await.unwrap();
    assert_eq!(count().await, 1, "the dead letter stays for the operator");
}

#[tokio::test]
async fn deleting_an_account_revokes_its_open_sessions() {
    let app = spawn_app().await;
    let sink = EventSink::start().await;
    stream_to(&app, &sink, "rs").await;
    let user_id = app.register("ada@example.com").await;
    let (access, _) = api_session(&app, "ada@example.com").await;
    let response = app
        .client
        .delete(app.url("/auth/me"))
        .bearer_auth(&access)
        .json(&json!({ "current_password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    let pushed = sink.wait_for(1).await;
    let (claims, event_type, payload) = event_of(&app, &pushed[0]).await;
    assert_eq!(event_type, SESSION_REVOKED);
    assert_eq!(claims["sub_id"]["user"]["sub"], user_id.as_str());
    assert_eq!(
        claims["sub_id"]["session"]["id"],
        decode_sid(&access).as_str()
    );
    assert_eq!(payload["reason_admin"]["en"], "The account was deleted");
}

#[tokio::test]
async fn a_refused_change_sends_nothing_and_an_ended_session_is_not_told_twice() {
    let app = spawn_app().await;
    let sink = EventSink::start().await;
    stream_to(&app, &sink, "rs").await;
    app.register("ada@example.com").await;
    let (access, refresh) = api_session(&app, "ada@example.com").await;
    let queued = || async {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM event_outbox")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        n
    };

    let wrong = app
        .client
        .post(app.url("/auth/password"))
        .bearer_auth(&access)
        .json(&json!({ "current_password": "not the password", "new_password": "a brand new passphrase" }))
        .send()
        .await
        .unwrap();
    assert!(wrong.status().is_client_error());
    assert_eq!(queued().await, 0, "no change, no event");

    sign_out(&app, &access, &refresh).await;
    let again = app
        .client
        .post(app.url("/auth/logout"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .unwrap();
    assert!(again.status().is_client_error() || again.status().is_success());
    sink.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(queued().await, 1, "one session, one event");
    assert_eq!(sink.received().len(), 1);
}
