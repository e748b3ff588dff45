use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_reports_the_database() {
    let app = spawn_app().await;
    let body = app.get_json("/health").await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn health_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.db.pool.close().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["database"], "unavailable");
}
