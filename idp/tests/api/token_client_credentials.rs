//! `POST /token` with `grant_type=client_credentials` (RFC 6749 §4.4): a client acting
//! for itself, never a user.

use crate::helpers::{AUDIENCE, decode_jwt, spawn_app, verify_independently};
use crate::oauth_helpers::{Auth, oauth_error, post_form, service_client, token_body};

async fn client_credentials(
    app: &crate::helpers::TestApp,
    client: &crate::oauth_helpers::TestClient,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut params = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    post_form(app, "/token", client, Auth::Basic, &params).await
}

#[tokio::test]
async fn a_service_gets_an_access_token_for_itself_without_refresh_or_id_token() {
    let app = spawn_app().await;
    let client = service_client(&app, "users:read users:admin").await;
    let body = token_body(client_credentials(&app, &client, Some("users:read")).await).await;
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["access_token", "expires_in", "scope", "token_type"]);
    assert_eq!(body["scope"], "users:read");
    let token = body["access_token"].as_str().unwrap();
    assert!(verify_independently(token, &app.get_json("/jwks").await));
    let (header, claims) = decode_jwt(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], client.id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["scope"], "users:read");
    assert!(claims.get("email").is_none());
    assert!(client.id.starts_with("c_") && uuid::Uuid::parse_str(&client.id).is_err());
}

#[tokio::test]
async fn without_a_scope_the_client_gets_its_allowance_minus_the_user_scopes() {
    let app = spawn_app().await;
    let client = service_client(&app, "openid profile email users:read users:write").await;
    let body = token_body(client_credentials(&app, &client, None).await).await;
    assert_eq!(body["scope"], "users:read users:write");
}

#[tokio::test]
async fn a_scope_beyond_the_allowance_is_an_invalid_scope() {
    let app = spawn_app().await;
    let client = service_client(&app, "users:read").await;
    let response = client_credentials(&app, &client, Some("users:read users:admin")).await;
    assert_eq!(oauth_error(response, 400).await, "invalid_scope");
}

#[tokio::test]
async fn openid_is_an_invalid_scope_since_there_is_no_user() {
    let app = spawn_app().await;
    let client = service_client(&app, "openid users:read").await;
    let response = client_credentials(&app, &client, Some("openid users:read")).await;
    assert_eq!(oauth_error(response, 400).await, "invalid_scope");
}

#[tokio::test]
async fn a_malformed_scope_is_an_invalid_scope() {
    let app = spawn_app().await;
    let client = service_client(&app, "users:read").await;
    let response = client_credentials(&app, &client, Some("users:read \"quoted\"")).await;
    assert_eq!(oauth_error(response, 400).await, "invalid_scope");
}

#[tokio::test]
async fn client_credentials_write_nothing_to_the_database() {
    let app = spawn_app().await;
    let client = service_client(&app, "users:read").await;
    token_body(client_credentials(&app, &client, None).await).await;
    for table in ["grants", "access_tokens", "refresh_tokens"] {
        let (count,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        assert_eq!(count, 0, "{table}");
    }
}
