//! `GET`/`POST /userinfo` (OIDC Core §5.3, RFC 6750 §2.1 and §3.1).

use serde_json::Value;

use crate::browser_helpers::sign_text_with_idp_key;
use crate::helpers::{decode_jwt, spawn_app};
use crate::oauth_helpers::{
    Auth, assert_no_store, get_userinfo, oauth_error, post_form, refresh, service_client, set_name,
    sign_in, token_body,
};

#[tokio::test]
async fn userinfo_answers_the_claims_the_scope_released_over_get_and_post() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid email profile").await;
    set_name(&app, "ada@example.com", "Ada Lovelace").await;
    let response = get_userinfo(&app, signed.access_token()).await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    let (_, id_token) = decode_jwt(signed.id_token());
    assert_eq!(body["sub"], id_token["sub"]);
    assert_eq!(body["sub"], signed.user_id.as_str());
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["email_verified"], false);
    assert_eq!(body["name"], "Ada Lovelace");
    let updated_at = body["updated_at"].as_i64().expect("updated_at, a number");
    assert!((updated_at - chrono::Utc::now().timestamp()).abs() < 60);

    let response = app
        .client
        .post(app.url("/userinfo"))
        .bearer_auth(signed.access_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let posted: Value = response.json().await.unwrap();
    assert_eq!(posted, body);
}

/// A name changed by its owner reaches userinfo and the next ID token at once, with a
/// later `updated_at`.
#[tokio::test]
async fn a_changed_name_reaches_userinfo_and_the_next_id_token() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid profile").await;
    let before: Value = get_userinfo(&app, signed.access_token())
        .await
        .json()
        .await
        .unwrap();
    assert!(before.get("name").is_none(), "no name set yet: {before}");

    app.clock.shift(chrono::Duration::minutes(5));
    set_name(&app, "ada@example.com", "Ada King").await;
    let after: Value = get_userinfo(&app, signed.access_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["name"], "Ada King");
    let moved = after["updated_at"].as_i64().unwrap() - before["updated_at"].as_i64().unwrap();
    assert!((300..400).contains(&moved), "{moved}");

    let refreshed =
        token_body(refresh(&app, &signed.client, signed.refresh_token(), &[]).await).await;
    let (_, claims) = decode_jwt(refreshed["id_token"].as_str().unwrap());
    assert_eq!(claims["name"], "Ada King");
    assert_eq!(claims["updated_at"], after["updated_at"]);
}

#[tokio::test]
async fn userinfo_releases_only_sub_for_the_openid_scope_alone() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    set_name(&app, "ada@example.com", "Ada").await;
    let body: Value = get_userinfo(&app, signed.access_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body, serde_json::json!({"sub": signed.user_id}));
}

async fn assert_invalid_token(response: reqwest::Response) {
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(oauth_error(response, 401).await, "invalid_token");
}

#[tokio::test]
async fn a_missing_token_gets_a_bare_bearer_challenge() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"));
    assert!(!challenge.contains("error"));
}

#[tokio::test]
async fn an_id_token_is_not_an_access_token() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    assert_invalid_token(get_userinfo(&app, signed.id_token()).await).await;
}

#[tokio::test]
async fn forged_and_garbage_tokens_are_invalid_tokens() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let token = signed.access_token();
    let (head, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        serde_json::json!({"sub": "someone-else", "scope": "openid"}).to_string(),
    );
    let forged = format!("{head}.{claims}.{signature}");
    assert_invalid_token(get_userinfo(&app, &forged).await).await;
    assert_invalid_token(get_userinfo(&app, "garbage").await).await;
}

#[tokio::test]
async fn a_well_signed_access_token_that_names_a_member_twice_is_refused() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let (header, claims) = decode_jwt(signed.access_token());
    let header = serde_json::json!({"alg": header["alg"], "typ": header["typ"]}).to_string();
    let claims = claims.to_string();
    // The same claims re-signed are accepted; with a second `sub` in front they are not.
    let resigned = sign_text_with_idp_key(&app, &header, &claims).await;
    assert_eq!(get_userinfo(&app, &resigned).await.status(), 200);
    let sub_twice = claims.replacen('{', r#"{"sub":"someone-else","#, 1);
    let ambiguous = sign_text_with_idp_key(&app, &header, &sub_twice).await;
    assert_invalid_token(get_userinfo(&app, &ambiguous).await).await;
}

#[tokio::test]
async fn a_first_party_login_token_is_not_accepted() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let token = app.login("ada@example.com").await;
    assert_invalid_token(get_userinfo(&app, &token).await).await;
}

#[tokio::test]
async fn a_client_credentials_token_has_no_user() {
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
    assert_invalid_token(get_userinfo(&app, body["access_token"].as_str().unwrap()).await).await;
}

#[tokio::test]
async fn a_token_without_openid_is_an_insufficient_scope() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "users:read").await;
    let response = get_userinfo(&app, signed.access_token()).await;
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains(r#"error="insufficient_scope""#));
    assert_eq!(oauth_error(response, 403).await, "insufficient_scope");
}

#[tokio::test]
async fn a_revoked_access_token_is_refused() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let revoked = post_form(
        &app,
        "/revoke",
        &signed.client,
        Auth::Registered,
        &[("token", signed.access_token())],
    )
    .await;
    assert_eq!(revoked.status(), 200);
    assert_invalid_token(get_userinfo(&app, signed.access_token()).await).await;
}

#[tokio::test]
async fn userinfo_takes_the_token_from_a_form_encoded_post_body() {
    // RFC 6750 §2.2, as the OpenID Foundation's userinfo-post-body module sends it.
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid email").await;
    let by_header: Value = get_userinfo(&app, signed.access_token())
        .await
        .json()
        .await
        .unwrap();
    let response = app
        .client
        .post(app.url("/userinfo"))
        .form(&[("access_token", signed.access_token())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    let by_body: Value = response.json().await.unwrap();
    assert_eq!(by_body, by_header);
    assert_eq!(by_body["email"], "ada@example.com");

    let forged = app
        .client
        .post(app.url("/userinfo"))
        .form(&[("access_token", "not.a.token")])
        .send()
        .await
        .unwrap();
    assert_invalid_token(forged).await;
}

async fn assert_invalid_request(response: reqwest::Response) {
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="invalid_request""#
    );
    assert_eq!(oauth_error(response, 400).await, "invalid_request");
}

#[tokio::test]
async fn a_token_sent_two_ways_at_once_or_in_the_query_is_refused() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let token = signed.access_token();
    // RFC 6750 §2: one method per request.
    let both = app
        .client
        .post(app.url("/userinfo"))
        .bearer_auth(token)
        .form(&[("access_token", token)])
        .send()
        .await
        .unwrap();
    assert_invalid_request(both).await;
    let twice = app
        .client
        .post(app.url("/userinfo"))
        .form(&[("access_token", token), ("access_token", token)])
        .send()
        .await
        .unwrap();
    assert_invalid_request(twice).await;
    // §2.3 (the query) is not offered, on either method.
    for request in [
        app.client.get(app.url("/userinfo")),
        app.client.post(app.url("/userinfo")),
    ] {
        let response = request
            .query(&[("access_token", token)])
            .send()
            .await
            .unwrap();
        assert_invalid_request(response).await;
    }
    // A body that is not form-encoded carries no token.
    let json = app
        .client
        .post(app.url("/userinfo"))
        .json(&serde_json::json!({"access_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 401);
    assert!(
        !json.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error")
    );
}
