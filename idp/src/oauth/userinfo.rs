//! The UserInfo endpoint's rules (OIDC Core §5.3): an access token of ours, from a
//! live user grant, with the `openid` scope, answers the claims its scope releases.

use serde::Serialize;
use sqlx::AnyPool;

use crate::accounts::store as users;
use crate::keys::KeyRing;
use crate::oauth::Scope;
use crate::oauth::access::{self, Standing};
use crate::oauth::id_token::{self, UserClaims};

/// OIDC Core §5.3.2: `sub` always, the rest as the scope allows.
#[derive(Debug, Serialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserInfoError {
    /// Not ours, expired, revoked, or not about a user (RFC 6750 §3.1).
    #[error("invalid access token")]
    InvalidToken,
    /// A genuine token without `openid`.
    #[error("the access token lacks the openid scope")]
    InsufficientScope,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub async fn userinfo(
    pool: &AnyPool,
    keys: &KeyRing,
    issuer: &str,
    token: &str,
    now: i64,
) -> Result<UserInfo, UserInfoError> {
    let token =
        access::verify(token, keys, issuer, now).map_err(|_| UserInfoError::InvalidToken)?;
    // Only a token issued within a live user grant: a client_credentials token (or a
    // first-party one) has no grant, a revoked or replayed one has a dead grant.
    let user_id = match access::standing(pool, &token).await? {
        Standing::UserGrant { user_id } if user_id == token.subject => user_id,
        _ => return Err(UserInfoError::InvalidToken),
    };
    if !token.scope.contains(Scope::OPENID) {
        return Err(UserInfoError::InsufficientScope);
    }
    let user = users::find_by_id(pool, &user_id)
        .await?
        .ok_or(UserInfoError::InvalidToken)?;
    let released = id_token::released(
        &token.scope,
        &UserClaims {
            email: &user.email,
            email_verified: user.email_verified,
            name: user.name.as_deref(),
            updated_at: user.profile_updated_at,
        },
    );
    Ok(UserInfo {
        sub: user.id.clone(),
        email: released.email.map(str::to_owned),
        email_verified: released.email_verified,
        name: released.name.map(str::to_owned),
        updated_at: released.updated_at,
    })
}
