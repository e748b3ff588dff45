//! ID tokens (OIDC Core §2, §3.1.3.6, §5.4, §12.2): which claims an ID token carries,
//! and nothing that was not asked for. Signing is the [`TokenIssuer`]'s.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::accounts::amr::Amr;
use crate::keys::signing::{ID_TOKEN_TYPE, TokenIssuer};
use crate::oauth::Scope;

/// What the user agreed to release about themselves (OIDC Core §5.4).
pub struct UserClaims<'a> {
    pub email: &'a str,
    pub email_verified: bool,
    pub name: Option<&'a str>,
    /// When the profile claims last changed, Unix seconds.
    pub updated_at: i64,
}

/// Everything an ID token says, before `iss` and the signature.
pub struct IdTokenRequest<'a> {
    pub subject: &'a str,
    /// The client: the only audience, so no `azp` is needed (§2).
    pub client_id: &'a str,
    pub auth_time: i64,
    /// How the user signed in (`amr`, and the `acr` it reaches).
    pub amr: &'a Amr,
    /// Only on the token response to an authorization code (§3.1.3.6); never on
    /// refresh (§12.2 and the errata: a refresh is not an authentication request).
    pub nonce: Option<&'a str>,
    /// The browser session the user signed in with (Front/Back-Channel Logout §2).
    pub session_id: Option<&'a str>,
    /// The access token issued alongside, for `at_hash` (§3.1.3.6).
    pub access_token: &'a str,
    pub scope: &'a Scope,
    pub user: UserClaims<'a>,
    pub issued_at: i64,
    pub lifetime_secs: u64,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    acr: &'a str,
    amr: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<i64>,
}

/// The claims `scope` releases about the user (§5.4): `email` and `email_verified` with
/// `email`, and `email_verified` (whether a verification link for the current address was
/// opened); with `profile`, `name` when the user has one and `updated_at` always.
pub struct ReleasedClaims<'a> {
    pub email: Option<&'a str>,
    pub email_verified: Option<bool>,
    pub name: Option<&'a str>,
    pub updated_at: Option<i64>,
}

pub fn released<'a>(scope: &Scope, user: &UserClaims<'a>) -> ReleasedClaims<'a> {
    let email = scope.contains("email");
    let profile = scope.contains("profile");
    ReleasedClaims {
        email: email.then_some(user.email),
        email_verified: email.then_some(user.email_verified),
        name: user.name.filter(|_| profile),
        updated_at: profile.then_some(user.updated_at),
    }
}

/// `at_hash` for RS256 (§3.1.3.6): base64url of the left half of SHA-256 of the ASCII
/// access token.
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

pub async fn issue(tokens: &TokenIssuer, request: IdTokenRequest<'_>) -> anyhow::Result<String> {
    let lifetime = i64::try_from(request.lifetime_secs).context("ID token lifetime overflows")?;
    let released = released(request.scope, &request.user);
    let claims = Claims {
        iss: tokens.issuer(),
        sub: request.subject,
        aud: request.client_id,
        exp: request.issued_at + lifetime,
        iat: request.issued_at,
        auth_time: request.auth_time,
        acr: request.amr.acr(),
        amr: request.amr.values(),
        nonce: request.nonce,
        at_hash: at_hash(request.access_token),
        sid: request.session_id,
        email: released.email,
        email_verified: released.email_verified,
        name: released.name,
        updated_at: released.updated_at,
    };
    let serde_json::Value::Object(map) = serde_json::to_value(claims)? else {
        anyhow::bail!("ID token claims did not serialise to an object");
    };
    tokens.sign(ID_TOKEN_TYPE, map).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_core_example() {
        // OIDC Core, Appendix A.3 (RS256 access token and its at_hash).
        let access_token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(at_hash(access_token), "77QmUPtjPfzWtF2AnpK9RQ");
    }

    #[test]
    fn claims_follow_the_scope() {
        let user = UserClaims {
            email: "a@b.com",
            email_verified: true,
            name: Some("Ada"),
            updated_at: 1_795_422_600,
        };
        let none = released(&Scope::parse("openid").unwrap(), &user);
        assert!(none.email.is_none() && none.email_verified.is_none() && none.name.is_none());
        assert!(none.updated_at.is_none());
        let all = released(&Scope::parse("openid email profile").unwrap(), &user);
        assert_eq!(all.email, Some("a@b.com"));
        assert_eq!(all.email_verified, Some(true));
        assert_eq!(all.name, Some("Ada"));
        assert_eq!(all.updated_at, Some(1_795_422_600));
        let nameless = UserClaims {
            email: "a@b.com",
            email_verified: false,
            name: None,
            updated_at: 1_795_422_600,
        };
        let profile = released(&Scope::parse("openid profile").unwrap(), &nameless);
        assert!(profile.name.is_none());
        assert_eq!(profile.updated_at, Some(1_795_422_600));
    }
}
