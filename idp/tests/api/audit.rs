//! The audit trail (issue 5): sign-ins, failures, lockouts, registrations and client
//! events, each with time, user, IP and outcome, and never a secret.

use idp::guards::audit::store::{AuditRow, latest};

use crate::helpers::{PASSWORD, TestApp, spawn_app};
use crate::oauth_helpers::{Auth, TestClient, oauth_error, post_form, service_client};

async fn events(app: &TestApp) -> Vec<AuditRow> {
    let mut rows = latest(&app.db.pool, 1000).await.unwrap();
    rows.reverse();
    rows
}

fn find<'a>(rows: &'a [AuditRow], event: &str, outcome: &str) -> Vec<&'a AuditRow> {
    rows.iter()
        .filter(|r| r.event == event && r.outcome == outcome)
        .collect()
}

#[tokio::test]
async fn sign_ins_failures_and_lockouts_are_audited_without_secrets() {
    let app = spawn_app().await;
    let started = chrono::Utc::now().timestamp();
    let user_id = app.register("audited@example.com").await;
    app.login("audited@example.com").await;
    let wrong = "Wrong-Password-4711";
    for _ in 0..5 {
        assert_eq!(
            app.post_login("audited@example.com", wrong).await.status(),
            401
        );
    }
    assert_eq!(
        app.post_login("audited@example.com", PASSWORD)
            .await
            .status(),
        401
    );
    // Someone typed a password into the email field.
    let typed = "Typed-Into-The-Email-Field";
    assert_eq!(app.post_login(typed, wrong).await.status(), 401);

    let rows = events(&app).await;
    let registered = find(&rows, "registration", "success");
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].user_id.as_deref(), Some(user_id.as_str()));

    let success = find(&rows, "sign_in", "success");
    assert_eq!(success.len(), 1);
    assert_eq!(success[0].user_id.as_deref(), Some(user_id.as_str()));
    assert_eq!(success[0].ip.as_deref(), Some("127.0.0.1"));
    assert!(success[0].at >= started && success[0].at <= started + 600);

    let failures = find(&rows, "sign_in", "failure");
    assert_eq!(failures.len(), 6);
    assert!(
        failures[..5]
            .iter()
            .all(|r| r.user_id.as_deref() == Some(user_id.as_str()))
    );
    assert_eq!(
        failures[5].user_id, None,
        "an unknown account names no user"
    );
    assert!(
        failures
            .iter()
            .all(|r| r.ip.as_deref() == Some("127.0.0.1"))
    );

    let lockouts = find(&rows, "account_locked", "locked");
    assert_eq!(lockouts.len(), 1);
    assert_eq!(lockouts[0].user_id.as_deref(), Some(user_id.as_str()));
    let refused = find(&rows, "sign_in", "locked");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].user_id.as_deref(), Some(user_id.as_str()));

    let everything = format!("{rows:?}");
    for secret in [PASSWORD, wrong, typed, &typed.to_lowercase()] {
        assert!(!everything.contains(secret), "{secret} in {everything}");
    }
    // Nor in the throttle's table: keys of accounts are hashes.
    let keys: Vec<(String,)> = sqlx::query_as("SELECT throttle_key FROM auth_failures")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    let keys = format!("{keys:?}");
    assert!(
        !keys.contains("audited") && !keys.to_lowercase().contains("typed"),
        "{keys}"
    );
}

#[tokio::test]
async fn client_creation_and_authentication_failures_are_audited() {
    let app = spawn_app().await;
    let client = service_client(&app, "users:read").await;
    let wrong = TestClient {
        secret: Some("not-the-secret".to_owned()),
        ..client.clone()
    };
    let grant = &[("grant_type", "client_credentials")];
    let response = post_form(&app, "/token", &wrong, Auth::Registered, grant).await;
    assert_eq!(oauth_error(response, 401).await, "invalid_client");

    let rows = events(&app).await;
    let created = find(&rows, "client_created", "success");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].client_id.as_deref(), Some(client.id.as_str()));
    let failed = find(&rows, "client_authentication", "failure");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].client_id.as_deref(), Some(client.id.as_str()));
    assert_eq!(failed[0].ip.as_deref(), Some("127.0.0.1"));
    assert!(!format!("{rows:?}").contains("not-the-secret"));
}

/// Every mail flow leaves its event, with the user, and no link, token or password in
/// any row.
#[tokio::test]
async fn the_mail_flows_are_audited_without_links() {
    let (app, sink) = crate::recovery::app_with_sink().await;
    let user_id = app.register("ada@example.com").await;
    let access = app.login("ada@example.com").await;
    let send = |path: &'static str, body: serde_json::Value| {
        let (app, access) = (&app, &access);
        async move {
            app.client
                .post(app.url(path))
                .bearer_auth(access)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let no_body = serde_json::json!({});
    assert_eq!(send("/auth/email/verify/resend", no_body).await, 202);
    let mail = sink.wait_for_subject("Confirm your email address", 2).await;
    let verify = crate::smtp_sink::link(&mail[1].data, &app.url("/email/verify?token="));
    let token = |link: &str| link.split_once("token=").unwrap().1.to_owned();
    let body = serde_json::json!({ "token": token(&verify) });
    assert_eq!(send("/auth/email/verify", body).await, 204);
    let body = serde_json::json!({"current_password": PASSWORD, "new_email": "ada@example.org"});
    assert_eq!(send("/auth/email", body).await, 202);
    let mail = sink
        .wait_for_subject("Confirm your new email address", 1)
        .await;
    let change = crate::smtp_sink::link(&mail[0].data, &app.url("/email/change?token="));
    let body = serde_json::json!({ "token": token(&change) });
    assert_eq!(send("/auth/email/change/confirm", body).await, 204);
    let body = serde_json::json!({ "email": "ada@example.org" });
    assert_eq!(send("/auth/password/forgot", body).await, 202);
    let reset = crate::recovery::reset_link(&app, &sink, 0).await;
    let body = serde_json::json!({"token": token(&reset), "new_password": "a new passphrase"});
    assert_eq!(send("/auth/password/reset", body).await, 204);

    let rows = events(&app).await;
    for event in [
        "email_verification_requested",
        "email_verified",
        "email_change_requested",
        "email_changed",
        "password_reset_requested",
        "password_reset",
    ] {
        let found = find(&rows, event, "success");
        assert_eq!(found.len(), 1, "{event}");
        assert_eq!(
            found[0].user_id.as_deref(),
            Some(user_id.as_str()),
            "{event}"
        );
    }
    let text = format!("{rows:?}");
    for secret in [
        &*token(&verify),
        &*token(&change),
        &*token(&reset),
        PASSWORD,
    ] {
        assert!(!text.contains(secret), "a secret in the audit trail");
    }
}
