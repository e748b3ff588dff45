//! `POST /revoke` (RFC 7009).

use crate::helpers::spawn_app;
use crate::oauth_helpers::{
    Auth, TestClient, assert_no_store, confidential_client, get_userinfo, oauth_error, post_form,
    public_client, refresh, service_client, sign_in, sign_in_with, token_body,
};

async fn revoke(
    app: &crate::helpers::TestApp,
    client: &TestClient,
    params: &[(&str, &str)],
) -> reqwest::Response {
    post_form(app, "/revoke", client, Auth::Registered, params).await
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_whole_family() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let rotated =
        token_body(refresh(&app, &signed.client, signed.refresh_token(), &[]).await).await;
    let live_refresh = rotated["refresh_token"].as_str().unwrap();
    let live_access = rotated["access_token"].as_str().unwrap();

    let response = revoke(
        &app,
        &signed.client,
        &[
            ("token", live_refresh),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response);

    let again = refresh(&app, &signed.client, live_refresh, &[]).await;
    assert_eq!(oauth_error(again, 400).await, "invalid_grant");
    assert_eq!(get_userinfo(&app, live_access).await.status(), 401);
    assert_eq!(
        get_userinfo(&app, signed.access_token()).await.status(),
        401
    );
}

#[tokio::test]
async fn revoking_an_access_token_ends_that_token_only() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    // A wrong hint is no reason to fail (RFC 7009 §2.1).
    let response = revoke(
        &app,
        &signed.client,
        &[
            ("token", signed.access_token()),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        get_userinfo(&app, signed.access_token()).await.status(),
        401
    );
    let refreshed =
        token_body(refresh(&app, &signed.client, signed.refresh_token(), &[]).await).await;
    assert_eq!(
        get_userinfo(&app, refreshed["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn unknown_or_invalid_tokens_and_unknown_hints_get_a_200() {
    let app = spawn_app().await;
    let client = confidential_client(&app).await;
    for params in [
        vec![("token", "never-issued")],
        vec![("token", "a.b.c")],
        vec![("token", "never-issued"), ("token_type_hint", "id_token")],
        vec![
            ("token", "never-issued"),
            ("token_type_hint", "something_else"),
        ],
    ] {
        let response = revoke(&app, &client, &params).await;
        assert_eq!(response.status(), 200, "{params:?}");
    }
}

#[tokio::test]
async fn a_token_is_required() {
    let app = spawn_app().await;
    let client = confidential_client(&app).await;
    let response = revoke(&app, &client, &[("token_type_hint", "access_token")]).await;
    assert_eq!(oauth_error(response, 400).await, "invalid_request");
}

#[tokio::test]
async fn the_client_must_authenticate() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let wrong = TestClient {
        secret: Some("wrong".to_owned()),
        ..signed.client.clone()
    };
    let response = revoke(&app, &wrong, &[("token", signed.refresh_token())]).await;
    assert_eq!(oauth_error(response, 401).await, "invalid_client");
    let response = post_form(
        &app,
        "/revoke",
        &signed.client,
        Auth::Nothing,
        &[("token", signed.refresh_token())],
    )
    .await;
    assert_eq!(oauth_error(response, 401).await, "invalid_client");
    assert_eq!(
        refresh(&app, &signed.client, signed.refresh_token(), &[])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_public_client_revokes_with_its_client_id() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = public_client(&app).await;
    let signed = sign_in_with(&app, user_id, client, "openid").await;
    let response = revoke(&app, &signed.client, &[("token", signed.refresh_token())]).await;
    assert_eq!(response.status(), 200);
    let again = refresh(&app, &signed.client, signed.refresh_token(), &[]).await;
    assert_eq!(oauth_error(again, 400).await, "invalid_grant");
}

#[tokio::test]
async fn a_token_issued_to_another_client_is_refused_and_left_alone() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let other = confidential_client(&app).await;
    for token in [signed.refresh_token(), signed.access_token()] {
        let response = revoke(&app, &other, &[("token", token)]).await;
        assert_eq!(oauth_error(response, 400).await, "invalid_grant");
    }
    assert_eq!(
        get_userinfo(&app, signed.access_token()).await.status(),
        200
    );
    assert_eq!(
        refresh(&app, &signed.client, signed.refresh_token(), &[])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_client_credentials_token_can_be_revoked() {
    let app = spawn_app().await;
    let client = service_client(&app, "users:read").await;
    let body = token_body(
        post_form(
            &app,
            "/token",
            &client,
            Auth::Basic,
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await;
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        revoke(&app, &client, &[("token", token)]).await.status(),
        200
    );
    let introspected: serde_json::Value = post_form(
        &app,
        "/introspect",
        &client,
        Auth::Basic,
        &[("token", token)],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(introspected, serde_json::json!({"active": false}));
}
