use crate::helpers::{
    PASSWORD, decode_jwt, spawn_app, spawn_app_with, try_spawn_app_with, verify_independently,
};

#[tokio::test]
async fn accounts_and_signing_keys_survive_a_restart() {
    let app = spawn_app().await;
    let id = app.register("a@b.com").await;
    let token_before = app.login("a@b.com").await;
    let jwks_before = app.get_json("/jwks").await;
    let database = app.stop().await;

    let app = spawn_app_with(database, |_| {}).await;
    let token_after = app.login("a@b.com").await;
    assert_eq!(decode_jwt(&token_after).1["sub"], id.as_str());
    assert_eq!(
        app.get_json("/jwks").await,
        jwks_before,
        "same keys after restart"
    );
    assert_eq!(
        decode_jwt(&token_before).0["kid"],
        decode_jwt(&token_after).0["kid"]
    );
    assert!(verify_independently(
        &token_before,
        &app.get_json("/jwks").await
    ));
    assert_eq!(app.post_register("a@b.com", PASSWORD).await.status(), 409);
}

/// Accounts stored before addresses were normalised get their normalised address and
/// confusable key at the next start; one that now looks like another keeps its form.
#[tokio::test]
async fn addresses_stored_before_normalisation_are_normalised_at_start() {
    let app = spawn_app().await;
    app.register("mike@example.com").await;
    for (id, email) in [
        ("legacy-1", "anna@b\u{fc}cher.example"),
        ("legacy-2", "m\u{131}ke@example.com"),
    ] {
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, created_at, updated_at) \
             SELECT $1, $2, password_hash, created_at, updated_at FROM users WHERE email = $3",
        )
        .bind(id)
        .bind(email)
        .bind("mike@example.com")
        .execute(&app.db.pool)
        .await
        .unwrap();
    }
    let database = app.stop().await;

    let app = spawn_app_with(database, |_| {}).await;
    let stored: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, email, email_key FROM users ORDER BY id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    let legacy: Vec<_> = stored
        .iter()
        .filter(|(id, ..)| id.starts_with("legacy"))
        .collect();
    assert_eq!(
        legacy,
        [
            &(
                "legacy-1".to_owned(),
                "anna@xn--bcher-kva.example".to_owned(),
                "anna@b\u{fc}cher.example".to_owned()
            ),
            &(
                "legacy-2".to_owned(),
                "m\u{131}ke@example.com".to_owned(),
                "legacy:legacy-2".to_owned()
            ),
        ]
    );
    let login = app.post_login("anna@b\u{fc}cher.example", PASSWORD).await;
    assert_eq!(login.status(), 200);
}

#[tokio::test]
async fn instances_started_together_on_one_database_share_one_signing_key() {
    let database = service_kit::testing::fresh_database("idp").await;
    let (a, b) = tokio::join!(
        spawn_app_with(database.clone(), |_| {}),
        spawn_app_with(database, |_| {}),
    );
    let (jwks_a, jwks_b) = (a.get_json("/jwks").await, b.get_json("/jwks").await);
    assert_eq!(jwks_a, jwks_b);
    assert_eq!(jwks_a["keys"].as_array().unwrap().len(), 1);

    a.register("a@b.com").await;
    let from_b = b.login("a@b.com").await;
    assert!(verify_independently(&from_b, &jwks_a));
}

#[tokio::test]
async fn signing_keys_are_encrypted_at_rest() {
    let app = spawn_app().await;
    let jwks = app.get_json("/jwks").await;
    let (sealed,): (String,) = sqlx::query_as("SELECT private_key_enc FROM signing_keys")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(!sealed.contains("BEGIN"), "not PEM");
    let n = jwks["keys"][0]["n"].as_str().unwrap();
    assert!(!sealed.contains(&n[..16]));

    // Another key-encryption key cannot open them: start-up fails, naming the cause.
    let database = app.stop().await;
    let other_kek = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let Err((error, _)) = try_spawn_app_with(database, |s| {
        s.key_encryption_key = Some(idp::app::settings::KeyEncryptionKeySetting(other_kek));
    })
    .await
    else {
        panic!("started with the wrong key-encryption key");
    };
    assert!(
        format!("{error:#}").contains("key-encryption key"),
        "{error:#}"
    );
}

#[tokio::test]
async fn bad_settings_refuse_to_start_and_name_the_setting() {
    let database = service_kit::testing::fresh_database("idp").await;
    let Err((error, _)) =
        try_spawn_app_with(database, |s| s.issuer = "localhost:3000".to_owned()).await
    else {
        panic!("started with a bad issuer");
    };
    assert!(format!("{error:#}").contains("IDP_ISSUER"), "{error:#}");
}
