//! The profile cache: reads by id are served from memory, never a profile this
//! instance changed or deleted, and on PostgreSQL not for long one another instance did.

use std::time::Duration;

use serde_json::{Value, json};
use service_kit::testing::wants_postgres;

use crate::helpers::{TestApp, TestUser, USER_SCOPES, spawn_app};

/// How long another instance may take to hear of a write (the NOTIFY takes milliseconds).
const NOTIFY_WAIT: Duration = Duration::from_secs(2);

/// Changes a profile's name behind the server's back: no invalidation, no notification.
async fn rename_in_database(app: &TestApp, user: &TestUser, name: &str) {
    sqlx::query("UPDATE profiles SET name = $1 WHERE id = $2")
        .bind(name)
        .bind(&user.id)
        .execute(&app.db.pool)
        .await
        .unwrap();
}

/// The name in the profile `GET path` answers, or the status when it is not 200.
async fn read_name(app: &TestApp, path: &str, token: &str) -> Result<String, u16> {
    let response = app.get(path, Some(token)).await;
    if response.status() != 200 {
        return Err(response.status().as_u16());
    }
    let profile: Value = response.json().await.unwrap();
    Ok(profile["name"].as_str().unwrap().to_owned())
}

/// Polls until `GET path` answers `expected`, for at most [`NOTIFY_WAIT`].
async fn eventually_reads(app: &TestApp, path: &str, token: &str, expected: Result<&str, u16>) {
    let deadline = tokio::time::Instant::now() + NOTIFY_WAIT;
    loop {
        let got = read_name(app, path, token).await;
        if got.as_deref().map_err(|s| *s) == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} still answers {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn skipped_on_sqlite(test: &str) -> bool {
    if wants_postgres() {
        return false;
    }
    eprintln!(
        "note: {test} skipped: SQLite has a single instance \
         (set TEST_DATABASE=postgres to run it)"
    );
    true
}

#[tokio::test]
async fn a_cached_profile_is_read_without_the_database_but_lists_are_not_cached() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    app.create_profile(&user).await;
    let token = app.token_for(&user, USER_SCOPES);
    let admin = app.admin_token();
    let path = format!("/users/{}", user.id);

    rename_in_database(&app, &user, "changed behind its back").await;
    assert_eq!(
        read_name(&app, "/users/me", &token).await,
        Ok(String::new())
    );
    assert_eq!(read_name(&app, &path, &token).await, Ok(String::new()));
    assert_eq!(read_name(&app, &path, &admin).await, Ok(String::new()));

    let list: Value = app.get("/users", Some(&admin)).await.json().await.unwrap();
    assert_eq!(list["items"][0]["name"], "changed behind its back");
}

#[tokio::test]
async fn this_instances_writes_are_seen_at_once_through_the_cache() {
    let app = spawn_app().await;
    let user = TestUser::generate();
    let token = app.token_for(&user, USER_SCOPES);
    let admin = app.admin_token();
    let path = format!("/users/{}", user.id);
    // Fill the cache, through both read paths.
    app.create_profile(&user).await;
    assert_eq!(read_name(&app, &path, &admin).await, Ok(String::new()));

    let response = app.put(&path, &token, &json!({"name": "Ada"})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(read_name(&app, "/users/me", &token).await, Ok("Ada".into()));
    assert_eq!(read_name(&app, &path, &admin).await, Ok("Ada".into()));

    let response = app.put(&path, &admin, &json!({"name": "Countess"})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(read_name(&app, &path, &token).await, Ok("Countess".into()));

    assert_eq!(app.delete(&path, &token).await.status(), 204);
    assert_eq!(read_name(&app, &path, &admin).await, Err(404));
    // The owner's next call starts a fresh profile.
    assert_eq!(
        read_name(&app, "/users/me", &token).await,
        Ok(String::new())
    );
}

#[tokio::test]
async fn writes_at_one_instance_reach_the_cache_of_another_within_moments() {
    if skipped_on_sqlite("writes_at_one_instance_reach_the_cache_of_another_within_moments") {
        return;
    }
    let a = spawn_app().await;
    let b = a.spawn_sibling().await;
    let user = TestUser::generate();
    let token = a.token_for(&user, USER_SCOPES);
    let admin = a.admin_token();
    let path = format!("/users/{}", user.id);
    // B caches the profile; proof that it serves it from memory:
    b.create_profile(&user).await;
    rename_in_database(&b, &user, "unseen").await;
    assert_eq!(read_name(&b, &path, &admin).await, Ok(String::new()));

    let response = a.put(&path, &token, &json!({"name": "From A"})).await;
    assert_eq!(response.status(), 200);
    eventually_reads(&b, &path, &admin, Ok("From A")).await;
    eventually_reads(&b, "/users/me", &token, Ok("From A")).await;

    assert_eq!(a.delete(&path, &admin).await.status(), 204);
    eventually_reads(&b, &path, &admin, Err(404)).await;
}

#[tokio::test]
async fn a_lost_change_listener_connection_empties_the_cache_until_it_listens_again() {
    if skipped_on_sqlite(
        "a_lost_change_listener_connection_empties_the_cache_until_it_listens_again",
    ) {
        return;
    }
    let app = spawn_app().await;
    let user = TestUser::generate();
    let token = app.token_for(&user, USER_SCOPES);
    app.create_profile(&user).await;
    rename_in_database(&app, &user, "missed").await;
    assert_eq!(
        read_name(&app, "/users/me", &token).await,
        Ok(String::new())
    );

    // Changes made while the listener is gone are never announced to it.
    let killed = sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(killed.len(), 1, "expected one listener connection");
    eventually_reads(&app, "/users/me", &token, Ok("missed")).await;

    // Listening again, the cache is back in use.
    app.wait_for_coherent_profile_cache().await;
    assert_eq!(
        read_name(&app, "/users/me", &token).await,
        Ok("missed".into())
    );
    rename_in_database(&app, &user, "unseen").await;
    assert_eq!(
        read_name(&app, "/users/me", &token).await,
        Ok("missed".into())
    );
}
