//! Persistence of the idp: sqlx through the `Any` driver, one query text for SQLite and
//! PostgreSQL. No HTTP here, and no business rules beyond what SQL constraints enforce.

pub mod housekeeping;
pub mod outbox;

use service_kit::db::Migrations;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/idp/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/idp/postgres");

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};
