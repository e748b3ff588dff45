//! The users database: sqlx over the `Any` driver (one query text for SQLite and
//! PostgreSQL), explicit column lists, UUIDs as TEXT and timestamps as BIGINT unix
//! seconds, converted to domain types here and nowhere else.

pub mod profiles;

use service_kit::db::Migrations;
use sqlx::migrate::Migrator;

static SQLITE: Migrator = sqlx::migrate!("../migrations/resource-server/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("../migrations/resource-server/postgres");

/// The resource server's migrations, one set per backend.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};
