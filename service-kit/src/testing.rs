//! Test support (feature `testing`): a fresh, empty database per test on the backend
//! the run selects.
//!
//! `TEST_DATABASE=postgres` runs the suite against PostgreSQL at `TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`), each test in a database of its
//! own; anything else (the default) uses a SQLite file in a temporary folder. An
//! unreachable PostgreSQL fails the test: a run that asked for it must not pass silently.

use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor};

/// A database that exists for one test. SQLite files live in `dir`, which is removed
/// when this value is dropped; PostgreSQL databases are named `{prefix}_test_{uuid}` and
/// cleaned up by `.ci/run` (dropping them here would need an async drop). Clones share
/// the database, as several instances of a service would.
#[derive(Clone, Debug)]
pub struct TestDatabase {
    pub url: String,
    pub dir: Arc<tempfile::TempDir>,
}

impl TestDatabase {
    /// A folder for other per-test files (key material, ...), removed with the database.
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// `true` when this run targets PostgreSQL.
pub fn wants_postgres() -> bool {
    std::env::var("TEST_DATABASE").is_ok_and(|v| v.eq_ignore_ascii_case("postgres"))
}

/// Creates a fresh database for one test. Panics (failing the test) when PostgreSQL was
/// asked for and cannot be reached.
#[allow(clippy::expect_used)]
pub async fn fresh_database(prefix: &str) -> TestDatabase {
    static ANNOUNCE: Once = Once::new();
    let dir = tempfile::tempdir().expect("Failed to create a temporary folder");
    if !wants_postgres() {
        ANNOUNCE.call_once(|| {
            eprintln!(
                "note: integration tests run on SQLite; PostgreSQL skipped \
                 (set TEST_DATABASE=postgres to run them there)"
            );
        });
        let url = format!("sqlite://{}/{prefix}.db", dir.path().display());
        return TestDatabase {
            url,
            dir: Arc::new(dir),
        };
    }
    let admin_url = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("{prefix}_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("TEST_DATABASE=postgres but PostgreSQL is unreachable at TEST_POSTGRES_URL");
    admin
        .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .expect("Failed to create a test database");
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    TestDatabase {
        url: format!("{base}/{name}"),
        dir: Arc::new(dir),
    }
}

/// A client that opens a connection to `addr` and sends a request's headers one byte
/// per `pause`, never finishing them. Returns how long the server took to close the
/// connection, or `None` if it was still open after `give_up`.
pub async fn slow_headers_client(
    addr: std::net::SocketAddr,
    pause: Duration,
    give_up: Duration,
) -> Option<Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let head = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    let mut bytes = head.iter().copied().chain(std::iter::repeat(b'a'));
    let mut buf = [0u8; 512];
    while started.elapsed() < give_up {
        let byte = bytes.next().unwrap_or(b'a');
        if stream.write_all(&[byte]).await.is_err() {
            return Some(started.elapsed());
        }
        match tokio::time::timeout(pause, stream.read(&mut buf)).await {
            // Still open: nothing to read yet.
            Err(_) => {}
            // Closed, or an answer (408) the server closes after.
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
    None
}
