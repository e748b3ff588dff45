//! Mail: messages written to an outbox in the same transaction as the change that
//! causes them ([`Outbox::enqueue`]), and delivered afterwards by a background
//! [`sender::Sender`], at least once, with retries and backoff, over SMTP (`lettre`) or
//! into a local mailbox of `.eml` files. A request never waits on a mail server, and
//! nothing is lost when it or the idp is down.
//!
//! - [`messages`]: what each message says (askama templates, plain text and HTML).
//! - [`sender`]: the transports and the delivery loop.
//! - [`store`]: the `mail_outbox` table.

pub mod messages;
pub mod sender;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use service_kit::clock::Clock;
use sqlx::{Any, Executor};
use tokio::sync::Notify;

/// Where mail goes and how hard the sender tries.
#[derive(Clone, Debug)]
pub struct MailConfig {
    pub from: Mailbox,
    pub transport: TransportConfig,
    /// Attempts before a message becomes a dead letter.
    pub max_attempts: u32,
    /// How often the sender looks for due messages besides being woken.
    pub poll_secs: u64,
    /// The longest one delivery may take, from connecting to the server's answer.
    pub send_timeout_secs: u64,
}

#[derive(Clone)]
pub enum TransportConfig {
    /// An SMTP URL as `lettre` reads it: `smtp://host:25`, `smtp://host:587?tls=required`
    /// (STARTTLS), `smtps://user:password@host:465`.
    Smtp(String),
    /// `.eml` files in this folder.
    Mailbox(PathBuf),
}

impl std::fmt::Debug for TransportConfig {
    /// Never prints the SMTP URL: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Smtp(_) => f.write_str("Smtp([redacted])"),
            Self::Mailbox(dir) => f.debug_tuple("Mailbox").field(dir).finish(),
        }
    }
}

/// One message to send.
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Queues mail and wakes this instance's sender.
#[derive(Clone)]
pub struct Outbox {
    clock: Clock,
    from: Mailbox,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(clock: Clock, from: Mailbox) -> Self {
        Self {
            clock,
            from,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Writes `mail` to the outbox through `executor`: the caller's transaction, so the
    /// message exists if and only if the change that caused it does. Call [`Outbox::wake`]
    /// after the commit. A recipient no message can be addressed to (an address that
    /// needs SMTPUTF8, say) is queued as a dead letter with the reason, for `idp mail
    /// list` to show, and does not fail the change.
    pub async fn enqueue<'e>(
        &self,
        executor: impl Executor<'e, Database = Any>,
        mail: &Mail,
    ) -> anyhow::Result<()> {
        let id = uuid::Uuid::now_v7().to_string();
        let now = self.clock.now().timestamp();
        let row = store::NewRow {
            id: &id,
            recipient: &mail.to,
            subject: &mail.subject,
            message: "",
            now,
        };
        match self.format(mail) {
            Ok(message) => {
                store::insert(
                    executor,
                    &store::NewRow {
                        message: &message,
                        ..row
                    },
                )
                .await
            }
            Err(e) => {
                tracing::warn!(mail_id = %id, error = %e, "A mail cannot be addressed; it is kept as a dead letter");
                store::insert_dead(executor, &row, &e.to_string()).await
            }
        }
    }

    /// Tells this instance's sender that mail is waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn wakes(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    fn format(&self, mail: &Mail) -> anyhow::Result<String> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(mail.to.parse::<Mailbox>()?)
            .subject(&mail.subject)
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))?;
        Ok(String::from_utf8(message.formatted())?)
    }
}
