//! `POST /token` with `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6,
//! OIDC Core §3.1.3).

use idp::oauth::clients::{ClientType, PkcePolicy};
use serde_json::Value;

use crate::helpers::{AUDIENCE, decode_jwt, spawn_app, verify_independently};
use crate::oauth_helpers::{
    ClientSpec, CodeSpec, NONCE, REDIRECT_URI, SESSION_ID, VERIFIER, auth_time,
    confidential_client, create_client, expected_at_hash, get_userinfo, issue_code, now,
    oauth_error, post_token, public_client, redeem, refresh, set_name, sign_in, token_body,
};

fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn a_code_is_exchanged_for_an_access_token_an_id_token_and_a_refresh_token() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    set_name(&app, "ada@example.com", "Ada Lovelace").await;
    let client = confidential_client(&app).await;
    let code = issue_code(&app, &client, &user_id, CodeSpec::default()).await;

    let body = token_body(redeem(&app, &client, &code).await).await;
    assert_eq!(
        sorted_keys(&body),
        [
            "access_token",
            "expires_in",
            "id_token",
            "refresh_token",
            "scope",
            "token_type"
        ]
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "email openid profile");
    let refresh_token = body["refresh_token"].as_str().unwrap();
    assert!(refresh_token.len() >= 43, "256 bits, base64url");

    let jwks = app.get_json("/jwks").await;
    let access_token = body["access_token"].as_str().unwrap();
    assert!(verify_independently(access_token, &jwks));
    let (header, claims) = decode_jwt(access_token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["scope"], "email openid profile");
    assert_eq!(claims["email"], "ada@example.com");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));

    let id_token = body["id_token"].as_str().unwrap();
    assert!(verify_independently(id_token, &jwks));
    let (header, claims) = decode_jwt(id_token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(
        sorted_keys(&claims),
        [
            "acr",
            "amr",
            "at_hash",
            "aud",
            "auth_time",
            "email",
            "email_verified",
            "exp",
            "iat",
            "iss",
            "name",
            "nonce",
            "sid",
            "sub",
            "updated_at"
        ]
    );
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["aud"], client.id.as_str());
    assert_eq!(claims["nonce"], NONCE);
    assert_eq!(claims["sid"], SESSION_ID);
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["email_verified"], false);
    assert_eq!(claims["name"], "Ada Lovelace");
    assert!((claims["updated_at"].as_i64().unwrap() - now()).abs() < 60);
    assert_eq!(claims["at_hash"], expected_at_hash(access_token).as_str());
    let iat = claims["iat"].as_i64().unwrap();
    assert!((iat - now()).abs() < 60);
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 3600);
    assert!((claims["auth_time"].as_i64().unwrap() - auth_time()).abs() < 60);
    assert_eq!(claims["acr"], "urn:idp:acr:pwd");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
}

#[tokio::test]
async fn the_id_token_carries_no_claim_the_scope_did_not_ask_for() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    set_name(&app, "ada@example.com", "Ada").await;
    let client = confidential_client(&app).await;
    let code = issue_code(
        &app,
        &client,
        &user_id,
        CodeSpec {
            scope: "openid",
            nonce: None,
            ..CodeSpec::default()
        },
    )
    .await;
    let body = token_body(redeem(&app, &client, &code).await).await;
    let (_, claims) = decode_jwt(body["id_token"].as_str().unwrap());
    assert_eq!(
        sorted_keys(&claims),
        [
            "acr",
            "amr",
            "at_hash",
            "aud",
            "auth_time",
            "exp",
            "iat",
            "iss",
            "sid",
            "sub"
        ]
    );
    let (_, access) = decode_jwt(body["access_token"].as_str().unwrap());
    assert!(access.get("email").is_none(), "no email without the scope");
}

#[tokio::test]
async fn without_openid_there_is_no_id_token() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = confidential_client(&app).await;
    let code = issue_code(
        &app,
        &client,
        &user_id,
        CodeSpec {
            scope: "users:read",
            ..CodeSpec::default()
        },
    )
    .await;
    let body = token_body(redeem(&app, &client, &code).await).await;
    assert!(body.get("id_token").is_none());
    assert_eq!(body["scope"], "users:read");
}

#[tokio::test]
async fn a_client_without_the_refresh_grant_gets_no_refresh_token() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = create_client(
        &app,
        ClientSpec {
            grant_types: vec![idp::oauth::clients::GrantType::AuthorizationCode],
            ..ClientSpec::default()
        },
    )
    .await;
    let code = issue_code(&app, &client, &user_id, CodeSpec::default()).await;
    let body = token_body(redeem(&app, &client, &code).await).await;
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("id_token").is_some());
}

#[tokio::test]
async fn a_public_client_redeems_its_code_with_only_its_client_id_and_pkce() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = public_client(&app).await;
    let code = issue_code(&app, &client, &user_id, CodeSpec::default()).await;
    let body = token_body(redeem(&app, &client, &code).await).await;
    assert!(body["access_token"].is_string());
    assert!(body["refresh_token"].is_string());
}

#[tokio::test]
async fn token_rejects_a_reused_authorization_code_and_revokes_what_it_issued() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = confidential_client(&app).await;
    let code = issue_code(&app, &client, &user_id, CodeSpec::default()).await;
    let first = token_body(redeem(&app, &client, &code).await).await;
    let access_token = first["access_token"].as_str().unwrap();
    assert_eq!(get_userinfo(&app, access_token).await.status(), 200);

    let replay = redeem(&app, &client, &code).await;
    assert_eq!(oauth_error(replay, 400).await, "invalid_grant");

    assert_eq!(get_userinfo(&app, access_token).await.status(), 401);
    let refreshed = refresh(&app, &client, first["refresh_token"].as_str().unwrap(), &[]).await;
    assert_eq!(oauth_error(refreshed, 400).await, "invalid_grant");
}

#[tokio::test]
async fn an_unknown_code_is_an_invalid_grant() {
    let app = spawn_app().await;
    let client = confidential_client(&app).await;
    let response = redeem(&app, &client, "not-a-code-we-issued").await;
    assert_eq!(oauth_error(response, 400).await, "invalid_grant");
}

#[tokio::test]
async fn an_expired_code_is_an_invalid_grant() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = confidential_client(&app).await;
    let code = issue_code(
        &app,
        &client,
        &user_id,
        CodeSpec {
            expires_in: -1,
            ..CodeSpec::default()
        },
    )
    .await;
    assert_eq!(
        oauth_error(redeem(&app, &client, &code).await, 400).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn a_code_issued_to_another_client_is_refused_and_stays_usable_by_its_own() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let owner = confidential_client(&app).await;
    let thief = confidential_client(&app).await;
    let code = issue_code(&app, &owner, &user_id, CodeSpec::default()).await;
    assert_eq!(
        oauth_error(redeem(&app, &thief, &code).await, 400).await,
        "invalid_grant"
    );
    let body = token_body(redeem(&app, &owner, &code).await).await;
    assert!(body["access_token"].is_string());
}

#[tokio::test]
async fn the_redirect_uri_must_equal_the_codes_exactly() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = confidential_client(&app).await;
    let code = issue_code(&app, &client, &user_id, CodeSpec::default()).await;
    for other in [
        "https://rp.example.com/callback/",
        "https://RP.example.com/callback",
        "https://rp.example.com/other",
    ] {
        let response = post_token(
            &app,
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", other),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        assert_eq!(oauth_error(response, 400).await, "invalid_grant", "{other}");
    }
    let missing = post_token(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(oauth_error(missing, 400).await, "invalid_request");
    assert_eq!(redeem(&app, &client, &code).await.status(), 200);
}

async fn redeem_with_verifier(
    app: &crate::helpers::TestApp,
    client: &crate::oauth_helpers::TestClient,
    code: &str,
    verifier: Option<&str>,
) -> reqwest::Response {
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
    ];
    if let Some(v) = verifier {
        params.push(("code_verifier", v));
    }
    post_token(app, client, &params).await
}

#[tokio::test]
async fn a_missing_wrong_or_malformed_code_verifier_is_an_invalid_grant() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = confidential_client(&app).await;
    let code = issue_code(&app, &client, &user_id, CodeSpec::default()).await;
    let wrong = "x".repeat(43);
    let too_short = &VERIFIER[..42];
    let bad_chars = format!("{}+", &VERIFIER[..43]);
    for verifier in [
        None,
        Some(wrong.as_str()),
        Some(too_short),
        Some(bad_chars.as_str()),
    ] {
        let response = redeem_with_verifier(&app, &client, &code, verifier).await;
        assert_eq!(
            oauth_error(response, 400).await,
            "invalid_grant",
            "{verifier:?}"
        );
    }
    // None of the failures used the code up.
    let response = redeem_with_verifier(&app, &client, &code, Some(VERIFIER)).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_verifier_for_a_code_issued_without_a_challenge_is_refused() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    // Only a confidential client with PKCE optional can get a code without a challenge.
    let client = create_client(
        &app,
        ClientSpec {
            client_type: ClientType::Confidential,
            pkce: PkcePolicy::Optional,
            ..ClientSpec::default()
        },
    )
    .await;
    let code = issue_code(
        &app,
        &client,
        &user_id,
        CodeSpec {
            challenge: None,
            ..CodeSpec::default()
        },
    )
    .await;
    let response = redeem_with_verifier(&app, &client, &code, Some(VERIFIER)).await;
    assert_eq!(oauth_error(response, 400).await, "invalid_grant");
    let response = redeem_with_verifier(&app, &client, &code, None).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_code_is_required() {
    let app = spawn_app().await;
    let client = confidential_client(&app).await;
    let response = post_token(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(oauth_error(response, 400).await, "invalid_request");
}

#[tokio::test]
async fn concurrent_redemptions_of_one_code_issue_tokens_once_at_most() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = confidential_client(&app).await;
    let code = issue_code(&app, &client, &user_id, CodeSpec::default()).await;
    let attempts = futures::future::join_all((0..4).map(|_| redeem(&app, &client, &code))).await;
    let successes = attempts.iter().filter(|r| r.status() == 200).count();
    assert!(successes <= 1, "{successes} redemptions succeeded");
}

#[tokio::test]
async fn the_subject_is_the_same_across_clients_and_codes() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let (_, claims) = decode_jwt(signed.id_token());
    assert_eq!(claims["sub"], signed.user_id.as_str());
}
