//! Access tokens the issuer has revoked since it signed them: which sessions ended,
//! which users changed their password, which accounts are disabled. The validator
//! checks every token against this index after its signature and claims, so a revoked
//! token is refused offline, for the price of a few hash lookups.
//!
//! The index is filled from the issuer's security events ([`crate::events`]), each
//! turned into [`Revocation`]s. Merging one into the index is idempotent and, for
//! sessions and users, independent of order: a replayed or reordered event cannot
//! shorten a revocation. An account's state follows the newest event about it (by the
//! `iat` of its SET), so a stale `account-enabled` cannot undo a newer disable.
//!
//! Each entry expires once no token it could refuse is still valid (the revocation time
//! plus the retention, at least the longest access-token lifetime and the leeway); an
//! account stays disabled until it is enabled.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, PoisonError, RwLock};

use crate::AccessTokenClaims;

/// What one security event takes away from tokens. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Tokens issued in this session (`sid`) at or before `before` are refused.
    Session {
        session_id: String,
        before: i64,
        expires_at: i64,
    },
    /// Tokens issued to this user (`sub`) at or before `before` are refused.
    Subject {
        subject: String,
        before: i64,
        expires_at: i64,
    },
    /// The user's account is disabled (every token of theirs is refused, whatever its
    /// `iat`) or enabled again, as of the SET signed at `set_issued_at`.
    Account {
        subject: String,
        state: AccountState,
        set_issued_at: i64,
        /// `None` while disabled: a disabled account never expires.
        expires_at: Option<i64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Disabled,
    Enabled,
}

/// Which tokens are refused. Cheap to clone; clones share the index.
#[derive(Clone, Default)]
pub struct RevocationIndex {
    inner: Arc<RwLock<Index>>,
}

#[derive(Default)]
struct Index {
    sessions: HashMap<String, Window>,
    subjects: HashMap<String, Window>,
    accounts: HashMap<String, Account>,
}

/// Tokens issued at or before `before` are refused, until `expires_at`.
#[derive(Clone, Copy)]
struct Window {
    before: i64,
    expires_at: i64,
}

#[derive(Clone, Copy)]
struct Account {
    state: AccountState,
    set_issued_at: i64,
    expires_at: Option<i64>,
}

impl Window {
    /// The later revocation wins, and lives as long as the longer-lived of the two.
    fn merge(&mut self, other: Self) {
        self.before = self.before.max(other.before);
        self.expires_at = self.expires_at.max(other.expires_at);
    }
}

impl RevocationIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a token with these (verified) claims is revoked.
    pub fn refuses(&self, claims: &AccessTokenClaims) -> bool {
        let index = self.read();
        let revoked_by = |window: Option<&Window>| {
            window.is_some_and(|window| claims.issued_at <= window.before)
        };
        claims
            .session_id
            .as_ref()
            .is_some_and(|sid| revoked_by(index.sessions.get(sid)))
            || revoked_by(index.subjects.get(&claims.subject))
            || index
                .accounts
                .get(&claims.subject)
                .is_some_and(|account| account.state == AccountState::Disabled)
    }

    /// Merges `revocation` into the index (see the module documentation for how).
    pub fn apply(&self, revocation: &Revocation) {
        let mut index = self.write();
        match revocation {
            Revocation::Session {
                session_id,
                before,
                expires_at,
            } => merge_window(&mut index.sessions, session_id, *before, *expires_at),
            Revocation::Subject {
                subject,
                before,
                expires_at,
            } => merge_window(&mut index.subjects, subject, *before, *expires_at),
            Revocation::Account {
                subject,
                state,
                set_issued_at,
                expires_at,
            } => {
                let account = Account {
                    state: *state,
                    set_issued_at: *set_issued_at,
                    expires_at: *expires_at,
                };
                match index.accounts.entry(subject.clone()) {
                    Entry::Vacant(slot) => {
                        slot.insert(account);
                    }
                    // The newest SET decides; of two signed in one second, the later
                    // delivered (the issuer delivers one user's events in order).
                    Entry::Occupied(mut slot) => {
                        if account.set_issued_at >= slot.get().set_issued_at {
                            slot.insert(account);
                        }
                    }
                }
            }
        }
    }

    /// Drops the entries that expired before `now`; returns how many.
    pub fn prune(&self, now: i64) -> usize {
        let mut index = self.write();
        let before = index.len();
        index.sessions.retain(|_, window| window.expires_at >= now);
        index.subjects.retain(|_, window| window.expires_at >= now);
        index
            .accounts
            .retain(|_, account| account.expires_at.is_none_or(|at| at >= now));
        before - index.len()
    }

    /// How many sessions, users and accounts the index holds.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic while holding the lock cannot leave the maps half-updated (each change is
    // one insert or retain), so a poisoned lock is still good to use.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for RevocationIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationIndex")
            .field("entries", &self.len())
            .finish()
    }
}

impl Index {
    fn len(&self) -> usize {
        self.sessions.len() + self.subjects.len() + self.accounts.len()
    }
}

fn merge_window(map: &mut HashMap<String, Window>, key: &str, before: i64, expires_at: i64) {
    let window = Window { before, expires_at };
    match map.get_mut(key) {
        Some(existing) => existing.merge(window),
        None => {
            map.insert(key.to_owned(), window);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::Scopes;

    fn token(sub: &str, sid: Option<&str>, iat: i64) -> AccessTokenClaims {
        AccessTokenClaims {
            issuer: "http://idp".into(),
            subject: sub.into(),
            audience: vec!["http://rs".into()],
            expires_at: iat + 600,
            issued_at: iat,
            not_before: None,
            scopes: Scopes::default(),
            client_id: "c".into(),
            token_id: "j".into(),
            email: None,
            auth_time: None,
            acr: None,
            amr: Vec::new(),
            session_id: sid.map(str::to_owned),
        }
    }

    fn session(sid: &str, before: i64) -> Revocation {
        Revocation::Session {
            session_id: sid.into(),
            before,
            expires_at: before + 1000,
        }
    }

    fn account(sub: &str, state: AccountState, iat: i64) -> Revocation {
        Revocation::Account {
            subject: sub.into(),
            state,
            set_issued_at: iat,
            expires_at: (state == AccountState::Enabled).then_some(iat + 300),
        }
    }

    #[test]
    fn a_revoked_session_refuses_its_tokens_issued_up_to_the_revocation() {
        let index = RevocationIndex::new();
        index.apply(&session("s1", 100));
        assert!(index.refuses(&token("u1", Some("s1"), 99)));
        assert!(index.refuses(&token("u1", Some("s1"), 100)));
        assert!(!index.refuses(&token("u1", Some("s1"), 101)));
        assert!(!index.refuses(&token("u1", Some("s2"), 50)));
        assert!(!index.refuses(&token("u1", None, 50)));
    }

    #[test]
    fn a_subject_revocation_refuses_every_older_token_of_the_user() {
        let index = RevocationIndex::new();
        index.apply(&Revocation::Subject {
            subject: "u1".into(),
            before: 100,
            expires_at: 1000,
        });
        assert!(index.refuses(&token("u1", Some("any"), 100)));
        assert!(index.refuses(&token("u1", None, 1)));
        assert!(!index.refuses(&token("u1", None, 101)));
        assert!(!index.refuses(&token("u2", None, 1)));
    }

    #[test]
    fn merging_keeps_the_latest_revocation_whatever_the_order() {
        let index = RevocationIndex::new();
        index.apply(&session("s1", 200));
        index.apply(&session("s1", 100));
        index.apply(&session("s1", 200));
        assert!(index.refuses(&token("u1", Some("s1"), 150)));
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn a_disabled_account_refuses_everything_until_a_newer_enable() {
        let index = RevocationIndex::new();
        index.apply(&account("u1", AccountState::Disabled, 100));
        assert!(index.refuses(&token("u1", None, 10_000)));
        // A stale enable (signed before the disable) changes nothing.
        index.apply(&account("u1", AccountState::Enabled, 99));
        assert!(index.refuses(&token("u1", None, 10_000)));
        index.apply(&account("u1", AccountState::Enabled, 100));
        assert!(!index.refuses(&token("u1", None, 10_000)));
        // Nor can a stale disable undo the enable.
        index.apply(&account("u1", AccountState::Disabled, 50));
        assert!(!index.refuses(&token("u1", None, 10_000)));
    }

    #[test]
    fn pruning_drops_expired_entries_but_never_a_disabled_account() {
        let index = RevocationIndex::new();
        index.apply(&session("s1", 100)); // expires at 1100
        index.apply(&account("u1", AccountState::Disabled, 100));
        index.apply(&account("u2", AccountState::Enabled, 100)); // expires at 400
        assert_eq!(index.prune(1100), 1);
        assert_eq!(index.prune(1101), 1);
        assert_eq!(index.len(), 1);
        assert_eq!(index.prune(i64::MAX), 0);
        assert!(index.refuses(&token("u1", None, 5)));
    }
}
