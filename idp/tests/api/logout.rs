//! RP-Initiated Logout 1.0 at `/logout`: only exactly registered
//! `post_logout_redirect_uri`s, `state` echoed, a CSRF-protected confirmation, and the
//! server session (and what it issued) really ended.

use crate::browser_helpers::*;
use crate::helpers::{TestApp, spawn_app};

/// Signs `ada@example.com` in through an authorization request (so a code, and with it
/// the session's sid, exists). Returns the sid.
async fn signed_in(app: &TestApp, browser: &reqwest::Client, client: &TestClient) -> String {
    sign_in_and_authorize(app, browser, &AuthRequest::new(client), "ada@example.com").await;
    let sid: (String,) = sqlx::query_as("SELECT session_id FROM authorization_codes")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    sid.0
}

/// A live grant made in session `sid`, as the token endpoint would record it.
async fn grant_in_session(app: &TestApp, client: &TestClient, user_id: &str, sid: &str, id: &str) {
    sqlx::query(
        "INSERT INTO grants (id, client_id, user_id, scope, auth_time, session_id, created_at) \
         VALUES ($1, $2, $3, 'openid', 0, $4, 0)",
    )
    .bind(id)
    .bind(&client.id)
    .bind(user_id)
    .bind(sid)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

async fn revoked(app: &TestApp, grant_id: &str) -> bool {
    let row: (Option<i64>,) = sqlx::query_as("SELECT revoked_at FROM grants WHERE id = $1")
        .bind(grant_id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    row.0.is_some()
}

fn logout_url(app: &TestApp, params: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    app.url(&format!("/logout?{query}"))
}

/// Presses "Sign out" on the confirmation page at `url`.
async fn confirm(app: &TestApp, browser: &reqwest::Client, url: &str) -> reqwest::Response {
    let response = get(browser, url).await;
    assert_eq!(response.status(), 200);
    assert_page_headers(&response, "the logout confirmation");
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"action="/logout/confirm""#), "{html}");
    let mut fields = vec![("csrf_token".to_owned(), csrf_token(&html))];
    for name in ["client_id", "post_logout_redirect_uri", "state"] {
        if let Some(value) = hidden(&html, name) {
            fields.push((name.to_owned(), value));
        }
    }
    browser
        .post(app.url("/logout/confirm"))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn logout_with_a_registered_uri_echoes_state_and_ends_the_session() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = register_client(&app, |_| {}).await;
    let browser = browser();
    let sid = signed_in(&app, &browser, &client).await;
    grant_in_session(&app, &client, &user_id, &sid, "grant-in-session").await;
    grant_in_session(
        &app,
        &client,
        &user_id,
        "another-session",
        "grant-elsewhere",
    )
    .await;

    let state = "logout state/with &odd=chars é";
    let url = logout_url(
        &app,
        &[
            ("client_id", &client.id),
            ("post_logout_redirect_uri", POST_LOGOUT_REDIRECT_URI),
            ("state", state),
        ],
    );
    let response = confirm(&app, &browser, &url).await;
    let target = location(&app, &response);
    assert!(target.starts_with(POST_LOGOUT_REDIRECT_URI), "{target}");
    assert_eq!(param(&target, "state").as_deref(), Some(state));
    assert_eq!(query(&target).len(), 1, "only state: {target}");

    // The server session is gone: silent authorization needs a login again.
    let silent = AuthRequest::new(&client).set("prompt", "none");
    let url = location(&app, &authorize(&app, &browser, &silent).await);
    assert_eq!(param(&url, "error").as_deref(), Some("login_required"));
    assert!(revoked(&app, "grant-in-session").await);
    assert!(
        !revoked(&app, "grant-elsewhere").await,
        "other sessions are untouched"
    );
}

#[tokio::test]
async fn the_id_token_hint_names_the_client_and_an_expired_one_is_fine() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = register_client(&app, |_| {}).await;
    let browser = browser();
    signed_in(&app, &browser, &client).await;
    let hint = expired_id_token(&app, &client, &user_id).await;
    let url = logout_url(
        &app,
        &[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", POST_LOGOUT_REDIRECT_URI),
            ("state", "s1"),
        ],
    );
    let html = page(&browser, &url).await;
    assert!(html.contains("Photo Printer"), "{html}");
    assert!(
        !html.contains(&hint),
        "the hint is not copied into the page"
    );
    let response = confirm(&app, &browser, &url).await;
    let target = location(&app, &response);
    assert_eq!(target, format!("{POST_LOGOUT_REDIRECT_URI}?state=s1"));
}

#[tokio::test]
async fn an_unregistered_post_logout_redirect_uri_gets_the_error_page() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = register_client(&app, |_| {}).await;
    let other = register_client(&app, |c| {
        c.post_logout_redirect_uris =
            vec![idp::oauth::clients::RedirectUri::parse("https://other.example/bye").unwrap()];
    })
    .await;
    let browser = browser();
    signed_in(&app, &browser, &client).await;
    let hint = expired_id_token(&app, &client, &user_id).await;
    let aud_twice = sign_text_with_idp_key(
        &app,
        r#"{"alg":"RS256","typ":"JWT"}"#,
        &format!(
            r#"{{"aud":"{}","iss":"{}","sub":"{user_id}","aud":"{}","iat":1000000000,"exp":1000000600}}"#,
            other.id, app.issuer, client.id
        ),
    )
    .await;
    let cases: Vec<Vec<(&str, &str)>> = vec![
        // Not registered at all, or not exactly.
        vec![
            ("client_id", &client.id),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
        vec![
            ("client_id", &client.id),
            ("post_logout_redirect_uri", "https://rp.example/signed-out/"),
        ],
        // Registered, but for another client.
        vec![
            ("client_id", &client.id),
            ("post_logout_redirect_uri", "https://other.example/bye"),
        ],
        // No client to check it against.
        vec![("post_logout_redirect_uri", POST_LOGOUT_REDIRECT_URI)],
        // A client_id that contradicts the hint.
        vec![("id_token_hint", &hint), ("client_id", &other.id)],
        // A hint whose payload names `aud` twice (well signed, but ambiguous).
        vec![
            ("id_token_hint", &aud_twice),
            ("post_logout_redirect_uri", POST_LOGOUT_REDIRECT_URI),
        ],
        // A hint that is not ours.
        vec![
            ("id_token_hint", "a.b.c"),
            ("post_logout_redirect_uri", POST_LOGOUT_REDIRECT_URI),
        ],
        vec![("client_id", "c_unknown")],
    ];
    for params in cases {
        let response = get(&browser, &logout_url(&app, &params)).await;
        assert_eq!(response.status(), 400, "{params:?}");
        assert!(response.headers().get("location").is_none(), "{params:?}");
        assert_page_headers(&response, "the logout error page");
    }
    // Still signed in.
    let home = page(&browser, &app.url("/")).await;
    assert!(home.contains("Signed in as"), "{home}");
}

#[tokio::test]
async fn logout_confirmation_needs_the_csrf_token() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let client = register_client(&app, |_| {}).await;
    let browser = browser();
    signed_in(&app, &browser, &client).await;
    let html = page(&browser, &app.url("/logout")).await;
    assert!(html.contains("ada@example.com"), "{html}");
    for token in ["", "forged"] {
        let response = post_form(
            &browser,
            &app.url("/logout/confirm"),
            &[("csrf_token", token)],
        )
        .await;
        assert_eq!(response.status(), 403);
    }
    // A cross-site GET of /logout only shows the question.
    let home = page(&browser, &app.url("/")).await;
    assert!(home.contains("Signed in as"), "{home}");
}

#[tokio::test]
async fn logout_without_a_redirect_shows_the_signed_out_page() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let browser = browser();
    sign_in(&app, &browser, "ada@example.com").await;
    let response = confirm(&app, &browser, &app.url("/logout")).await;
    assert_eq!(response.status(), 200);
    assert_page_headers(&response, "the signed-out page");
    let removal = session_cookie(&response);
    assert!(removal.is_some(), "the cookie is removed");
    let html = response.text().await.unwrap();
    assert!(html.contains("You have signed out"), "{html}");
    let home = page(&browser, &app.url("/")).await;
    assert!(!home.contains("Signed in as"), "{home}");
}

#[tokio::test]
async fn logout_is_accepted_by_post_and_without_a_session_goes_straight_back() {
    let app = spawn_app().await;
    let client = register_client(&app, |_| {}).await;
    let response = browser()
        .post(app.url("/logout"))
        .form(&[
            ("client_id", client.id.as_str()),
            ("post_logout_redirect_uri", POST_LOGOUT_REDIRECT_URI),
            ("state", "xyz"),
        ])
        .send()
        .await
        .unwrap();
    let target = location(&app, &response);
    assert_eq!(target, format!("{POST_LOGOUT_REDIRECT_URI}?state=xyz"));
}
