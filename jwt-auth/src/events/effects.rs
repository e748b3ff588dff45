//! What each event does to access tokens, as [`Revocation`]s:
//! - `session-revoked`: the session's tokens issued at or before the event;
//! - `credential-change` of a password: all the user's tokens issued at or before it
//!   (other credentials change nothing: the tokens did not depend on them);
//! - `account-disabled`: every token of the user until `account-enabled`, and for good
//!   those issued before the disable (enabling an account again must not bring the
//!   tokens of before back);
//! - `account-enabled`: lifts the disable, unless a newer disable came first.
//!
//! `<=` on purpose: `iat` has whole seconds, so a token issued in the second of the
//! revocation is refused too, and its client simply refreshes. An event's time is
//! never taken to be later than its SET's `iat` (an event cannot happen after it is
//! reported), so a wrong `event_timestamp` cannot refuse tokens still to be issued.

use super::event::{CredentialType, SecurityEvent};
use super::set::SecurityEventToken;
use crate::revocation::{AccountState, Revocation};

/// How long what an event revokes is kept, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// After the revocation time: the longest token lifetime and the leeway.
    pub revocations: i64,
    /// How old a SET may be: a stale disable older than this is refused anyway, so an
    /// enabled account need not be remembered longer.
    pub max_set_age: i64,
}

pub fn revocations(set: &SecurityEventToken, retention: Retention) -> Vec<Revocation> {
    let until = |at: i64| at.saturating_add(retention.revocations);
    match &set.event {
        SecurityEvent::SessionRevoked {
            session_id,
            event_timestamp,
            ..
        } => {
            let before = (*event_timestamp).min(set.issued_at);
            vec![Revocation::Session {
                session_id: session_id.clone(),
                before,
                expires_at: until(before),
            }]
        }
        SecurityEvent::CredentialChange {
            user,
            credential_type: CredentialType::Password,
            event_timestamp,
            ..
        } => {
            let before = (*event_timestamp).min(set.issued_at);
            vec![Revocation::Subject {
                subject: user.clone(),
                before,
                expires_at: until(before),
            }]
        }
        // RISC events carry no time of their own: the SET's is the best we have.
        SecurityEvent::AccountDisabled { user, .. } => vec![
            Revocation::Account {
                subject: user.clone(),
                state: AccountState::Disabled,
                set_issued_at: set.issued_at,
                expires_at: None,
            },
            Revocation::Subject {
                subject: user.clone(),
                before: set.issued_at,
                expires_at: until(set.issued_at),
            },
        ],
        SecurityEvent::AccountEnabled { user } => vec![Revocation::Account {
            subject: user.clone(),
            state: AccountState::Enabled,
            set_issued_at: set.issued_at,
            expires_at: Some(set.issued_at.saturating_add(retention.max_set_age)),
        }],
        SecurityEvent::CredentialChange { .. } | SecurityEvent::Other { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::event::ChangeType;

    const RETENTION: Retention = Retention {
        revocations: 1000,
        max_set_age: 300,
    };

    fn set(event: SecurityEvent, iat: i64) -> SecurityEventToken {
        SecurityEventToken {
            jti: "j".into(),
            issued_at: iat,
            txn: None,
            event,
        }
    }

    #[test]
    fn a_session_is_revoked_up_to_its_event_but_never_after_the_set() {
        let revoked = |event_timestamp| {
            revocations(
                &set(
                    SecurityEvent::SessionRevoked {
                        user: "u".into(),
                        session_id: "s".into(),
                        event_timestamp,
                    },
                    100,
                ),
                RETENTION,
            )
        };
        let session = |before: i64| Revocation::Session {
            session_id: "s".into(),
            before,
            expires_at: before + 1000,
        };
        assert_eq!(revoked(90), vec![session(90)]);
        assert_eq!(revoked(5_000), vec![session(100)]);
    }

    #[test]
    fn only_a_password_change_revokes_the_users_tokens() {
        let change = |credential_type| {
            set(
                SecurityEvent::CredentialChange {
                    user: "u".into(),
                    credential_type,
                    change_type: ChangeType::Update,
                    event_timestamp: 90,
                },
                100,
            )
        };
        assert_eq!(
            revocations(&change(CredentialType::Password), RETENTION),
            vec![Revocation::Subject {
                subject: "u".into(),
                before: 90,
                expires_at: 1090
            }]
        );
        assert!(revocations(&change(CredentialType::Other("app".into())), RETENTION).is_empty());
    }

    #[test]
    fn a_disable_also_revokes_the_tokens_of_before_for_good() {
        let disabled = revocations(
            &set(
                SecurityEvent::AccountDisabled {
                    user: "u".into(),
                    reason: None,
                },
                100,
            ),
            RETENTION,
        );
        assert!(disabled.contains(&Revocation::Account {
            subject: "u".into(),
            state: AccountState::Disabled,
            set_issued_at: 100,
            expires_at: None
        }));
        assert!(disabled.contains(&Revocation::Subject {
            subject: "u".into(),
            before: 100,
            expires_at: 1100
        }));
        let enabled = revocations(
            &set(SecurityEvent::AccountEnabled { user: "u".into() }, 200),
            RETENTION,
        );
        assert_eq!(
            enabled,
            vec![Revocation::Account {
                subject: "u".into(),
                state: AccountState::Enabled,
                set_issued_at: 200,
                expires_at: Some(500)
            }]
        );
    }
}
