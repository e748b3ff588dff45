//! `POST /token` with `grant_type=refresh_token` (RFC 6749 §6, OIDC Core §12, RFC 9700
//! §4.14.2): rotation, reuse detection, scope narrowing, expiry.

use serde_json::Value;

use crate::helpers::{decode_jwt, spawn_app, spawn_app_with};
use crate::oauth_helpers::{
    Signed, confidential_client, get_userinfo, now, oauth_error, refresh, sign_in, sign_in_with,
    token_body,
};

async fn refreshed(app: &crate::helpers::TestApp, signed: &Signed, token: &str) -> Value {
    token_body(refresh(app, &signed.client, token, &[]).await).await
}

#[tokio::test]
async fn a_refresh_token_is_rotated_on_every_use() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid email").await;
    let first = refreshed(&app, &signed, signed.refresh_token()).await;
    let next = first["refresh_token"].as_str().unwrap();
    assert_ne!(next, signed.refresh_token());
    assert_eq!(first["scope"], "email openid");
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(
        get_userinfo(&app, first["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let second = refreshed(&app, &signed, next).await;
    assert_ne!(second["refresh_token"], first["refresh_token"]);
}

#[tokio::test]
async fn a_refreshed_id_token_keeps_iss_sub_aud_and_auth_time_with_a_new_iat_and_no_nonce() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid email").await;
    let (_, original) = decode_jwt(signed.id_token());
    assert!(original.get("nonce").is_some());
    let body = refreshed(&app, &signed, signed.refresh_token()).await;
    let id_token = body["id_token"].as_str().unwrap();
    let (_, claims) = decode_jwt(id_token);
    for claim in ["iss", "sub", "aud", "auth_time", "sid", "email"] {
        assert_eq!(claims[claim], original[claim], "{claim}");
    }
    assert!(claims.get("nonce").is_none(), "OIDC Core §12.2 errata");
    assert!(claims["iat"].as_i64().unwrap() >= original["iat"].as_i64().unwrap());
    assert_eq!(
        claims["at_hash"].as_str().unwrap(),
        crate::oauth_helpers::expected_at_hash(body["access_token"].as_str().unwrap())
    );
}

#[tokio::test]
async fn presenting_a_rotated_refresh_token_again_revokes_the_whole_family() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let rotated = refreshed(&app, &signed, signed.refresh_token()).await;
    let live_refresh = rotated["refresh_token"].as_str().unwrap();
    let live_access = rotated["access_token"].as_str().unwrap();

    let reuse = refresh(&app, &signed.client, signed.refresh_token(), &[]).await;
    assert_eq!(oauth_error(reuse, 400).await, "invalid_grant");

    let after = refresh(&app, &signed.client, live_refresh, &[]).await;
    assert_eq!(oauth_error(after, 400).await, "invalid_grant");
    assert_eq!(get_userinfo(&app, live_access).await.status(), 401);
    assert_eq!(
        get_userinfo(&app, signed.access_token()).await.status(),
        401
    );
}

#[tokio::test]
async fn the_scope_can_narrow_on_refresh_but_never_widen() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid email profile").await;
    let narrowed = token_body(
        refresh(
            &app,
            &signed.client,
            signed.refresh_token(),
            &[("scope", "openid")],
        )
        .await,
    )
    .await;
    assert_eq!(narrowed["scope"], "openid");
    let (_, access) = decode_jwt(narrowed["access_token"].as_str().unwrap());
    assert_eq!(access["scope"], "openid");
    assert!(access.get("email").is_none());
    let (_, id) = decode_jwt(narrowed["id_token"].as_str().unwrap());
    assert!(id.get("email").is_none());

    let next = narrowed["refresh_token"].as_str().unwrap();
    let widened = refresh(
        &app,
        &signed.client,
        next,
        &[("scope", "openid users:admin")],
    )
    .await;
    assert_eq!(oauth_error(widened, 400).await, "invalid_scope");

    // The refused request rotated nothing, and the family still holds the grant's
    // scope: a later refresh without `scope` gets all of it back.
    let full = token_body(refresh(&app, &signed.client, next, &[]).await).await;
    assert_eq!(full["scope"], "email openid profile");

    let without_openid = token_body(
        refresh(
            &app,
            &signed.client,
            full["refresh_token"].as_str().unwrap(),
            &[("scope", "email")],
        )
        .await,
    )
    .await;
    assert!(without_openid.get("id_token").is_none());
}

#[tokio::test]
async fn a_refresh_token_of_another_client_is_an_invalid_grant_and_stays_usable() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let other = confidential_client(&app).await;
    let stolen = refresh(&app, &other, signed.refresh_token(), &[]).await;
    assert_eq!(oauth_error(stolen, 400).await, "invalid_grant");
    let own = refresh(&app, &signed.client, signed.refresh_token(), &[]).await;
    assert_eq!(own.status(), 200);
}

#[tokio::test]
async fn an_unknown_refresh_token_is_an_invalid_grant_and_a_missing_one_an_invalid_request() {
    let app = spawn_app().await;
    let client = confidential_client(&app).await;
    let response = refresh(&app, &client, "never-issued", &[]).await;
    assert_eq!(oauth_error(response, 400).await, "invalid_grant");
    let response =
        crate::oauth_helpers::post_token(&app, &client, &[("grant_type", "refresh_token")]).await;
    assert_eq!(oauth_error(response, 400).await, "invalid_request");
}

#[tokio::test]
async fn refresh_tokens_expire_when_idle_and_at_the_end_of_the_family() {
    let app = spawn_app_with(service_kit::testing::fresh_database("idp").await, |s| {
        s.refresh_token_idle_ttl_secs = 120;
        s.refresh_token_absolute_ttl_secs = 3600;
    })
    .await;
    let user_id = app.register("ada@example.com").await;
    let client = confidential_client(&app).await;
    let signed = sign_in_with(&app, user_id, client, "openid").await;
    let hash = idp::guards::secrets::hash(signed.refresh_token());
    let (created, expires, absolute): (i64, i64, i64) = sqlx::query_as(
        "SELECT created_at, expires_at, absolute_expires_at FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(&hash)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(expires - created, 120, "IDP_REFRESH_TOKEN_IDLE_TTL_SECS");
    assert_eq!(
        absolute - created,
        3600,
        "IDP_REFRESH_TOKEN_ABSOLUTE_TTL_SECS"
    );

    // Rotation renews the idle expiry but keeps the family's end.
    let body = token_body(refresh(&app, &signed.client, signed.refresh_token(), &[]).await).await;
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    let (next_absolute,): (i64,) =
        sqlx::query_as("SELECT absolute_expires_at FROM refresh_tokens WHERE token_hash = $1")
            .bind(idp::guards::secrets::hash(&next))
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(next_absolute, absolute);

    // Idle for longer than allowed.
    sqlx::query("UPDATE refresh_tokens SET expires_at = $1 WHERE token_hash = $2")
        .bind(now() - 1)
        .bind(idp::guards::secrets::hash(&next))
        .execute(&app.db.pool)
        .await
        .unwrap();
    let expired = refresh(&app, &signed.client, &next, &[]).await;
    assert_eq!(oauth_error(expired, 400).await, "invalid_grant");
}

#[tokio::test]
async fn a_refresh_token_past_the_family_end_is_an_invalid_grant() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    sqlx::query("UPDATE refresh_tokens SET absolute_expires_at = $1 WHERE token_hash = $2")
        .bind(now() - 1)
        .bind(idp::guards::secrets::hash(signed.refresh_token()))
        .execute(&app.db.pool)
        .await
        .unwrap();
    let response = refresh(&app, &signed.client, signed.refresh_token(), &[]).await;
    assert_eq!(oauth_error(response, 400).await, "invalid_grant");
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_rotate_it_once_at_most() {
    let app = spawn_app().await;
    let signed = sign_in(&app, "ada@example.com", "openid").await;
    let attempts = futures::future::join_all(
        (0..4).map(|_| refresh(&app, &signed.client, signed.refresh_token(), &[])),
    )
    .await;
    let successes = attempts.iter().filter(|r| r.status() == 200).count();
    assert!(successes <= 1, "{successes} rotations succeeded");
}
