//! The events a SET can carry, parsed into types: the CAEP 1.0 `session-revoked` and
//! `credential-change` events and the RISC 1.0 `account-disabled` / `account-enabled`
//! events. Any other type is kept by name only: a transmitter may send more than we
//! act on.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::SetError;
use super::subject::Subject;

/// CAEP 1.0 §3.1.
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// CAEP 1.0 §3.3.
pub const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";
/// RISC 1.0 §2.3.
pub const ACCOUNT_DISABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
/// RISC 1.0 §2.4.
pub const ACCOUNT_ENABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-enabled";

/// One event about one user. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityEvent {
    /// A sign-in session ended (sign-out, expiry, an administrator).
    SessionRevoked {
        user: String,
        session_id: String,
        event_timestamp: i64,
    },
    /// A credential of the user was created, changed or removed.
    CredentialChange {
        user: String,
        credential_type: CredentialType,
        change_type: ChangeType,
        event_timestamp: i64,
    },
    AccountDisabled {
        user: String,
        reason: Option<String>,
    },
    AccountEnabled {
        user: String,
    },
    /// An event type we do not act on.
    Other {
        event_type: String,
    },
}

/// CAEP 1.0 §3.3 `credential_type`; only a password change revokes tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialType {
    Password,
    /// `app`, `fido2-platform`, `fido2-roaming`, `x509`... by name.
    Other(String),
}

/// CAEP 1.0 §3.3 `change_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeType {
    Create,
    Revoke,
    Update,
    Delete,
}

#[derive(Deserialize)]
struct SessionRevokedMembers {
    event_timestamp: i64,
}

#[derive(Deserialize)]
struct CredentialChangeMembers {
    credential_type: String,
    change_type: ChangeType,
    event_timestamp: i64,
}

#[derive(Deserialize)]
struct AccountDisabledMembers {
    #[serde(default)]
    reason: Option<String>,
}

impl SecurityEvent {
    /// The event of type `event_type` with these `members`, about `sub_id` (whose users
    /// must belong to `issuer`). Members we do not use (`initiating_entity`, the
    /// reasons) are not checked; those we use must be there and well-typed.
    pub fn parse(
        event_type: &str,
        members: &Map<String, Value>,
        sub_id: Option<&Value>,
        issuer: &str,
    ) -> Result<Self, SetError> {
        let subject = || {
            let sub_id = sub_id.ok_or(SetError::InvalidRequest("the SET has no sub_id"))?;
            Subject::parse(sub_id, issuer)
        };
        match event_type {
            SESSION_REVOKED => {
                let Subject { user, session_id } = subject()?;
                let session_id = session_id.ok_or(SetError::InvalidRequest(
                    "a session-revoked sub_id names no session",
                ))?;
                let members: SessionRevokedMembers = read(members)?;
                Ok(Self::SessionRevoked {
                    user,
                    session_id,
                    event_timestamp: members.event_timestamp,
                })
            }
            CREDENTIAL_CHANGE => {
                let user = subject()?.user;
                let members: CredentialChangeMembers = read(members)?;
                let credential_type = match members.credential_type.as_str() {
                    "password" => CredentialType::Password,
                    _ => CredentialType::Other(members.credential_type),
                };
                Ok(Self::CredentialChange {
                    user,
                    credential_type,
                    change_type: members.change_type,
                    event_timestamp: members.event_timestamp,
                })
            }
            ACCOUNT_DISABLED => {
                let user = subject()?.user;
                let members: AccountDisabledMembers = read(members)?;
                Ok(Self::AccountDisabled {
                    user,
                    reason: members.reason,
                })
            }
            ACCOUNT_ENABLED => Ok(Self::AccountEnabled {
                user: subject()?.user,
            }),
            other => Ok(Self::Other {
                event_type: other.to_owned(),
            }),
        }
    }

    pub fn event_type(&self) -> &str {
        match self {
            Self::SessionRevoked { .. } => SESSION_REVOKED,
            Self::CredentialChange { .. } => CREDENTIAL_CHANGE,
            Self::AccountDisabled { .. } => ACCOUNT_DISABLED,
            Self::AccountEnabled { .. } => ACCOUNT_ENABLED,
            Self::Other { event_type } => event_type,
        }
    }
}

fn read<T: serde::de::DeserializeOwned>(members: &Map<String, Value>) -> Result<T, SetError> {
    serde_json::from_value(Value::Object(members.clone())).map_err(|_| {
        SetError::InvalidRequest("the event's members are missing or of the wrong type")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://idp.example";

    fn members(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn user() -> Value {
        json!({"format": "iss_sub", "iss": ISS, "sub": "u1"})
    }

    fn session() -> Value {
        json!({"format": "complex", "user": user(), "session": {"format": "opaque", "id": "s1"}})
    }

    #[test]
    fn a_session_revocation_needs_the_session_and_its_time() {
        let event = SecurityEvent::parse(
            SESSION_REVOKED,
            &members(json!({"event_timestamp": 100, "initiating_entity": "user",
                            "reason_admin": {"en": "Signed out"}})),
            Some(&session()),
            ISS,
        )
        .unwrap();
        assert_eq!(
            event,
            SecurityEvent::SessionRevoked {
                user: "u1".into(),
                session_id: "s1".into(),
                event_timestamp: 100
            }
        );
        for (members_, sub_id) in [
            (json!({"event_timestamp": 100}), user()),
            (json!({}), session()),
            (json!({"event_timestamp": "100"}), session()),
        ] {
            assert!(
                SecurityEvent::parse(SESSION_REVOKED, &members(members_), Some(&sub_id), ISS)
                    .is_err()
            );
        }
        assert!(SecurityEvent::parse(SESSION_REVOKED, &members(json!({})), None, ISS).is_err());
    }

    #[test]
    fn a_credential_change_names_its_credential_and_change() {
        let parse = |value: Value| {
            SecurityEvent::parse(CREDENTIAL_CHANGE, &members(value), Some(&user()), ISS)
        };
        assert_eq!(
            parse(
                json!({"credential_type": "password", "change_type": "update",
                         "event_timestamp": 7, "initiating_entity": "user"})
            )
            .unwrap(),
            SecurityEvent::CredentialChange {
                user: "u1".into(),
                credential_type: CredentialType::Password,
                change_type: ChangeType::Update,
                event_timestamp: 7
            }
        );
        assert!(matches!(
            parse(json!({"credential_type": "fido2-roaming", "change_type": "create",
                         "event_timestamp": 7})),
            Ok(SecurityEvent::CredentialChange { credential_type: CredentialType::Other(t), .. })
                if t == "fido2-roaming"
        ));
        assert!(
            parse(
                json!({"credential_type": "password", "change_type": "renamed",
                             "event_timestamp": 7})
            )
            .is_err()
        );
        assert!(parse(json!({"change_type": "update", "event_timestamp": 7})).is_err());
    }

    #[test]
    fn account_events_name_a_user_and_other_types_are_kept_by_name() {
        assert_eq!(
            SecurityEvent::parse(ACCOUNT_ENABLED, &Map::new(), Some(&user()), ISS).unwrap(),
            SecurityEvent::AccountEnabled { user: "u1".into() }
        );
        assert!(matches!(
            SecurityEvent::parse(
                ACCOUNT_DISABLED,
                &members(json!({"reason": "hijacking"})),
                Some(&session()),
                ISS
            ),
            Ok(SecurityEvent::AccountDisabled {
                reason: Some(_),
                ..
            })
        ));
        let other = "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change";
        assert_eq!(
            SecurityEvent::parse(other, &Map::new(), None, ISS)
                .unwrap()
                .event_type(),
            other
        );
    }
}
