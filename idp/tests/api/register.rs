use chrono::DateTime;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, error_code, spawn_app};

#[tokio::test]
async fn register_answers_201_with_exactly_id_email_and_created_at() {
    let app = spawn_app().await;
    let response = app.post_register("a@b.com", "S3cureP@ss").await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["created_at", "email", "id"]);
    assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    assert_eq!(body["email"], "a@b.com");
    assert!(DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn register_normalises_the_email_so_case_variants_collide() {
    let app = spawn_app().await;
    let response = app.post_register("  Alice@Example.COM ", PASSWORD).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "alice@example.com");

    let again = app.post_register("alice@EXAMPLE.com", PASSWORD).await;
    assert_eq!(again.status(), 409);
    assert_eq!(error_code(again).await, "email_taken");
}

/// One mailbox, one account: lookalikes of an existing address are either the same
/// address (409) or refused as mixed-script (422), never a second account.
#[tokio::test]
async fn lookalikes_of_an_existing_address_do_not_become_accounts() {
    let app = spawn_app().await;
    app.register("mike@example.com").await;
    for (lookalike, status, code) in [
        ("mi\u{ff4b}e@example.com", 409, "email_taken"), // fullwidth k
        ("m\u{131}ke@example.com", 409, "email_taken"),  // dotless i
        ("m\u{130}ke@example.com", 409, "email_taken"),  // Turkish dotted capital I
        ("mi\u{43a}e@example.com", 422, "invalid_email"), // Cyrillic ka
        ("mike@exam\u{440}le.com", 422, "invalid_email"), // Cyrillic er in the domain
    ] {
        let response = app.post_register(lookalike, PASSWORD).await;
        assert_eq!(response.status(), status, "{lookalike:?}");
        assert_eq!(error_code(response).await, code, "{lookalike:?}");
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    // The fullwidth form is the same address: it signs in to the one account.
    let response = app.post_login("MI\u{ff2b}E@example.com", PASSWORD).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_unicode_domain_and_its_a_label_are_one_address() {
    let app = spawn_app().await;
    let response = app
        .post_register("anna@B\u{fc}cher.example", PASSWORD)
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "anna@xn--bcher-kva.example");
    let again = app
        .post_register("anna@xn--bcher-kva.example", PASSWORD)
        .await;
    assert_eq!(again.status(), 409);
    let login = app.post_login("anna@b\u{fc}cher.example", PASSWORD).await;
    assert_eq!(login.status(), 200);
    // A whole address in another script is a mailbox like any other.
    let cyrillic = app
        .post_register("\u{438}\u{432}\u{430}\u{43d}@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}", PASSWORD)
        .await;
    assert_eq!(cyrillic.status(), 201);
}

#[tokio::test]
async fn register_refuses_malformed_emails_with_422() {
    let app = spawn_app().await;
    let too_long = format!("{}@example.com", "a".repeat(250));
    for email in [
        "",
        "not-an-email",
        "a@b",
        "a b@c.com",
        "<a@b.com>",
        too_long.as_str(),
    ] {
        let response = app.post_register(email, PASSWORD).await;
        assert_eq!(response.status(), 422, "{email:?}");
        assert_eq!(error_code(response).await, "invalid_email");
    }
}

#[tokio::test]
async fn register_enforces_the_password_policy_without_truncating() {
    let app = spawn_app().await;
    let cases = [
        ("short7!", 422),
        ("password1", 422),       // on the common-passwords list
        ("Qwertyuiop", 422),      // common, in another case
        ("ab\u{7}cdefghij", 422), // control character
    ];
    for (i, (password, status)) in cases.into_iter().enumerate() {
        let response = app
            .post_register(&format!("p{i}@example.com"), password)
            .await;
        assert_eq!(response.status(), status, "{password:?}");
        assert_eq!(error_code(response).await, "invalid_password");
    }
    let max = "ß".repeat(128);
    assert_eq!(
        app.post_register("max@example.com", &max).await.status(),
        201
    );
    let over = "ß".repeat(129);
    let response = app.post_register("over@example.com", &over).await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "invalid_password");

    // Not truncated: only the full 128-character password logs in.
    assert_eq!(app.post_login("max@example.com", &max).await.status(), 200);
    assert_eq!(
        app.post_login("max@example.com", &"ß".repeat(127))
            .await
            .status(),
        401
    );
    let unicode = "пароль-для-входа 🔐";
    assert_eq!(
        app.post_register("u@example.com", unicode).await.status(),
        201
    );
    assert_eq!(app.post_login("u@example.com", unicode).await.status(), 200);
}

#[tokio::test]
async fn malformed_requests_get_a_clear_4xx_and_change_nothing() {
    let app = spawn_app().await;
    let url = app.url("/auth/register");
    let send = |body: String, content_type: &'static str| {
        app.client
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(String, &str, u16, &str)> = vec![
        (
            r#"{"email":"x@y.com","password":"#.into(),
            "application/json",
            400,
            "malformed_json",
        ),
        (
            json!({"email":"x@y.com","password":PASSWORD}).to_string(),
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (
            json!({"email":"x@y.com","password":PASSWORD,"admin":true}).to_string(),
            "application/json",
            422,
            "invalid_body",
        ),
        (
            json!({"email":"x@y.com"}).to_string(),
            "application/json",
            422,
            "invalid_body",
        ),
        (
            json!({"email":"x@y.com","password":42}).to_string(),
            "application/json",
            422,
            "invalid_body",
        ),
        (
            json!({"email":"x@y.com","password":"p".repeat(64 * 1024)}).to_string(),
            "application/json",
            413,
            "payload_too_large",
        ),
    ];
    for (body, content_type, status, code) in cases {
        let response = send(body, content_type).await.unwrap();
        assert_eq!(response.status(), status, "{code}");
        assert_eq!(error_code(response).await, code);
    }
    // None of them created the account.
    assert_eq!(app.post_register("x@y.com", PASSWORD).await.status(), 201);
}

#[tokio::test]
async fn unknown_fields_are_named_in_the_error_message() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/auth/register",
            &json!({"email":"x@y.com","password":PASSWORD,"role":"admin"}),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("role"), "{body}");
}

#[tokio::test]
async fn responses_never_echo_the_password() {
    let app = spawn_app().await;
    let secret = "unique-Secret-4711-xyz";
    let ok = app
        .post_register("s@example.com", secret)
        .await
        .text()
        .await
        .unwrap();
    let taken = app
        .post_register("s@example.com", secret)
        .await
        .text()
        .await
        .unwrap();
    let bad_email = app
        .post_register("nope", secret)
        .await
        .text()
        .await
        .unwrap();
    let login = app
        .post_login("s@example.com", "wrong-Secret-4711")
        .await
        .text()
        .await
        .unwrap();
    for body in [ok, taken, bad_email, login] {
        assert!(
            !body.contains(secret) && !body.contains("4711") && !body.contains("argon2"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn ten_concurrent_registrations_of_one_email_create_exactly_one_account() {
    let app = spawn_app().await;
    let attempts = (0..10).map(|_| app.post_register("race@example.com", PASSWORD));
    let responses = futures::future::join_all(attempts).await;
    let mut created = 0;
    let mut conflicts = 0;
    for response in responses {
        match response.status().as_u16() {
            201 => created += 1,
            409 => {
                assert_eq!(error_code(response).await, "email_taken");
                conflicts += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, conflicts), (1, 9));
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email = $1")
        .bind("race@example.com")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}
