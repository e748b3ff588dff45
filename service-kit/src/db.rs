//! Database connection for both backends. Services use sqlx's `Any` driver with `$N`
//! placeholders (understood by SQLite and PostgreSQL alike), so one query text serves
//! both; only the migrations differ per backend.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            bail!("unsupported database URL scheme (expected sqlite: or postgres://)")
        }
    }
}

/// A connection pool and the backend behind it.
#[derive(Clone, Debug)]
pub struct Database {
    pub pool: AnyPool,
    pub backend: Backend,
}

/// The migrations of one service, one set per backend.
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

impl Database {
    /// Connects (creating the SQLite file and its folder on first use) without migrating.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .context("Failed to parse the database URL")?
            .log_statements(tracing::log::LevelFilter::Debug)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            // sqlx pings every connection it hands out by default: a round trip to the
            // SQLite worker thread or the PostgreSQL server per query, as costly as the
            // query on the hot paths. Ping only where a connection can have broken.
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if needs_ping(backend, meta.idle_for) {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed during a write; busy_timeout queues
                        // concurrent writers instead of failing them; foreign keys are
                        // off by default in SQLite. Each pooled connection keeps its own
                        // page cache (2 MiB by default), which a write by any other
                        // connection invalidates anyway, and the OS caches the file:
                        // 256 KiB each keeps the hot pages and the memory small.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                             PRAGMA cache_size = -256;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("Failed to connect to the database")?;
        Ok(Self { pool, backend })
    }

    /// Applies the pending migrations of this backend.
    pub async fn migrate(&self, migrations: &Migrations) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => migrations.sqlite,
            Backend::Postgres => migrations.postgres,
        };
        let mut result = migrator.run(&self.pool).await;
        if result.is_err() && self.backend == Backend::Sqlite {
            // PostgreSQL migrations take an advisory lock; SQLite ones take none, so an
            // instance starting at the same moment can apply a migration between our check
            // and our attempt. A second pass sees it applied and does nothing.
            tokio::time::sleep(Duration::from_millis(200)).await;
            result = migrator.run(&self.pool).await;
        }
        result.context("Failed to apply database migrations")
    }

    /// `true` when the database answers a trivial query.
    pub async fn is_healthy(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// Connections idle at least this long are pinged before use (PostgreSQL only).
const PING_AFTER_IDLE: Duration = Duration::from_secs(5);

/// Whether a pooled connection idle for `idle_for` must be checked before use: a SQLite
/// connection is a file handle in this process and cannot break; a PostgreSQL one can
/// (server restart, network), but one used within the last few seconds is alive, and
/// under load every connection is.
fn needs_ping(backend: Backend, idle_for: Duration) -> bool {
    backend == Backend::Postgres && idle_for >= PING_AFTER_IDLE
}

/// `true` for a UNIQUE constraint violation, on either backend.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// Makes sure the SQLite file can be created: its folder exists and the URL asks for
/// read-write-create mode.
fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        bail!("an in-memory SQLite database cannot be shared by a pool; give a file path");
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create the database folder {}", dir.display()))?;
    }
    Ok(if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_recognised_by_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://data/idp.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(Backend::from_url("mysql://u@h/db").is_err());
    }

    #[test]
    fn only_postgres_connections_idle_for_a_while_are_pinged_before_use() {
        assert!(!needs_ping(Backend::Sqlite, Duration::from_secs(3600)));
        assert!(!needs_ping(Backend::Postgres, Duration::from_millis(10)));
        assert!(needs_ping(Backend::Postgres, PING_AFTER_IDLE));
    }

    #[tokio::test]
    async fn pooled_sqlite_connections_serve_queries_one_after_another() {
        let dir = std::env::temp_dir().join(format!("svc-kit-{}", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}/x.db", dir.display());
        let db = Database::connect(&url, 2).await.unwrap();
        for _ in 0..5 {
            assert!(db.is_healthy().await);
        }
        // Every connection has the small page cache (negative: KiB).
        let (cache,): (i64,) = sqlx::query_as("PRAGMA cache_size")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(cache, -256);
        db.pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sqlite_urls_get_create_mode_unless_they_chose_one() {
        let dir = std::env::temp_dir().join(format!("svc-kit-{}", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}/x.db", dir.display());
        assert_eq!(
            prepare_sqlite_url(&url).ok(),
            Some(format!("{url}?mode=rwc"))
        );
        assert!(dir.is_dir());
        let ro = format!("{url}?mode=ro");
        assert_eq!(prepare_sqlite_url(&ro).ok(), Some(ro.clone()));
        assert!(prepare_sqlite_url("sqlite::memory:").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
