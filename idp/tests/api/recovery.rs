//! Password reset (issue 14) over HTTP with the mail read from a real SMTP sink: one
//! answer for known and unknown addresses, a link that a GET never spends, works once,
//! dies when a newer one is sent or when it expires, ends every session, clears the
//! sign-in lock, and a notice afterwards; throttled per address and per IP; the same
//! through the pages, without scripts.

use chrono::Duration;
use reqwest::Response;
use serde_json::json;

use crate::browser_helpers::{browser, csrf_token, hidden, page, post_form};
use crate::helpers::{PASSWORD, TestApp, answer, error_code, spawn_app_with_clock};
use crate::smtp_sink::{SmtpSink, link};

const EMAIL: &str = "ada@example.com";
const NEW_PASSWORD: &str = "an entirely new passphrase";
const RESET_SUBJECT: &str = "Reset your password";

pub async fn app_with_sink() -> (TestApp, SmtpSink) {
    app_with_sink_and(|_| {}).await
}

/// [`app_with_sink`] after `customise` had a go at the settings.
pub async fn app_with_sink_and(
    customise: impl FnOnce(&mut idp::app::settings::Settings),
) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let url = sink.url.clone();
    let app = spawn_app_with_clock(
        service_kit::testing::fresh_database("idp").await,
        service_kit::clock::Clock::system(),
        move |s| {
            s.smtp_url = Some(idp::app::settings::SmtpUrlSetting(url));
            customise(s);
        },
    )
    .await;
    (app, sink)
}

async fn forgot(app: &TestApp, email: &str) -> Response {
    app.post_json("/auth/password/forgot", &json!({ "email": email }))
        .await
}

async fn reset(app: &TestApp, token: &str, new_password: &str) -> Response {
    app.post_json(
        "/auth/password/reset",
        &json!({"token": token, "new_password": new_password}),
    )
    .await
}

/// The link in the `index`-th "Reset your password" mail (waiting for it).
pub async fn reset_link(app: &TestApp, sink: &SmtpSink, index: usize) -> String {
    let mail = sink
        .wait_for_subject(RESET_SUBJECT, index + 1)
        .await
        .remove(index);
    link(&mail.data, &app.url("/password/reset?token="))
}

fn token_of(link: &str) -> &str {
    link.split_once("token=").unwrap().1
}

#[tokio::test]
async fn forgot_password_answers_alike_for_known_and_unknown_addresses() {
    let (app, sink) = app_with_sink().await;
    app.register(EMAIL).await;
    // A forged Host header does not reach the link: it is built from the issuer.
    let known = app
        .client
        .post(app.url("/auth/password/forgot"))
        .header("host", "attacker.example")
        .json(&json!({ "email": EMAIL }))
        .send()
        .await
        .unwrap();
    let known = answer(known).await;
    let unknown = answer(forgot(&app, "nobody@example.com").await).await;
    let malformed = answer(forgot(&app, "not an address").await).await;
    assert_eq!(known.0, 202);
    assert_eq!(known, unknown);
    assert_eq!(known, malformed);
    let received = sink.wait_for_subject(RESET_SUBJECT, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let resets = sink.wait_for_subject(RESET_SUBJECT, 1).await;
    assert_eq!(resets.len(), 1, "a mail for the account only");
    assert_eq!(received[0].to, [EMAIL]);
    assert!(!received[0].data.contains("attacker.example"));
    link(
        &received[0].data,
        &format!("{}/password/reset?token=", app.issuer),
    );
}

/// Per address quietly (three mails an hour, the same 202 for the rest), per IP address
/// openly (ten at once, then 429 with `Retry-After`).
#[tokio::test]
async fn forgot_password_is_throttled_quietly_per_address_and_openly_per_ip() {
    let (app, sink) = app_with_sink().await;
    app.register(EMAIL).await;
    for _ in 0..5 {
        assert_eq!(forgot(&app, EMAIL).await.status(), 202);
    }
    for n in 0..5 {
        let other = format!("nobody{n}@example.com");
        assert_eq!(forgot(&app, &other).await.status(), 202);
    }
    let refused = forgot(&app, "nobody@example.com").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_code(refused).await, "too_many_requests");

    assert_eq!(sink.wait_for_subject(RESET_SUBJECT, 3).await.len(), 3);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        sink.wait_for_subject(RESET_SUBJECT, 3).await.len(),
        3,
        "no fourth mail within the hour"
    );
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_ends_every_session() {
    let (app, sink) = app_with_sink().await;
    app.register(EMAIL).await;
    let before = app.login(EMAIL).await;
    assert_eq!(forgot(&app, EMAIL).await.status(), 202);
    let link = reset_link(&app, &sink, 0).await;
    let token = token_of(&link);

    // Opening the link (a person, or a mail scanner) spends nothing.
    for _ in 0..2 {
        let html = page(&browser(), &link).await;
        assert_eq!(hidden(&html, "token").as_deref(), Some(token));
    }
    let mut tampered = token.to_owned();
    let last = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., last);
    let response = reset(&app, &tampered, NEW_PASSWORD).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_reset_token");
    // A password the policy refuses costs the link nothing.
    let response = reset(&app, token, "short").await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "invalid_password");

    assert_eq!(reset(&app, token, NEW_PASSWORD).await.status(), 204);
    assert_eq!(app.post_login(EMAIL, PASSWORD).await.status(), 401);
    assert_eq!(app.post_login(EMAIL, NEW_PASSWORD).await.status(), 200);
    let me = app
        .client
        .get(app.url("/auth/me"))
        .bearer_auth(&before)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401, "the session from before the reset ended");
    let again = reset(&app, token, "yet another passphrase").await;
    assert_eq!(again.status(), 400, "single use");
    assert_eq!(page_status(&link).await, 400);

    let notice = &sink.wait_for_subject("Your password was changed", 1).await[0];
    assert_eq!(notice.to, [EMAIL]);
}

async fn page_status(url: &str) -> u16 {
    browser().get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_newer_link_spends_the_older_and_links_expire() {
    let (app, sink) = app_with_sink().await;
    app.register(EMAIL).await;
    forgot(&app, EMAIL).await;
    let first = reset_link(&app, &sink, 0).await;
    forgot(&app, EMAIL).await;
    let second = reset_link(&app, &sink, 1).await;
    assert_ne!(first, second);
    assert_eq!(
        reset(&app, token_of(&first), NEW_PASSWORD).await.status(),
        400
    );
    assert_eq!(page_status(&first).await, 400);

    app.clock.shift(Duration::minutes(31));
    assert_eq!(page_status(&second).await, 400, "expired after 30 minutes");
    let response = reset(&app, token_of(&second), NEW_PASSWORD).await;
    assert_eq!(error_code(response).await, "invalid_reset_token");
    assert_eq!(app.post_login(EMAIL, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_reset_clears_the_lock_that_wrong_passwords_put_on_the_account() {
    let (app, sink) = app_with_sink().await;
    app.register(EMAIL).await;
    for _ in 0..6 {
        app.post_login(EMAIL, "not the password").await;
    }
    assert_eq!(
        app.post_login(EMAIL, PASSWORD).await.status(),
        401,
        "locked"
    );
    forgot(&app, EMAIL).await;
    let link = reset_link(&app, &sink, 0).await;
    assert_eq!(
        reset(&app, token_of(&link), NEW_PASSWORD).await.status(),
        204
    );
    assert_eq!(app.post_login(EMAIL, NEW_PASSWORD).await.status(), 200);
}

/// The whole flow in the pages, as a browser without scripts does it.
#[tokio::test]
async fn forgot_password_through_the_pages() {
    let (app, sink) = app_with_sink().await;
    app.register(EMAIL).await;
    let browser = browser();
    let login = page(&browser, &app.url("/login")).await;
    assert!(login.contains(r#"<a href="/password/forgot">Forgot your password?</a>"#));
    let form = page(&browser, &app.url("/password/forgot")).await;
    assert!(form.contains(r#"<label for="email">Email</label>"#));
    let response = post_form(
        &browser,
        &app.url("/password/forgot"),
        &[("csrf_token", &csrf_token(&form)), ("email", EMAIL)],
    )
    .await;
    assert_eq!(response.status(), 200);
    let sent = response.text().await.unwrap();
    assert!(sent.contains("If an account uses"), "{sent}");
    // Without the CSRF token nothing is sent.
    let response = post_form(&browser, &app.url("/password/forgot"), &[("email", EMAIL)]).await;
    assert_eq!(response.status(), 403);

    let link = reset_link(&app, &sink, 0).await;
    let form = page(&browser, &link).await;
    let fields = |password: &'static str, confirmation: &'static str| {
        vec![
            ("csrf_token", csrf_token(&form)),
            ("token", hidden(&form, "token").unwrap()),
            ("password", password.to_owned()),
            ("password_confirmation", confirmation.to_owned()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let browser = browser.clone();
        let url = app.url("/password/reset");
        async move { browser.post(url).form(&fields).send().await.unwrap() }
    };
    let response = post(fields(NEW_PASSWORD, "something else")).await;
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("The passwords do not match.")
    );
    let response = post(fields(NEW_PASSWORD, NEW_PASSWORD)).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login");
    let login = page(&browser, &app.url("/login")).await;
    assert!(login.contains("Your password was changed. Sign in with the new one."));
    assert_eq!(app.post_login(EMAIL, NEW_PASSWORD).await.status(), 200);
}
