//! The client credentials grant (RFC 6749 §4.4): a confidential client acting for
//! itself. There is no user, so no ID token, no refresh token (§4.4.3) and no OpenID
//! Connect scope; the token's `sub` is the client id, which can never equal a user's
//! (client ids start with `c_` and are never UUIDs). Nothing is written to the database:
//! this path is the hot one for service-to-service calls.

use super::{TokenError, TokenResponse, TokenService};
use crate::keys::signing::AccessGrant;
use crate::oauth::clients::{Client, ClientType};
use crate::oauth::{ErrorCode, OAuthError, Scope};

/// Scopes about a user, meaningless without one.
const USER_SCOPES: &str = "openid profile email";

#[derive(Debug)]
pub struct Request {
    /// `None` asks for everything the client may have except the user scopes.
    pub scope: Option<Scope>,
}

pub(super) async fn exchange(
    service: &TokenService,
    client: &Client,
    request: Request,
) -> Result<TokenResponse, TokenError> {
    if client.client_type != ClientType::Confidential {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "Only confidential clients may use client_credentials",
        )
        .into());
    }
    let scope = granted_scope(&client.allowed_scope, request.scope)?;
    let access = service
        .tokens
        .access_token(AccessGrant {
            subject: client.id.to_string(),
            audience: service.policy.audience.clone(),
            client_id: client.id.to_string(),
            scope: scope.to_string(),
            email: None,
            session_id: None,
            sign_in: None,
            lifetime_secs: service.policy.access_token_ttl_secs,
        })
        .await?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        scope: scope.to_string(),
        id_token: None,
        refresh_token: None,
    })
}

/// RFC 6749 §3.3: the asked scope within the client's allowance, or its default.
fn granted_scope(allowed: &Scope, asked: Option<Scope>) -> Result<Scope, TokenError> {
    let user_scopes = Scope::parse(USER_SCOPES).map_err(anyhow::Error::from)?;
    let scope = match asked {
        Some(asked) if !asked.is_empty() => {
            if asked.iter().any(|s| user_scopes.contains(s)) {
                return Err(TokenError::invalid_scope(
                    "OpenID Connect scopes need a user and cannot be granted to a client",
                ));
            }
            if !asked.is_subset_of(allowed) {
                return Err(TokenError::invalid_scope(
                    "The requested scope exceeds what the client is allowed",
                ));
            }
            asked
        }
        _ => allowed.difference(&user_scopes),
    };
    if scope.is_empty() {
        return Err(TokenError::invalid_scope(
            "The client is allowed no scope usable without a user",
        ));
    }
    Ok(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap()
    }

    fn refused(result: Result<Scope, TokenError>) -> bool {
        matches!(result, Err(TokenError::Rejected(e)) if e.code == ErrorCode::InvalidScope)
    }

    #[test]
    fn scopes_default_to_the_allowance_without_user_scopes_and_never_exceed_it() {
        let allowed = scope("openid email users:read users:write");
        assert_eq!(
            granted_scope(&allowed, None).unwrap(),
            scope("users:read users:write")
        );
        assert_eq!(
            granted_scope(&allowed, Some(scope("users:read"))).unwrap(),
            scope("users:read")
        );
        assert!(refused(granted_scope(&allowed, Some(scope("users:admin")))));
        assert!(refused(granted_scope(
            &allowed,
            Some(scope("openid users:read"))
        )));
        assert!(refused(granted_scope(&scope("openid profile"), None)));
    }
}
