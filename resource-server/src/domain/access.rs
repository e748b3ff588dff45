//! Who may do what to which profile. Reading needs `users:read`, changing or deleting
//! needs `users:write`; acting on a profile that is not the caller's own, or listing all
//! profiles, needs `users:admin` on top. Only a user (a token whose `sub` is a UUID, the
//! idp's user ids) owns a profile; a client acting for itself (`sub` = its client id,
//! never a UUID) never does.

use super::UserId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "users:read",
            Self::Write => "users:write",
            Self::Admin => "users:admin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Read, Self::Write, Self::Admin]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
}

impl Action {
    fn scope(self) -> Scope {
        match self {
            Self::Read => Scope::Read,
            Self::Write => Scope::Write,
        }
    }
}

/// On what grounds access was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Owner,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    #[error("missing scope: the request needs {}", scope_list(.needed))]
    InsufficientScope { needed: Vec<Scope> },
    #[error("the token does not represent a user")]
    NotAUser,
}

impl AccessDenied {
    /// The scopes the request needs, space-separated as in a `scope` parameter.
    pub fn needed_scopes(&self) -> Option<String> {
        match self {
            Self::InsufficientScope { needed } => Some(scope_list(needed)),
            Self::NotAUser => None,
        }
    }
}

fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The user behind a token, when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerUser {
    pub id: UserId,
    /// Present when the user let the client see it (the `email` scope).
    pub email: Option<String>,
}

/// The authenticated caller, as far as profiles are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    user: Option<CallerUser>,
    scopes: Vec<Scope>,
}

impl Caller {
    /// `subject` and `email` from the token; a token is a user's when its subject is a
    /// user id. Scopes we do not know are ignored.
    pub fn new<'a>(
        subject: &str,
        email: Option<&str>,
        granted: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let user = UserId::parse(subject).map(|id| CallerUser {
            id,
            email: email.filter(|e| !e.is_empty()).map(str::to_owned),
        });
        let mut scopes: Vec<Scope> = granted.into_iter().filter_map(Scope::parse).collect();
        scopes.sort_unstable();
        scopes.dedup();
        Self { user, scopes }
    }

    pub fn user(&self) -> Option<&CallerUser> {
        self.user.as_ref()
    }

    /// `action` on the caller's own profile (`/users/me`).
    pub fn authorize_own(&self, action: Action) -> Result<&CallerUser, AccessDenied> {
        self.require(&[action.scope()])?;
        self.user.as_ref().ok_or(AccessDenied::NotAUser)
    }

    /// `action` on the profile `target`: the owner needs the action's scope, anyone
    /// else `users:admin` as well.
    pub fn authorize(&self, action: Action, target: &UserId) -> Result<Access, AccessDenied> {
        if self.user.as_ref().is_some_and(|u| u.id == *target) {
            self.require(&[action.scope()])?;
            Ok(Access::Owner)
        } else {
            self.require(&[action.scope(), Scope::Admin])?;
            Ok(Access::Admin)
        }
    }

    /// Listing every profile is an admin's read.
    pub fn authorize_list(&self) -> Result<Access, AccessDenied> {
        self.require(&[Scope::Read, Scope::Admin])?;
        Ok(Access::Admin)
    }

    fn require(&self, needed: &[Scope]) -> Result<(), AccessDenied> {
        if needed.iter().all(|s| self.scopes.contains(s)) {
            Ok(())
        } else {
            Err(AccessDenied::InsufficientScope {
                needed: needed.to_vec(),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ALICE: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const BOB: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

    fn alice(scopes: &str) -> Caller {
        Caller::new(ALICE, Some("alice@example.com"), scopes.split(' '))
    }

    fn id(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn owners_act_on_their_own_profile_with_the_action_scope() {
        let caller = alice("users:read users:write");
        assert_eq!(
            caller.authorize(Action::Read, &id(ALICE)),
            Ok(Access::Owner)
        );
        assert_eq!(
            caller.authorize(Action::Write, &id(ALICE)),
            Ok(Access::Owner)
        );
        let reader = alice("users:read");
        assert_eq!(
            reader.authorize(Action::Write, &id(ALICE)),
            Err(AccessDenied::InsufficientScope {
                needed: vec![Scope::Write]
            })
        );
    }

    #[test]
    fn someone_elses_profile_needs_the_admin_scope_too() {
        let caller = alice("users:read users:write");
        let denied = caller.authorize(Action::Read, &id(BOB)).unwrap_err();
        assert_eq!(
            denied.needed_scopes().as_deref(),
            Some("users:read users:admin")
        );
        let admin = alice("users:read users:admin");
        assert_eq!(admin.authorize(Action::Read, &id(BOB)), Ok(Access::Admin));
        assert!(admin.authorize(Action::Write, &id(BOB)).is_err());
        assert!(caller.authorize_list().is_err());
        assert_eq!(admin.authorize_list(), Ok(Access::Admin));
    }

    #[test]
    fn a_uuid_subject_is_a_user_even_without_an_email() {
        let user = Caller::new(ALICE, None, ["users:read"]);
        assert_eq!(
            user.authorize_own(Action::Read).map(|u| u.email.clone()),
            Ok(None)
        );
        assert_eq!(user.authorize(Action::Read, &id(ALICE)), Ok(Access::Owner));
    }

    #[test]
    fn a_token_without_a_user_owns_nothing() {
        let not_a_uuid = Caller::new("service-x", Some("x@example.com"), ["users:read"]);
        assert_eq!(
            not_a_uuid.authorize_own(Action::Read),
            Err(AccessDenied::NotAUser)
        );
        assert!(not_a_uuid.authorize(Action::Read, &id(ALICE)).is_err());
        let no_scope = Caller::new("service-x", None, []);
        assert!(matches!(
            no_scope.authorize_own(Action::Read),
            Err(AccessDenied::InsufficientScope { .. })
        ));
    }
}
