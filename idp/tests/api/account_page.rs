//! The account page (issue 5) over HTTP, with one cookie-keeping client per device:
//! signed-in only (and back to it after signing in, never off the site), the sessions
//! of every device with "This device" on the right one, ending one or all the others,
//! changing the password, recent sign-in activity, CSRF on every form, and the
//! browser security headers.

use reqwest::Response;
use reqwest::header::USER_AGENT;

use crate::browser_helpers::{
    assert_page_headers, browser, csrf_token, get, hidden, location, page, post_form, sign_in,
    unescape,
};
use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with};

const EMAIL: &str = "ada@example.com";
const NEW_PASSWORD: &str = "an entirely new passphrase";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// A browser (cookies, no redirects followed) that presents `user_agent`.
fn browser_as(user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .user_agent(user_agent)
        .build()
        .unwrap()
}

#[tokio::test]
async fn sessions_from_unknown_agents_show_their_user_agent() {
    let app = spawn_app().await;
    app.register(EMAIL).await;
    let browser = browser_as("DeviceA/1.0");
    sign_in(&app, &browser, EMAIL).await;
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header(USER_AGENT, "DeviceB/1.0")
        .json(&serde_json::json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let html = account(&app, &browser).await;
    let items = sessions(&html);
    assert_eq!(items.len(), 2);
    assert!(items[0].contains("DeviceA/1.0") && items[0].contains("This device"));
    assert!(items[1].contains("DeviceB/1.0"), "{}", items[1]);
    assert!(!html.contains("Unknown device"));
    let table = &html[html.find(r#"<table class="activity">"#).unwrap()..];
    assert!(table.contains("DeviceA/1.0") && table.contains("DeviceB/1.0"));
}

#[tokio::test]
async fn the_name_is_set_corrected_and_removed_on_the_account_page() {
    let app = spawn_app().await;
    app.register(EMAIL).await;
    let browser = browser_as(FIREFOX);
    sign_in(&app, &browser, EMAIL).await;
    let html = account(&app, &browser).await;
    assert!(html.contains(r#"<label for="name">Name"#));
    assert_eq!(input_value(&html, "name"), "");

    let response = post_account(
        &app,
        &browser,
        "/account/name",
        &[("name", " Grace Hopper ")],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&app, &response), app.url("/account"));
    let html = account(&app, &browser).await;
    assert!(html.contains("Name saved."));
    assert_eq!(input_value(&html, "name"), "Grace Hopper");

    // Too long: shown again with the error and the submitted text; nothing stored.
    let long = "G".repeat(101);
    let response = post_account(&app, &browser, "/account/name", &[("name", &long)]).await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"id="name-error""#) && html.contains("at most 100 characters"));
    assert!(html.contains(r#"aria-invalid="true" aria-describedby="name-error""#));
    assert_eq!(input_value(&html, "name"), long);
    assert_eq!(
        input_value(&account(&app, &browser).await, "name"),
        "Grace Hopper"
    );

    // Without the CSRF token nothing changes.
    let response = post_form(&browser, &app.url("/account/name"), &[("name", "Mallory")]).await;
    assert_eq!(response.status(), 403);

    let response = post_account(&app, &browser, "/account/name", &[("name", "")]).await;
    assert_eq!(response.status(), 303);
    let html = account(&app, &browser).await;
    assert!(html.contains("Name removed."));
    assert_eq!(input_value(&html, "name"), "");
}

/// The `value` of the input named `name`, unescaped.
fn input_value(html: &str, name: &str) -> String {
    let start = html
        .find(&format!(r#"name="{name}" type="text""#))
        .expect("the input");
    let rest = &html[start..];
    let value = &rest[rest.find(r#"value=""#).unwrap() + 7..];
    unescape(&value[..value.find('"').unwrap()])
}

/// `email` registered, and signed in on a Firefox and a Chrome browser.
async fn two_devices(app: &TestApp, email: &str) -> (reqwest::Client, reqwest::Client) {
    app.register(email).await;
    let firefox = browser_as(FIREFOX);
    let chrome = browser_as(CHROME);
    sign_in(app, &firefox, email).await;
    sign_in(app, &chrome, email).await;
    (firefox, chrome)
}

async fn account(app: &TestApp, browser: &reqwest::Client) -> String {
    page(browser, &app.url("/account")).await
}

/// Posts `fields` to `path` with the CSRF token of this browser's account page.
async fn post_account(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> Response {
    let csrf = csrf_token(&account(app, browser).await);
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    post_form(browser, &app.url(path), &all).await
}

async fn change_password(
    app: &TestApp,
    browser: &reqwest::Client,
    current: &str,
    new: &str,
    confirmation: &str,
) -> Response {
    post_account(
        app,
        browser,
        "/account/password",
        &[
            ("current_password", current),
            ("new_password", new),
            ("new_password_confirmation", confirmation),
        ],
    )
    .await
}

/// The page's sessions, one chunk of HTML each.
fn sessions(html: &str) -> Vec<&str> {
    let list = &html[html
        .find(r#"<ul class="sessions">"#)
        .expect("a session list")..];
    let list = &list[..list.find("</ul>").unwrap()];
    list.split(r#"<li class="session"#).skip(1).collect()
}

/// The ids the page offers to end (every session but this device's).
fn endable_ids(html: &str) -> Vec<String> {
    sessions(html)
        .into_iter()
        .filter_map(|item| hidden(item, "session_id"))
        .collect()
}

/// The one-time notice at the top of a page.
fn notice(html: &str) -> Option<String> {
    let marker = r#"<div class="notice" role="status">"#;
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find("</div>")? + start;
    Some(unescape(&html[start..end]))
}

/// Follows a 303 to the account page and returns it.
async fn back_on_account(app: &TestApp, browser: &reqwest::Client, response: &Response) -> String {
    assert_eq!(location(app, response), app.url("/account"));
    account(app, browser).await
}

/// Whether `browser` is signed out: the account page sends it to sign in.
async fn assert_signed_out(app: &TestApp, browser: &reqwest::Client) {
    let response = get(browser, &app.url("/account")).await;
    assert_eq!(
        location(app, &response),
        app.url("/login?return_to=%2Faccount")
    );
}

#[tokio::test]
async fn the_account_page_sends_a_signed_out_browser_to_sign_in_and_then_back() {
    let app = spawn_app().await;
    app.register(EMAIL).await;
    let browser = browser();

    let response = get(&browser, &app.url("/account")).await;
    let login = location(&app, &response);
    assert_eq!(login, app.url("/login?return_to=%2Faccount"));
    let html = page(&browser, &login).await;
    assert_eq!(hidden(&html, "return_to").as_deref(), Some("/account"));
    let response = post_form(
        &browser,
        &app.url("/login"),
        &[
            ("csrf_token", &csrf_token(&html)),
            ("return_to", "/account"),
            ("email", EMAIL),
            ("password", PASSWORD),
        ],
    )
    .await;
    let html = back_on_account(&app, &browser, &response).await;
    assert!(html.contains("<h1>Your account</h1>"), "{html}");
    assert!(html.contains(EMAIL));

    // And the home page links to it now.
    let home = page(&browser, &app.url("/")).await;
    assert!(home.contains(r#"href="/account""#), "{home}");
}

#[tokio::test]
async fn sign_in_never_returns_to_a_place_off_the_site() {
    let app = spawn_app().await;
    app.register(EMAIL).await;
    for target in [
        "//evil.example/account",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "account",
        "/\t/evil.example",
    ] {
        let browser = browser();
        let encoded: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
        let html = page(&browser, &app.url(&format!("/login?return_to={encoded}"))).await;
        assert_eq!(
            hidden(&html, "return_to"),
            None,
            "{target:?} kept on the page"
        );
        let response = post_form(
            &browser,
            &app.url("/login"),
            &[
                ("csrf_token", &csrf_token(&html)),
                ("return_to", target),
                ("email", EMAIL),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(response.status(), 303, "{target:?}");
        assert_eq!(response.headers()["location"], "/", "{target:?}");
    }
}

#[tokio::test]
async fn the_account_page_has_the_security_headers_no_store_and_a_usable_password_form() {
    let app = spawn_app().await;
    let (firefox, _chrome) = two_devices(&app, EMAIL).await;
    let response = get(&firefox, &app.url("/account")).await;
    assert_eq!(response.status(), 200);
    assert_page_headers(&response, "the account page");
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(!html.contains("style="), "no inline styles (CSP)");
    for (id, autocomplete) in [
        ("current_password", "current-password"),
        ("new_password", "new-password"),
        ("new_password_confirmation", "new-password"),
    ] {
        assert!(html.contains(&format!(r#"<label for="{id}">"#)), "{id}");
        assert!(
            html.contains(&format!(
                r#"id="{id}" name="{id}" type="password" autocomplete="{autocomplete}""#
            )),
            "{id}: {html}"
        );
    }
    for action in [
        "/account/sessions/end",
        "/account/sessions/end-others",
        "/account/password",
    ] {
        assert!(
            html.contains(&format!(r#"method="post" action="{action}""#)),
            "{action}"
        );
    }
    // The redirect for a signed-out browser and a refused form carry them too.
    let response = get(&browser(), &app.url("/account")).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let response = post_form(&firefox, &app.url("/account/password"), &[]).await;
    assert_eq!(response.status(), 403);
    assert_page_headers(&response, "the CSRF refusal on the account page");
}

#[tokio::test]
async fn the_account_page_lists_every_devices_session_and_marks_this_one() {
    let app = spawn_app().await;
    let (firefox, chrome) = two_devices(&app, EMAIL).await;

    for (browser, this, other) in [
        (&firefox, "Firefox on Linux", "Chrome on Windows 10"),
        (&chrome, "Chrome on Windows 10", "Firefox on Linux"),
    ] {
        let html = account(&app, browser).await;
        let items = sessions(&html);
        assert_eq!(items.len(), 2, "{html}");
        let (current, others): (Vec<&str>, Vec<&str>) =
            items.into_iter().partition(|i| i.contains("This device"));
        assert_eq!(current.len(), 1, "exactly one is this device");
        assert!(current[0].contains(this), "{}", current[0]);
        assert!(
            !current[0].contains(r#"name="session_id""#),
            "no End on this one"
        );
        assert!(others[0].contains(other), "{}", others[0]);
        assert!(
            others[0].contains(">End<"),
            "an End button on the other one"
        );
        for item in [current[0], others[0]] {
            assert!(item.contains("127.0.0.1"), "the IP address: {item}");
            assert!(item.contains("Just now"), "last active: {item}");
            assert!(item.contains("UTC</time>"), "signed in: {item}");
        }
        assert!(html.contains("End all other sessions"));
    }
}

#[tokio::test]
async fn ending_the_other_session_signs_that_browser_out() {
    let app = spawn_app().await;
    let (firefox, chrome) = two_devices(&app, EMAIL).await;
    let ids = endable_ids(&account(&app, &firefox).await);
    assert_eq!(ids.len(), 1);

    let response = post_account(
        &app,
        &firefox,
        "/account/sessions/end",
        &[("session_id", &ids[0])],
    )
    .await;
    let html = back_on_account(&app, &firefox, &response).await;
    assert_eq!(
        notice(&html).as_deref(),
        Some("Session ended. That device is signed out.")
    );
    assert_eq!(sessions(&html).len(), 1);
    assert!(endable_ids(&html).is_empty());
    assert!(html.contains("You are not signed in anywhere else."));
    // The notice is shown once.
    assert_eq!(notice(&account(&app, &firefox).await), None);

    assert_signed_out(&app, &chrome).await;
    let home = page(&chrome, &app.url("/")).await;
    assert!(home.contains(r#"href="/login""#), "signed out at home too");

    let events = idp::guards::audit::store::latest(&app.db.pool, 20)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event == "session_ended" && e.detail.as_deref() == Some("ended_by_user"))
    );
}

#[tokio::test]
async fn ending_another_users_session_changes_nothing_and_answers_like_an_unknown_id() {
    let app = spawn_app().await;
    let (attacker, _attacker_elsewhere) = two_devices(&app, "mallory@example.com").await;
    let (victim, victim_elsewhere) = two_devices(&app, "victim@example.com").await;
    let victims_ids = endable_ids(&account(&app, &victim).await);
    assert_eq!(victims_ids.len(), 1);

    let mut answers = Vec::new();
    for id in [victims_ids[0].as_str(), "no-such-session", ""] {
        let response = post_account(
            &app,
            &attacker,
            "/account/sessions/end",
            &[("session_id", id)],
        )
        .await;
        let status = response.status();
        let html = back_on_account(&app, &attacker, &response).await;
        answers.push((status, notice(&html), sessions(&html).len()));
    }
    assert_eq!(
        answers[0],
        (
            reqwest::StatusCode::SEE_OTHER,
            Some("That session had already ended.".to_owned()),
            2
        )
    );
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");

    // Both of the victim's browsers are still signed in.
    assert_eq!(sessions(&account(&app, &victim).await).len(), 2);
    assert_eq!(sessions(&account(&app, &victim_elsewhere).await).len(), 2);
}

#[tokio::test]
async fn ending_all_other_sessions_leaves_only_this_one() {
    let app = spawn_app().await;
    let (firefox, chrome) = two_devices(&app, EMAIL).await;
    let third = browser();
    sign_in(&app, &third, EMAIL).await;
    assert_eq!(sessions(&account(&app, &firefox).await).len(), 3);

    let response = post_account(&app, &firefox, "/account/sessions/end-others", &[]).await;
    let html = back_on_account(&app, &firefox, &response).await;
    assert_eq!(notice(&html).as_deref(), Some("Ended 2 other sessions."));
    let items = sessions(&html);
    assert_eq!(items.len(), 1);
    assert!(items[0].contains("This device") && items[0].contains("Firefox on Linux"));
    assert!(!html.contains("End all other sessions"));
    assert_signed_out(&app, &chrome).await;
    assert_signed_out(&app, &third).await;

    // Nothing left to end.
    let response = post_account(&app, &firefox, "/account/sessions/end-others", &[]).await;
    let html = back_on_account(&app, &firefox, &response).await;
    assert_eq!(
        notice(&html).as_deref(),
        Some("You were not signed in anywhere else.")
    );
}

#[tokio::test]
async fn a_wrong_current_password_is_refused_under_its_field_and_counted_until_throttled() {
    let app = spawn_app_with(service_kit::testing::fresh_database("idp").await, |s| {
        s.login_max_failures_per_ip = 3;
    })
    .await;
    let (firefox, chrome) = two_devices(&app, EMAIL).await;

    for attempt in 1..=3 {
        let response = change_password(
            &app,
            &firefox,
            "not my password",
            NEW_PASSWORD,
            NEW_PASSWORD,
        )
        .await;
        assert_eq!(response.status(), 422, "attempt {attempt}");
        assert_page_headers(&response, "the refused password change");
        let html = response.text().await.unwrap();
        assert!(
            html.contains(
                r#"<p class="field-error" id="current_password-error">The current password is incorrect.</p>"#
            ),
            "{html}"
        );
        assert!(html.contains(r#"id="current_password" name="current_password""#));
        assert!(!html.contains(NEW_PASSWORD), "passwords are never echoed");
    }
    // Each failure counted for the address: now even the right password waits.
    let response = change_password(&app, &firefox, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    assert_page_headers(&response, "the throttled password change");

    // Nothing changed: the other browser is signed in, the old password works.
    assert_eq!(sessions(&account(&app, &chrome).await).len(), 2);
    let events = idp::guards::audit::store::latest(&app.db.pool, 50)
        .await
        .unwrap();
    let failures: Vec<_> = events
        .iter()
        .filter(|e| e.event == "password_changed")
        .collect();
    assert_eq!(failures.len(), 3, "{events:#?}");
    assert!(failures.iter().all(|e| e.outcome == "failure"
        && e.detail.as_deref() == Some("wrong_current_password")
        && e.ip.as_deref() == Some("127.0.0.1")));
    assert!(
        events
            .iter()
            .any(|e| e.event == "ip_throttled" && e.ip.as_deref() == Some("127.0.0.1")),
        "the address lock is audited: {events:#?}"
    );
}

#[tokio::test]
async fn a_new_password_must_be_valid_and_confirmed() {
    let app = spawn_app().await;
    let (firefox, chrome) = two_devices(&app, EMAIL).await;

    let response = change_password(&app, &firefox, PASSWORD, NEW_PASSWORD, "a typo").await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"id="new_password_confirmation-error">The passwords do not match.</p>"#),
        "{html}"
    );
    let response = change_password(&app, &firefox, PASSWORD, "short", "short").await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"id="new_password-error">Use at least 8 characters.</p>"#),
        "{html}"
    );
    assert!(html.contains(r#"role="alert""#));

    // Nothing changed.
    assert_eq!(sessions(&account(&app, &chrome).await).len(), 2);
    assert_eq!(app.post_login(EMAIL, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_password_change_signs_out_the_other_browsers_and_only_the_new_password_works() {
    let app = spawn_app().await;
    let (firefox, chrome) = two_devices(&app, EMAIL).await;

    let response = change_password(&app, &firefox, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    let html = back_on_account(&app, &firefox, &response).await;
    assert_eq!(
        notice(&html).as_deref(),
        Some("Password changed. Your other sessions were signed out.")
    );
    assert_eq!(sessions(&html).len(), 1, "only this device");
    assert_signed_out(&app, &chrome).await;

    assert_eq!(app.post_login(EMAIL, PASSWORD).await.status(), 401);
    assert_eq!(app.post_login(EMAIL, NEW_PASSWORD).await.status(), 200);
    let events = idp::guards::audit::store::latest(&app.db.pool, 50)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event == "password_changed" && e.outcome == "success")
    );
}

#[tokio::test]
async fn every_account_form_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing() {
    let app = spawn_app().await;
    let (firefox, chrome) = two_devices(&app, EMAIL).await;
    let other = endable_ids(&account(&app, &firefox).await).remove(0);
    let real = csrf_token(&account(&app, &firefox).await);
    let wrong = "A".repeat(real.len());

    for (path, fields) in [
        (
            "/account/sessions/end",
            vec![("session_id", other.as_str())],
        ),
        ("/account/sessions/end-others", vec![]),
        (
            "/account/password",
            vec![
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirmation", NEW_PASSWORD),
            ],
        ),
    ] {
        for token in [None, Some(""), Some(wrong.as_str())] {
            let mut all = fields.clone();
            if let Some(token) = token {
                all.push(("csrf_token", token));
            }
            let response = post_form(&firefox, &app.url(path), &all).await;
            assert_eq!(response.status(), 403, "{path} with {token:?}");
            assert_page_headers(&response, path);
        }
        // Another browser's own token is not this one's.
        let theirs = csrf_token(&account(&app, &chrome).await);
        let mut all = fields.clone();
        all.push(("csrf_token", theirs.as_str()));
        let response = post_form(&firefox, &app.url(path), &all).await;
        assert_eq!(
            response.status(),
            403,
            "{path} with another browser's token"
        );
    }
    assert_eq!(sessions(&account(&app, &chrome).await).len(), 2);
    assert_eq!(app.post_login(EMAIL, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn sign_in_activity_shows_failures_and_successes_with_ip_and_device() {
    let app = spawn_app().await;
    app.register(EMAIL).await;
    let firefox = browser_as(FIREFOX);
    let html = page(&firefox, &app.url("/login")).await;
    let response = post_form(
        &firefox,
        &app.url("/login"),
        &[
            ("csrf_token", &csrf_token(&html)),
            ("email", EMAIL),
            ("password", "not my password"),
        ],
    )
    .await;
    assert_eq!(response.status(), 422);
    sign_in(&app, &firefox, EMAIL).await;
    // A sign-in through the JSON API from another device.
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header(USER_AGENT, CHROME)
        .json(&serde_json::json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let html = account(&app, &firefox).await;
    let table = &html[html
        .find(r#"<table class="activity">"#)
        .expect("an activity table")..];
    let rows: Vec<&str> = table.split("<tr").skip(2).collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(rows[0].contains("Signed in") && rows[0].contains("Chrome on Windows 10"));
    assert!(rows[1].contains("Signed in") && rows[1].contains("Firefox on Linux"));
    assert!(
        rows[2].contains("Wrong password") && rows[2].contains("Firefox on Linux"),
        "{}",
        rows[2]
    );
    assert!(rows[2].contains(r#"class="refused""#));
    assert!(rows.iter().all(|r| r.contains("127.0.0.1")));
    // The JSON API's session is listed too, as an app.
    let items = sessions(&html);
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .any(|i| i.contains("Chrome on Windows 10") && i.contains(">App<"))
    );
}
