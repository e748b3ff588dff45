//! Persistence of the idp: sqlx through the `Any` driver, one query text for SQLite and
//! PostgreSQL. No HTTP here, and no business rules beyond what SQL constraints enforce.

pub mod access_tokens;
pub mod audit;
pub mod auth_failures;
pub mod clients;
pub mod codes;
pub mod consents;
pub mod grants;
pub mod housekeeping;
pub mod keys;
pub mod refresh_tokens;
pub mod user_sessions;
pub mod users;

use service_kit::db::Migrations;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/idp/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/idp/postgres");

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};
