//! Receiving the issuer's security events (OpenID Shared Signals: Security Event Tokens,
//! RFC 8417, pushed per RFC 8935) and turning them into revocations, so that tokens of
//! a session that ended, of a user who changed their password or of a disabled account
//! are refused from then on ([`crate::revocation`]).
//!
//! - [`set`]: verifying a SET (the [`crate::jws`] header rules with `typ`
//!   secevent+jwt, the issuer's key from the [`JwksCache`](crate::JwksCache), `iss`,
//!   `aud`, `jti`, an `iat` window against replays) into a [`SecurityEventToken`];
//! - [`event`] and [`subject`]: its one event and its `sub_id`, typed;
//! - [`effects`]: what each event revokes;
//! - [`store`]: the `jti`s seen and the revocations, in memory or (feature
//!   `events-store`) in the service's database (`sql`);
//! - [`receiver`]: the pipeline ([`EventReceiver`]) and its upkeep;
//! - [`push`]: the axum endpoint and the RFC 8935 answers;
//! - [`config`]: what the receiver expects ([`ReceiverConfig`]).

pub mod config;
pub mod effects;
pub mod error;
pub mod event;
pub mod push;
pub mod receiver;
pub mod set;
#[cfg(feature = "events-store")]
pub mod sql;
pub mod store;
pub mod subject;

pub use config::{ReceiverAuthorization, ReceiverConfig};
pub use error::SetError;
pub use event::{
    ACCOUNT_DISABLED, ACCOUNT_ENABLED, CREDENTIAL_CHANGE, ChangeType, CredentialType,
    SESSION_REVOKED, SecurityEvent,
};
pub use push::{MAX_SET_BYTES, push_endpoint};
pub use receiver::{EventReceiver, MaintenanceTask, Outcome, Receipt};
pub use set::SecurityEventToken;
pub use store::{EventStore, Pruned, Recorded};
pub use subject::Subject;
