//! The first-party JSON API's sign-ins: a password check starts a [`UserSessions`]
//! session and returns an access token for the resource server, a refresh token that
//! keeps the session going, and a CSRF token for calls authenticated by the refresh
//! cookie. Access tokens carry the session's id as `sid`, so the session API knows which
//! session a token speaks for.

use std::net::IpAddr;

use crate::accounts::store as users;
use crate::accounts::{Accounts, LoginError};
use crate::guards::secrets::{self, Secret};
use crate::keys::signing::{AccessGrant, IssuedToken, TokenIssuer};
use crate::sessions::device::Device;
use crate::sessions::records::{RefreshError, SessionKind, UserSessions};
use crate::sessions::store::SessionRow;

/// `client_id` of tokens from the first-party JSON login.
pub const FIRST_PARTY_CLIENT_ID: &str = "first-party";
/// Scopes of first-party tokens: the user's own profile at the resource server.
pub const FIRST_PARTY_SCOPE: &str = "users:read users:write";

/// What a login or a refresh hands out.
pub struct SessionTokens {
    pub access: IssuedToken,
    pub refresh_token: Secret,
    /// A fresh CSRF token for cookie-authenticated calls (the previous one stops
    /// working on refresh).
    pub csrf_token: String,
    pub session: SessionRow,
}

#[derive(Clone)]
pub struct ApiSessions {
    accounts: Accounts,
    sessions: UserSessions,
    tokens: TokenIssuer,
    pool: sqlx::AnyPool,
    audience: String,
    access_token_ttl_secs: u64,
}

impl ApiSessions {
    pub fn new(
        accounts: Accounts,
        sessions: UserSessions,
        tokens: TokenIssuer,
        pool: sqlx::AnyPool,
        audience: String,
        access_token_ttl_secs: u64,
    ) -> Self {
        Self {
            accounts,
            sessions,
            tokens,
            pool,
            audience,
            access_token_ttl_secs,
        }
    }

    /// A password check, then a new session and its tokens.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: String,
        ip: Option<IpAddr>,
        device: &Device,
    ) -> Result<SessionTokens, LoginError> {
        let user = self
            .accounts
            .authenticate(email, password, ip, device)
            .await?;
        let started = self
            .sessions
            .start(&user.id, SessionKind::Api, device, ip)
            .await?;
        let (Some(refresh_token), Some(csrf_token)) = (started.refresh_token, started.csrf_token)
        else {
            return Err(anyhow::anyhow!("An API session came without its tokens").into());
        };
        let access = self
            .access_token(&started.session, Some(user.email))
            .await?;
        Ok(SessionTokens {
            access,
            refresh_token,
            csrf_token,
            session: started.session,
        })
    }

    /// Rotates a refresh token: new access, refresh and CSRF tokens for its session.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(
        &self,
        presented: &Secret,
        csrf: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<SessionTokens, RefreshError> {
        let (session, refresh_token) = self.sessions.refresh(presented, csrf, ip).await?;
        let csrf_token = secrets::random_token(32);
        self.sessions.set_csrf(&session.id, &csrf_token).await?;
        let email = users::find_by_id(&self.pool, &session.user_id)
            .await?
            .map(|u| u.email);
        let access = self.access_token(&session, email).await?;
        Ok(SessionTokens {
            access,
            refresh_token,
            csrf_token,
            session,
        })
    }

    async fn access_token(
        &self,
        session: &SessionRow,
        email: Option<String>,
    ) -> anyhow::Result<IssuedToken> {
        self.tokens
            .access_token(AccessGrant {
                subject: session.user_id.clone(),
                audience: self.audience.clone(),
                client_id: FIRST_PARTY_CLIENT_ID.to_owned(),
                scope: FIRST_PARTY_SCOPE.to_owned(),
                email,
                session_id: Some(session.id.clone()),
                lifetime_secs: self.access_token_ttl_secs,
            })
            .await
    }
}
