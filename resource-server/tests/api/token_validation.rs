//! Offline token validation: every forged, broken or misdirected token gets the same
//! 401 `invalid_token`; a valid one gets through.

use hmac::{KeyInit, Mac};
use josekit::jwk::KeyPair;
use serde_json::{Value, json};

use crate::helpers::{
    ATTACKER_KEY, TestApp, TestUser, USER_SCOPES, assert_invalid_token, b64, now, public_jwk,
    sign_with, spawn_app,
};

/// GET /users/me with `token`.
async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.get("/users/me", Some(token)).await
}

fn valid_claims(app: &TestApp) -> Value {
    let user = TestUser::generate();
    app.issuer.claims(&user.id, Some(&user.email), USER_SCOPES)
}

#[tokio::test]
async fn a_valid_token_is_accepted() {
    let app = spawn_app().await;
    let token = app.issuer.token(&valid_claims(&app));
    assert_eq!(me(&app, &token).await.status(), 200);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let token = app.issuer.token(&valid_claims(&app));
    let response = app
        .client
        .get(app.url("/users/me"))
        .header("Authorization", format!("bEARER {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_request_without_a_token_gets_a_bare_bearer_challenge() {
    let app = spawn_app().await;
    for response in [
        app.get("/users/me", None).await,
        app.client
            .get(app.url("/users/me"))
            .header("Authorization", "Basic dXNlcjpwYXNz")
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "missing_token");
    }
}

#[tokio::test]
async fn a_token_in_the_query_string_is_ignored() {
    let app = spawn_app().await;
    let token = app.issuer.token(&valid_claims(&app));
    let response = app
        .client
        .get(app.url(&format!("/users/me?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn the_idp_media_type_forms_of_typ_and_an_audience_array_are_accepted() {
    let app = spawn_app().await;
    let mut header = app.issuer.header();
    header["typ"] = json!("application/AT+JWT");
    let mut claims = valid_claims(&app);
    claims["aud"] = json!(["http://other.example", crate::helpers::AUDIENCE]);
    let token = app.issuer.sign(&header, &claims);
    assert_eq!(me(&app, &token).await.status(), 200);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = spawn_app().await;
    let mut claims = valid_claims(&app);
    claims["iat"] = json!(now() - 3600);
    claims["exp"] = json!(now() - 120);
    assert_invalid_token(me(&app, &app.issuer.token(&claims)).await).await;
}

#[tokio::test]
async fn a_token_expired_within_the_leeway_is_still_accepted() {
    let app = spawn_app().await;
    let mut claims = valid_claims(&app);
    claims["exp"] = json!(now() - 5);
    assert_eq!(me(&app, &app.issuer.token(&claims)).await.status(), 200);
}

#[tokio::test]
async fn a_token_with_a_tampered_payload_is_refused() {
    let app = spawn_app().await;
    let token = app.issuer.token(&valid_claims(&app));
    let mut forged_claims = valid_claims(&app);
    forged_claims["scope"] = json!("users:read users:write users:admin");
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(forged_claims.to_string()),
        parts[2]
    );
    assert_invalid_token(me(&app, &tampered).await).await;
}

#[tokio::test]
async fn a_well_signed_token_that_names_a_member_twice_is_refused() {
    // RFC 7519 §4 lets a parser take the last of two `sub`s; another may take the first.
    let app = spawn_app().await;
    let victim = TestUser::generate();
    let claims = valid_claims(&app).to_string();
    let header = app.issuer.header().to_string();
    let sub_twice = claims.replacen('{', &format!(r#"{{"sub":"{}","#, victim.id), 1);
    assert_invalid_token(me(&app, &app.issuer.sign_text(&header, &sub_twice)).await).await;
    let kid_twice = header.replacen('{', r#"{"kid":"unknown","#, 1);
    assert_invalid_token(me(&app, &app.issuer.sign_text(&kid_twice, &claims)).await).await;
    // The same texts without the repetition are fine.
    assert_eq!(
        me(&app, &app.issuer.sign_text(&header, &claims))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let app = spawn_app().await;
    let mut claims = valid_claims(&app);
    claims["iss"] = json!("http://evil.example");
    assert_invalid_token(me(&app, &app.issuer.token(&claims)).await).await;
    // Exact comparison: a trailing slash is another issuer.
    claims["iss"] = json!(format!("{}/", app.issuer.issuer()));
    assert_invalid_token(me(&app, &app.issuer.token(&claims)).await).await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let app = spawn_app().await;
    let mut claims = valid_claims(&app);
    claims["aud"] = json!("http://other.example");
    assert_invalid_token(me(&app, &app.issuer.token(&claims)).await).await;
    claims["aud"] = json!(["http://other.example"]);
    assert_invalid_token(me(&app, &app.issuer.token(&claims)).await).await;
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_refused() {
    let app = spawn_app().await;
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": app.issuer.kid()});
    let unsigned = format!(
        "{}.{}.",
        b64(header.to_string()),
        b64(valid_claims(&app).to_string())
    );
    assert_invalid_token(me(&app, &unsigned).await).await;
    // Even with a real RS256 signature under it, `none` is not RS256.
    let signed = app.issuer.sign(&header, &valid_claims(&app));
    assert_invalid_token(me(&app, &signed).await).await;
}

#[tokio::test]
async fn an_hs256_token_keyed_with_the_public_key_is_refused() {
    let app = spawn_app().await;
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": app.issuer.kid()});
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string()),
        b64(valid_claims(&app).to_string())
    );
    let jwk = public_jwk(&crate::helpers::KEY_ONE, &app.issuer.kid()).to_string();
    let pem = crate::helpers::KEY_ONE.to_pem_public_key();
    for secret in [jwk.as_bytes(), pem.as_slice()] {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(signing_input.as_bytes());
        let token = format!("{signing_input}.{}", b64(mac.finalize().into_bytes()));
        assert_invalid_token(me(&app, &token).await).await;
    }
}

#[tokio::test]
async fn a_token_with_an_unknown_kid_is_refused() {
    let app = spawn_app().await;
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "no-such-key"});
    let token = app.issuer.sign(&header, &valid_claims(&app));
    assert_invalid_token(me(&app, &token).await).await;
}

#[tokio::test]
async fn a_token_without_a_kid_is_refused() {
    let app = spawn_app().await;
    let header = json!({"alg": "RS256", "typ": "at+jwt"});
    let token = app.issuer.sign(&header, &valid_claims(&app));
    assert_invalid_token(me(&app, &token).await).await;
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_our_kid_is_refused() {
    let app = spawn_app().await;
    let token = sign_with(&ATTACKER_KEY, &app.issuer.header(), &valid_claims(&app));
    assert_invalid_token(me(&app, &token).await).await;
}

#[tokio::test]
async fn keys_embedded_in_or_linked_from_the_header_are_never_used() {
    let app = spawn_app().await;
    let attacker_jwk = public_jwk(&ATTACKER_KEY, "attacker");
    for header in [
        json!({"alg": "RS256", "typ": "at+jwt", "kid": "attacker", "jwk": attacker_jwk}),
        json!({"alg": "RS256", "typ": "at+jwt", "kid": "attacker",
               "jku": format!("{}/attacker-jwks", app.issuer.issuer())}),
        json!({"alg": "RS256", "typ": "at+jwt", "kid": "attacker", "x5u": "http://evil.example/cert"}),
    ] {
        let token = sign_with(&ATTACKER_KEY, &header, &valid_claims(&app));
        assert_invalid_token(me(&app, &token).await).await;
    }
}

#[tokio::test]
async fn an_id_token_like_typ_jwt_token_is_refused() {
    let app = spawn_app().await;
    for typ in [json!("JWT"), json!("at+jwt+extra"), Value::Null] {
        let mut header = app.issuer.header();
        header["typ"] = typ;
        let token = app.issuer.sign(&header, &valid_claims(&app));
        assert_invalid_token(me(&app, &token).await).await;
    }
}

#[tokio::test]
async fn a_token_with_a_crit_header_is_refused() {
    let app = spawn_app().await;
    let mut header = app.issuer.header();
    header["crit"] = json!(["exp"]);
    header["exp"] = json!(now() + 600);
    let token = app.issuer.sign(&header, &valid_claims(&app));
    assert_invalid_token(me(&app, &token).await).await;
}

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let app = spawn_app().await;
    let mut claims = valid_claims(&app);
    claims.as_object_mut().unwrap().remove("exp");
    assert_invalid_token(me(&app, &app.issuer.token(&claims)).await).await;
}

#[tokio::test]
async fn a_token_whose_nbf_is_in_the_future_is_refused() {
    let app = spawn_app().await;
    let mut claims = valid_claims(&app);
    claims["nbf"] = json!(now() + 300);
    assert_invalid_token(me(&app, &app.issuer.token(&claims)).await).await;
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    let app = spawn_app().await;
    let mut claims = valid_claims(&app);
    claims["iat"] = json!(now() + 300);
    assert_invalid_token(me(&app, &app.issuer.token(&claims)).await).await;
}

#[tokio::test]
async fn a_token_with_missing_or_wrongly_typed_claims_is_refused() {
    let app = spawn_app().await;
    let cases = [
        ("exp", json!((now() + 600).to_string())),
        ("iat", json!("yesterday")),
        ("sub", json!(12345)),
        ("aud", json!(42)),
        ("iss", json!([app.issuer.issuer()])),
        ("scope", json!(["users:read"])),
        ("client_id", json!(null)),
        ("jti", json!({"id": 1})),
        ("email", json!(false)),
    ];
    for (claim, value) in cases {
        let mut claims = valid_claims(&app);
        claims[claim] = value;
        let response = me(&app, &app.issuer.token(&claims)).await;
        assert_eq!(response.status(), 401, "a bad {claim} was accepted");
        assert_invalid_token(response).await;
    }
    for claim in ["sub", "iat", "iss", "aud", "jti", "client_id"] {
        let mut claims = valid_claims(&app);
        claims.as_object_mut().unwrap().remove(claim);
        let response = me(&app, &app.issuer.token(&claims)).await;
        assert_eq!(response.status(), 401, "a missing {claim} was accepted");
        assert_invalid_token(response).await;
    }
}

#[tokio::test]
async fn garbage_is_refused() {
    let app = spawn_app().await;
    let header = b64(app.issuer.header().to_string());
    for garbage in [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        "...".to_owned(),
        format!("{header}.not json.c2ln"),
        format!("{header}.{}.c2ln", b64("not json")),
        format!("{}.e30.c2ln", b64("[1,2]")),
        format!("{header}.e30.c2ln.extra"),
        "Bearer".to_owned(),
        "eyJ\u{e9}".to_owned(),
    ] {
        assert_invalid_token(me(&app, &garbage).await).await;
    }
}

#[tokio::test]
async fn an_oversize_token_is_refused() {
    let app = spawn_app().await;
    let mut claims = valid_claims(&app);
    claims["padding"] = json!("x".repeat(10 * 1024));
    assert_invalid_token(me(&app, &app.issuer.token(&claims)).await).await;
}
