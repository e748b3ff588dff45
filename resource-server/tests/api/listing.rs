//! `GET /users?page=&per_page=`: admins only, creation order, bounded pages.

use serde_json::Value;

use crate::helpers::{TestApp, TestUser, USER_SCOPES, assert_insufficient_scope, spawn_app};

async fn list(app: &TestApp, query: &str) -> reqwest::Response {
    app.get(&format!("/users{query}"), Some(&app.admin_token()))
        .await
}

async fn ids(response: reqwest::Response) -> Vec<String> {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn listing_needs_the_admin_scope() {
    let app = spawn_app().await;
    let token = app.token_for(&TestUser::generate(), USER_SCOPES);
    assert_insufficient_scope(
        app.get("/users", Some(&token)).await,
        "users:read users:admin",
    )
    .await;
}

#[tokio::test]
async fn an_empty_list_has_the_default_page_and_size() {
    let app = spawn_app().await;
    let body: Value = list(&app, "").await.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"items": [], "page": 1, "per_page": 20, "total": 0})
    );
}

#[tokio::test]
async fn pages_follow_creation_order_and_report_the_total() {
    let app = spawn_app().await;
    for _ in 0..5 {
        app.create_profile(&TestUser::generate()).await;
    }
    let all: Value = list(&app, "?per_page=100").await.json().await.unwrap();
    assert_eq!(all["total"], 5);
    let items = all["items"].as_array().unwrap();
    let order: Vec<(String, String)> = items
        .iter()
        .map(|p| {
            (
                p["created_at"].as_str().unwrap().to_owned(),
                p["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    let all_ids: Vec<String> = order.into_iter().map(|(_, id)| id).collect();

    let first = list(&app, "?page=1&per_page=2").await;
    let body: Value = first.json().await.unwrap();
    assert_eq!(
        (body["page"].as_u64(), body["per_page"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(body["total"], 5);
    let mut paged = Vec::new();
    for page in 1..=3 {
        paged.extend(ids(list(&app, &format!("?page={page}&per_page=2")).await).await);
    }
    assert_eq!(paged, all_ids);
    assert_eq!(ids(list(&app, "?page=3&per_page=2").await).await.len(), 1);

    let beyond: Value = list(&app, "?page=4&per_page=2").await.json().await.unwrap();
    assert_eq!(beyond["items"].as_array().map(Vec::len), Some(0));
    assert_eq!(beyond["total"], 5);
}

#[tokio::test]
async fn per_page_is_capped_at_100() {
    let app = spawn_app().await;
    assert_eq!(list(&app, "?per_page=100").await.status(), 200);
    let response = list(&app, "?per_page=101").await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_query");
    assert!(body["message"].as_str().unwrap().contains("per_page"));
}

#[tokio::test]
async fn bad_page_values_are_refused() {
    let app = spawn_app().await;
    for query in [
        "?page=0",
        "?page=-1",
        "?page=abc",
        "?page=",
        "?per_page=0",
        "?per_page=ten",
        "?page=1&page=2",
    ] {
        let response = list(&app, query).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_query", "{query}");
    }
}
