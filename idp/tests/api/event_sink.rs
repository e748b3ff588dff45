//! An HTTP receiver of pushed tokens for tests, on port 0: it keeps every request (path,
//! content type, authorization, body) and answers with a status (and body) the test
//! chooses, after a delay it chooses, as a receiver that is down, slow or refusing would.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use josekit::jwk::JwkSet;
use josekit::jws::RS256;
use josekit::jwt::{self, JwtPayload};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::helpers::TestApp;

#[derive(Clone, Debug)]
pub struct Pushed {
    pub path: String,
    pub content_type: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Clone)]
struct Answer {
    status: StatusCode,
    body: String,
    delay: Duration,
}

#[derive(Clone)]
pub struct EventSink {
    pub base: String,
    received: Arc<Mutex<Vec<Pushed>>>,
    answer: Arc<Mutex<Answer>>,
    arrived: Arc<Notify>,
}

impl EventSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Self {
            base: format!("http://{}", listener.local_addr().unwrap()),
            received: Arc::default(),
            answer: Arc::new(Mutex::new(Answer {
                status: StatusCode::ACCEPTED,
                body: String::new(),
                delay: Duration::ZERO,
            })),
            arrived: Arc::new(Notify::new()),
        };
        let app = Router::new().fallback(receive).with_state(sink.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        sink
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Answers from now on with `status` and `body` (JSON).
    pub fn answer(&self, status: StatusCode, body: &str) {
        let mut answer = self.answer.lock().unwrap();
        answer.status = status;
        body.clone_into(&mut answer.body);
    }

    pub fn delay(&self, delay: Duration) {
        self.answer.lock().unwrap().delay = delay;
    }

    pub fn received(&self) -> Vec<Pushed> {
        self.received.lock().unwrap().clone()
    }

    /// Waits up to 10 s until `count` requests arrived; all of them.
    pub async fn wait_for(&self, count: usize) -> Vec<Pushed> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.arrived.notified();
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {count} pushes, got {}: {received:?}",
                    received.len()
                );
            }
        }
    }
}

async fn receive(
    State(sink): State<EventSink>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = sink.answer.lock().unwrap().clone();
    tokio::time::sleep(answer.delay).await;
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    sink.received.lock().unwrap().push(Pushed {
        path: uri.path().to_owned(),
        content_type: text(header::CONTENT_TYPE).unwrap_or_default(),
        authorization: text(header::AUTHORIZATION),
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    sink.arrived.notify_waiters();
    let content_type = [(header::CONTENT_TYPE, "application/json")];
    (answer.status, content_type, answer.body).into_response()
}

/// Verifies `token` with the idp's published keys; its header and claims.
pub async fn verify(app: &TestApp, token: &str) -> (Map<String, Value>, Map<String, Value>) {
    let jwks = app
        .client
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let jwks = JwkSet::from_bytes(&jwks).unwrap();
    let header = jwt::decode_header(token).unwrap();
    let kid = header
        .claim("kid")
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    let jwk = jwks.get(&kid).into_iter().next().expect("kid in the JWKS");
    let verifier = RS256.verifier_from_jwk(jwk).unwrap();
    let (payload, header): (JwtPayload, _) = jwt::decode_with_verifier(token, &verifier).unwrap();
    (header.claims_set().clone(), payload.claims_set().clone())
}
