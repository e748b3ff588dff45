//! The validation pipeline of an access token, in the order RFC 8725 and RFC 9068 §4
//! ask for: shape and header, key by `kid`, RS256 signature, then the claims (`iss`
//! exact, `aud` contains us, `exp`/`nbf`/`iat` with a small leeway).

use std::sync::Arc;
use std::time::Duration;

use service_kit::clock::Clock;

use crate::jwks::KeyLookupError;
use crate::{AccessTokenClaims, JwksCache, TokenError, jws};

#[derive(Clone, Debug)]
pub struct ValidationConfig {
    /// `iss` must equal this string exactly.
    pub issuer: String,
    /// `aud` must contain this string.
    pub audience: String,
    /// Tolerance for clock skew between the idp and us.
    pub leeway: Duration,
}

/// Validates access tokens offline. Cheap to clone.
#[derive(Clone)]
pub struct TokenValidator {
    inner: Arc<Inner>,
}

struct Inner {
    config: ValidationConfig,
    keys: JwksCache,
    clock: Clock,
}

impl TokenValidator {
    pub fn new(config: ValidationConfig, keys: JwksCache, clock: Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                keys,
                clock,
            }),
        }
    }

    pub fn keys(&self) -> &JwksCache {
        &self.inner.keys
    }

    /// The token's claims if it is a valid access token for us. `request_id` is passed
    /// on to the idp if the keys must be fetched.
    pub async fn validate(
        &self,
        token: &str,
        request_id: Option<&str>,
    ) -> Result<AccessTokenClaims, TokenError> {
        let header = jws::parse_header(token)?;
        let verifier = self
            .inner
            .keys
            .verifier(&header.kid, request_id)
            .await
            .map_err(|e| match e {
                KeyLookupError::UnknownKid => TokenError::UnknownKey,
                KeyLookupError::Unavailable => TokenError::KeysUnavailable,
            })?;
        // josekit checks again that the header's alg is the verifier's (RS256) and that
        // the kids match, then verifies the signature.
        let (payload, _header) = josekit::jwt::decode_with_verifier(token, verifier.as_ref())
            .map_err(|e| match e {
                josekit::JoseError::InvalidSignature(_) => TokenError::BadSignature,
                other => TokenError::MalformedClaims(other.to_string()),
            })?;
        let claims = AccessTokenClaims::parse(payload.claims_set().clone())?;
        self.check_claims(&claims)?;
        Ok(claims)
    }

    fn check_claims(&self, claims: &AccessTokenClaims) -> Result<(), TokenError> {
        let config = &self.inner.config;
        if claims.issuer != config.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if !claims.audience.contains(&config.audience) {
            return Err(TokenError::WrongAudience);
        }
        let now = self.inner.clock.now().timestamp();
        let leeway = i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX);
        // RFC 7519 §4.1.4: the current time must be before exp.
        if now >= claims.expires_at.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        if claims
            .not_before
            .is_some_and(|nbf| now.saturating_add(leeway) < nbf)
        {
            return Err(TokenError::NotYetValid);
        }
        if now.saturating_add(leeway) < claims.issued_at {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(())
    }
}
