//! `/authorize` against SECURITY.md's "Authorization endpoint" list: the ordered
//! checks, what is shown to the user versus redirected, prompt/max_age/id_token_hint,
//! remembered consent, and the code it finally issues.

use idp::oauth::Scope;
use idp::oauth::clients::{ConsentPolicy, PkcePolicy, RedirectUri};
use serde_json::json;

use crate::browser_helpers::*;
use crate::helpers::spawn_app;

/// Asserts an error redirect to [`REDIRECT_URI`] carrying exactly `error`, `state`,
/// `iss` and maybe `error_description` (RFC 6749 characters only); returns the error.
fn redirected_error(app: &crate::helpers::TestApp, url: &str, state: Option<&str>) -> String {
    assert!(url.starts_with(REDIRECT_URI), "{url}");
    let params = query(url);
    for (name, value) in &params {
        assert!(
            ["error", "error_description", "state", "iss"].contains(&name.as_str()),
            "unexpected parameter {name} in {url}"
        );
        if name == "error_description" {
            assert!(
                value
                    .bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
                "{value}"
            );
        }
    }
    assert_eq!(param(url, "iss").as_deref(), Some(app.issuer.as_str()));
    assert_eq!(param(url, "state").as_deref(), state);
    param(url, "error").expect("an error code")
}

type CodeRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    String,
    i64,
    i64,
);

async fn error_for(app: &crate::helpers::TestApp, request: &AuthRequest) -> String {
    let response = authorize(app, &browser(), request).await;
    let url = location(app, &response);
    redirected_error(app, &url, Some("af0ifjsldkj"))
}

/// The error page: an HTML 400 with no redirect, naming the OAuth error.
async fn assert_error_page(response: reqwest::Response, code: &str) {
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    assert_page_headers(&response, "the error page");
    let html = response.text().await.unwrap();
    assert!(html.contains(code), "{html}");
}

#[tokio::test]
async fn a_browser_sign_in_ends_at_the_redirect_uri_with_code_state_and_iss() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = register_client(&app, |_| {}).await;
    let url = sign_in_and_authorize(
        &app,
        &browser(),
        &AuthRequest::new(&client),
        "ada@example.com",
    )
    .await;
    let params = query(&url);
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["code", "state", "iss"]);
    assert_eq!(param(&url, "state").as_deref(), Some("af0ifjsldkj"));
    assert_eq!(param(&url, "iss").as_deref(), Some(app.issuer.as_str()));
    let code = param(&url, "code").unwrap();
    assert!(code.len() >= 43, "256 bits, base64url");

    // Stored hashed, with what the token endpoint must check.
    let row: CodeRow = sqlx::query_as(
        "SELECT code_hash, client_id, user_id, redirect_uri, nonce, code_challenge, auth_time, \
             session_id, created_at, expires_at FROM authorization_codes",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_ne!(row.0, code, "only the hash is stored");
    assert_eq!(row.1, client.id);
    assert_eq!(row.2, user_id);
    assert_eq!(row.3, REDIRECT_URI);
    assert_eq!(row.4.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(row.5.as_deref(), Some(CHALLENGE));
    assert!((row.8 - row.6).abs() <= 5, "auth_time is the sign-in");
    assert!(row.7.len() >= 22, "a random sid");
    assert_eq!(row.9 - row.8, 60, "IDP_AUTHORIZATION_CODE_TTL_SECS");
    let scope: (String,) = sqlx::query_as("SELECT scope FROM authorization_codes")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(scope.0, "email openid");
}

#[tokio::test]
async fn post_authorize_works_like_get() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let client = register_client(&app, |_| {}).await;
    let browser = browser();
    let response = browser
        .post(app.url("/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(AuthRequest::new(&client).encoded())
        .send()
        .await
        .unwrap();
    let login = location(&app, &response);
    assert!(login.starts_with(&app.url("/login?request=")), "{login}");
    // Signed in now: a second POST goes straight to consent.
    let after = submit_login(&app, &browser, &login, "ada@example.com").await;
    location(&app, &after);
    let response = browser
        .post(app.url("/authorize"))
        .form(&query(&AuthRequest::new(&client).url(&app)))
        .send()
        .await
        .unwrap();
    assert!(location(&app, &response).starts_with(&app.url("/consent?request=")));
    // An error on POST is redirected the same way.
    let response = browser
        .post(app.url("/authorize"))
        .form(&query(
            &AuthRequest::new(&client)
                .set("response_type", "token")
                .url(&app),
        ))
        .send()
        .await
        .unwrap();
    let url = location(&app, &response);
    assert_eq!(
        redirected_error(&app, &url, Some("af0ifjsldkj")),
        "unsupported_response_type"
    );
}

#[tokio::test]
async fn unknown_parameters_are_ignored_and_scope_order_is_irrelevant() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let client = register_client(&app, |_| {}).await;
    let request = AuthRequest::new(&client)
        .set("scope", "email  openid")
        .add("unknown_parameter", "whatever")
        .add("claims", r#"{"userinfo":{"name":null}}"#);
    let url = sign_in_and_authorize(&app, &browser(), &request, "ada@example.com").await;
    assert!(param(&url, "code").is_some(), "{url}");
}

#[tokio::test]
async fn display_locales_acr_values_and_login_hints_never_cause_errors() {
    let app = spawn_app().await;
    let client = register_client(&app, |_| {}).await;
    let browser = browser();
    let request = AuthRequest::new(&client)
        .set("display", "popup")
        .set("ui_locales", "fr-CA fr en")
        .set("claims_locales", "de")
        .set("acr_values", "urn:mace:incommon:iap:silver")
        .set("login_hint", "nobody-registered@example.com");
    let login = location(&app, &authorize(&app, &browser, &request).await);
    assert!(login.starts_with(&app.url("/login?request=")), "{login}");
    // The hint pre-fills the email, even for an unknown user.
    let html = page(&browser, &login).await;
    assert!(
        html.contains(r#"value="nobody-registered@example.com""#),
        "{html}"
    );
    assert!(html.contains(&client.name), "the client's name is shown");
}

#[tokio::test]
async fn a_repeated_parameter_is_refused() {
    let app = spawn_app().await;
    let client = register_client(&app, |_| {}).await;
    let request = AuthRequest::new(&client).add("scope", "openid");
    assert_eq!(error_for(&app, &request).await, "invalid_request");
    let request = AuthRequest::new(&client).add("nonce", "other");
    assert_eq!(error_for(&app, &request).await, "invalid_request");
    // The client or redirect URI repeated: nothing can be trusted, so a page.
    let request = AuthRequest::new(&client).add("client_id", &client.id);
    assert_error_page(
        authorize(&app, &browser(), &request).await,
        "invalid_request",
    )
    .await;
    let request = AuthRequest::new(&client).add("redirect_uri", REDIRECT_URI);
    assert_error_page(
        authorize(&app, &browser(), &request).await,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_or_missing_client_gets_the_error_page_never_a_redirect() {
    let app = spawn_app().await;
    let client = register_client(&app, |_| {}).await;
    let unknown = AuthRequest::new(&client).set("client_id", "c_does_not_exist");
    assert_error_page(
        authorize(&app, &browser(), &unknown).await,
        "invalid_client",
    )
    .await;
    let malformed = AuthRequest::new(&client).set("client_id", "no spaces allowed");
    assert_error_page(
        authorize(&app, &browser(), &malformed).await,
        "invalid_client",
    )
    .await;
    let missing = AuthRequest::new(&client).remove("client_id");
    assert_error_page(
        authorize(&app, &browser(), &missing).await,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn a_redirect_uri_must_be_registered_exactly() {
    let app = spawn_app().await;
    let client = register_client(&app, |c| {
        c.redirect_uris
            .push(RedirectUri::parse("http://127.0.0.1/native").unwrap());
    })
    .await;
    for bad in [
        "https://rp.example/callback/",
        "https://rp.example/callback?x=1",
        "https://RP.example/callback",
        "https://rp.example:443/callback",
        "https://evil.example/callback",
        "http://127.0.0.1/other",
    ] {
        let request = AuthRequest::new(&client).set("redirect_uri", bad);
        let response = authorize(&app, &browser(), &request).await;
        assert_error_page(response, "invalid_request").await;
    }
    let missing = AuthRequest::new(&client).remove("redirect_uri");
    assert_error_page(
        authorize(&app, &browser(), &missing).await,
        "invalid_request",
    )
    .await;
    // RFC 8252 §7.3: a loopback IP redirect URI may use any port.
    let native = AuthRequest::new(&client).set("redirect_uri", "http://127.0.0.1:51004/native");
    let response = authorize(&app, &browser(), &native).await;
    assert!(location(&app, &response).starts_with(&app.url("/login?")));
}

#[tokio::test]
async fn errors_echo_a_long_state_byte_for_byte_with_iss_and_nothing_else() {
    let app = spawn_app().await;
    let client = register_client(&app, |_| {}).await;
    let state: String = format!("{}&=+/?#%é \u{1F600}{}", "x".repeat(1500), "ü".repeat(300));
    let request = AuthRequest::new(&client)
        .set("state", &state)
        .set("response_type", "token");
    let url = location(&app, &authorize(&app, &browser(), &request).await);
    assert_eq!(
        redirected_error(&app, &url, Some(&state)),
        "unsupported_response_type"
    );
    // Without a state, none is invented.
    let request = AuthRequest::new(&client)
        .remove("state")
        .set("scope", "admin");
    let url = location(&app, &authorize(&app, &browser(), &request).await);
    assert_eq!(redirected_error(&app, &url, None), "invalid_scope");
}

#[tokio::test]
async fn only_the_code_response_type_is_supported() {
    let app = spawn_app().await;
    let client = register_client(&app, |_| {}).await;
    for response_type in [
        "token",
        "id_token",
        "code id_token",
        "code token",
        "id_token token",
        "none",
    ] {
        let request = AuthRequest::new(&client).set("response_type", response_type);
        assert_eq!(
            error_for(&app, &request).await,
            "unsupported_response_type",
            "{response_type}"
        );
    }
    let missing = AuthRequest::new(&client).remove("response_type");
    assert_eq!(error_for(&app, &missing).await, "invalid_request");
    let fragment = AuthRequest::new(&client).set("response_mode", "fragment");
    assert_eq!(error_for(&app, &fragment).await, "invalid_request");
}

#[tokio::test]
async fn request_objects_are_not_supported() {
    let app = spawn_app().await;
    let client = register_client(&app, |_| {}).await;
    let request = AuthRequest::new(&client).set("request", "eyJhbGciOiJub25lIn0.e30.");
    assert_eq!(error_for(&app, &request).await, "request_not_supported");
    let request = AuthRequest::new(&client).set("request_uri", "https://rp.example/request.jwt");
    assert_eq!(error_for(&app, &request).await, "request_uri_not_supported");
}

#[tokio::test]
async fn scopes_beyond_the_clients_allowance_are_invalid() {
    let app = spawn_app().await;
    let client = register_client(&app, |c| {
        c.allowed_scope = Scope::parse("openid email").unwrap();
    })
    .await;
    for scope in ["openid profile", "users:admin", "openid email admin"] {
        let request = AuthRequest::new(&client).set("scope", scope);
        assert_eq!(error_for(&app, &request).await, "invalid_scope", "{scope}");
    }
    let missing = AuthRequest::new(&client).remove("scope");
    assert_eq!(error_for(&app, &missing).await, "invalid_scope");
    let malformed = AuthRequest::new(&client).set("scope", "openid \"email\"");
    assert_eq!(error_for(&app, &malformed).await, "invalid_scope");
}

#[tokio::test]
async fn pkce_is_s256_only_and_required() {
    let app = spawn_app().await;
    let client = register_client(&app, |_| {}).await;
    let plain = AuthRequest::new(&client).set("code_challenge_method", "plain");
    assert_eq!(error_for(&app, &plain).await, "invalid_request");
    let no_method = AuthRequest::new(&client).remove("code_challenge_method");
    assert_eq!(error_for(&app, &no_method).await, "invalid_request");
    let no_challenge = AuthRequest::new(&client)
        .remove("code_challenge")
        .remove("code_challenge_method");
    assert_eq!(error_for(&app, &no_challenge).await, "invalid_request");
    let only_method = AuthRequest::new(&client).remove("code_challenge");
    assert_eq!(error_for(&app, &only_method).await, "invalid_request");
    for malformed in [
        &CHALLENGE[..42],
        &format!("{CHALLENGE}A"),
        &format!("{}+", &CHALLENGE[..42]),
    ] {
        let request = AuthRequest::new(&client).set("code_challenge", malformed);
        assert_eq!(
            error_for(&app, &request).await,
            "invalid_request",
            "{malformed}"
        );
    }
    // A confidential client allowed to skip PKCE may.
    let relaxed = register_client(&app, |c| c.pkce = PkcePolicy::Optional).await;
    let request = AuthRequest::new(&relaxed)
        .remove("code_challenge")
        .remove("code_challenge_method");
    let response = authorize(&app, &browser(), &request).await;
    assert!(location(&app, &response).starts_with(&app.url("/login?")));
    assert_eq!(challenge_for(VERIFIER), CHALLENGE);
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let app = spawn_app().await;
    let client = register_client(&app, |_| {}).await;
    let request = AuthRequest::new(&client).set("prompt", "none");
    assert_eq!(error_for(&app, &request).await, "login_required");
    let request = AuthRequest::new(&client).set("prompt", "none login");
    assert_eq!(error_for(&app, &request).await, "invalid_request");
    let request = AuthRequest::new(&client).set("prompt", "sometimes");
    assert_eq!(error_for(&app, &request).await, "invalid_request");
}

#[tokio::test]
async fn prompt_none_needing_consent_is_consent_required_and_works_once_consented() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let client = register_client(&app, |_| {}).await;
    let browser = browser();
    sign_in(&app, &browser, "ada@example.com").await;
    let silent = AuthRequest::new(&client).set("prompt", "none");
    let url = location(&app, &authorize(&app, &browser, &silent).await);
    assert_eq!(
        redirected_error(&app, &url, Some("af0ifjsldkj")),
        "consent_required"
    );
    // Consent once, interactively...
    let consent = location(
        &app,
        &authorize(&app, &browser, &AuthRequest::new(&client)).await,
    );
    let url = location(
        &app,
        &submit_consent(&app, &browser, &consent, "allow").await,
    );
    assert!(param(&url, "code").is_some());
    // ...then prompt=none answers with a code straight away.
    let url = location(&app, &authorize(&app, &browser, &silent).await);
    assert!(
        url.starts_with(REDIRECT_URI) && param(&url, "code").is_some(),
        "{url}"
    );
}

#[tokio::test]
async fn prompt_login_shows_the_login_page_to_a_signed_in_user_once() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let client = register_client(&app, |c| c.consent = ConsentPolicy::Skip).await;
    let browser = browser();
    sign_in(&app, &browser, "ada@example.com").await;
    // Signed in and first-party: a code at once.
    let url = location(
        &app,
        &authorize(&app, &browser, &AuthRequest::new(&client)).await,
    );
    assert!(param(&url, "code").is_some(), "{url}");
    // prompt=login: the login page, then the code (not the login page again).
    let request = AuthRequest::new(&client).set("prompt", "login");
    let login = location(&app, &authorize(&app, &browser, &request).await);
    assert!(login.starts_with(&app.url("/login?request=")), "{login}");
    let next = location(
        &app,
        &submit_login(&app, &browser, &login, "ada@example.com").await,
    );
    let url = location(&app, &get(&browser, &next).await);
    assert!(param(&url, "code").is_some(), "{url}");
}

#[tokio::test]
async fn max_age_zero_forces_a_fresh_login() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let client = register_client(&app, |c| c.consent = ConsentPolicy::Skip).await;
    let browser = browser();
    sign_in(&app, &browser, "ada@example.com").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let request = AuthRequest::new(&client).set("max_age", "0");
    let login = location(&app, &authorize(&app, &browser, &request).await);
    assert!(login.starts_with(&app.url("/login?request=")), "{login}");
    let next = location(
        &app,
        &submit_login(&app, &browser, &login, "ada@example.com").await,
    );
    let url = location(&app, &get(&browser, &next).await);
    assert!(param(&url, "code").is_some(), "{url}");
    // A generous max_age does not ask again; a malformed one is refused.
    let request = AuthRequest::new(&client).set("max_age", "3600");
    let url = location(&app, &authorize(&app, &browser, &request).await);
    assert!(param(&url, "code").is_some(), "{url}");
    let request = AuthRequest::new(&client).set("max_age", "-1");
    assert_eq!(error_for(&app, &request).await, "invalid_request");
    // max_age=0 with prompt=none cannot be satisfied silently once a second passed.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let request = AuthRequest::new(&client)
        .set("max_age", "0")
        .set("prompt", "none");
    let url = location(&app, &authorize(&app, &browser, &request).await);
    assert_eq!(
        redirected_error(&app, &url, Some("af0ifjsldkj")),
        "login_required"
    );
}

#[tokio::test]
async fn id_token_hints_must_be_our_id_tokens() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let client = register_client(&app, |c| c.consent = ConsentPolicy::Skip).await;
    let browser = browser();
    sign_in(&app, &browser, "ada@example.com").await;

    // Ours, expired, naming the signed-in user: accepted, even with prompt=none.
    let hint = expired_id_token(&app, &client, &ada).await;
    let request = AuthRequest::new(&client)
        .set("id_token_hint", &hint)
        .set("prompt", "none");
    let url = location(&app, &authorize(&app, &browser, &request).await);
    assert!(param(&url, "code").is_some(), "{url}");

    // Naming someone else: login_required silently, the login page otherwise.
    let other = expired_id_token(&app, &client, &bob).await;
    let request = AuthRequest::new(&client)
        .set("id_token_hint", &other)
        .set("prompt", "none");
    let url = location(&app, &authorize(&app, &browser, &request).await);
    assert_eq!(
        redirected_error(&app, &url, Some("af0ifjsldkj")),
        "login_required"
    );
    let request = AuthRequest::new(&client).set("id_token_hint", &other);
    let login = location(&app, &authorize(&app, &browser, &request).await);
    assert!(login.starts_with(&app.url("/login?request=")), "{login}");

    // Not ours: a foreign signature, another issuer, an access token, garbage.
    let claims = json!({"iss": app.issuer, "sub": ada, "aud": client.id, "iat": 1, "exp": 2});
    let foreign = sign_with_foreign_key(&app, &claims).await;
    let wrong_issuer = sign_with_idp_key(
        &app,
        &json!({"iss": "https://evil.example", "sub": ada, "aud": client.id, "iat": 1, "exp": 2}),
    )
    .await;
    let access_token = app.login("ada@example.com").await;
    for bad in [
        foreign.as_str(),
        &wrong_issuer,
        &access_token,
        "not-a-jwt",
        "a.b.c",
    ] {
        let request = AuthRequest::new(&client).set("id_token_hint", bad);
        assert_eq!(error_for(&app, &request).await, "invalid_request", "{bad}");
    }
}

#[tokio::test]
async fn consent_is_remembered_until_more_is_asked_or_prompt_consent() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let client = register_client(&app, |_| {}).await;
    let browser = browser();
    sign_and_consent(&app, &browser, &AuthRequest::new(&client)).await;

    // Same scope, other order: no consent page.
    let request = AuthRequest::new(&client).set("scope", "email openid");
    let url = location(&app, &authorize(&app, &browser, &request).await);
    assert!(param(&url, "code").is_some(), "{url}");
    // A subset: no consent page either.
    let request = AuthRequest::new(&client).set("scope", "openid");
    let url = location(&app, &authorize(&app, &browser, &request).await);
    assert!(param(&url, "code").is_some(), "{url}");
    // prompt=consent: asked again.
    let request = AuthRequest::new(&client).set("prompt", "consent");
    let consent = location(&app, &authorize(&app, &browser, &request).await);
    assert!(
        consent.starts_with(&app.url("/consent?request=")),
        "{consent}"
    );
    let url = location(
        &app,
        &submit_consent(&app, &browser, &consent, "allow").await,
    );
    assert!(param(&url, "code").is_some(), "{url}");
    // More than before: asked again, and the page says what.
    let request = AuthRequest::new(&client).set("scope", "openid email profile");
    let consent = location(&app, &authorize(&app, &browser, &request).await);
    assert!(
        consent.starts_with(&app.url("/consent?request=")),
        "{consent}"
    );
    let html = page(&browser, &consent).await;
    assert!(
        html.contains("See your name") && html.contains("See your email address"),
        "{html}"
    );
    assert!(
        html.contains("Photo Printer") && html.contains("https://rp.example"),
        "{html}"
    );
    location(
        &app,
        &submit_consent(&app, &browser, &consent, "allow").await,
    );
    let stored: (String,) = sqlx::query_as("SELECT scope FROM consents")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored.0, "email openid profile");
}

/// Signs in through `request` and allows it.
async fn sign_and_consent(
    app: &crate::helpers::TestApp,
    browser: &reqwest::Client,
    request: &AuthRequest,
) {
    let url = sign_in_and_authorize(app, browser, request, "ada@example.com").await;
    assert!(param(&url, "code").is_some(), "{url}");
}

#[tokio::test]
async fn denying_consent_redirects_with_access_denied() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let client = register_client(&app, |_| {}).await;
    let browser = browser();
    let login = location(
        &app,
        &authorize(&app, &browser, &AuthRequest::new(&client)).await,
    );
    let next = location(
        &app,
        &submit_login(&app, &browser, &login, "ada@example.com").await,
    );
    let consent = location(&app, &get(&browser, &next).await);
    let url = location(
        &app,
        &submit_consent(&app, &browser, &consent, "deny").await,
    );
    assert_eq!(
        redirected_error(&app, &url, Some("af0ifjsldkj")),
        "access_denied"
    );
    let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM consents")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count.0, 0, "nothing remembered");
    // The answered request is gone: pressing allow afterwards shows the expired page.
    let response = get(&browser, &consent).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn first_party_clients_skip_the_consent_page() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let client = register_client(&app, |c| c.consent = ConsentPolicy::Skip).await;
    let browser = browser();
    let login = location(
        &app,
        &authorize(&app, &browser, &AuthRequest::new(&client)).await,
    );
    let next = location(
        &app,
        &submit_login(&app, &browser, &login, "ada@example.com").await,
    );
    let url = location(&app, &get(&browser, &next).await);
    assert!(
        url.starts_with(REDIRECT_URI) && param(&url, "code").is_some(),
        "{url}"
    );
}

#[tokio::test]
async fn several_tabs_can_each_have_a_request_waiting() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let client = register_client(&app, |c| c.consent = ConsentPolicy::Skip).await;
    let browser = browser();
    let first = location(
        &app,
        &authorize(
            &app,
            &browser,
            &AuthRequest::new(&client).set("state", "tab-1"),
        )
        .await,
    );
    let second = location(
        &app,
        &authorize(
            &app,
            &browser,
            &AuthRequest::new(&client).set("state", "tab-2"),
        )
        .await,
    );
    assert_ne!(first, second);
    let next = location(
        &app,
        &submit_login(&app, &browser, &first, "ada@example.com").await,
    );
    let url = location(&app, &get(&browser, &next).await);
    assert_eq!(param(&url, "state").as_deref(), Some("tab-1"));
    // The second tab's login page still works: already signed in, it continues.
    let next = location(
        &app,
        &submit_login(&app, &browser, &second, "ada@example.com").await,
    );
    let url = location(&app, &get(&browser, &next).await);
    assert_eq!(param(&url, "state").as_deref(), Some("tab-2"));
}

#[tokio::test]
async fn authorize_sends_no_cors_headers() {
    let app = spawn_app().await;
    let client = register_client(&app, |_| {}).await;
    let response = browser()
        .get(AuthRequest::new(&client).url(&app))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(
        response
            .headers()
            .keys()
            .all(|name| !name.as_str().starts_with("access-control-")),
        "{:?}",
        response.headers()
    );
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}
