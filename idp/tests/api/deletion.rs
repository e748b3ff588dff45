//! Deleting an account by its owner (issue 14): the current password, then everything
//! goes in one transaction (sessions, grants, consents, tokens, links), the audit trail
//! keeps events without personal data, a last mail goes to the address, and the address
//! can be registered again; the account page asks for an explicit confirmation.

use serde_json::json;

use crate::browser_helpers::{browser, csrf_token, page, post_form, sign_in as sign_in_on_page};
use crate::helpers::{PASSWORD, TestApp, error_code};
use crate::oauth_helpers::{get_userinfo, sign_in};
use crate::recovery::app_with_sink;

const EMAIL: &str = "ada@example.com";

async fn delete(app: &TestApp, access: &str, password: &str) -> reqwest::Response {
    app.client
        .delete(app.url("/auth/me"))
        .bearer_auth(access)
        .json(&json!({ "current_password": password }))
        .send()
        .await
        .unwrap()
}

async fn count(app: &TestApp, sql: &str, user_id: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .bind(user_id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn an_owner_deletes_their_account_and_everything_hanging_on_it() {
    let (app, sink) = app_with_sink().await;
    // A grant from the authorization code flow, and a first-party session.
    let signed = sign_in(&app, EMAIL, "openid email").await;
    let access = app.login(EMAIL).await;
    let user = signed.user_id.clone();

    let wrong = delete(&app, &access, "not my password").await;
    assert_eq!(wrong.status(), 403);
    assert_eq!(error_code(wrong).await, "wrong_current_password");
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM users WHERE id = $1", &user).await,
        1
    );

    assert_eq!(delete(&app, &access, PASSWORD).await.status(), 204);
    for table in [
        "users WHERE id",
        "user_sessions WHERE user_id",
        "grants WHERE user_id",
        "account_tokens WHERE user_id",
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table} = $1");
        assert_eq!(count(&app, &sql, &user).await, 0, "{table}");
    }
    // Nothing of the account works any more.
    assert_eq!(app.post_login(EMAIL, PASSWORD).await.status(), 401);
    let me = app
        .client
        .get(app.url("/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    assert_eq!(
        get_userinfo(&app, signed.access_token()).await.status(),
        401
    );
    // The audit trail keeps what happened, without who from where.
    let personal = count(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE user_id = $1 \
         AND (ip IS NOT NULL OR device IS NOT NULL OR user_agent IS NOT NULL)",
        &user,
    )
    .await;
    assert_eq!(personal, 0);
    let deleted = count(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE user_id = $1 AND event = 'account_deleted' \
         AND outcome = 'success'",
        &user,
    )
    .await;
    assert_eq!(deleted, 1);
    assert!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE user_id = $1",
            &user
        )
        .await
            > 3
    );
    let last = sink.wait_for_subject("Your account was deleted", 1).await;
    assert_eq!(last[0].to, [EMAIL]);
    // The address is free again.
    assert_eq!(app.post_register(EMAIL, PASSWORD).await.status(), 201);
}

#[tokio::test]
async fn the_account_page_deletes_only_with_the_password_and_the_box_ticked() {
    let (app, _sink) = app_with_sink().await;
    app.register(EMAIL).await;
    let browser = browser();
    sign_in_on_page(&app, &browser, EMAIL).await;
    let html = page(&browser, &app.url("/account")).await;
    assert!(html.contains(r#"<h2 id="delete-heading">Delete your account</h2>"#));

    let unticked = post_form(
        &browser,
        &app.url("/account/delete"),
        &[
            ("csrf_token", &csrf_token(&html)),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(unticked.status(), 422);
    assert!(unticked.text().await.unwrap().contains("Tick the box"));
    let html = page(&browser, &app.url("/account")).await;
    let wrong = post_form(
        &browser,
        &app.url("/account/delete"),
        &[
            ("csrf_token", &csrf_token(&html)),
            ("current_password", "not my password"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), 422);
    assert_eq!(
        app.post_login(EMAIL, PASSWORD).await.status(),
        200,
        "still there"
    );

    let html = page(&browser, &app.url("/account")).await;
    let done = post_form(
        &browser,
        &app.url("/account/delete"),
        &[
            ("csrf_token", &csrf_token(&html)),
            ("current_password", PASSWORD),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("Your account was deleted")
    );
    assert_eq!(app.post_login(EMAIL, PASSWORD).await.status(), 401);
    let account = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 303, "signed out");
}
