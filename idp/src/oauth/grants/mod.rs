//! The token endpoint's grants, one module each (RFC 6749 §4.1.3, §6, §4.4), and the
//! token response they share (§5.1). No HTTP here: the route authenticates the client
//! and parses the form; a grant gets an authenticated [`Client`] and a typed request.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use service_kit::clock::Clock;
use sqlx::AnyPool;

use crate::accounts::amr::Amr;
use crate::accounts::store as users;
use crate::guards::secrets::Secret;
use crate::keys::signing::{AccessGrant, SignIn, TokenIssuer};
use crate::oauth::clients::{Client, GrantType};
use crate::oauth::id_token::{self, IdTokenRequest, UserClaims};
use crate::oauth::store::access_tokens;
use crate::oauth::store::grants::GrantRecord;
use crate::oauth::{ErrorCode, OAuthError, Scope};

/// A token request, parsed: which grant, with its own parameters.
#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode(authorization_code::Request),
    RefreshToken(refresh_token::Request),
    ClientCredentials(client_credentials::Request),
}

impl TokenRequest {
    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode(_) => GrantType::AuthorizationCode,
            Self::RefreshToken(_) => GrantType::RefreshToken,
            Self::ClientCredentials(_) => GrantType::ClientCredentials,
        }
    }
}

/// RFC 6749 §5.1 (and OIDC Core §3.1.3.3 for `id_token`).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The request is refused with this OAuth error.
    #[error(transparent)]
    Rejected(#[from] OAuthError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl TokenError {
    fn invalid_grant(description: &'static str) -> Self {
        Self::Rejected(OAuthError::new(ErrorCode::InvalidGrant, description))
    }

    fn invalid_scope(description: &'static str) -> Self {
        Self::Rejected(OAuthError::new(ErrorCode::InvalidScope, description))
    }
}

/// The audience and lifetimes of what the token endpoint issues.
#[derive(Clone, Debug)]
pub struct TokenPolicy {
    /// `aud` of access tokens.
    pub audience: String,
    pub access_token_ttl_secs: u64,
    pub id_token_ttl_secs: u64,
    /// A refresh token unused this long expires.
    pub refresh_token_idle_ttl_secs: u64,
    /// A grant's refresh tokens end this long after sign-in, however often used.
    pub refresh_token_absolute_ttl_secs: u64,
}

/// Issues tokens for the token endpoint.
#[derive(Clone)]
pub struct TokenService {
    pool: AnyPool,
    tokens: TokenIssuer,
    policy: Arc<TokenPolicy>,
    clock: Clock,
}

impl TokenService {
    pub fn new(pool: AnyPool, tokens: TokenIssuer, policy: TokenPolicy, clock: Clock) -> Self {
        Self {
            pool,
            tokens,
            policy: Arc::new(policy),
            clock,
        }
    }

    /// Exchanges a grant for tokens on behalf of an authenticated client.
    #[tracing::instrument(skip_all, fields(client_id = %client.id, grant_type = request.grant_type().as_str()))]
    pub async fn exchange(
        &self,
        client: &Client,
        request: TokenRequest,
    ) -> Result<TokenResponse, TokenError> {
        // RFC 6749 §5.2: a grant type the client is not registered for.
        if !client.allows_grant(request.grant_type()) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "The client is not allowed to use this grant type",
            )
            .into());
        }
        let response = match request {
            TokenRequest::AuthorizationCode(r) => {
                authorization_code::exchange(self, client, r).await
            }
            TokenRequest::RefreshToken(r) => refresh_token::exchange(self, client, r).await,
            TokenRequest::ClientCredentials(r) => {
                client_credentials::exchange(self, client, r).await
            }
        };
        match &response {
            Ok(_) => tracing::info!(outcome = "success", "Tokens issued"),
            Err(TokenError::Rejected(e)) => {
                tracing::info!(
                    outcome = "failure",
                    error = e.code.as_str(),
                    "Token request refused"
                );
            }
            Err(TokenError::Unexpected(_)) => {}
        }
        response
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    /// The end of a refresh token issued now, idle expiry capped by the family's end.
    fn refresh_expiry(&self, now: i64, absolute_expires_at: i64) -> anyhow::Result<i64> {
        let idle = i64::try_from(self.policy.refresh_token_idle_ttl_secs)
            .context("Refresh token lifetime overflows")?;
        Ok((now + idle).min(absolute_expires_at))
    }

    /// The access token (recorded against the grant, so userinfo and introspection can
    /// refuse it once the grant is revoked) and, with `openid`, the ID token of a user
    /// grant; `refresh_token` was already stored by the caller.
    async fn issue_for_user(
        &self,
        grant: &GrantRecord,
        client: &Client,
        scope: &Scope,
        nonce: Option<&str>,
        refresh_token: Option<Secret>,
    ) -> Result<TokenResponse, TokenError> {
        let Some(user) = users::find_by_id(&self.pool, &grant.user_id).await? else {
            // The account was deleted after the grant was made.
            return Err(TokenError::invalid_grant("The grant is no longer valid"));
        };
        let amr = Amr::parse(&grant.amr);
        let access = self
            .tokens
            .access_token(AccessGrant {
                subject: user.id.clone(),
                audience: self.policy.audience.clone(),
                client_id: client.id.to_string(),
                scope: scope.to_string(),
                email: scope.contains("email").then(|| user.email.clone()),
                session_id: None,
                sign_in: Some(SignIn {
                    auth_time: grant.auth_time,
                    acr: amr.acr(),
                    amr: amr.values().to_vec(),
                }),
                lifetime_secs: self.policy.access_token_ttl_secs,
            })
            .await?;
        access_tokens::insert(
            &self.pool,
            &access.jti,
            Some(&grant.id),
            client.id.as_ref(),
            access.expires_at,
        )
        .await?;
        let id_token = if scope.contains(Scope::OPENID) {
            Some(
                id_token::issue(
                    &self.tokens,
                    IdTokenRequest {
                        subject: &user.id,
                        client_id: client.id.as_ref(),
                        auth_time: grant.auth_time,
                        amr: &amr,
                        nonce,
                        session_id: grant.session_id.as_deref(),
                        access_token: &access.token,
                        scope,
                        user: UserClaims {
                            email: &user.email,
                            email_verified: user.email_verified,
                            name: user.name.as_deref(),
                            updated_at: user.profile_updated_at,
                        },
                        issued_at: self.now(),
                        lifetime_secs: self.policy.id_token_ttl_secs,
                    },
                )
                .await?,
            )
        } else {
            None
        };
        Ok(TokenResponse {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: access.expires_in,
            scope: scope.to_string(),
            id_token,
            refresh_token: refresh_token.map(|t| t.expose().to_owned()),
        })
    }
}
