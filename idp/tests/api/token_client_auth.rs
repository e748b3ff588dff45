//! Client authentication and request handling at `POST /token` (RFC 6749 §2.3, §3.2,
//! §5.2): one method per request and only the registered one, errors as JSON that is
//! never cached.

use idp::oauth::clients::{AuthMethod, GrantType};

use crate::helpers::spawn_app;
use crate::oauth_helpers::{
    Auth, ClientSpec, CodeSpec, REDIRECT_URI, TestClient, VERIFIER, basic_header,
    confidential_client, create_client, issue_code, oauth_error, post_form, public_client,
    service_client, token_body,
};

const CLIENT_CREDENTIALS: &[(&str, &str)] = &[("grant_type", "client_credentials")];

#[tokio::test]
async fn client_secret_basic_credentials_are_form_urldecoded_before_use() {
    let app = spawn_app().await;
    let client = service_client(&app, "users:read").await;
    // Generated secrets are base64url; a secret with characters that need encoding
    // proves the idp decodes what RFC 6749 §2.3.1 tells clients to encode.
    let secret = "a+b/c:d%e f&g=h~\u{e9}";
    sqlx::query("UPDATE clients SET secret_hash = $1 WHERE client_id = $2")
        .bind(idp::guards::secrets::hash(secret))
        .bind(&client.id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let response = app
        .client
        .post(app.url("/token"))
        .header("authorization", basic_header(&client.id, secret))
        .form(CLIENT_CREDENTIALS)
        .send()
        .await
        .unwrap();
    let body = token_body(response).await;
    assert_eq!(body["scope"], "users:read");

    // The same secret base64'd without the form-encoding is a different secret.
    let raw = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{}", client.id, "a+b/c:d%25e"),
    );
    let response = app
        .client
        .post(app.url("/token"))
        .header("authorization", format!("Basic {raw}"))
        .form(CLIENT_CREDENTIALS)
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(response, 401).await, "invalid_client");
}

#[tokio::test]
async fn client_secret_post_works_for_clients_registered_for_it() {
    let app = spawn_app().await;
    let client = create_client(
        &app,
        ClientSpec {
            auth_method: Some(AuthMethod::ClientSecretPost),
            grant_types: vec![GrantType::ClientCredentials],
            scope: "users:read",
            ..ClientSpec::default()
        },
    )
    .await;
    let response = post_form(&app, "/token", &client, Auth::Post, CLIENT_CREDENTIALS).await;
    assert_eq!(token_body(response).await["scope"], "users:read");
}

#[tokio::test]
async fn basic_and_post_at_once_is_an_invalid_request() {
    let app = spawn_app().await;
    let client = service_client(&app, "users:read").await;
    let response = app
        .client
        .post(app.url("/token"))
        .header(
            "authorization",
            basic_header(&client.id, client.secret.as_deref().unwrap()),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(response, 400).await, "invalid_request");
}

#[tokio::test]
async fn a_method_other_than_the_registered_one_is_refused() {
    let app = spawn_app().await;
    let basic = service_client(&app, "users:read").await;
    let response = post_form(&app, "/token", &basic, Auth::Post, CLIENT_CREDENTIALS).await;
    assert!(!response.headers().contains_key("www-authenticate"));
    assert_eq!(oauth_error(response, 401).await, "invalid_client");

    let response = post_form(&app, "/token", &basic, Auth::IdOnly, CLIENT_CREDENTIALS).await;
    assert_eq!(oauth_error(response, 401).await, "invalid_client");

    let post = create_client(
        &app,
        ClientSpec {
            auth_method: Some(AuthMethod::ClientSecretPost),
            grant_types: vec![GrantType::ClientCredentials],
            scope: "users:read",
            ..ClientSpec::default()
        },
    )
    .await;
    let response = post_form(&app, "/token", &post, Auth::Basic, CLIENT_CREDENTIALS).await;
    assert!(response.headers().contains_key("www-authenticate"));
    assert_eq!(oauth_error(response, 401).await, "invalid_client");
}

#[tokio::test]
async fn a_wrong_secret_is_a_401_with_a_basic_challenge_only_when_the_header_was_used() {
    let app = spawn_app().await;
    let client = service_client(&app, "users:read").await;
    let wrong = TestClient {
        secret: Some("not-the-secret".to_owned()),
        ..client.clone()
    };
    let response = post_form(&app, "/token", &wrong, Auth::Basic, CLIENT_CREDENTIALS).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Basic realm="idp""#
    );
    assert_eq!(oauth_error(response, 401).await, "invalid_client");

    let post_client = create_client(
        &app,
        ClientSpec {
            auth_method: Some(AuthMethod::ClientSecretPost),
            grant_types: vec![GrantType::ClientCredentials],
            scope: "users:read",
            ..ClientSpec::default()
        },
    )
    .await;
    let wrong = TestClient {
        secret: Some("not-the-secret".to_owned()),
        ..post_client
    };
    let response = post_form(&app, "/token", &wrong, Auth::Post, CLIENT_CREDENTIALS).await;
    assert!(!response.headers().contains_key("www-authenticate"));
    assert_eq!(oauth_error(response, 401).await, "invalid_client");
}

#[tokio::test]
async fn an_unknown_client_or_none_at_all_is_an_invalid_client() {
    let app = spawn_app().await;
    let unknown = TestClient {
        id: "c_unknown".to_owned(),
        secret: Some("whatever".to_owned()),
        method: AuthMethod::ClientSecretBasic,
    };
    let response = post_form(&app, "/token", &unknown, Auth::Basic, CLIENT_CREDENTIALS).await;
    assert!(response.headers().contains_key("www-authenticate"));
    assert_eq!(oauth_error(response, 401).await, "invalid_client");
    let response = post_form(&app, "/token", &unknown, Auth::IdOnly, CLIENT_CREDENTIALS).await;
    assert_eq!(oauth_error(response, 401).await, "invalid_client");
    let response = post_form(&app, "/token", &unknown, Auth::Nothing, CLIENT_CREDENTIALS).await;
    assert_eq!(oauth_error(response, 401).await, "invalid_client");
    let garbage = app
        .client
        .post(app.url("/token"))
        .header("authorization", "Basic !!!not-base64")
        .form(CLIENT_CREDENTIALS)
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(garbage, 401).await, "invalid_client");
}

#[tokio::test]
async fn a_grant_type_the_client_is_not_registered_for_is_an_unauthorized_client() {
    let app = spawn_app().await;
    let code_client = confidential_client(&app).await;
    let response = post_form(
        &app,
        "/token",
        &code_client,
        Auth::Basic,
        CLIENT_CREDENTIALS,
    )
    .await;
    assert_eq!(oauth_error(response, 400).await, "unauthorized_client");

    let service = service_client(&app, "users:read").await;
    let response = post_form(
        &app,
        "/token",
        &service,
        Auth::Basic,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!(oauth_error(response, 400).await, "unauthorized_client");
}

#[tokio::test]
async fn a_public_client_cannot_use_client_credentials() {
    let app = spawn_app().await;
    let client = public_client(&app).await;
    let response = post_form(&app, "/token", &client, Auth::IdOnly, CLIENT_CREDENTIALS).await;
    assert_eq!(oauth_error(response, 400).await, "unauthorized_client");
}

#[tokio::test]
async fn unknown_grant_types_and_the_password_grant_are_unsupported() {
    let app = spawn_app().await;
    let client = confidential_client(&app).await;
    for grant_type in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let response = post_form(
            &app,
            "/token",
            &client,
            Auth::Basic,
            &[
                ("grant_type", grant_type),
                ("username", "ada@example.com"),
                ("password", "correct horse battery staple"),
            ],
        )
        .await;
        assert_eq!(
            oauth_error(response, 400).await,
            "unsupported_grant_type",
            "{grant_type}"
        );
    }
    let response = post_form(&app, "/token", &client, Auth::Basic, &[("code", "x")]).await;
    assert_eq!(oauth_error(response, 400).await, "invalid_request");
}

#[tokio::test]
async fn a_parameter_sent_twice_is_an_invalid_request() {
    let app = spawn_app().await;
    let user_id = app.register("ada@example.com").await;
    let client = confidential_client(&app).await;
    let code = issue_code(&app, &client, &user_id, CodeSpec::default()).await;
    let response = post_form(
        &app,
        "/token",
        &client,
        Auth::Basic,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(oauth_error(response, 400).await, "invalid_request");
}

#[tokio::test]
async fn a_body_that_is_not_form_encoded_is_an_invalid_request_in_json() {
    let app = spawn_app().await;
    let client = service_client(&app, "users:read").await;
    let response = app
        .client
        .post(app.url("/token"))
        .header(
            "authorization",
            basic_header(&client.id, client.secret.as_deref().unwrap()),
        )
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(response, 400).await, "invalid_request");
    let response = app.client.post(app.url("/token")).send().await.unwrap();
    assert_eq!(oauth_error(response, 400).await, "invalid_request");
}

#[tokio::test]
async fn the_token_endpoint_only_accepts_post() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/token")).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn errors_are_never_cached() {
    let app = spawn_app().await;
    let client = confidential_client(&app).await;
    // oauth_error asserts Cache-Control: no-store and Pragma: no-cache.
    let response = post_form(
        &app,
        "/token",
        &client,
        Auth::Basic,
        &[
            ("grant_type", "authorization_code"),
            ("code", "nope"),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!(oauth_error(response, 400).await, "invalid_grant");
}
