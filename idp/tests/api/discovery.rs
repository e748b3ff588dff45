use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::helpers::spawn_app;

#[tokio::test]
async fn discovery_names_the_exact_issuer_and_the_jwks_uri() {
    let app = spawn_app().await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], app.issuer.as_str());
    assert_eq!(doc["jwks_uri"], format!("{}/jwks", app.issuer));
}

#[tokio::test]
async fn the_jwks_publishes_only_public_rsa_signing_keys() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/jwks")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/jwk-set+json"
    );
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cache.contains("max-age="), "{cache}");
    let jwks: serde_json::Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    let mut kids = HashSet::new();
    for key in keys {
        let members: HashSet<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            members,
            HashSet::from(["kty", "use", "alg", "kid", "n", "e"]),
            "{key}"
        );
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "RS256");
        let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
        assert!(n.len() * 8 >= 2048);
        assert!(
            kids.insert(key["kid"].as_str().unwrap().to_owned()),
            "kids are unique"
        );
    }
}

#[tokio::test]
async fn unknown_paths_answer_404_in_the_api_error_shape() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(crate::helpers::error_code(response).await, "not_found");
}

#[tokio::test]
async fn a_wrong_method_answers_405_in_the_api_error_shape() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/auth/login")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(
        crate::helpers::error_code(response).await,
        "method_not_allowed"
    );
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;
    let echoed = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-123");
    let generated = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "bad id\twith tab")
        .send()
        .await
        .unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn discovery_advertises_exactly_the_supported_values() {
    let app = spawn_app().await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["request_parameter_supported"], false);
    assert_eq!(doc["request_uri_parameter_supported"], false);
    let grants = doc["grant_types_supported"].as_array().unwrap();
    assert!(!grants.iter().any(|g| g == "password" || g == "implicit"));
}

#[tokio::test]
async fn every_advertised_endpoint_exists() {
    let app = spawn_app().await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    for name in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ] {
        let url = doc[name].as_str().unwrap();
        assert!(url.starts_with(&app.issuer), "{name} is under the issuer");
        let get = app.client.get(url).send().await.unwrap().status();
        let post = app.client.post(url).send().await.unwrap().status();
        assert!(get != 404 && post != 404, "{name}: GET {get}, POST {post}");
    }
}
