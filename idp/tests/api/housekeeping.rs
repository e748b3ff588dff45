//! Housekeeping: dead rows (ended sessions with their refresh tokens, stale throttle
//! counters) are deleted, live and recent ones kept.

use chrono::Duration as Shift;
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, spawn_app};

async fn count(app: &TestApp, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn housekeeping_deletes_only_rows_that_can_no_longer_matter() {
    let app = spawn_app().await;
    app.register("a@b.com").await;
    let ended: Value = app
        .post_login("a@b.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    app.post_login("a@b.com", PASSWORD).await;
    assert_eq!(
        app.post_login("a@b.com", "wrong password!!").await.status(),
        401
    );
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(ended["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    // A recently ended session, a live one and a fresh throttle counter all stay.
    app.housekeeping.purge().await.unwrap();
    assert_eq!(count(&app, "user_sessions").await, 2);
    assert_eq!(count(&app, "session_refresh_tokens").await, 2);
    assert!(count(&app, "auth_failures").await >= 1);
    assert_eq!(
        count(&app, "rate_limits").await,
        1,
        "the address's account allowance"
    );

    // A month later all of them are dead, refresh tokens included; the audit trail stays.
    app.clock.shift(Shift::days(31));
    let audit_rows = count(&app, "audit_events").await;
    assert!(app.housekeeping.purge().await.unwrap() >= 3);
    assert_eq!(count(&app, "user_sessions").await, 0);
    assert_eq!(count(&app, "session_refresh_tokens").await, 0);
    assert_eq!(count(&app, "auth_failures").await, 0);
    assert_eq!(count(&app, "rate_limits").await, 0);
    assert_eq!(count(&app, "audit_events").await, audit_rows);
}
