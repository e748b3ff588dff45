//! The subject of a SET (`sub_id`, RFC 9493 as SSF 1.0 §3 uses it): a user of our
//! issuer (`iss_sub`), or a `complex` subject naming such a user and one of their
//! sessions (`opaque`).

use serde_json::{Map, Value};

use super::SetError;

/// Whom an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The user's `sub` at the issuer.
    pub user: String,
    /// The issuer's session id (the `sid` of the tokens issued in it), when named.
    pub session_id: Option<String>,
}

impl Subject {
    /// Reads `sub_id`, whose users must belong to `issuer` (exact comparison).
    pub fn parse(sub_id: &Value, issuer: &str) -> Result<Self, SetError> {
        let sub_id = object(sub_id)?;
        match text(sub_id, "format")? {
            // RFC 9493 §3.2.5
            "iss_sub" => Ok(Self {
                user: user(sub_id, issuer)?,
                session_id: None,
            }),
            // RFC 9493 §3.3: each member is itself a subject; we need the user, and read
            // the session. Other members (device, tenant...) do not change what we revoke.
            "complex" => {
                let user_id = sub_id
                    .get("user")
                    .ok_or(SetError::InvalidRequest("the complex sub_id names no user"))?;
                let user_id = object(user_id)?;
                if text(user_id, "format")? != "iss_sub" {
                    return Err(SetError::InvalidRequest("the sub_id user is not iss_sub"));
                }
                let session_id = match sub_id.get("session") {
                    None => None,
                    Some(session) => Some(opaque(object(session)?)?),
                };
                Ok(Self {
                    user: user(user_id, issuer)?,
                    session_id,
                })
            }
            _ => Err(SetError::InvalidRequest(
                "the sub_id format is not supported",
            )),
        }
    }
}

/// The `sub` of an `iss_sub` subject, whose `iss` must be ours.
fn user(subject: &Map<String, Value>, issuer: &str) -> Result<String, SetError> {
    if text(subject, "iss")? != issuer {
        return Err(SetError::InvalidRequest(
            "the sub_id names a user of another issuer",
        ));
    }
    non_empty(text(subject, "sub")?)
}

/// The `id` of an `opaque` subject (RFC 9493 §3.2.4).
fn opaque(subject: &Map<String, Value>) -> Result<String, SetError> {
    if text(subject, "format")? != "opaque" {
        return Err(SetError::InvalidRequest("the sub_id session is not opaque"));
    }
    non_empty(text(subject, "id")?)
}

fn object(value: &Value) -> Result<&Map<String, Value>, SetError> {
    value.as_object().ok_or(SetError::InvalidRequest(
        "a sub_id subject is not a JSON object",
    ))
}

fn text<'a>(subject: &'a Map<String, Value>, name: &str) -> Result<&'a str, SetError> {
    subject
        .get(name)
        .and_then(Value::as_str)
        .ok_or(SetError::InvalidRequest(
            "a sub_id member is missing or not a string",
        ))
}

fn non_empty(value: &str) -> Result<String, SetError> {
    if value.is_empty() {
        return Err(SetError::InvalidRequest("a sub_id identifier is empty"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://idp.example";

    #[test]
    fn a_user_and_a_users_session_are_read() {
        let user = json!({"format": "iss_sub", "iss": ISS, "sub": "u1"});
        assert_eq!(
            Subject::parse(&user, ISS).unwrap(),
            Subject {
                user: "u1".into(),
                session_id: None
            }
        );
        let session = json!({
            "format": "complex",
            "user": user,
            "session": {"format": "opaque", "id": "s1"},
            "tenant": {"format": "opaque", "id": "ignored"},
        });
        assert_eq!(
            Subject::parse(&session, ISS).unwrap().session_id.as_deref(),
            Some("s1")
        );
    }

    #[test]
    fn subjects_we_cannot_act_on_are_refused() {
        for sub_id in [
            json!("u1"),
            json!({"format": "email", "email": "a@example.com"}),
            json!({"format": "iss_sub", "iss": "https://other.example", "sub": "u1"}),
            // Exact comparison: a trailing slash is another issuer.
            json!({"format": "iss_sub", "iss": format!("{ISS}/"), "sub": "u1"}),
            json!({"format": "iss_sub", "iss": ISS, "sub": ""}),
            json!({"format": "iss_sub", "iss": ISS, "sub": 7}),
            json!({"format": "iss_sub", "iss": ISS}),
            json!({"format": "complex", "session": {"format": "opaque", "id": "s1"}}),
            json!({"format": "complex", "user": {"format": "iss_sub", "iss": ISS, "sub": "u1"},
                   "session": {"format": "opaque", "id": ""}}),
            json!({"format": "complex", "user": {"format": "opaque", "id": "u1"}}),
            json!({"format": "complex", "user": {"format": "iss_sub", "iss": "x", "sub": "u1"}}),
        ] {
            assert!(
                matches!(
                    Subject::parse(&sub_id, ISS),
                    Err(SetError::InvalidRequest(_))
                ),
                "{sub_id} was accepted"
            );
        }
    }
}
