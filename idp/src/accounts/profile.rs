//! What the idp releases about a person with the `profile` scope (OIDC Core §5.4): a
//! display name they set at registration or on the account page, and when it last
//! changed (`updated_at`). This is the identity relying parties see; an application's
//! own profile (the resource server's `/users`) is that application's to keep.

use crate::accounts::Accounts;
use crate::accounts::store as users;
use crate::guards::audit::{Event, Outcome, events};

/// A display name (OIDC `name`): trimmed, 1 to 100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DisplayNameError {
    #[error("Use at most 100 characters.")]
    TooLong,
    #[error("Names cannot contain control characters.")]
    ControlCharacter,
}

impl DisplayName {
    pub const MAX_CHARS: usize = 100;

    /// `None` for a blank input: the name is optional.
    pub fn parse(input: &str) -> Result<Option<Self>, DisplayNameError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(DisplayNameError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DisplayNameError::ControlCharacter);
        }
        Ok(Some(Self(trimmed.to_owned())))
    }
}

impl AsRef<str> for DisplayName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NameChangeError {
    #[error(transparent)]
    Invalid(#[from] DisplayNameError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl Accounts {
    /// Sets `user_id`'s display name from `input`; a blank one removes it. Audited as
    /// `profile_changed`.
    #[tracing::instrument(skip_all)]
    pub async fn change_name(&self, user_id: &str, input: &str) -> Result<(), NameChangeError> {
        let name = DisplayName::parse(input)?;
        let now = self.clock.now().timestamp();
        let found =
            users::update_name(&self.pool, user_id, name.as_ref().map(AsRef::as_ref), now).await?;
        if !found {
            return Err(anyhow::anyhow!("A signed-in user has no account").into());
        }
        self.audit
            .record(Event::new(events::PROFILE_CHANGED, Outcome::Success).user(Some(user_id)))
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_optional_and_bounded() {
        assert_eq!(DisplayName::parse("  "), Ok(None));
        assert_eq!(
            DisplayName::parse(" Ada Lovelace ").map(|n| n.map(|n| n.0)),
            Ok(Some("Ada Lovelace".to_owned()))
        );
        assert_eq!(
            DisplayName::parse(&"é".repeat(101)),
            Err(DisplayNameError::TooLong)
        );
        assert!(DisplayName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(
            DisplayName::parse("Ada\u{0}"),
            Err(DisplayNameError::ControlCharacter)
        );
    }
}
