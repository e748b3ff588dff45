//! Cross-cutting guards every capability may use: login and registration throttling,
//! the audit trail, which address a request comes from, and secret values (random
//! tokens, hashes, constant-time comparison).

pub mod audit;
pub mod client_ip;
pub mod secrets;
pub mod throttle;
