//! The application wiring: settings in, each capability built with its part of them,
//! the HTTP layer on a bound listener, and the background tasks (key rotation,
//! housekeeping). Imported only by `main.rs`, the CLI and tests.

pub mod housekeeping;
pub mod settings;
pub mod startup;
