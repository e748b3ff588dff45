//! Server-side state, in memory: sign-ins in progress (keyed by their `state`) and
//! signed-in sessions (keyed by a random id in a cookie). A real app would use its
//! session store; the shape stays the same. Each session keeps the `sid` and `sub` of
//! its ID token, which is how a back-channel logout finds it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use openidconnect::{AccessToken, Nonce, PkceCodeVerifier};

use crate::IdToken;
use crate::backchannel::LoggedOut;

/// How long a user may take between "Sign in" and coming back to /callback.
const PENDING_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// What /login remembers for /callback.
pub struct PendingLogin {
    pub pkce_verifier: PkceCodeVerifier,
    pub nonce: Nonce,
    created: Instant,
}

/// A signed-in user: the verified ID token, its claims for display, the access token.
pub struct Session {
    pub id_token: IdToken,
    /// The ID token's `sub`.
    pub subject: String,
    /// The ID token's `sid`: the provider's session this one was made in.
    pub provider_session: Option<String>,
    pub claims_json: String,
    pub access_token: AccessToken,
}

#[derive(Clone, Default)]
pub struct Store {
    pending: Arc<Mutex<HashMap<String, PendingLogin>>>,
    sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>,
}

impl Store {
    pub fn begin_login(&self, state: String, pkce_verifier: PkceCodeVerifier, nonce: Nonce) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.retain(|_, p| p.created.elapsed() < PENDING_LIFETIME);
        pending.insert(
            state,
            PendingLogin {
                pkce_verifier,
                nonce,
                created: Instant::now(),
            },
        );
    }

    /// Removes and returns the sign-in started with `state`: each can finish only once.
    pub fn finish_login(&self, state: &str) -> Option<PendingLogin> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending
            .remove(state)
            .filter(|p| p.created.elapsed() < PENDING_LIFETIME)
    }

    pub fn insert_session(&self, id: String, session: Session) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::new(session));
    }

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    pub fn remove_session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
    }

    /// Ends the sessions a back-channel logout names; how many there were. A scan: an
    /// in-memory demo holds few sessions, and a real store would index `sid` and `sub`.
    pub fn end_sessions(&self, logged_out: &LoggedOut) -> usize {
        let ends = |session: &Session| match logged_out {
            LoggedOut::Session { sid, sub } => {
                session.provider_session.as_deref() == Some(sid.as_str())
                    && sub.as_ref().is_none_or(|sub| *sub == session.subject)
            }
            LoggedOut::User { sub } => session.subject == *sub,
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let before = sessions.len();
        sessions.retain(|_, session| !ends(session));
        before - sessions.len()
    }
}
