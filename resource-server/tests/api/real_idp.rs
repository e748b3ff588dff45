//! The real idp, started in-process on port 0 with its own settings and clock, for the
//! tests that take the resource server through the whole chain.

use idp::events::delivery::Deliverer;
use idp::events::streams::{NewStream, Streams};
use idp::keys::lifecycle::KeyRotation;
use serde_json::{Value, json};
use service_kit::clock::Clock;
use service_kit::db::Database;
use service_kit::testing::TestDatabase;
use tokio::net::TcpListener;

use crate::helpers::AUDIENCE;

pub const PASSWORD: &str = "correct horse battery staple 42";

pub struct RealIdp {
    /// Where this instance listens.
    pub address: String,
    /// The `iss` it signs: its own address unless the test configured another.
    pub issuer: String,
    /// Its key maintenance, for tests that tick the schedule by hand.
    pub key_rotation: KeyRotation,
    /// Its event receivers (`idp streams`).
    pub streams: Streams,
    /// Its event delivery, for tests that retry on a shifted clock.
    pub event_delivery: Deliverer,
    pub db: Database,
    pub clock: Clock,
    _database: TestDatabase,
    client: reqwest::Client,
}

/// Starts the real idp on `database` and `clock`, after `tweak` has adjusted its settings
/// (the issuer defaults to the instance's own address).
pub async fn spawn_idp(
    database: TestDatabase,
    clock: Clock,
    tweak: impl FnOnce(&mut idp::app::settings::Settings),
) -> RealIdp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut settings = idp::app::settings::Settings {
        issuer: address.clone(),
        audience: AUDIENCE.to_owned(),
        database_url: database.url.clone(),
        keys_dir: database.path().join("keys"),
        mail_dir: database.path().join("mail"),
        ..idp::app::settings::Settings::default()
    };
    tweak(&mut settings);
    let issuer = settings.issuer.clone();
    let app =
        idp::app::startup::Application::build_with_listener(settings, listener, clock.clone())
            .await
            .expect("Failed to build the idp");
    let key_rotation = app.key_rotation();
    let streams = app.streams();
    let event_delivery = app.event_delivery();
    let db = app.db().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    RealIdp {
        address,
        issuer,
        key_rotation,
        streams,
        event_delivery,
        db,
        clock,
        _database: database,
        client: reqwest::Client::new(),
    }
}

impl RealIdp {
    pub async fn register(&self, email: &str) {
        let response = self
            .client
            .post(format!("{}/auth/register", self.address))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }

    /// Logs `email` in through the JSON API; returns the access token.
    pub async fn login(&self, email: &str) -> String {
        login(&self.client, &self.address, email).await.unwrap()
    }

    /// Makes the resource server at `address` (audience [`AUDIENCE`]) a receiver of this
    /// idp's security events, as `idp streams create` (or `cargo run`) does.
    pub async fn stream_to(&self, address: &str, authorization: &str) {
        self.streams
            .create(
                NewStream {
                    name: "resource-server".to_owned(),
                    push_url: format!("{address}/events"),
                    audience: AUDIENCE.to_owned(),
                    events: vec![],
                    auth_header: Some(authorization.to_owned()),
                },
                true,
            )
            .await
            .unwrap();
    }
}

/// `POST /auth/login` at the idp at `address`; the access token, or why there was none.
pub async fn login(client: &reqwest::Client, address: &str, email: &str) -> Result<String, String> {
    let response = client
        .post(format!("{address}/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status() != 200 {
        return Err(format!("login answered {}", response.status()));
    }
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    assert_eq!(body["token_type"], "Bearer");
    Ok(body["access_token"].as_str().unwrap().to_owned())
}

/// A JWS's `kid` (no verification).
pub fn kid_of(token: &str) -> String {
    part(token, 0)["kid"].as_str().unwrap().to_owned()
}

/// A JWT's `exp` (no verification).
pub fn exp_of(token: &str) -> i64 {
    part(token, 1)["exp"].as_i64().unwrap()
}

fn part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let encoded = token.split('.').nth(index).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
