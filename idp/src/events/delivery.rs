//! Delivering the event outbox. Each receiver is served by its own task, so a slow or
//! dead one never holds up the others (nor, since requests only write the outbox, any
//! request). A token is signed when it is sent, with the current signing key, and the
//! event is marked delivered only on the receiver's 2xx:
//! - SETs are pushed per RFC 8935: `POST`, `Content-Type: application/secevent+jwt`,
//!   the stream's Authorization value; `202` is success, `400` carries an `err` code
//!   that is logged and ends the event's tries (except `invalid_key`: the receiver may
//!   not have our newest key yet), anything else is retried.
//! - Logout tokens are posted as the form parameter `logout_token` (Back-Channel
//!   Logout 1.0 §2.5); `400` means the client refused it, and is not retried.
//!
//! Failures are retried after 5, 10, 20... seconds (at most ten minutes) until
//! [`EventsConfig::max_attempts`]; then the event is a dead letter for
//! `idp streams retry`. When a receiver fails, the rest of its batch waits for the same
//! retry instead of failing in turn.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value};
use service_kit::backoff;
use service_kit::clock::Clock;
use sqlx::AnyPool;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::events::set::{self, TokenKind};
use crate::events::store::{self, Claimed, Receiver};
use crate::events::streams::Streams;
use crate::events::{Events, EventsConfig, logout};
use crate::keys::signing::TokenIssuer;
use crate::storage::outbox::{self, Table};

/// Events claimed at once per receiver.
const BATCH: i64 = 10;
/// How long a claimed batch stays this instance's beyond the time its pushes may take.
const LEASE_MARGIN_SECS: i64 = 60;
const FIRST_RETRY_SECS: i64 = 5;
const LONGEST_RETRY_SECS: i64 = 600;
/// The most of a receiver's error description kept.
const MAX_DESCRIPTION_CHARS: usize = 200;

/// Where one receiver's tokens go.
struct Destination {
    /// The stream's name or the client's id, for logs and `last_error`.
    name: String,
    url: String,
    kind: TokenKind,
    /// A SET's `aud`.
    audience: String,
    auth_header: Option<String>,
}

/// Why one push failed.
struct Failure {
    message: String,
    /// Trying again would get the same answer.
    permanent: bool,
}

#[derive(Clone)]
pub struct Deliverer {
    pool: AnyPool,
    clock: Clock,
    tokens: TokenIssuer,
    streams: Streams,
    http: reqwest::Client,
    config: EventsConfig,
    wake: Arc<Notify>,
    /// Receivers this instance is delivering to right now.
    busy: Arc<Mutex<HashSet<String>>>,
}

impl Deliverer {
    pub fn new(
        pool: AnyPool,
        clock: Clock,
        tokens: TokenIssuer,
        streams: Streams,
        config: EventsConfig,
        events: &Events,
    ) -> anyhow::Result<Self> {
        let timeout = Duration::from_secs(config.timeout_secs);
        let http = reqwest::Client::builder()
            // A receiver answering with a redirect does not get to choose where the
            // next request goes.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .context("Failed to build the event delivery HTTP client")?;
        Ok(Self {
            pool,
            clock,
            tokens,
            streams,
            http,
            config,
            wake: events.wakes(),
            busy: Arc::default(),
        })
    }

    /// Delivers every due event, each receiver in its own task, and waits for all of
    /// them; how many were delivered.
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        let mut delivered = 0;
        for task in self.start_due().await? {
            delivered += task.await.context("An event delivery task panicked")?;
        }
        Ok(delivered)
    }

    /// Starts a task for every receiver with due events that has none running here.
    async fn start_due(&self) -> anyhow::Result<Vec<JoinHandle<usize>>> {
        let now = self.clock.now().timestamp();
        let mut tasks = Vec::new();
        for receiver in store::due_receivers(&self.pool, now).await? {
            let newly_busy = self
                .busy
                .lock()
                .map_err(|_| anyhow::anyhow!("The delivery bookkeeping is poisoned"))?
                .insert(receiver.clone());
            if !newly_busy {
                continue;
            }
            let this = self.clone();
            tasks.push(tokio::spawn(async move {
                let outcome = this.serve(&receiver).await;
                if let Ok(mut busy) = this.busy.lock() {
                    busy.remove(&receiver);
                }
                match outcome {
                    Ok(delivered) => {
                        // Events queued while this task was finishing found it busy.
                        this.wake.notify_one();
                        delivered
                    }
                    Err(e) => {
                        tracing::error!(
                            receiver,
                            error = format!("{e:#}"),
                            "Event delivery failed"
                        );
                        0
                    }
                }
            }));
        }
        Ok(tasks)
    }

    /// Delivers `receiver`'s due events until none is left or it fails; how many went.
    async fn serve(&self, receiver: &str) -> anyhow::Result<usize> {
        let lease_secs = BATCH * i64::try_from(self.config.timeout_secs)? + LEASE_MARGIN_SECS;
        let destination = self.destination(receiver).await?;
        let mut delivered = 0;
        loop {
            let now = self.clock.now().timestamp();
            let batch = store::claim(&self.pool, receiver, now, now + lease_secs, BATCH).await?;
            if batch.is_empty() {
                return Ok(delivered);
            }
            for (i, event) in batch.iter().enumerate() {
                let outcome = match &destination {
                    Some(destination) => self.push(destination, event).await,
                    None => Err(Failure {
                        message: "the receiver is no longer configured (a stream deleted, \
                                  or a client without a back-channel logout URI)"
                            .to_owned(),
                        permanent: true,
                    }),
                };
                let name = destination.as_ref().map_or(receiver, |d| d.name.as_str());
                match outcome {
                    Ok(()) => {
                        let now = self.clock.now().timestamp();
                        store::mark_delivered(&self.pool, &event.id, now).await?;
                        tracing::info!(receiver = name, event_id = %event.id, event_type = %event.event_type, attempts = event.attempts, "Security event delivered");
                        delivered += 1;
                    }
                    Err(failure) => {
                        let next = self.record_failure(name, event, &failure).await?;
                        if !failure.permanent {
                            for rest in &batch[i + 1..] {
                                store::release(&self.pool, rest, next).await?;
                            }
                            return Ok(delivered);
                        }
                    }
                }
            }
        }
    }

    /// Records a failed attempt; when the event is due again.
    async fn record_failure(
        &self,
        receiver: &str,
        event: &Claimed,
        failure: &Failure,
    ) -> anyhow::Result<i64> {
        let now = self.clock.now().timestamp();
        let next = now + backoff::delay_secs(FIRST_RETRY_SECS, LONGEST_RETRY_SECS, event.attempts);
        let dead = failure.permanent || event.attempts >= i64::from(self.config.max_attempts);
        outbox::mark_failed(
            &self.pool,
            Table::Events,
            (&event.id, event.attempts),
            &failure.message,
            next,
            dead.then_some(now),
        )
        .await?;
        let error = failure.message.as_str();
        if dead {
            tracing::error!(receiver, event_id = %event.id, attempts = event.attempts, error, "Security event gave up: a dead letter for `idp streams retry`");
        } else {
            tracing::warn!(receiver, event_id = %event.id, attempts = event.attempts, error, "Security event not delivered; will retry");
        }
        Ok(next)
    }

    /// Where `receiver`'s tokens go now; `None` once it is no longer configured.
    async fn destination(&self, receiver: &str) -> anyhow::Result<Option<Destination>> {
        Ok(match Receiver::parse(receiver) {
            Some(Receiver::Stream(id)) => self.streams.target(id).await?.map(|t| Destination {
                name: t.name,
                url: t.push_url,
                kind: TokenKind::SecurityEvent,
                audience: t.audience,
                auth_header: t.auth_header,
            }),
            Some(Receiver::Client(id)) => {
                logout::uri(&self.pool, id).await?.map(|url| Destination {
                    name: id.to_owned(),
                    url,
                    kind: TokenKind::Logout,
                    audience: id.to_owned(),
                    auth_header: None,
                })
            }
            None => anyhow::bail!("Unknown receiver {receiver}"),
        })
    }

    /// One attempt: sign now, send, read the answer.
    async fn push(&self, destination: &Destination, event: &Claimed) -> Result<(), Failure> {
        let retry = |message: String| Failure {
            message,
            permanent: false,
        };
        let mut claims: Map<String, Value> = serde_json::from_str(&event.claims)
            .map_err(|e| retry(format!("stored claims are unreadable: {e}")))?;
        let now = self.clock.now().timestamp();
        set::complete(&mut claims, destination.kind, &destination.audience, now);
        let token = self
            .tokens
            .sign(destination.kind.typ(), claims)
            .await
            .map_err(|e| retry(format!("signing failed: {e:#}")))?;
        let request = self.http.post(&destination.url);
        let request = match destination.kind {
            TokenKind::SecurityEvent => request
                .header(reqwest::header::CONTENT_TYPE, "application/secevent+jwt")
                .header(reqwest::header::ACCEPT, "application/json")
                .body(token),
            TokenKind::Logout => request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("logout_token", &token)
                        .finish(),
                ),
        };
        let request = match &destination.auth_header {
            Some(value) => request.header(reqwest::header::AUTHORIZATION, value),
            None => request,
        };
        let response = request.send().await.map_err(|e| {
            retry(if e.is_timeout() {
                format!("no answer within {} s", self.config.timeout_secs)
            } else {
                format!("the request failed: {}", e.without_url())
            })
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status != reqwest::StatusCode::BAD_REQUEST {
            return Err(retry(format!("the receiver answered {status}")));
        }
        match destination.kind {
            TokenKind::SecurityEvent => {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let err = body.get("err").and_then(Value::as_str).unwrap_or("(none)");
                let description: String = body
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_DESCRIPTION_CHARS)
                    .collect();
                Err(Failure {
                    message: format!("the receiver refused it: err={err} {description}")
                        .trim_end()
                        .to_owned(),
                    // RFC 8935 §2.4: the receiver may not have fetched our newest key.
                    permanent: err != "invalid_key",
                })
            }
            TokenKind::Logout => Err(Failure {
                message: "the client refused the logout token (400)".to_owned(),
                permanent: true,
            }),
        }
    }

    /// Delivers whenever woken by [`Events`] or every `poll_secs`, until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let poll = Duration::from_secs(self.config.poll_secs);
        loop {
            if let Err(e) = self.start_due().await {
                tracing::error!(error = format!("{e:#}"), "Event delivery failed");
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = self.wake.notified() => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }
}
