//! The first-party JSON API's sign-ins: a password check starts a [`UserSessions`]
//! session and returns an access token for the resource server, a refresh token that
//! keeps the session going, and a CSRF token for calls authenticated by the refresh
//! cookie. Access tokens carry the session's id as `sid`, so the session API knows which
//! session a token speaks for, and how the user signed in (`auth_time`, `acr`, `amr`).
//!
//! An account with two-step sign-in gets no tokens for its password: [`LoginOutcome`]
//! is then a challenge (`mfa_token`: 256 random bits, stored hashed, five minutes,
//! single use; a newer one replaces it) that [`ApiSessions::complete_login`] trades,
//! with a code, for the session.

use std::net::IpAddr;

use anyhow::Context;
use service_kit::clock::Clock;

use crate::accounts::amr::Amr;
use crate::accounts::store as users;
use crate::accounts::tokens::{self, NewToken, Purpose};
use crate::accounts::{Accounts, LoginError};
use crate::factors::{Actor, CheckError, Factors, SecondFactor};
use crate::guards::secrets::{self, Secret};
use crate::keys::signing::{AccessGrant, IssuedToken, SignIn, TokenIssuer};
use crate::sessions::device::Device;
use crate::sessions::records::{RefreshError, SessionKind, UserSessions};
use crate::sessions::store::SessionRow;

/// `client_id` of tokens from the first-party JSON login.
pub const FIRST_PARTY_CLIENT_ID: &str = "first-party";
/// Scopes of first-party tokens: the user's own profile at the resource server.
pub const FIRST_PARTY_SCOPE: &str = "users:read users:write";

/// How long an `mfa_token` waits for its second factor.
pub const CHALLENGE_TTL_SECS: i64 = 300;

/// What a right password leads to.
pub enum LoginOutcome {
    Tokens(Box<SessionTokens>),
    /// The account has a second factor: no tokens before it. `methods`: what
    /// `complete_login` takes for this account (`totp`, `recovery_code`); passkeys
    /// need a browser, so the JSON API does not offer them.
    SecondFactorRequired {
        mfa_token: Secret,
        methods: Vec<&'static str>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SecondStepError {
    /// Unknown, used, replaced or expired `mfa_token`.
    #[error("the mfa_token does not work")]
    InvalidChallenge,
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

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
    factors: Factors,
    clock: Clock,
    sessions: UserSessions,
    tokens: TokenIssuer,
    pool: sqlx::AnyPool,
    audience: String,
    access_token_ttl_secs: u64,
}

impl ApiSessions {
    pub fn new(
        (accounts, factors): (Accounts, Factors),
        sessions: UserSessions,
        tokens: TokenIssuer,
        pool: sqlx::AnyPool,
        clock: Clock,
        audience: String,
        access_token_ttl_secs: u64,
    ) -> Self {
        Self {
            accounts,
            factors,
            clock,
            sessions,
            tokens,
            pool,
            audience,
            access_token_ttl_secs,
        }
    }

    /// A password check, then a new session and its tokens, or the challenge of the
    /// second step.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: String,
        ip: Option<IpAddr>,
        device: &Device,
    ) -> Result<LoginOutcome, LoginError> {
        let user = self
            .accounts
            .authenticate(email, password, ip, device)
            .await?;
        if self.factors.required(&user.id).await? {
            let mfa_token = Secret::generate();
            let now = self.clock.now().timestamp();
            let challenge = NewToken {
                token_hash: &mfa_token.hash(),
                user_id: &user.id,
                purpose: Purpose::SignInChallenge,
                email: &user.email,
                now,
                expires_at: now + CHALLENGE_TTL_SECS,
            };
            let mut conn = self.pool.acquire().await.context("No connection")?;
            tokens::replace(&mut conn, &challenge).await?;
            let overview = self.factors.overview(&user.id).await?;
            let apps = !overview.authenticators.is_empty();
            let methods = [("totp", apps), ("recovery_code", true)]
                .into_iter()
                .filter_map(|(method, has)| has.then_some(method))
                .collect();
            return Ok(LoginOutcome::SecondFactorRequired { mfa_token, methods });
        }
        let tokens = self
            .start(&user.id, &user.email, ip, device, &Amr::password())
            .await?;
        Ok(LoginOutcome::Tokens(Box::new(tokens)))
    }

    /// The second step: a code for the challenge `mfa_token`, then the session.
    #[tracing::instrument(skip_all)]
    pub async fn complete_login(
        &self,
        mfa_token: &str,
        code: &str,
        ip: Option<IpAddr>,
        device: &Device,
    ) -> Result<SessionTokens, SecondStepError> {
        let hash = secrets::hash(mfa_token);
        let now = self.clock.now().timestamp();
        let purpose = Purpose::SignInChallenge;
        let Some(challenge) = tokens::find_live(&self.pool, &hash, purpose, now).await? else {
            return Err(SecondStepError::InvalidChallenge);
        };
        let actor = Actor {
            user_id: &challenge.user_id,
            ip,
            device,
        };
        let factor = self.factors.check(&actor, &challenge.email, code).await?;
        if !tokens::spend(&self.pool, &hash, purpose, now).await? {
            // A rival request with the same challenge won.
            return Err(SecondStepError::InvalidChallenge);
        }
        let amr = match factor {
            SecondFactor::Totp | SecondFactor::RecoveryCode => Amr::password_and_code(),
            SecondFactor::Passkey => Amr::password_and_passkey(),
        };
        Ok(self
            .start(&challenge.user_id, &challenge.email, ip, device, &amr)
            .await?)
    }

    async fn start(
        &self,
        user_id: &str,
        email: &str,
        ip: Option<IpAddr>,
        device: &Device,
        amr: &Amr,
    ) -> anyhow::Result<SessionTokens> {
        let started = self
            .sessions
            .start(user_id, SessionKind::Api, device, ip, amr)
            .await?;
        let (Some(refresh_token), Some(csrf_token)) = (started.refresh_token, started.csrf_token)
        else {
            anyhow::bail!("An API session came without its tokens");
        };
        let access = self
            .access_token(&started.session, Some(email.to_owned()))
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
        let amr = Amr::parse(&session.amr);
        self.tokens
            .access_token(AccessGrant {
                subject: session.user_id.clone(),
                audience: self.audience.clone(),
                client_id: FIRST_PARTY_CLIENT_ID.to_owned(),
                scope: FIRST_PARTY_SCOPE.to_owned(),
                email,
                session_id: Some(session.id.clone()),
                sign_in: Some(SignIn {
                    auth_time: session.created_at,
                    acr: amr.acr(),
                    amr: amr.values().to_vec(),
                }),
                lifetime_secs: self.access_token_ttl_secs,
            })
            .await
    }
}
