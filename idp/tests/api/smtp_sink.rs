//! An SMTP server for tests, on port 0: it speaks just enough SMTP for `lettre` (no
//! TLS, no auth), keeps every message it accepted, and can be told to refuse them with
//! a reply code, as a mail server that is down or full would, or to hang.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One accepted message: the envelope and the message text (dot-unstuffed).
#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Clone, Default)]
pub struct SmtpSink {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    /// `Some(reply)`: answer `DATA` with it (e.g. "451 4.3.0 Try again later").
    refusal: Arc<Mutex<Option<&'static str>>>,
    /// Accept connections but never greet, as a hung server would.
    stalled: Arc<AtomicBool>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Self {
            url: format!("smtp://{}", listener.local_addr().unwrap()),
            ..Self::default()
        };
        let serving = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serving.clone().converse(stream));
            }
        });
        sink
    }

    pub fn refuse_with(&self, reply: Option<&'static str>) {
        *self.refusal.lock().unwrap() = reply;
    }

    pub fn stall(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits up to 10 s for `count` messages with `subject`; those received with it.
    pub async fn wait_for_subject(&self, subject: &str, count: usize) -> Vec<Received> {
        let header = format!("Subject: {subject}\r\n");
        let with_subject = || -> Vec<Received> {
            self.received()
                .into_iter()
                .filter(|m| m.data.contains(&header))
                .collect()
        };
        for _ in 0..200 {
            if with_subject().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        with_subject()
    }

    async fn converse(self, stream: tokio::net::TcpStream) {
        if self.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(600)).await;
            return;
        }
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut envelope = Received {
            from: String::new(),
            to: Vec::new(),
            data: String::new(),
        };
        let _ = write.write_all(b"220 sink ESMTP\r\n").await;
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let reply: &str = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250-sink\r\n250 8BITMIME"
            } else if let Some(from) = upper.strip_prefix("MAIL FROM:") {
                envelope.from = address(&line[line.len() - from.len()..]);
                "250 OK"
            } else if let Some(to) = upper.strip_prefix("RCPT TO:") {
                envelope.to.push(address(&line[line.len() - to.len()..]));
                "250 OK"
            } else if upper == "DATA" {
                let refusal = *self.refusal.lock().unwrap();
                if let Some(refusal) = refusal {
                    refusal
                } else {
                    let _ = write.write_all(b"354 End with <CRLF>.<CRLF>\r\n").await;
                    let mut data = String::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line == "." {
                            break;
                        }
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                        data.push_str("\r\n");
                    }
                    envelope.data = data;
                    self.received.lock().unwrap().push(envelope.clone());
                    "250 OK queued"
                }
            } else if upper == "QUIT" {
                let _ = write.write_all(b"221 Bye\r\n").await;
                return;
            } else {
                "250 OK"
            };
            if write
                .write_all(format!("{reply}\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

fn address(text: &str) -> String {
    let text = text.trim();
    let text = text.split_whitespace().next().unwrap_or("");
    text.trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// The link starting with `prefix` in `message`'s plain text part, checked to be the
/// HTML part's link too.
pub fn link(message: &str, prefix: &str) -> String {
    let text = part(message, "text/plain");
    let link = text
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no link to {prefix} in {text}"))
        .to_owned();
    assert!(part(message, "text/html").contains(&format!("href=\"{link}\"")));
    link
}

/// The decoded text of the MIME part of `message` with `content_type` (quoted-printable
/// or plain).
pub fn part(message: &str, content_type: &str) -> String {
    let start = message
        .find(&format!("Content-Type: {content_type}"))
        .unwrap_or_else(|| panic!("no {content_type} part in {message}"));
    let rest = &message[start..];
    let body_start = rest.find("\r\n\r\n").unwrap() + 4;
    let headers = &rest[..body_start];
    let body = &rest[body_start..];
    // The part ends at the multipart boundary, not at any line starting with "--": a
    // quoted-printable line break can fall just before a token's "--".
    let boundary = message
        .split("boundary=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no multipart boundary in {message}"));
    let end = body
        .find(&format!("\r\n--{boundary}"))
        .unwrap_or(body.len());
    let body = &body[..end];
    if headers.contains("quoted-printable") {
        quoted_printable(body)
    } else {
        body.to_owned()
    }
}

fn quoted_printable(text: &str) -> String {
    let decoded = quoted_printable::decode(text, quoted_printable::ParseMode::Strict).unwrap();
    String::from_utf8(decoded).unwrap()
}
