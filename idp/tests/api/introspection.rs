//! `POST /introspect` (RFC 7662).

use serde_json::{Value, json};

use crate::helpers::{AUDIENCE, decode_jwt, spawn_app};
use crate::oauth_helpers::{
    Auth, TestClient, assert_no_store, confidential_client, oauth_error, post_form, public_client,
    refresh, service_client, sign_in, token_body,
};

async fn introspect(app: &crate::helpers::TestApp, client: &TestClient, token: &str) -> Value {
    let response = post_form(
        app,
        "/introspect",
        client,
        Auth::Registered,
        &[("token", token)],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_active_access_token_is_described() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid email").await;
    // A resource server (any confidential client) may introspect it.
    let resource_server = service_client(&app, "users:read").await;
    let body = introspect(&app, &resource_server, signed.access_token()).await;
    let (_, claims) = decode_jwt(signed.access_token());
    assert_eq!(
        body,
        json!({
            "active": true,
            "scope": "email openid",
            "client_id": signed.client.id,
            "token_type": "Bearer",
            "exp": claims["exp"],
            "iat": claims["iat"],
            "sub": signed.user_id,
            "aud": AUDIENCE,
            "iss": app.issuer,
            "jti": claims["jti"],
        })
    );
}

#[tokio::test]
async fn an_active_refresh_token_is_described_to_its_own_client_only() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let body = introspect(&app, &signed.client, signed.refresh_token()).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["client_id"], signed.client.id.as_str());
    assert_eq!(body["sub"], signed.user_id.as_str());
    assert_eq!(body["scope"], "openid");
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());

    let other = confidential_client(&app).await;
    assert_eq!(
        introspect(&app, &other, signed.refresh_token()).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn unknown_rotated_and_revoked_tokens_are_inactive() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let inactive = json!({"active": false});
    assert_eq!(
        introspect(&app, &signed.client, "never-issued").await,
        inactive
    );
    assert_eq!(introspect(&app, &signed.client, "a.b.c").await, inactive);
    assert_eq!(
        introspect(&app, &signed.client, signed.id_token()).await,
        inactive,
        "an ID token is not an access token"
    );

    let rotated =
        token_body(refresh(&app, &signed.client, signed.refresh_token(), &[]).await).await;
    assert_eq!(
        introspect(&app, &signed.client, signed.refresh_token()).await,
        inactive
    );
    let live = rotated["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&app, &signed.client, live).await["active"], true);

    let revoked = post_form(
        &app,
        "/revoke",
        &signed.client,
        Auth::Registered,
        &[("token", live)],
    )
    .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(introspect(&app, &signed.client, live).await, inactive);
    assert_eq!(
        introspect(
            &app,
            &signed.client,
            rotated["access_token"].as_str().unwrap()
        )
        .await,
        inactive
    );
}

#[tokio::test]
async fn public_and_unauthenticated_clients_may_not_introspect() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let public = public_client(&app).await;
    let response = post_form(
        &app,
        "/introspect",
        &public,
        Auth::IdOnly,
        &[("token", signed.access_token())],
    )
    .await;
    assert_eq!(oauth_error(response, 401).await, "invalid_client");
    let response = post_form(
        &app,
        "/introspect",
        &signed.client,
        Auth::Nothing,
        &[("token", signed.access_token())],
    )
    .await;
    assert_eq!(oauth_error(response, 401).await, "invalid_client");
}

#[tokio::test]
async fn a_token_is_required() {
    let app = spawn_app().await;
    let client = confidential_client(&app).await;
    let response = post_form(&app, "/introspect", &client, Auth::Registered, &[]).await;
    assert_eq!(oauth_error(response, 400).await, "invalid_request");
}
