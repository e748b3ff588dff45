//! Test support: an issuer on loopback (discovery and a JWKS the test can change) and
//! RSA keys that sign access tokens and SETs.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{JwsSigner, RS256};
use serde_json::{Value, json};

/// An issuer on loopback whose JWKS the test can change.
pub struct Issuer {
    pub url: String,
    pub jwks: Arc<Mutex<Value>>,
}

pub async fn issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let jwks = Arc::new(Mutex::new(json!({"keys": []})));
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")});
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { Json(discovery) }),
        )
        .route(
            "/jwks",
            get(|State(jwks): State<Arc<Mutex<Value>>>| async move {
                Json(jwks.lock().unwrap().clone())
            }),
        )
        .with_state(Arc::clone(&jwks));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Issuer { url, jwks }
}

pub struct Key {
    pub pair: RsaKeyPair,
    pub kid: String,
}

impl Key {
    pub fn new(kid: &str) -> Self {
        Self {
            pair: RsaKeyPair::generate(2048).unwrap(),
            kid: kid.to_owned(),
        }
    }

    pub fn public(&self) -> Value {
        let mut jwk = josekit::jwk::KeyPair::to_jwk_public_key(&self.pair);
        jwk.set_key_id(&self.kid);
        serde_json::to_value(jwk.as_ref()).unwrap()
    }

    /// An access token for `user`, expiring at `expires_at`.
    pub fn sign(&self, issuer: &str, expires_at: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        self.sign_json(
            &json!({"alg": "RS256", "typ": "at+jwt", "kid": self.kid}),
            &json!({
                "iss": issuer, "sub": "user", "aud": "api", "exp": expires_at, "iat": now,
                "jti": format!("{expires_at}-{}", self.kid), "client_id": "c", "scope": "read",
            }),
        )
    }

    /// A compact JWS of `header` and `claims` as given, RS256-signed with this key.
    pub fn sign_json(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signer = RS256
            .signer_from_der(josekit::jwk::KeyPair::to_der_private_key(&self.pair))
            .unwrap();
        let signature = signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}
