//! The receivers of security events (SSF streams with push delivery), configured by an
//! operator with `idp streams` and stored in the database, so every instance delivers
//! to the same ones. Nothing reachable over HTTP can add or change one: the idp only
//! ever pushes to URLs an operator typed.

pub mod store;

use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use service_kit::clock::Clock;
use sqlx::AnyPool;

use crate::events::EVENT_TYPES;
use crate::keys::KeyEncryptionKey;

/// The longest stream name.
const MAX_NAME_CHARS: usize = 64;
/// The longest Authorization header value the idp will send.
const MAX_AUTH_HEADER_BYTES: usize = 1024;

/// A receiver as configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stream {
    pub id: String,
    pub name: String,
    pub push_url: String,
    pub audience: String,
    /// Event type URIs.
    pub events: Vec<String>,
    /// Whether pushes carry an Authorization header (its value is never shown).
    pub authorization: bool,
    pub created_at: i64,
}

/// What `idp streams create` asks for.
pub struct NewStream {
    pub name: String,
    pub push_url: String,
    pub audience: String,
    /// Short names (`session-revoked`) or URIs; empty: every type the idp sends.
    pub events: Vec<String>,
    /// Sent as the Authorization header of every push.
    pub auth_header: Option<String>,
}

/// Where and how to push to one stream.
pub struct Target {
    pub name: String,
    pub push_url: String,
    pub audience: String,
    pub auth_header: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("a stream with that name exists (use --replace to change it)")]
    NameTaken,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Clone)]
pub struct Streams {
    pool: AnyPool,
    kek: Arc<KeyEncryptionKey>,
    clock: Clock,
}

impl Streams {
    pub fn new(pool: AnyPool, kek: Arc<KeyEncryptionKey>, clock: Clock) -> Self {
        Self { pool, kek, clock }
    }

    /// Adds a stream, or with `replace` changes the one of that name (its queued events
    /// go to the new URL and audience).
    pub async fn create(&self, new: NewStream, replace: bool) -> Result<Stream, StreamError> {
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(StreamError::Invalid(
                "the name must have 1 to 64 characters",
            ));
        }
        let push_url = push_url(&new.push_url)?;
        let audience = new.audience.trim().to_owned();
        if audience.is_empty() {
            return Err(StreamError::Invalid("the audience must not be empty"));
        }
        let events = event_types(&new.events)?;
        if let Some(value) = &new.auth_header
            && (value.is_empty()
                || value.len() > MAX_AUTH_HEADER_BYTES
                || !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()))
        {
            return Err(StreamError::Invalid(
                "the authorization value must be printable ASCII, at most 1024 bytes",
            ));
        }
        let existing = store::find_by_name(&self.pool, &name).await?;
        if existing.is_some() && !replace {
            return Err(StreamError::NameTaken);
        }
        let id = existing.map_or_else(|| uuid::Uuid::new_v4().to_string(), |s| s.id);
        let sealed = new
            .auth_header
            .as_deref()
            .map(|value| self.kek.seal(&aad(&id), value.as_bytes()))
            .transpose()?;
        let stream = Stream {
            id,
            name,
            push_url,
            audience,
            events,
            authorization: sealed.is_some(),
            created_at: self.clock.now().timestamp(),
        };
        store::upsert(&self.pool, &stream, sealed.as_deref()).await?;
        tracing::info!(stream = %stream.name, "Event stream configured");
        Ok(stream)
    }

    pub async fn list(&self) -> anyhow::Result<Vec<Stream>> {
        store::all(&self.pool).await
    }

    /// Deletes the stream `name` and the events queued for it.
    pub async fn delete(&self, name: &str) -> anyhow::Result<bool> {
        store::delete(&self.pool, name).await
    }

    /// Where events for stream `id` go now; `None` once it is deleted.
    pub async fn target(&self, id: &str) -> anyhow::Result<Option<Target>> {
        let Some((stream, sealed)) = store::find(&self.pool, id).await? else {
            return Ok(None);
        };
        let auth_header = sealed
            .map(|sealed| -> anyhow::Result<String> {
                let value = self.kek.open(&aad(id), &sealed)?;
                String::from_utf8(value).context("A stored authorization value is not text")
            })
            .transpose()?;
        Ok(Some(Target {
            name: stream.name,
            push_url: stream.push_url,
            audience: stream.audience,
            auth_header,
        }))
    }
}

/// What a sealed authorization value is bound to.
fn aad(stream_id: &str) -> String {
    format!("event-stream:{stream_id}")
}

/// An absolute http(s) URL without credentials or fragment.
fn push_url(input: &str) -> Result<String, StreamError> {
    let url = url::Url::parse(input.trim())
        .map_err(|_| StreamError::Invalid("the push URL is not an absolute URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(StreamError::Invalid("the push URL must use https or http"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(StreamError::Invalid(
            "the push URL must not hold credentials (use --authorization)",
        ));
    }
    if url.fragment().is_some() || url.host().is_none() {
        return Err(StreamError::Invalid(
            "the push URL needs a host and no fragment",
        ));
    }
    Ok(url.to_string())
}

/// Event type URIs from short names or URIs; every type when none is given.
fn event_types(asked: &[String]) -> Result<Vec<String>, StreamError> {
    if asked.is_empty() {
        return Ok(EVENT_TYPES
            .iter()
            .map(|(_, uri)| (*uri).to_owned())
            .collect());
    }
    let mut types = Vec::new();
    for name in asked {
        let uri = EVENT_TYPES
            .iter()
            .find(|(short, uri)| name == short || name == uri)
            .map(|(_, uri)| (*uri).to_owned())
            .ok_or(StreamError::Invalid(
                "unknown event type (session-revoked, credential-change, account-disabled, \
                 account-enabled)",
            ))?;
        if !types.contains(&uri) {
            types.push(uri);
        }
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_urls_are_plain_http_urls() {
        assert!(push_url("https://rs.example/events").is_ok());
        assert!(push_url("http://127.0.0.1:4000/events").is_ok());
        for bad in [
            "rs.example/events",
            "ftp://rs.example/events",
            "https://user:pw@rs.example/events",
            "https://rs.example/events#x",
        ] {
            assert!(push_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_types_take_short_names_or_uris() {
        assert_eq!(event_types(&[]).map(|t| t.len()).ok(), Some(4));
        let asked = vec![
            "session-revoked".to_owned(),
            crate::events::SESSION_REVOKED.to_owned(),
        ];
        assert_eq!(
            event_types(&asked).ok(),
            Some(vec![crate::events::SESSION_REVOKED.to_owned()])
        );
        assert!(event_types(&["nope".to_owned()]).is_err());
    }
}
