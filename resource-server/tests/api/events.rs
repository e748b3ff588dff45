//! Security events pushed by the idp (RFC 8935 to `POST /events`): what each one
//! revokes, the RFC 8935 answer to every bad SET, and revocations that survive a
//! restart, reach a sibling instance and expire.

use resource_server::auth::events::ReceiverAuthorization;
use serde_json::{Value, json};

use crate::helpers::{
    ATTACKER_KEY, AUDIENCE, TestApp, TestUser, assert_invalid_token, b64, sign_with, spawn_app,
    spawn_app_with,
};

const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";
const ACCOUNT_DISABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
const ACCOUNT_ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";

// ---------------------------------------------------------------------------------------
// SETs as the idp sends them
// ---------------------------------------------------------------------------------------

fn now(app: &TestApp) -> i64 {
    app.clock.now().timestamp()
}

fn set_header(app: &TestApp) -> Value {
    json!({"alg": "RS256", "typ": "secevent+jwt", "kid": app.issuer.kid()})
}

fn user_subject(app: &TestApp, user: &TestUser) -> Value {
    json!({"format": "iss_sub", "iss": app.issuer.issuer(), "sub": user.id})
}

fn session_subject(app: &TestApp, user: &TestUser, sid: &str) -> Value {
    json!({
        "format": "complex",
        "user": user_subject(app, user),
        "session": {"format": "opaque", "id": sid},
    })
}

/// The claims of a SET signed at the server's now, with one event.
fn set_claims(app: &TestApp, sub_id: Value, event_type: &str, members: Value) -> Value {
    json!({
        "iss": app.issuer.issuer(),
        "aud": AUDIENCE,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now(app),
        "txn": uuid::Uuid::new_v4().to_string(),
        "sub_id": sub_id,
        "events": {event_type: members},
    })
}

fn session_revoked(app: &TestApp, user: &TestUser, sid: &str) -> Value {
    set_claims(
        app,
        session_subject(app, user, sid),
        SESSION_REVOKED,
        json!({"event_timestamp": now(app), "initiating_entity": "user",
               "reason_admin": {"en": "Signed out"}}),
    )
}

fn credential_changed(app: &TestApp, user: &TestUser, credential_type: &str) -> Value {
    set_claims(
        app,
        user_subject(app, user),
        CREDENTIAL_CHANGE,
        json!({"credential_type": credential_type, "change_type": "update",
               "event_timestamp": now(app), "initiating_entity": "user"}),
    )
}

fn account(app: &TestApp, user: &TestUser, event_type: &str) -> Value {
    set_claims(app, user_subject(app, user), event_type, json!({}))
}

fn sign(app: &TestApp, claims: &Value) -> String {
    app.issuer.sign(&set_header(app), claims)
}

async fn deliver(app: &TestApp, claims: &Value) -> reqwest::Response {
    app.post_event(&sign(app, claims), None).await
}

/// RFC 8935 §2.2: 202 and nothing else.
async fn assert_accepted(response: reqwest::Response) {
    assert_eq!(response.status(), 202);
    assert_eq!(response.text().await.unwrap(), "");
}

/// RFC 8935 §2.3: 400, JSON with `err` and `description` and nothing else.
async fn assert_refused(response: reqwest::Response, err: &str) {
    assert_eq!(response.status(), 400);
    assert_error_body(response, err).await;
}

async fn assert_error_body(response: reqwest::Response, err: &str) {
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["err"], err, "{body}");
    assert!(body["description"].is_string());
    assert_eq!(body.as_object().unwrap().len(), 2);
}

/// The status of GET /users/me with `token`.
async fn me(app: &TestApp, token: &str) -> u16 {
    app.get("/users/me", Some(token)).await.status().as_u16()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// What each event revokes
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_revoked_session_loses_its_tokens_and_only_those() {
    let app = spawn_app().await;
    let (user, other) = (TestUser::generate(), TestUser::generate());
    let revoked = app.token_in_session(&user, "s1");
    let same_user_other_session = app.token_in_session(&user, "s2");
    let other_user = app.token_in_session(&other, "s3");
    // Verified and remembered before the event: the cache must not save it after.
    assert_eq!(me(&app, &revoked).await, 200);

    assert_accepted(deliver(&app, &session_revoked(&app, &user, "s1")).await).await;

    assert_invalid_token(app.get("/users/me", Some(&revoked)).await).await;
    assert_eq!(me(&app, &same_user_other_session).await, 200);
    assert_eq!(me(&app, &other_user).await, 200);
    // A token issued in that session after the event (a later second) is fine.
    app.advance(1);
    assert_eq!(me(&app, &app.token_in_session(&user, "s1")).await, 200);
}

#[tokio::test]
async fn a_token_issued_in_the_second_of_the_revocation_is_refused_too() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let event = session_revoked(&app, &user, "s1");
    let same_second = app.token_in_session(&user, "s1");
    assert_accepted(deliver(&app, &event).await).await;
    assert_invalid_token(app.get("/users/me", Some(&same_second)).await).await;
}

#[tokio::test]
async fn a_password_change_refuses_the_users_older_tokens() {
    let app = spawn_app().await;
    let (user, other) = (TestUser::generate(), TestUser::generate());
    let older = [
        app.token_in_session(&user, "s1"),
        app.token_in_session(&user, "s2"),
    ];
    let other_user = app.token_in_session(&other, "s3");

    // Another credential changes nothing: accepted, and the tokens still work.
    assert_accepted(deliver(&app, &credential_changed(&app, &user, "fido2-roaming")).await).await;
    assert_eq!(me(&app, &older[0]).await, 200);

    assert_accepted(deliver(&app, &credential_changed(&app, &user, "password")).await).await;
    for token in &older {
        assert_invalid_token(app.get("/users/me", Some(token)).await).await;
    }
    assert_eq!(me(&app, &other_user).await, 200);
    app.advance(1);
    assert_eq!(me(&app, &app.token_in_session(&user, "s4")).await, 200);
}

#[tokio::test]
async fn a_disabled_account_loses_every_token_until_it_is_enabled() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let before_disable = app.token_in_session(&user, "s1");

    assert_accepted(deliver(&app, &account(&app, &user, ACCOUNT_DISABLED)).await).await;
    assert_eq!(me(&app, &before_disable).await, 401);
    // Whatever its iat.
    app.advance(1);
    let while_disabled = app.token_in_session(&user, "s2");
    assert_eq!(me(&app, &while_disabled).await, 401);

    app.advance(1);
    assert_accepted(deliver(&app, &account(&app, &user, ACCOUNT_ENABLED)).await).await;
    assert_eq!(me(&app, &app.token_in_session(&user, "s3")).await, 200);
    // Enabling the account again does not bring back the tokens of before the disable.
    assert_eq!(me(&app, &before_disable).await, 401);
}

#[tokio::test]
async fn a_stale_enable_cannot_undo_a_newer_disable() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let mut stale_enable = account(&app, &user, ACCOUNT_ENABLED);
    stale_enable["iat"] = json!(now(&app) - 5);

    assert_accepted(deliver(&app, &account(&app, &user, ACCOUNT_DISABLED)).await).await;
    // Signed before the disable, delivered after: accepted, and changes nothing.
    assert_accepted(deliver(&app, &stale_enable).await).await;
    app.advance(1);
    assert_eq!(me(&app, &app.token_in_session(&user, "s1")).await, 401);

    // An enable signed after it lifts the disable.
    assert_accepted(deliver(&app, &account(&app, &user, ACCOUNT_ENABLED)).await).await;
    app.advance(1);
    assert_eq!(me(&app, &app.token_in_session(&user, "s1")).await, 200);
}

#[tokio::test]
async fn a_redelivered_set_is_acknowledged_and_applied_once() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let mut disable = account(&app, &user, ACCOUNT_DISABLED);
    let first_delivery = sign(&app, &disable);
    assert_accepted(app.post_event(&first_delivery, None).await).await;
    // The very same bytes again (our 202 was lost).
    assert_accepted(app.post_event(&first_delivery, None).await).await;

    app.advance(1);
    assert_accepted(deliver(&app, &account(&app, &user, ACCOUNT_ENABLED)).await).await;
    // The idp re-signs a redelivery: same jti, newer iat. Applying it again would
    // disable the account anew; it is only acknowledged.
    app.advance(1);
    disable["iat"] = json!(now(&app));
    assert_accepted(deliver(&app, &disable).await).await;
    app.advance(1);
    assert_eq!(me(&app, &app.token_in_session(&user, "s1")).await, 200);
    assert_eq!(count(&app, "jwt_auth_seen_events").await, 2);
}

#[tokio::test]
async fn an_event_type_we_do_not_act_on_is_accepted_and_ignored() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let token = app.token_in_session(&user, "s1");
    let claims = set_claims(
        &app,
        session_subject(&app, &user, "s1"),
        "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change",
        json!({"current_status": "not-compliant", "previous_status": "compliant",
               "event_timestamp": now(&app)}),
    );
    assert_accepted(deliver(&app, &claims).await).await;
    assert_eq!(me(&app, &token).await, 200);
    assert!(app.validator.revocations().is_empty());
}

// ---------------------------------------------------------------------------------------
// Every bad SET gets the RFC 8935 answer
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_forged_or_tampered_set_is_an_invalid_key() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let token = app.token_in_session(&user, "s1");
    let claims = session_revoked(&app, &user, "s1");

    // Signed by a key the issuer never published, under the issuer's kid.
    let forged = sign_with(&ATTACKER_KEY, &set_header(&app), &claims);
    assert_refused(app.post_event(&forged, None).await, "invalid_key").await;
    // Under a kid the issuer does not have.
    let mut header = set_header(&app);
    header["kid"] = json!("unknown-kid");
    let unknown = app.issuer.sign(&header, &claims);
    assert_refused(app.post_event(&unknown, None).await, "invalid_key").await;
    // A genuine SET whose claims were swapped.
    let genuine = sign(&app, &session_revoked(&app, &user, "s2"));
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(claims.to_string()), parts[2]);
    assert_refused(app.post_event(&tampered, None).await, "invalid_key").await;

    assert_eq!(me(&app, &token).await, 200);
}

#[tokio::test]
async fn a_set_for_another_audience_or_from_another_issuer_is_refused() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let mut claims = session_revoked(&app, &user, "s1");
    claims["aud"] = json!("http://another-rs.example");
    assert_refused(deliver(&app, &claims).await, "invalid_audience").await;
    claims["aud"] = json!(["http://another-rs.example", AUDIENCE]);
    assert_accepted(deliver(&app, &claims).await).await;

    let mut claims = session_revoked(&app, &user, "s2");
    claims["iss"] = json!("http://evil.example");
    assert_refused(deliver(&app, &claims).await, "invalid_issuer").await;
    // Exact comparison: a trailing slash is another issuer.
    claims["iss"] = json!(format!("{}/", app.issuer.issuer()));
    assert_refused(deliver(&app, &claims).await, "invalid_issuer").await;
}

#[tokio::test]
async fn an_access_token_or_an_unsigned_set_is_an_invalid_request() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let claims = session_revoked(&app, &user, "s1");

    let mut header = set_header(&app);
    header["typ"] = json!("at+jwt");
    assert_refused(
        app.post_event(&app.issuer.sign(&header, &claims), None)
            .await,
        "invalid_request",
    )
    .await;
    // An access token is not a SET.
    let access_token = app.token_in_session(&user, "s1");
    assert_refused(app.post_event(&access_token, None).await, "invalid_request").await;
    // alg none, with and without a signature part.
    let none = json!({"alg": "none", "typ": "secevent+jwt", "kid": app.issuer.kid()});
    let unsigned = format!("{}.{}.", b64(none.to_string()), b64(claims.to_string()));
    assert_refused(app.post_event(&unsigned, None).await, "invalid_request").await;
    let none_signed = format!("{unsigned}c2ln");
    assert_refused(app.post_event(&none_signed, None).await, "invalid_request").await;
    // A member named twice.
    let header_text = set_header(&app).to_string();
    let twice = header_text.replacen('{', r#"{"kid":"other","#, 1);
    assert_refused(
        app.post_event(&app.issuer.sign_text(&twice, &claims.to_string()), None)
            .await,
        "invalid_request",
    )
    .await;
    assert_refused(app.post_event("not a jws", None).await, "invalid_request").await;
    assert_eq!(me(&app, &access_token).await, 200);
}

#[tokio::test]
async fn a_replayed_or_postdated_set_is_an_invalid_request() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let token = app.token_in_session(&user, "s1");
    let set = sign(&app, &session_revoked(&app, &user, "s2"));
    assert_accepted(app.post_event(&set, None).await).await;

    // Five minutes and a second later, the same SET is a replay.
    app.advance(301);
    assert_refused(app.post_event(&set, None).await, "invalid_request").await;
    // So is any SET signed that long ago, and one signed too far ahead.
    let mut old = session_revoked(&app, &user, "s1");
    old["iat"] = json!(now(&app) - 301);
    assert_refused(deliver(&app, &old).await, "invalid_request").await;
    let mut ahead = session_revoked(&app, &user, "s1");
    ahead["iat"] = json!(now(&app) + 61);
    assert_refused(deliver(&app, &ahead).await, "invalid_request").await;
    assert_eq!(me(&app, &token).await, 200);
}

#[tokio::test]
async fn sets_without_what_a_set_needs_are_invalid_requests() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let base = session_revoked(&app, &user, "s1");
    let mut cases = Vec::new();
    for member in ["jti", "iat", "events", "sub_id", "iss"] {
        let mut claims = base.clone();
        claims.as_object_mut().unwrap().remove(member);
        cases.push(claims);
    }
    let mut no_event = base.clone();
    no_event["events"] = json!({});
    let mut two_events = base.clone();
    two_events["events"][CREDENTIAL_CHANGE] = json!({"credential_type": "password",
        "change_type": "update", "event_timestamp": now(&app)});
    let mut another_issuers_user = base.clone();
    another_issuers_user["sub_id"]["user"]["iss"] = json!("http://evil.example");
    let mut no_session = base.clone();
    no_session["sub_id"] = user_subject(&app, &user);
    let mut no_timestamp = base.clone();
    no_timestamp["events"][SESSION_REVOKED] = json!({"initiating_entity": "user"});
    cases.extend([
        no_event,
        two_events,
        another_issuers_user,
        no_session,
        no_timestamp,
    ]);
    for claims in cases {
        assert_refused(deliver(&app, &claims).await, "invalid_request").await;
    }
    assert!(app.validator.revocations().is_empty());
}

#[tokio::test]
async fn the_content_type_must_be_a_set_and_the_body_small() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let set = sign(&app, &session_revoked(&app, &user, "s1"));
    let post = |content_type: Option<&'static str>, body: String| {
        let mut request = app.client.post(app.url("/events")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        request.send()
    };
    assert_refused(
        post(Some("application/json"), set.clone()).await.unwrap(),
        "invalid_request",
    )
    .await;
    assert_refused(post(None, set.clone()).await.unwrap(), "invalid_request").await;
    let response = post(Some("application/secevent+jwt"), "a".repeat(17 * 1024))
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_error_body(response, "invalid_request").await;
    // Parameters and case do not matter.
    assert_accepted(
        post(Some("Application/SecEvent+JWT; charset=utf-8"), set)
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn the_configured_authorization_is_required_and_never_echoed() {
    let app = spawn_app_with(|settings| {
        settings.events_authorization =
            Some(ReceiverAuthorization::parse("Bearer s3cret").unwrap());
    })
    .await;
    let user = TestUser::generate();
    let set = sign(&app, &session_revoked(&app, &user, "s1"));
    for authorization in [
        None,
        Some("Bearer s3cre"),
        Some("bearer s3cret"),
        Some("Bearer s3cret2"),
    ] {
        let response = app.post_event(&set, authorization).await;
        assert_eq!(response.status(), 400);
        let body = response.text().await.unwrap();
        assert!(!body.contains("s3cret"));
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["err"], "authentication_failed");
    }
    // Authentication comes before anything else.
    let response = app
        .client
        .post(app.url("/events"))
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_refused(response, "authentication_failed").await;
    assert!(app.validator.revocations().is_empty());

    assert_accepted(app.post_event(&set, Some("Bearer s3cret")).await).await;
}

#[tokio::test]
async fn the_idp_keys_being_unavailable_is_a_503_so_the_idp_retries() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let set = sign(&app, &session_revoked(&app, &user, "s1"));
    app.issuer.go_down();
    let response = app.post_event(&set, None).await;
    assert_eq!(response.status(), 503);
    assert!(app.validator.revocations().is_empty());
}

// ---------------------------------------------------------------------------------------
// Revocations last as long as they must, and no longer
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn revocations_survive_a_restart() {
    let app = spawn_app().await;
    let (user, disabled) = (TestUser::generate(), TestUser::generate());
    let token = app.token_in_session(&user, "s1");
    assert_accepted(deliver(&app, &session_revoked(&app, &user, "s1")).await).await;
    assert_accepted(deliver(&app, &account(&app, &disabled, ACCOUNT_DISABLED)).await).await;

    let app = app.restart().await;
    assert_eq!(app.validator.revocations().len(), 3);
    assert_eq!(me(&app, &token).await, 401);
    app.advance(1);
    assert_eq!(me(&app, &app.token_in_session(&disabled, "s2")).await, 401);
    let body: Value = app.get("/health", None).await.json().await.unwrap();
    assert_eq!(body["revocations"]["entries"], 3);
}

#[tokio::test]
async fn a_sibling_instance_learns_the_revocations_at_its_next_sync() {
    let app = spawn_app().await;
    let sibling = app.spawn_sibling().await;
    let user = TestUser::generate();
    let token = app.token_in_session(&user, "s1");
    assert_eq!(me(&sibling, &token).await, 200);

    assert_accepted(deliver(&app, &session_revoked(&app, &user, "s1")).await).await;
    assert_eq!(me(&app, &token).await, 401);
    assert_eq!(sibling.events.sync().await.unwrap(), 1);
    assert_eq!(me(&sibling, &token).await, 401);
}

#[tokio::test]
async fn pruning_removes_revocations_once_every_token_they_refuse_has_expired() {
    let app = spawn_app_with(|settings| settings.revocation_retention_secs = 600).await;
    let (signed_out, changed, disabled) = (
        TestUser::generate(),
        TestUser::generate(),
        TestUser::generate(),
    );
    assert_accepted(deliver(&app, &session_revoked(&app, &signed_out, "s1")).await).await;
    assert_accepted(deliver(&app, &credential_changed(&app, &changed, "password")).await).await;
    assert_accepted(deliver(&app, &account(&app, &disabled, ACCOUNT_DISABLED)).await).await;
    // The session, two users (the password change and the tokens of before the
    // disable) and the disabled account.
    assert_eq!(app.validator.revocations().len(), 4);
    assert_eq!(count(&app, "jwt_auth_revocations").await, 4);
    assert_eq!(count(&app, "jwt_auth_seen_events").await, 3);

    // Nothing is due yet.
    assert_eq!(app.events.prune().await.unwrap().revocations, 0);
    assert_eq!(app.validator.revocations().len(), 4);

    app.advance(601);
    let pruned = app.events.prune().await.unwrap();
    assert_eq!(pruned.revocations, 3);
    assert_eq!(pruned.seen_events, 3);
    assert_eq!(count(&app, "jwt_auth_revocations").await, 1);
    assert_eq!(count(&app, "jwt_auth_seen_events").await, 0);
    // A disabled account stays disabled, however long.
    assert_eq!(me(&app, &app.token_in_session(&disabled, "s2")).await, 401);
    assert_eq!(me(&app, &app.token_in_session(&changed, "s3")).await, 200);
}
