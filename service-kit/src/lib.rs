//! Plumbing shared by the idp and the resource server. Nothing here knows about
//! identities or profiles: it connects to a database, sets up telemetry, wraps a router
//! in the common HTTP middleware and waits for a shutdown signal.

pub mod api_error;
pub mod backoff;
pub mod clock;
pub mod db;
pub mod http;
#[cfg(feature = "testing")]
pub mod layers;
pub mod process;
pub mod serve;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
