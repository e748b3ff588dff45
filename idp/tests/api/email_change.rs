//! Changing the account's address (issue 14): the current password, a link to the new
//! address and a notice to the old one; nothing changes until the link is opened; then
//! the new address signs in, verified, and the old one is told; two accounts can never
//! end up on one address.

use serde_json::{Value, json};

use crate::browser_helpers::{browser, csrf_token, page, post_form, sign_in as sign_in_on_page};
use crate::helpers::{PASSWORD, TestApp, error_code};
use crate::recovery::app_with_sink;
use crate::smtp_sink::{SmtpSink, link, part};

const OLD: &str = "ada@example.com";
const NEW: &str = "ada.king@example.org";

async fn request(
    app: &TestApp,
    access: &str,
    password: &str,
    new_email: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/auth/email"))
        .bearer_auth(access)
        .json(&json!({"current_password": password, "new_email": new_email}))
        .send()
        .await
        .unwrap()
}

/// The link in the `index`-th confirmation mail to `to`.
async fn change_link(app: &TestApp, sink: &SmtpSink, to: &str, index: usize) -> String {
    let mails: Vec<_> = sink
        .wait_for_subject("Confirm your new email address", index + 1)
        .await
        .into_iter()
        .filter(|m| m.to == [to])
        .collect();
    link(&mails[index].data, &app.url("/email/change?token="))
}

async fn confirm(app: &TestApp, link: &str) -> reqwest::Response {
    let token = link.split_once("token=").unwrap().1;
    app.post_json("/auth/email/change/confirm", &json!({ "token": token }))
        .await
}

#[tokio::test]
async fn the_address_changes_only_when_the_new_one_confirms_and_the_old_one_is_told() {
    let (app, sink) = app_with_sink().await;
    app.register(OLD).await;
    let access = app.login(OLD).await;

    let wrong = request(&app, &access, "not my password", NEW).await;
    assert_eq!(wrong.status(), 403);
    assert_eq!(error_code(wrong).await, "wrong_current_password");
    let same = request(&app, &access, PASSWORD, "ADA@example.com").await;
    assert_eq!(error_code(same).await, "same_email");
    app.register("grace@example.com").await;
    let taken = request(&app, &access, PASSWORD, "grace@example.com").await;
    assert_eq!(taken.status(), 409);
    let lookalike = request(&app, &access, PASSWORD, "gr\u{430}ce@example.com").await;
    assert_eq!(error_code(lookalike).await, "invalid_email");

    assert_eq!(request(&app, &access, PASSWORD, NEW).await.status(), 202);
    let told = sink
        .wait_for_subject("A change of your email address was requested", 1)
        .await;
    assert_eq!(told[0].to, [OLD]);
    let text = part(&told[0].data, "text/plain");
    for fact in [NEW, " UTC", "127.0.0.1", "Device:"] {
        assert!(text.contains(fact), "the notice lacks {fact:?}: {text}");
    }
    let link = change_link(&app, &sink, NEW, 0).await;
    // Until the link is opened, nothing changed.
    assert_eq!(app.post_login(OLD, PASSWORD).await.status(), 200);
    assert_eq!(app.post_login(NEW, PASSWORD).await.status(), 401);

    let html = page(&browser(), &link).await;
    assert!(html.contains("Email address changed"));
    assert_eq!(app.post_login(OLD, PASSWORD).await.status(), 401);
    let access = app.login(NEW).await;
    let me: Value = app
        .client
        .get(app.url("/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], NEW);
    assert_eq!(me["email_verified"], true, "opening the link proved it");
    let done = sink
        .wait_for_subject("Your email address was changed", 1)
        .await;
    assert_eq!(done[0].to, [OLD]);
    // Single use.
    let again = confirm(&app, &link).await;
    assert_eq!(error_code(again).await, "invalid_email_change_token");
}

#[tokio::test]
async fn two_accounts_asking_for_one_address_cannot_both_have_it() {
    let (app, sink) = app_with_sink().await;
    app.register(OLD).await;
    app.register("grace@example.com").await;
    let ada = app.login(OLD).await;
    let grace = app.login("grace@example.com").await;
    assert_eq!(request(&app, &ada, PASSWORD, NEW).await.status(), 202);
    assert_eq!(request(&app, &grace, PASSWORD, NEW).await.status(), 202);
    let first = change_link(&app, &sink, NEW, 0).await;
    let second = change_link(&app, &sink, NEW, 1).await;

    let (a, b) = tokio::join!(confirm(&app, &first), confirm(&app, &second));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 409]);
    let (holders,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE email = $1")
        .bind(NEW)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(holders, 1);
}

#[tokio::test]
async fn the_account_page_asks_for_the_password_and_sends_the_link() {
    let (app, sink) = app_with_sink().await;
    app.register(OLD).await;
    let browser = browser();
    sign_in_on_page(&app, &browser, OLD).await;
    let html = page(&browser, &app.url("/account")).await;
    assert!(html.contains(r#"<label for="new_email">New email address</label>"#));
    let wrong = post_form(
        &browser,
        &app.url("/account/email"),
        &[
            ("csrf_token", &csrf_token(&html)),
            ("new_email", NEW),
            ("current_password", "not my password"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), 422);
    let body = wrong.text().await.unwrap();
    assert!(
        body.contains("The current password is incorrect."),
        "{body}"
    );
    assert!(body.contains(&format!(r#"value="{NEW}""#)));

    let html = page(&browser, &app.url("/account")).await;
    let response = post_form(
        &browser,
        &app.url("/account/email"),
        &[
            ("csrf_token", &csrf_token(&html)),
            ("new_email", NEW),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    let html = page(&browser, &app.url("/account")).await;
    assert!(html.contains(&format!("We sent a link to {NEW}.")));
    let link = change_link(&app, &sink, NEW, 0).await;
    page(&browser, &link).await;
    let html = page(&browser, &app.url("/account")).await;
    assert!(
        html.contains(&format!(r#"<strong class="identity">{NEW}</strong>"#)),
        "the page shows the new address"
    );
}
