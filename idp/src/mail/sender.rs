//! Delivering the outbox: claim due messages, hand each to the transport, and record
//! the outcome. A message is marked sent only once the server (or the mailbox folder)
//! took it; a failure is retried after 1, 2, 4... minutes (at most an hour) until
//! [`MailConfig::max_attempts`], then left as a dead letter for `idp mail retry`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lettre::address::Envelope;
use lettre::{Address, AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use service_kit::backoff;
use service_kit::clock::Clock;
use sqlx::AnyPool;
use tokio::sync::{Notify, watch};

use crate::mail::store::{self, Claimed};
use crate::mail::{MailConfig, Outbox, TransportConfig};
use crate::storage::outbox::{self, Table};

/// Messages claimed at once.
const BATCH: i64 = 5;
/// How long a claimed batch stays this instance's beyond the time its deliveries may
/// take, each bounded by [`MailConfig::send_timeout_secs`].
const LEASE_MARGIN_SECS: i64 = 60;
const FIRST_RETRY_SECS: i64 = 60;
const LONGEST_RETRY_SECS: i64 = 3600;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Mailbox {
        dir: PathBuf,
        files: AsyncFileTransport<Tokio1Executor>,
    },
}

#[derive(Clone)]
pub struct Sender {
    pool: AnyPool,
    clock: Clock,
    config: MailConfig,
    transport: Arc<Transport>,
    wake: Arc<Notify>,
}

impl Sender {
    /// The sender for `outbox`'s messages. The mailbox folder is created here.
    pub fn new(
        pool: AnyPool,
        clock: Clock,
        config: MailConfig,
        outbox: &Outbox,
    ) -> anyhow::Result<Self> {
        let transport = match &config.transport {
            TransportConfig::Smtp(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("IDP_SMTP_URL is not an SMTP URL lettre understands")?
                    .timeout(Some(Duration::from_secs(config.send_timeout_secs)))
                    .build(),
            ),
            TransportConfig::Mailbox(dir) => {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("Failed to create the local mailbox {}", dir.display())
                })?;
                Transport::Mailbox {
                    dir: dir.clone(),
                    files: AsyncFileTransport::new(dir),
                }
            }
        };
        Ok(Self {
            pool,
            clock,
            config,
            transport: Arc::new(transport),
            wake: outbox.wakes(),
        })
    }

    /// Delivers every due message, batch after batch; how many were sent.
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        // Long enough for every delivery of the batch to time out, so a slow server
        // cannot make a message due again (and sent twice) while it is still under way.
        let send_timeout = i64::try_from(self.config.send_timeout_secs)?;
        let lease_secs = BATCH * send_timeout + LEASE_MARGIN_SECS;
        let mut sent = 0;
        loop {
            let now = self.clock.now().timestamp();
            let batch = store::claim_due(&self.pool, now, now + lease_secs, BATCH).await?;
            if batch.is_empty() {
                return Ok(sent);
            }
            for message in batch {
                if self.deliver(&message).await? {
                    sent += 1;
                }
            }
        }
    }

    /// One attempt at `message`; `true` if it went.
    async fn deliver(&self, message: &Claimed) -> anyhow::Result<bool> {
        let outcome = self.send(message).await;
        let now = self.clock.now().timestamp();
        match outcome {
            Ok(()) => {
                store::mark_sent(&self.pool, &message.id, now).await?;
                tracing::info!(mail_id = %message.id, attempts = message.attempts, "Mail sent");
                Ok(true)
            }
            Err(error) => {
                let dead = message.attempts >= i64::from(self.config.max_attempts);
                let next = now
                    + backoff::delay_secs(FIRST_RETRY_SECS, LONGEST_RETRY_SECS, message.attempts);
                let attempt = (message.id.as_str(), message.attempts);
                outbox::mark_failed(
                    &self.pool,
                    Table::Mail,
                    attempt,
                    &error,
                    next,
                    dead.then_some(now),
                )
                .await?;
                if dead {
                    tracing::error!(mail_id = %message.id, attempts = message.attempts, error, "Mail gave up: a dead letter for `idp mail retry`");
                } else {
                    tracing::warn!(mail_id = %message.id, attempts = message.attempts, error, "Mail not sent; will retry");
                }
                Ok(false)
            }
        }
    }

    async fn send(&self, message: &Claimed) -> Result<(), String> {
        let to: Address = message.recipient.parse().map_err(|e| format!("{e}"))?;
        let envelope = Envelope::new(Some(self.config.from.email.clone()), vec![to])
            .map_err(|e| format!("{e}"))?;
        let raw = message.message.as_bytes();
        match self.transport.as_ref() {
            // lettre's timeout bounds each read and write; this bounds the whole
            // conversation, which a server answering slowly could stretch.
            Transport::Smtp(smtp) => {
                let limit = Duration::from_secs(self.config.send_timeout_secs);
                match tokio::time::timeout(limit, smtp.send_raw(&envelope, raw)).await {
                    Ok(sent) => sent.map(|_| ()).map_err(|e| format!("{e}")),
                    Err(_) => Err(format!(
                        "the SMTP server took longer than {} s",
                        limit.as_secs()
                    )),
                }
            }
            Transport::Mailbox { dir, files } => {
                let id = files
                    .send_raw(&envelope, raw)
                    .await
                    .map_err(|e| format!("{e}"))?;
                tracing::info!(
                    mail_id = %message.id,
                    file = %dir.join(format!("{id}.eml")).display(),
                    "Mail written to the local mailbox"
                );
                Ok(())
            }
        }
    }

    /// Delivers whenever woken by an [`Outbox`] or every `poll_secs`, until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let poll = Duration::from_secs(self.config.poll_secs);
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::error!(error = format!("{e:#}"), "Mail delivery failed");
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = self.wake.notified() => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }
}
