use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idp::app::housekeeping::Housekeeping;
use idp::app::settings::Settings;
use idp::app::startup::Application;
use idp::events::delivery::Deliverer;
use idp::events::streams::Streams;
use idp::keys::lifecycle::KeyRotation;
use idp::mail::sender::Sender;
use reqwest::Response;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Value, json};
use service_kit::clock::Clock;
use service_kit::db::Database;
use service_kit::testing::{TestDatabase, fresh_database};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const AUDIENCE: &str = "http://resource.test";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    pub issuer: String,
    pub client: reqwest::Client,
    pub db: Database,
    pub database: TestDatabase,
    /// The app's clock: `shift` it to move the app through time.
    pub clock: Clock,
    /// The app's key maintenance: `tick()` applies due key transitions and reloads.
    pub key_rotation: KeyRotation,
    pub housekeeping: Housekeeping,
    /// The app's mail sender: `deliver_due()` sends what is due now.
    pub mail_sender: Sender,
    /// The event receivers (`idp streams`).
    pub streams: Streams,
    /// The app's event delivery: `deliver_due()` pushes what is due now.
    pub event_delivery: Deliverer,
    /// The settings it started with.
    pub settings: Settings,
    stop: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(fresh_database("idp").await, |_| {}).await
}

/// Starts the idp on `database`, after `customise` had a go at the settings.
pub async fn spawn_app_with(
    database: TestDatabase,
    customise: impl FnOnce(&mut Settings),
) -> TestApp {
    try_spawn_app_with(database, customise)
        .await
        .expect("the idp failed to start")
}

/// Starts the idp on `database` with `clock` (keep a clone to `shift` it).
pub async fn spawn_app_with_clock(
    database: TestDatabase,
    clock: Clock,
    customise: impl FnOnce(&mut Settings),
) -> TestApp {
    try_spawn_app_with_clock(database, clock, customise)
        .await
        .expect("the idp failed to start")
}

pub async fn try_spawn_app_with(
    database: TestDatabase,
    customise: impl FnOnce(&mut Settings),
) -> Result<TestApp, (anyhow::Error, TestDatabase)> {
    try_spawn_app_with_clock(database, Clock::system(), customise).await
}

pub async fn try_spawn_app_with_clock(
    database: TestDatabase,
    clock: Clock,
    customise: impl FnOnce(&mut Settings),
) -> Result<TestApp, (anyhow::Error, TestDatabase)> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut settings = Settings {
        issuer: issuer.clone(),
        audience: AUDIENCE.to_owned(),
        database_url: database.url.clone(),
        keys_dir: database.path().join("keys"),
        mail_dir: database.path().join("mail"),
        ..Settings::default()
    };
    customise(&mut settings);
    let started_with = settings.clone();
    let app = match Application::build_with_listener(settings, listener, clock.clone()).await {
        Ok(app) => app,
        Err(e) => return Err((e, database)),
    };
    let db = app.db().clone();
    let key_rotation = app.key_rotation();
    let housekeeping = app.housekeeping();
    let mail_sender = app.mail_sender();
    let streams = app.streams();
    let event_delivery = app.event_delivery();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Ok(TestApp {
        address: issuer.clone(),
        issuer,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db,
        database,
        clock,
        key_rotation,
        housekeeping,
        mail_sender,
        streams,
        event_delivery,
        settings: started_with,
        stop,
        server,
    })
}

impl TestApp {
    /// Stops the server (draining requests) and hands back its database for a restart.
    pub async fn stop(self) -> TestDatabase {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
        self.database
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_register(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/auth/register",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn post_login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers `email` with [`PASSWORD`] and returns the new user's id.
    pub async fn register(&self, email: &str) -> String {
        let response = self.post_register(email, PASSWORD).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// Logs `email` in with [`PASSWORD`] and returns the access token.
    pub async fn login(&self, email: &str) -> String {
        let response = self.post_login(email, PASSWORD).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }
}

/// The decoded header and claims of a compact JWS (no verification).
pub fn decode_jwt(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS");
    let part =
        |p: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap() };
    (part(parts[0]), part(parts[1]))
}

/// Verifies an RS256 signature with the RustCrypto `rsa` crate, independently of the
/// OpenSSL code that signed it, using the key the JWKS publishes under the token's kid.
pub fn verify_independently(token: &str, jwks: &Value) -> bool {
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let kid = header["kid"].as_str().unwrap();
    let Some(jwk) = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
    else {
        return false;
    };
    let int = |name: &str| {
        BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap())
    };
    let key = VerifyingKey::<Sha256>::new(RsaPublicKey::new(int("n"), int("e")).unwrap());
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let signature =
        Signature::try_from(URL_SAFE_NO_PAD.decode(signature).unwrap().as_slice()).unwrap();
    key.verify(signing_input.as_bytes(), &signature).is_ok()
}

/// The API error body's `error` code, asserting the documented shape.
pub async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.unwrap();
    let object = body.as_object().expect("an error body is an object");
    assert_eq!(object.len(), 2, "exactly error + message: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    body["error"].as_str().unwrap().to_owned()
}

/// Status, headers (minus the per-response `date` and `x-request-id`) and body.
pub async fn answer(response: Response) -> (u16, Vec<(String, String)>, String) {
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    (status, headers, response.text().await.unwrap())
}
