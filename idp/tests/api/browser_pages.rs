//! The sign-in, registration, consent and error pages over HTTP: markup a password
//! manager and a screen reader can use, CSRF on every form, the session cookie's
//! attributes and rotation, no enumeration, no open redirect, and the browser security
//! headers on every page.

use crate::browser_helpers::*;
use crate::helpers::{PASSWORD, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_login_page_has_labelled_fields_autocomplete_and_a_csrf_token() {
    let app = spawn_app().await;
    let browser = browser();
    let response = get(&browser, &app.url("/login")).await;
    assert_eq!(response.status(), 200);
    assert_page_headers(&response, "the login page");
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"<form class="form" method="post" action="/login">"#),
        "{html}"
    );
    assert!(html.contains(r#"<label for="email">"#) && html.contains(r#"id="email" name="email""#));
    assert!(
        html.contains(r#"<label for="password">"#)
            && html.contains(r#"id="password" name="password""#)
    );
    assert!(html.contains(r#"autocomplete="username""#));
    assert!(html.contains(r#"autocomplete="current-password""#));
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(!html.contains("style="), "no inline styles (CSP)");
    assert_eq!(csrf_token(&html).len(), 43);
}

#[tokio::test]
async fn every_page_has_the_security_headers_and_no_store() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let client = register_client(&app, |_| {}).await;
    let browser = browser();
    for path in ["/login", "/register", "/"] {
        let response = get(&browser, &app.url(path)).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_page_headers(&response, path);
    }
    // The error page of /authorize.
    let bad = AuthRequest::new(&client).set("client_id", "c_unknown");
    let response = authorize(&app, &browser, &bad).await;
    assert_eq!(response.status(), 400);
    assert_page_headers(&response, "the authorize error page");
    // The expired-request page, a rejected form, a wrong method, an unknown page.
    let response = get(&browser, &app.url("/consent?request=nope")).await;
    assert_eq!(response.status(), 400);
    assert_page_headers(&response, "the expired request page");
    let response = post_form(&browser, &app.url("/login"), &[("email", "x")]).await;
    assert_eq!(response.status(), 403);
    assert_page_headers(&response, "the CSRF refusal");
    let response = browser.put(app.url("/login")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_page_headers(&response, "a 405 on a page route");
    let response = browser
        .get(app.url("/no/such/page"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_page_headers(&response, "a 404 for a browser");
    // The consent page.
    let login = location(
        &app,
        &authorize(&app, &browser, &AuthRequest::new(&client)).await,
    );
    let next = location(
        &app,
        &submit_login(&app, &browser, &login, "ada@example.com").await,
    );
    let consent = location(&app, &get(&browser, &next).await);
    let response = get(&browser, &consent).await;
    assert_eq!(response.status(), 200);
    assert_page_headers(&response, "the consent page");
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"name="decision" value="allow""#), "{html}");
    assert!(html.contains(r#"name="decision" value="deny""#), "{html}");
}

#[tokio::test]
async fn the_error_page_shows_the_request_id_and_never_redirects() {
    let app = spawn_app().await;
    let response = browser()
        .get(app.url("/authorize?client_id=c_unknown&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code"))
        .header("x-request-id", "support-ref-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains("support-ref-42"), "{html}");
    assert!(html.contains("invalid_client"), "{html}");
    assert!(
        !html.contains("evil.example"),
        "nothing of the request reflected"
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_look_the_same() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let browser = browser();
    let html = page(&browser, &app.url("/login")).await;
    let csrf = csrf_token(&html);
    let attempt = |email: &'static str, password: &'static str| {
        let browser = browser.clone();
        let csrf = csrf.clone();
        let url = app.url("/login");
        async move {
            let response = post_form(
                &browser,
                &url,
                &[
                    ("csrf_token", &csrf),
                    ("email", email),
                    ("password", password),
                ],
            )
            .await;
            let status = response.status();
            let body = response.text().await.unwrap().replace(email, "EMAIL");
            (status, body)
        }
    };
    let wrong_password = attempt("ada@example.com", "not the password at all").await;
    let unknown_email = attempt("nobody@example.com", PASSWORD).await;
    assert_eq!(wrong_password.0, 422);
    assert_eq!(wrong_password, unknown_email);
    let body = wrong_password.1;
    assert!(
        body.contains("The email or password is incorrect."),
        "{body}"
    );
    assert!(body.contains(r#"role="alert""#) && body.contains(r#"aria-describedby="login-error""#));
    // The email is kept; the password never is.
    assert!(body.contains(r#"value="EMAIL""#), "{body}");
    assert!(!body.contains("not the password at all") && !body.contains(PASSWORD));
}

#[tokio::test]
async fn login_without_a_valid_csrf_token_is_refused_and_signs_nobody_in() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let browser = browser();
    let html = page(&browser, &app.url("/login")).await;
    let token = csrf_token(&html);
    for csrf in ["", "wrong", &token[..42]] {
        let response = post_form(
            &browser,
            &app.url("/login"),
            &[
                ("csrf_token", csrf),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(response.status(), 403, "{csrf:?}");
        assert!(response.headers().get("location").is_none());
    }
    // A token from another browser's session does not work either.
    let other = browser_with_token(&app).await;
    let response = post_form(
        &browser,
        &app.url("/login"),
        &[
            ("csrf_token", &other),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 403);
    let home = page(&browser, &app.url("/")).await;
    assert!(!home.contains("Signed in as"), "{home}");
}

async fn browser_with_token(app: &crate::helpers::TestApp) -> String {
    csrf_token(&page(&browser(), &app.url("/login")).await)
}

#[tokio::test]
async fn consent_without_a_valid_csrf_token_changes_nothing() {
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
    let html = page(&browser, &consent).await;
    let request = hidden(&html, "request").unwrap();
    let response = post_form(
        &browser,
        &app.url("/consent"),
        &[
            ("csrf_token", "forged"),
            ("request", &request),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(response.status(), 403);
    let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM consents")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count.0, 0);
    let codes: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM authorization_codes")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(codes.0, 0);
    // The real token still works afterwards.
    let url = location(
        &app,
        &submit_consent(&app, &browser, &consent, "allow").await,
    );
    assert!(param(&url, "code").is_some());
}

#[tokio::test]
async fn the_session_id_changes_at_sign_in_and_the_old_one_is_worthless() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let browser = browser();
    let response = get(&browser, &app.url("/login")).await;
    let before = session_cookie(&response).expect("the login page starts a session");
    let csrf = csrf_token(&response.text().await.unwrap());
    let response = post_form(
        &browser,
        &app.url("/login"),
        &[
            ("csrf_token", &csrf),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 303, "303 after a credential POST");
    assert_eq!(response.headers()["location"], "/");
    let after = session_cookie(&response).expect("a new session cookie");
    assert_ne!(before, after);
    // The new cookie is signed in; the planted pre-login one is not.
    let home = page(&browser, &app.url("/")).await;
    assert!(
        home.contains("Signed in as") && home.contains("ada@example.com"),
        "{home}"
    );
    let stale = reqwest::Client::new()
        .get(app.url("/"))
        .header("cookie", &before)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!stale.contains("Signed in as"), "{stale}");
    let fresh = reqwest::Client::new()
        .get(app.url("/"))
        .header("cookie", &after)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(fresh.contains("Signed in as"), "{fresh}");
}

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_not_secure_over_http() {
    let app = spawn_app().await;
    let response = get(&browser(), &app.url("/login")).await;
    let cookie = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("idp_session="))
        .expect("idp_session");
    let attributes: Vec<String> = cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(attributes.contains(&"httponly".to_owned()), "{cookie}");
    assert!(attributes.contains(&"samesite=lax".to_owned()), "{cookie}");
    assert!(attributes.contains(&"path=/".to_owned()), "{cookie}");
    assert!(!attributes.contains(&"secure".to_owned()), "{cookie}");
    assert!(
        attributes.iter().any(|a| a.starts_with("max-age=")),
        "idle expiry: {cookie}"
    );
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain=")),
        "{cookie}"
    );
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("idp_session=");
    assert!(value.len() >= 22, "128-bit id: {value}");
    // Not on the JSON API or JWKS.
    let response = browser().get(app.url("/jwks")).send().await.unwrap();
    assert!(set_cookies(&response).is_empty());
    let response = app.post_login("ada@example.com", PASSWORD).await;
    assert!(set_cookies(&response).is_empty());
}

#[tokio::test]
async fn over_https_the_cookie_is_secure_with_the_host_prefix() {
    let app = spawn_app_with(service_kit::testing::fresh_database("idp").await, |s| {
        s.issuer = "https://id.example.com".to_owned();
    })
    .await;
    let response = get(&browser(), &app.url("/login")).await;
    let cookie = set_cookies(&response)
        .into_iter()
        .find(|c| c.contains("idp_session="))
        .expect("a session cookie");
    assert!(cookie.starts_with("__Host-idp_session="), "{cookie}");
    let attributes: Vec<String> = cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(attributes.contains(&"secure".to_owned()), "{cookie}");
    assert!(attributes.contains(&"httponly".to_owned()), "{cookie}");
    assert!(attributes.contains(&"samesite=lax".to_owned()), "{cookie}");
    assert!(attributes.contains(&"path=/".to_owned()), "{cookie}");
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let plain = spawn_app().await;
    let response = get(&browser(), &plain.url("/login")).await;
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
}

#[tokio::test]
async fn there_is_no_open_redirect_after_sign_in() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let browser = browser();
    for query in [
        "?next=https://evil.example/",
        "?return_to=//evil.example",
        "?request=https://evil.example/",
        "?redirect_uri=https://evil.example/",
    ] {
        let html = page(&browser, &app.url(&format!("/login{query}"))).await;
        assert!(!html.contains("evil.example"), "{html}");
        let csrf = csrf_token(&html);
        let response = post_form(
            &browser,
            &app.url(&format!("/login{query}")),
            &[
                ("csrf_token", csrf.as_str()),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", "https://evil.example/"),
                ("request", "//evil.example/x"),
            ],
        )
        .await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], "/", "{query}");
    }
}

#[tokio::test]
async fn registration_signs_the_new_user_in_and_continues_the_flow() {
    let app = spawn_app().await;
    let client = register_client(&app, |c| {
        c.consent = idp::oauth::clients::ConsentPolicy::Skip
    })
    .await;
    let browser = browser();
    let login = location(
        &app,
        &authorize(&app, &browser, &AuthRequest::new(&client)).await,
    );
    let request = param(&login, "request").unwrap();
    let response = get(&browser, &app.url(&format!("/register?request={request}"))).await;
    assert_page_headers(&response, "the registration page");
    let html = response.text().await.unwrap();
    for attribute in [
        r#"autocomplete="username""#,
        r#"autocomplete="name""#,
        r#"autocomplete="new-password""#,
        r#"<label for="password_confirmation">"#,
    ] {
        assert!(html.contains(attribute), "{attribute}");
    }
    let csrf = csrf_token(&html);
    let response = post_form(
        &browser,
        &app.url("/register"),
        &[
            ("csrf_token", csrf.as_str()),
            ("request", &request),
            ("email", "Grace@Example.com"),
            ("name", "  Grace Hopper "),
            ("password", PASSWORD),
            ("password_confirmation", PASSWORD),
        ],
    )
    .await;
    let next = location(&app, &response);
    assert!(
        next.starts_with(&app.url("/authorize/continue?request=")),
        "{next}"
    );
    let url = location(&app, &get(&browser, &next).await);
    assert!(param(&url, "code").is_some(), "{url}");
    let row: (String, Option<String>) = sqlx::query_as("SELECT email, name FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        row,
        (
            "grace@example.com".to_owned(),
            Some("Grace Hopper".to_owned())
        )
    );
}

#[tokio::test]
async fn registration_errors_are_shown_next_to_their_fields() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let browser = browser();
    let csrf = csrf_token(&page(&browser, &app.url("/register")).await);
    let register = |email: &'static str, password: &'static str, confirmation: &'static str| {
        let browser = browser.clone();
        let csrf = csrf.clone();
        let url = app.url("/register");
        async move {
            let response = post_form(
                &browser,
                &url,
                &[
                    ("csrf_token", csrf.as_str()),
                    ("email", email),
                    ("name", ""),
                    ("password", password),
                    ("password_confirmation", confirmation),
                ],
            )
            .await;
            assert_eq!(response.status(), 422);
            response.text().await.unwrap()
        }
    };
    let html = register("new@example.com", PASSWORD, "something else").await;
    assert!(
        html.contains(r#"id="password_confirmation-error""#) && html.contains("do not match"),
        "{html}"
    );
    assert!(html.contains(r#"aria-describedby="password_confirmation-error""#));
    let html = register("new@example.com", "short", "short").await;
    assert!(
        html.contains(r#"id="password-error""#) && html.contains("at least 8"),
        "{html}"
    );
    let html = register("new@example.com", "password1", "password1").await;
    assert!(html.contains("too common"), "{html}");
    let html = register("not-an-email", PASSWORD, PASSWORD).await;
    assert!(html.contains(r#"id="email-error""#), "{html}");
    assert!(
        html.contains(r#"value="not-an-email""#),
        "the email is kept"
    );
    let html = register("ada@example.com", PASSWORD, PASSWORD).await;
    assert!(html.contains("already exists"), "{html}");
    assert!(!html.contains(PASSWORD), "passwords are never echoed");
    let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count.0, 1);
}

#[tokio::test]
async fn registration_needs_the_csrf_token_too() {
    let app = spawn_app().await;
    let browser = browser();
    page(&browser, &app.url("/register")).await;
    let response = post_form(
        &browser,
        &app.url("/register"),
        &[
            ("email", "new@example.com"),
            ("password", PASSWORD),
            ("password_confirmation", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 403);
    let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count.0, 0);
}

#[tokio::test]
async fn a_browser_sign_in_ends_after_the_idle_timeout_and_the_lifetime_on_the_idps_clock() {
    let app = crate::helpers::spawn_app_with_clock(
        service_kit::testing::fresh_database("idp").await,
        service_kit::clock::Clock::system(),
        |s| {
            s.session_idle_timeout_secs = 600;
            s.session_lifetime_secs = 1800;
        },
    )
    .await;
    app.register("ada@example.com").await;
    let signed_in = |html: &str| html.contains("Signed in as");

    let browser = browser();
    sign_in(&app, &browser, "ada@example.com").await;
    app.clock.shift(chrono::Duration::seconds(590));
    assert!(
        signed_in(&page(&browser, &app.url("/")).await),
        "used within the idle timeout"
    );
    app.clock.shift(chrono::Duration::seconds(601));
    assert!(
        !signed_in(&page(&browser, &app.url("/")).await),
        "idle too long"
    );

    let browser = super::browser_helpers::browser();
    sign_in(&app, &browser, "ada@example.com").await;
    for _ in 0..3 {
        app.clock.shift(chrono::Duration::seconds(500));
        assert!(signed_in(&page(&browser, &app.url("/")).await));
    }
    app.clock.shift(chrono::Duration::seconds(301));
    assert!(
        !signed_in(&page(&browser, &app.url("/")).await),
        "past the lifetime"
    );
}
