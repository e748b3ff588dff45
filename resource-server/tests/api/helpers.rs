//! Test support: a fake issuer (discovery + JWKS for test RSA keys, counting fetches,
//! able to go down) and `spawn_app`, the resource server on port 0 with a fresh database.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::KeyPair;
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{JwsSigner, RS256};
use resource_server::Settings;
use resource_server::auth::TokenValidator;
use resource_server::auth::events::EventReceiver;
use resource_server::profile_cache::ProfileCache;
use resource_server::startup::Application;
use serde_json::{Value, json};
use service_kit::clock::Clock;
use service_kit::db::Database;
use service_kit::testing::{TestDatabase, fresh_database};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The audience the resource server under test requires.
pub const AUDIENCE: &str = "http://localhost:4000";
pub const USER_SCOPES: &str = "users:read users:write";
pub const ADMIN_SCOPES: &str = "users:read users:write users:admin";
pub const INVALID_TOKEN_BODY: &str =
    r#"{"error":"invalid_token","message":"The access token is invalid or expired."}"#;

/// Generating RSA keys is slow; each test binary makes these once.
pub static KEY_ONE: LazyLock<Arc<RsaKeyPair>> = LazyLock::new(|| Arc::new(generate_key()));
pub static KEY_TWO: LazyLock<Arc<RsaKeyPair>> = LazyLock::new(|| Arc::new(generate_key()));
/// A key the issuer never publishes: what a forger would sign with.
pub static ATTACKER_KEY: LazyLock<Arc<RsaKeyPair>> = LazyLock::new(|| Arc::new(generate_key()));

fn generate_key() -> RsaKeyPair {
    RS256
        .generate_key_pair(2048)
        .expect("Failed to generate an RSA key")
}

pub fn public_jwk(key: &RsaKeyPair, kid: &str) -> Value {
    let mut jwk = key.to_jwk_public_key();
    jwk.set_key_id(kid);
    jwk.set_key_use("sig");
    jwk.set_algorithm("RS256");
    serde_json::to_value(jwk.as_ref()).expect("A JWK is JSON")
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS over `header` and `claims`, RS256-signed with `key` whatever the header says.
pub fn sign_with(key: &RsaKeyPair, header: &Value, claims: &Value) -> String {
    sign_text_with(key, &header.to_string(), &claims.to_string())
}

/// A compact JWS over JSON texts as given (which a `Value` could not express, such as a
/// member named twice), RS256-signed with `key`.
pub fn sign_text_with(key: &RsaKeyPair, header: &str, claims: &str) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(claims));
    let signer = RS256
        .signer_from_der(key.to_der_private_key())
        .expect("A signer from our own key");
    let signature = signer
        .sign(signing_input.as_bytes())
        .expect("Signing works");
    format!("{signing_input}.{}", b64(signature))
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---------------------------------------------------------------------------------------
// The fake issuer
// ---------------------------------------------------------------------------------------

struct IssuerState {
    issuer: String,
    /// Published keys, as JWK JSON.
    published: Mutex<Vec<Value>>,
    /// The key tokens are signed with, and its kid.
    signing: Mutex<(String, Arc<RsaKeyPair>)>,
    jwks_fetches: AtomicUsize,
    /// JWKS requests answered 304 Not Modified.
    not_modified: AtomicUsize,
    down: AtomicBool,
    last_request_id: Mutex<Option<String>>,
    /// The JWKS response's `Cache-Control`, if any.
    cache_control: Mutex<Option<String>>,
    /// Whether the JWKS response carries an `ETag` (and honours `If-None-Match`).
    etags: AtomicBool,
    /// Bumped whenever the published keys change; the ETag is derived from it.
    version: AtomicUsize,
}

/// An idp stand-in serving `/.well-known/openid-configuration` and `/jwks`.
#[derive(Clone)]
pub struct FakeIssuer {
    state: Arc<IssuerState>,
}

impl FakeIssuer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let kid = "key-one".to_owned();
        let state = Arc::new(IssuerState {
            issuer,
            published: Mutex::new(vec![public_jwk(&KEY_ONE, &kid)]),
            signing: Mutex::new((kid, Arc::clone(&KEY_ONE))),
            jwks_fetches: AtomicUsize::new(0),
            not_modified: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            last_request_id: Mutex::new(None),
            cache_control: Mutex::new(None),
            etags: AtomicBool::new(false),
            version: AtomicUsize::new(1),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { state }
    }

    pub fn issuer(&self) -> String {
        self.state.issuer.clone()
    }

    pub fn kid(&self) -> String {
        self.state.signing.lock().unwrap().0.clone()
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn last_request_id(&self) -> Option<String> {
        self.state.last_request_id.lock().unwrap().clone()
    }

    /// How many JWKS requests were answered 304.
    pub fn not_modified_count(&self) -> usize {
        self.state.not_modified.load(Ordering::SeqCst)
    }

    /// From now on every request gets a 503.
    pub fn go_down(&self) {
        self.state.down.store(true, Ordering::SeqCst);
    }

    /// Serves requests again.
    pub fn come_back(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }

    /// Sends this `Cache-Control` with the JWKS from now on (`None`: no header).
    pub fn set_cache_control(&self, value: Option<&str>) {
        *self.state.cache_control.lock().unwrap() = value.map(str::to_owned);
    }

    /// Sends an `ETag` with the JWKS and answers a matching `If-None-Match` with 304.
    pub fn enable_etags(&self) {
        self.state.etags.store(true, Ordering::SeqCst);
    }

    /// Publishes `key` under `kid` and signs with it from now on; the old keys stay
    /// published unless `retire_old`.
    pub fn rotate_to(&self, key: &Arc<RsaKeyPair>, kid: &str, retire_old: bool) {
        let mut published = self.state.published.lock().unwrap();
        if retire_old {
            published.clear();
        }
        published.push(public_jwk(key, kid));
        self.state.version.fetch_add(1, Ordering::SeqCst);
        *self.state.signing.lock().unwrap() = (kid.to_owned(), Arc::clone(key));
    }

    /// The header the real idp puts on access tokens.
    pub fn header(&self) -> Value {
        json!({"alg": "RS256", "typ": "at+jwt", "kid": self.kid()})
    }

    /// Claims of a valid access token for `sub`.
    pub fn claims(&self, sub: &str, email: Option<&str>, scope: &str) -> Value {
        let now = now();
        let mut claims = json!({
            "iss": self.issuer(),
            "sub": sub,
            "aud": AUDIENCE,
            "exp": now + 600,
            "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(),
            "client_id": "first-party",
            "scope": scope,
        });
        if let Some(email) = email {
            claims["email"] = json!(email);
        }
        claims
    }

    /// Signs `claims` under `header` with the current signing key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let key = Arc::clone(&self.state.signing.lock().unwrap().1);
        sign_with(&key, header, claims)
    }

    /// Signs JSON texts as given with the current signing key.
    pub fn sign_text(&self, header: &str, claims: &str) -> String {
        let key = Arc::clone(&self.state.signing.lock().unwrap().1);
        sign_text_with(&key, header, claims)
    }

    /// A valid access token with these claims.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }
}

fn request_id(state: &IssuerState, headers: &HeaderMap) {
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        *state.last_request_id.lock().unwrap() = Some(id.to_owned());
    }
}

async fn discovery(State(state): State<Arc<IssuerState>>, headers: HeaderMap) -> Response {
    request_id(&state, &headers);
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    axum::Json(json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{}/jwks", state.issuer),
    }))
    .into_response()
}

async fn jwks(State(state): State<Arc<IssuerState>>, headers: HeaderMap) -> Response {
    request_id(&state, &headers);
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let mut response_headers = HeaderMap::new();
    if let Some(value) = state.cache_control.lock().unwrap().clone() {
        response_headers.insert(header::CACHE_CONTROL, value.parse().unwrap());
    }
    if state.etags.load(Ordering::SeqCst) {
        let etag = format!("\"v{}\"", state.version.load(Ordering::SeqCst));
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes());
        response_headers.insert(header::ETAG, etag.parse().unwrap());
        if matches {
            state.not_modified.fetch_add(1, Ordering::SeqCst);
            return (StatusCode::NOT_MODIFIED, response_headers).into_response();
        }
    }
    let keys = state.published.lock().unwrap().clone();
    (response_headers, axum::Json(json!({ "keys": keys }))).into_response()
}

// ---------------------------------------------------------------------------------------
// The resource server under test
// ---------------------------------------------------------------------------------------

/// A user the fake issuer can issue tokens for.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
}

impl TestUser {
    pub fn generate() -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        Self {
            email: format!("user-{}@example.com", &id[..8]),
            id,
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub issuer: FakeIssuer,
    pub settings: Settings,
    pub db: Database,
    pub validator: TokenValidator,
    /// The receiver of security events, whose upkeep tests drive step by step.
    pub events: EventReceiver,
    /// The server's profile cache, in use once this app is returned.
    pub profile_cache: ProfileCache,
    pub database: TestDatabase,
    /// The server's clock: tests shift it to age tokens and the key cache.
    pub clock: Clock,
    server: Option<(oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>)>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the resource server, trusting a fresh fake issuer, after `tweak` has adjusted
/// its settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_clock(Clock::system(), tweak).await
}

/// [`spawn_app_with`] on `clock`, which the test may share with a real idp.
pub async fn spawn_app_with_clock(clock: Clock, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        service_kit::telemetry::init("debug");
    }
    let issuer = FakeIssuer::start().await;
    let database = fresh_database("rs").await;
    let mut settings = Settings {
        listen: "127.0.0.1:0".to_owned(),
        issuer: issuer.issuer(),
        audience: AUDIENCE.to_owned(),
        database_url: database.url.clone(),
        ..Settings::default()
    };
    tweak(&mut settings);
    start(settings, issuer, database, clock).await
}

async fn start(
    settings: Settings,
    issuer: FakeIssuer,
    database: TestDatabase,
    clock: Clock,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .expect("Failed to bind");
    let app = Application::build_with_clock(settings.clone(), listener, clock.clone())
        .await
        .expect("Failed to build the application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.db().clone();
    let validator = app.validator().clone();
    let events = app.events().clone();
    let profile_cache = app.profiles().cache().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let app = TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        issuer,
        settings,
        db,
        validator,
        events,
        profile_cache,
        database,
        clock,
        server: Some((stop, handle)),
    };
    // On PostgreSQL the cache is bypassed until the change listener listens: wait, so
    // that every test exercises the cache on both backends.
    app.wait_for_coherent_profile_cache().await;
    app
}

impl TestApp {
    /// Stops this server and starts a new one on the same database and settings.
    pub async fn restart(self) -> TestApp {
        self.down_while(async {}).await
    }

    /// Stops this server, waits for `meanwhile` (what happens while it is down), and
    /// starts it again on the same port (where the idp pushes its events), database and
    /// settings.
    pub async fn down_while(mut self, meanwhile: impl Future<Output = ()>) -> TestApp {
        let port = self.address.rsplit(':').next().unwrap().to_owned();
        self.settings.listen = format!("127.0.0.1:{port}");
        self.stop().await;
        self.db.pool.close().await;
        meanwhile.await;
        let TestApp {
            settings,
            issuer,
            database,
            clock,
            ..
        } = self;
        start(settings, issuer, database, clock).await
    }

    /// Starts another instance of the server on the same database, settings and issuer,
    /// as a second replica behind a load balancer would be.
    pub async fn spawn_sibling(&self) -> TestApp {
        start(
            self.settings.clone(),
            self.issuer.clone(),
            self.database.clone(),
            self.clock.clone(),
        )
        .await
    }

    /// Waits (at most 5 s) until the profile cache is in use: at once on SQLite, once
    /// the change listener listens on PostgreSQL.
    pub async fn wait_for_coherent_profile_cache(&self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.profile_cache.is_coherent() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the profile change listener did not start listening"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Stops the server (as SIGTERM would) and waits for it to finish.
    pub async fn stop(&mut self) {
        if let Some((stop, handle)) = self.server.take() {
            let _ = stop.send(());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), handle).await;
        }
    }

    /// Moves the server's clock forward by `secs` seconds.
    pub fn advance(&self, secs: i64) {
        self.clock.shift(chrono::Duration::seconds(secs));
    }

    /// Waits (at most 5 s, real time) until the key cache has attempted `n` fetches.
    pub async fn wait_for_fetch_count(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while self.validator.keys().fetch_count() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} JWKS fetches, saw {}",
                self.validator.keys().fetch_count()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("Failed to send a request")
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("Failed to send a request")
    }

    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("Failed to send a request")
    }

    /// A valid token for `user` with `scope`.
    /// Its `iat` and `exp` follow the server's (possibly shifted) clock.
    pub fn token_for(&self, user: &TestUser, scope: &str) -> String {
        let mut claims = self.issuer.claims(&user.id, Some(&user.email), scope);
        let now = self.clock.now().timestamp();
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + 600);
        self.issuer.token(&claims)
    }

    /// A valid token for `user` issued in the idp session `sid`, at the server's now.
    pub fn token_in_session(&self, user: &TestUser, sid: &str) -> String {
        let mut claims = self.issuer.claims(&user.id, Some(&user.email), USER_SCOPES);
        let now = self.clock.now().timestamp();
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + 600);
        claims["sid"] = json!(sid);
        self.issuer.token(&claims)
    }

    /// POST /events with `body` as a SET (RFC 8935), with `authorization` if given.
    pub async fn post_event(&self, body: &str, authorization: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/events"))
            .header("Content-Type", "application/secevent+jwt")
            .body(body.to_owned());
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        request.send().await.expect("Failed to send a request")
    }

    /// A new user with `users:admin` and a token for them.
    pub fn admin_token(&self) -> String {
        self.token_for(&TestUser::generate(), ADMIN_SCOPES)
    }

    /// Creates `user`'s profile through `/users/me` and returns it.
    pub async fn create_profile(&self, user: &TestUser) -> Value {
        let response = self
            .get("/users/me", Some(&self.token_for(user, USER_SCOPES)))
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// Asserts the one answer every invalid token gets.
pub async fn assert_invalid_token(response: reqwest::Response) {
    assert_eq!(response.status(), 401);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(response.text().await.unwrap(), INVALID_TOKEN_BODY);
}

/// Asserts a 403 `insufficient_scope` naming `needed`.
pub async fn assert_insufficient_scope(response: reqwest::Response, needed: &str) {
    assert_eq!(response.status(), 403);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(format!(r#"Bearer error="insufficient_scope", scope="{needed}""#).as_str())
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
}

/// The `error` code of a JSON error body.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap_or_default().to_owned()
}
