//! Email verification (issue 14): registration mails a link (over real SMTP to the
//! sink); opening it verifies the address, which `email_verified` then says in userinfo,
//! ID tokens and `/auth/me`; links work once, for a day, and only the newest; the
//! account page asks and can send a new one.

use chrono::Duration;
use serde_json::{Value, json};

use crate::browser_helpers::{
    browser, csrf_token, get, page, post_form, sign_in as sign_in_on_page, submit_login,
};
use crate::helpers::{PASSWORD, TestApp, decode_jwt, error_code};
use crate::oauth_helpers::{get_userinfo, refresh, sign_in, token_body};
use crate::recovery::{app_with_sink, app_with_sink_and, reset_link};
use crate::smtp_sink::{SmtpSink, link};

const EMAIL: &str = "ada@example.com";
const SUBJECT: &str = "Confirm your email address";

/// The link in the `index`-th verification mail (waiting for it).
async fn verification_link(app: &TestApp, sink: &SmtpSink, index: usize) -> String {
    let mail = sink
        .wait_for_subject(SUBJECT, index + 1)
        .await
        .remove(index);
    assert_eq!(mail.to, [EMAIL]);
    link(&mail.data, &app.url("/email/verify?token="))
}

async fn me(app: &TestApp, access: &str) -> Value {
    let response = app
        .client
        .get(app.url("/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

async fn email_verified(app: &TestApp, access_token: &str) -> Value {
    let body: Value = get_userinfo(app, access_token).await.json().await.unwrap();
    body["email_verified"].clone()
}

#[tokio::test]
async fn the_registration_link_verifies_the_address_for_every_relying_party() {
    let (app, sink) = app_with_sink().await;
    let signed = sign_in(&app, EMAIL, "openid email").await;
    let (_, claims) = decode_jwt(signed.id_token());
    assert_eq!(claims["email_verified"], false);
    assert_eq!(email_verified(&app, signed.access_token()).await, false);
    let access = app.login(EMAIL).await;
    assert_eq!(me(&app, &access).await["email_verified"], false);

    let link = verification_link(&app, &sink, 0).await;
    let html = page(&browser(), &link).await;
    assert!(html.contains("Email address confirmed"));
    assert_eq!(email_verified(&app, signed.access_token()).await, true);
    assert_eq!(me(&app, &access).await["email_verified"], true);
    let refreshed =
        token_body(refresh(&app, &signed.client, signed.refresh_token(), &[]).await).await;
    let (_, claims) = decode_jwt(refreshed["id_token"].as_str().unwrap());
    assert_eq!(claims["email_verified"], true);

    // Single use.
    let again = browser().get(&link).send().await.unwrap();
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn a_new_link_spends_the_old_one_and_links_expire_after_a_day() {
    let (app, sink) = app_with_sink().await;
    app.register(EMAIL).await;
    let access = app.login(EMAIL).await;
    let resend = |access: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/auth/email/verify/resend"))
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
        }
    };
    let first = verification_link(&app, &sink, 0).await;
    assert_eq!(resend(access.clone()).await.status(), 202);
    let second = verification_link(&app, &sink, 1).await;
    let verify = |link: String| {
        let app = &app;
        async move {
            let token = link.split_once("token=").unwrap().1.to_owned();
            app.post_json("/auth/email/verify", &json!({ "token": token }))
                .await
        }
    };
    let response = verify(first).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_verification_token");

    app.clock.shift(Duration::hours(25));
    let access = app.login(EMAIL).await;
    assert_eq!(verify(second).await.status(), 400, "expired");
    assert_eq!(me(&app, &access).await["email_verified"], false);

    assert_eq!(resend(access.clone()).await.status(), 202);
    let third = verification_link(&app, &sink, 2).await;
    assert_eq!(verify(third).await.status(), 204);
    assert_eq!(me(&app, &access).await["email_verified"], true);
    let response = resend(access).await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "already_verified");
}

#[tokio::test]
async fn asking_for_links_is_limited_to_three_an_hour() {
    let (app, _sink) = app_with_sink().await;
    app.register(EMAIL).await;
    let access = app.login(EMAIL).await;
    for expected in [202, 202, 202, 429] {
        let response = app
            .client
            .post(app.url("/auth/email/verify/resend"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected);
    }
}

#[tokio::test]
async fn the_account_page_asks_to_confirm_the_address_and_sends_a_new_link() {
    let (app, sink) = app_with_sink().await;
    app.register(EMAIL).await;
    let browser = browser();
    sign_in_on_page(&app, &browser, EMAIL).await;
    let html = page(&browser, &app.url("/account")).await;
    assert!(html.contains(r#"<h2 id="verify-heading">Confirm your email address</h2>"#));
    let response = post_form(
        &browser,
        &app.url("/account/email/verify"),
        &[("csrf_token", &csrf_token(&html))],
    )
    .await;
    assert_eq!(response.status(), 303);
    let html = page(&browser, &app.url("/account")).await;
    assert!(
        html.contains("We sent a new link to ada@example.com"),
        "{html}"
    );

    let link = verification_link(&app, &sink, 1).await;
    page(&browser, &link).await;
    let html = page(&browser, &app.url("/account")).await;
    assert!(!html.contains("verify-heading"), "no longer asked");
}

#[tokio::test]
async fn when_required_only_verified_addresses_sign_in_and_a_refusal_mails_a_new_link() {
    let (app, sink) = app_with_sink_and(|s| s.require_verified_email = true).await;
    app.register(EMAIL).await;
    let response = app.post_login(EMAIL, PASSWORD).await;
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(response).await, "email_not_verified");
    let response = app.post_login(EMAIL, "not the password").await;
    assert_eq!(
        response.status(),
        401,
        "a wrong password learns nothing more"
    );

    let browser = browser();
    let refused = submit_login(&app, &browser, &app.url("/login"), EMAIL).await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Confirm your email address first")
    );
    let account = get(&browser, &app.url("/account")).await;
    assert_eq!(account.status(), 303, "no session");

    // Registration's link, then one per refused sign-in: the newest works.
    let link = verification_link(&app, &sink, 2).await;
    assert!(
        page(&browser, &link)
            .await
            .contains("Email address confirmed")
    );
    app.login(EMAIL).await;
    sign_in_on_page(&app, &browser, EMAIL).await;
}

#[tokio::test]
async fn when_required_registering_on_the_page_asks_to_confirm_before_signing_in() {
    let (app, sink) = app_with_sink_and(|s| s.require_verified_email = true).await;
    let browser = browser();
    let html = page(&browser, &app.url("/register")).await;
    let response = post_form(
        &browser,
        &app.url("/register"),
        &[
            ("csrf_token", &csrf_token(&html)),
            ("email", EMAIL),
            ("name", ""),
            ("password", PASSWORD),
            ("password_confirmation", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 201);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("We have sent a link to ada@example.com"),
        "{html}"
    );
    assert_eq!(get(&browser, &app.url("/account")).await.status(), 303);

    let link = verification_link(&app, &sink, 0).await;
    page(&browser, &link).await;
    sign_in_on_page(&app, &browser, EMAIL).await;
}

#[tokio::test]
async fn a_password_reset_link_proves_the_address_too() {
    let (app, sink) = app_with_sink_and(|s| s.require_verified_email = true).await;
    app.register(EMAIL).await;
    let response = app
        .post_json("/auth/password/forgot", &json!({ "email": EMAIL }))
        .await;
    assert_eq!(response.status(), 202);
    let link = reset_link(&app, &sink, 0).await;
    let token = link.split_once("token=").unwrap().1;
    let new_password = "a brand new passphrase";
    let response = app
        .post_json(
            "/auth/password/reset",
            &json!({ "token": token, "new_password": new_password }),
        )
        .await;
    assert_eq!(response.status(), 204);
    let response = app.post_login(EMAIL, new_password).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(me(&app, access).await["email_verified"], true);
}
