//! The profile API: `/users/me`, reading, updating and deleting by id, and who may do it.

use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_SCOPES, TestUser, USER_SCOPES, assert_insufficient_scope, error_code, spawn_app,
};

fn is_rfc3339(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

#[tokio::test]
async fn me_creates_the_profile_from_the_token_on_the_first_call() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let profile = app.create_profile(&user).await;
    assert_eq!(profile["id"], user.id);
    assert_eq!(profile["email"], user.email);
    assert_eq!(profile["name"], "");
    assert_eq!(profile["bio"], "");
    assert!(is_rfc3339(&profile["created_at"]) && is_rfc3339(&profile["updated_at"]));
    let object = profile.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["bio", "created_at", "email", "id", "name", "updated_at"]
    );

    let again = app.create_profile(&user).await;
    assert_eq!(again, profile);
}

#[tokio::test]
async fn concurrent_first_calls_to_me_create_one_profile() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let token = app.token_for(&user, USER_SCOPES);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let request = app.client.get(app.url("/users/me")).bearer_auth(&token);
        calls.spawn(async move { request.send().await.map(|r| r.status()) });
    }
    while let Some(status) = calls.join_next().await {
        assert_eq!(status.unwrap().unwrap(), 200);
    }
    let list: Value = app
        .get("/users", Some(&app.admin_token()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn reading_needs_the_read_scope() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let token = app.token_for(&user, "users:write");
    assert_insufficient_scope(app.get("/users/me", Some(&token)).await, "users:read").await;
    let path = format!("/users/{}", user.id);
    assert_insufficient_scope(app.get(&path, Some(&token)).await, "users:read").await;
    let no_scope = app.token_for(&user, "");
    assert_insufficient_scope(app.get(&path, Some(&no_scope)).await, "users:read").await;
}

#[tokio::test]
async fn a_token_that_is_not_a_users_has_no_profile() {
    let app = spawn_app().await;
    let client_token = app
        .issuer
        .token(&app.issuer.claims("service-client", None, ADMIN_SCOPES));
    let response = app.get("/users/me", Some(&client_token)).await;
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(response).await, "not_a_user");
}

#[tokio::test]
async fn a_user_who_did_not_share_an_email_gets_a_profile_without_one() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4().to_string();
    let token = app.issuer.token(&app.issuer.claims(&id, None, USER_SCOPES));
    let response = app.get("/users/me", Some(&token)).await;
    assert_eq!(response.status(), 200);
    let profile: serde_json::Value = response.json().await.unwrap();
    assert_eq!(profile["id"], id.as_str());
    assert_eq!(profile["email"], "");
}

#[tokio::test]
async fn owners_read_their_own_profile_by_id_and_it_is_created_if_needed() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let response = app
        .get(
            &format!("/users/{}", user.id),
            Some(&app.token_for(&user, "users:read")),
        )
        .await;
    assert_eq!(response.status(), 200);
    let profile: Value = response.json().await.unwrap();
    assert_eq!(profile["email"], user.email);
}

#[tokio::test]
async fn owners_update_their_name_and_bio() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let created = app.create_profile(&user).await;
    let token = app.token_for(&user, USER_SCOPES);
    let path = format!("/users/{}", user.id);

    let response = app
        .put(
            &path,
            &token,
            &json!({"name": "Ada Lovelace", "bio": "Analyst.\nPoet."}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["name"], "Ada Lovelace");
    assert_eq!(updated["bio"], "Analyst.\nPoet.");
    assert_eq!(updated["email"], user.email);
    assert_eq!(updated["created_at"], created["created_at"]);

    // Absent fields stay as they were.
    let response = app
        .put(&path, &token, &json!({"bio": "Just a poet."}))
        .await;
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["name"], "Ada Lovelace");
    assert_eq!(updated["bio"], "Just a poet.");

    let read: Value = app
        .get("/users/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, updated);
}

#[tokio::test]
async fn an_owner_can_update_a_profile_that_does_not_exist_yet() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let token = app.token_for(&user, USER_SCOPES);
    let response = app
        .put(
            &format!("/users/{}", user.id),
            &token,
            &json!({"name": "New"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let profile: Value = response.json().await.unwrap();
    assert_eq!(profile["name"], "New");
    assert_eq!(profile["email"], user.email);
}

#[tokio::test]
async fn the_email_cannot_be_changed() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    app.create_profile(&user).await;
    let token = app.token_for(&user, USER_SCOPES);
    let path = format!("/users/{}", user.id);
    for body in [
        json!({"email": "mallory@example.com"}),
        json!({"name": "x", "email": "mallory@example.com"}),
        json!({"id": uuid::Uuid::new_v4().to_string()}),
    ] {
        let response = app.put(&path, &token, &body).await;
        assert_eq!(response.status(), 422);
        assert_eq!(error_code(response).await, "invalid_body");
    }
    let profile: Value = app
        .get("/users/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["email"], user.email);
    assert_eq!(profile["name"], "");
}

#[tokio::test]
async fn invalid_names_and_bios_are_refused_with_a_clear_message() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    app.create_profile(&user).await;
    let token = app.token_for(&user, USER_SCOPES);
    let path = format!("/users/{}", user.id);
    let cases = [
        (json!({"name": "n".repeat(101)}), "name"),
        (json!({"name": "two\nlines"}), "name"),
        (json!({"name": "bell\u{7}"}), "name"),
        (json!({"bio": "b".repeat(1001)}), "bio"),
        (json!({"bio": "nul\u{0}"}), "bio"),
    ];
    for (body, field) in cases {
        let response = app.put(&path, &token, &body).await;
        assert_eq!(response.status(), 422, "{body} was accepted");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "invalid_profile");
        assert!(error["message"].as_str().unwrap().contains(field));
    }
    // The limits count characters, not bytes.
    let response = app
        .put(
            &path,
            &token,
            &json!({"name": "é".repeat(100), "bio": "ü".repeat(1000)}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn malformed_bodies_get_the_api_error_shape() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let token = app.token_for(&user, USER_SCOPES);
    let path = format!("/users/{}", user.id);
    let response = app
        .client
        .put(app.url(&path))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "malformed_json");

    let response = app
        .client
        .put(app.url(&path))
        .bearer_auth(&token)
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    let response = app.put(&path, &token, &json!({"name": 42})).await;
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn writing_needs_the_write_scope() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let token = app.token_for(&user, "users:read");
    let path = format!("/users/{}", user.id);
    assert_insufficient_scope(
        app.put(&path, &token, &json!({"name": "x"})).await,
        "users:write",
    )
    .await;
    assert_insufficient_scope(app.delete(&path, &token).await, "users:write").await;
}

#[tokio::test]
async fn someone_elses_profile_needs_the_admin_scope() {
    let app = spawn_app().await;
    let alice = TestUser::generate();
    let bob = TestUser::generate();
    app.create_profile(&bob).await;
    let alice_token = app.token_for(&alice, USER_SCOPES);
    let bob_path = format!("/users/{}", bob.id);

    assert_insufficient_scope(
        app.get(&bob_path, Some(&alice_token)).await,
        "users:read users:admin",
    )
    .await;
    assert_insufficient_scope(
        app.put(&bob_path, &alice_token, &json!({"name": "pwned"}))
            .await,
        "users:write users:admin",
    )
    .await;
    assert_insufficient_scope(
        app.delete(&bob_path, &alice_token).await,
        "users:write users:admin",
    )
    .await;
    let bob_profile: Value = app
        .get(&bob_path, Some(&app.admin_token()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bob_profile["name"], "");
}

#[tokio::test]
async fn admins_read_update_and_delete_other_profiles() {
    let app = spawn_app().await;
    let bob = TestUser::generate();
    app.create_profile(&bob).await;
    let admin = app.admin_token();
    let bob_path = format!("/users/{}", bob.id);

    let read: Value = app.get(&bob_path, Some(&admin)).await.json().await.unwrap();
    assert_eq!(read["email"], bob.email);

    let response = app.put(&bob_path, &admin, &json!({"name": "Robert"})).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["name"], "Robert");
    assert_eq!(updated["email"], bob.email);

    assert_eq!(app.delete(&bob_path, &admin).await.status(), 204);
    let response = app.get(&bob_path, Some(&admin)).await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
}

#[tokio::test]
async fn admins_cannot_create_profiles_for_others() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    let path = format!("/users/{}", uuid::Uuid::new_v4());
    let response = app.put(&path, &admin, &json!({"name": "ghost"})).await;
    assert_eq!(response.status(), 404);
    assert_eq!(app.delete(&path, &admin).await.status(), 404);
}

#[tokio::test]
async fn owners_delete_their_own_profile() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    app.create_profile(&user).await;
    let token = app.token_for(&user, USER_SCOPES);
    let path = format!("/users/{}", user.id);
    let response = app.delete(&path, &token).await;
    assert_eq!(response.status(), 204);
    assert_eq!(response.text().await.unwrap(), "");
    assert_eq!(app.get(&path, Some(&app.admin_token())).await.status(), 404);
    assert_eq!(app.delete(&path, &token).await.status(), 404);
}

/// With `RS_DELETE_REQUIRES_ACR`, a token from a password-only sign-in (or one that says
/// nothing) gets RFC 9470's answer naming the level to ask for; one from a sign-in with
/// a second factor deletes.
#[tokio::test]
async fn deleting_can_require_a_sign_in_with_a_second_factor() {
    const MFA: &str = "urn:idp:acr:mfa";
    let app =
        crate::helpers::spawn_app_with(|s| s.delete_requires_acr = Some(MFA.to_owned())).await;
    let user = TestUser::generate();
    app.create_profile(&user).await;
    let path = format!("/users/{}", user.id);
    let token_with = |acr: Option<&str>| {
        let mut claims = app.issuer.claims(&user.id, Some(&user.email), USER_SCOPES);
        let now = app.clock.now().timestamp();
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + 600);
        if let Some(acr) = acr {
            claims["acr"] = json!(acr);
            claims["amr"] = json!(["pwd"]);
        }
        app.issuer.token(&claims)
    };
    for token in [token_with(Some("urn:idp:acr:pwd")), token_with(None)] {
        let response = app.delete(&path, &token).await;
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with(r#"Bearer error="insufficient_user_authentication""#),
            "{challenge}"
        );
        assert!(
            challenge.contains(&format!(r#"acr_values="{MFA}""#)),
            "{challenge}"
        );
        assert_eq!(
            error_code(response).await,
            "insufficient_user_authentication"
        );
    }
    assert_eq!(
        app.get(&path, Some(&token_with(None))).await.status(),
        200,
        "kept"
    );
    assert_eq!(
        app.delete(&path, &token_with(Some(MFA))).await.status(),
        204
    );
}

#[tokio::test]
async fn unknown_profiles_and_ids_that_are_not_uuids_are_not_found() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    for path in [
        format!("/users/{}", uuid::Uuid::new_v4()),
        "/users/not-a-uuid".to_owned(),
        "/users/0f8fad5bd9cb469fa16570867728950e".to_owned(),
    ] {
        let response = app.get(&path, Some(&admin)).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(error_code(response).await, "not_found");
    }
    let response = app.get("/nowhere", None).await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
}

#[tokio::test]
async fn an_unsupported_method_gets_the_api_error_shape() {
    let app = spawn_app().await;
    let response = app.client.post(app.url("/users/me")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(error_code(response).await, "method_not_allowed");
}
