//! The validation pipeline of an access token, in the order RFC 8725 and RFC 9068 §4
//! ask for: shape and header, key by `kid`, RS256 signature, then the claims (`iss`
//! exact, `aud` contains us, `exp`/`nbf`/`iat` with a small leeway), and last whether
//! the issuer has revoked it since ([`RevocationIndex`]).
//!
//! A client sends the same token with every request until it expires, and the RSA
//! verification and claims parsing are most of what checking it costs. So the
//! validator remembers tokens it has verified, keyed by the SHA-256 of the token (the
//! token itself is never kept), in a bounded cache. A remembered token skips only the
//! work whose outcome cannot change for the same bytes (header rules, signature,
//! parsing): its key must still be the very key the JWKS cache holds for its `kid` (a
//! refetch that drops or replaces the key ends the entry, and an expired key set fails
//! as it would uncached), and the time claims and the revocations are checked on every
//! request, so a token is never accepted past its `exp`, nor once revoked.

use std::sync::Arc;
use std::time::Duration;

use josekit::jws::alg::rsassa::RsassaJwsVerifier;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::jwks::KeyLookupError;
use crate::revocation::RevocationIndex;
use crate::{AccessTokenClaims, JwksCache, TokenError, jws};

/// Verified tokens remembered at most (about 1 KiB each).
pub const DEFAULT_CACHE_CAPACITY: u64 = 10_000;
/// An entry is dropped this long after it was verified, whatever its `exp` (which is
/// checked on every use anyway); a token still in use is simply verified again.
const CACHE_TIME_TO_LIVE: Duration = Duration::from_secs(600);

/// A token verified once: its claims and the key that verified its signature.
struct Verified {
    claims: AccessTokenClaims,
    kid: String,
    key: Arc<RsassaJwsVerifier>,
}

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
    /// Empty unless the service receives security events.
    revocations: RevocationIndex,
}

struct Inner {
    config: ValidationConfig,
    keys: JwksCache,
    clock: Clock,
    /// Verified tokens by the SHA-256 of their bytes.
    verified: moka::sync::Cache<[u8; 32], Arc<Verified>>,
}

impl TokenValidator {
    /// A validator remembering up to [`DEFAULT_CACHE_CAPACITY`] verified tokens.
    pub fn new(config: ValidationConfig, keys: JwksCache, clock: Clock) -> Self {
        Self::with_cache_capacity(config, keys, clock, DEFAULT_CACHE_CAPACITY)
    }

    /// A validator remembering up to `capacity` verified tokens (0: none; every token is
    /// verified on every request).
    pub fn with_cache_capacity(
        config: ValidationConfig,
        keys: JwksCache,
        clock: Clock,
        capacity: u64,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                keys,
                clock,
                verified: moka::sync::Cache::builder()
                    .max_capacity(capacity)
                    .time_to_live(CACHE_TIME_TO_LIVE)
                    .build(),
            }),
            revocations: RevocationIndex::new(),
        }
    }

    /// This validator refusing, besides invalid tokens, those `revocations` names (the
    /// index an [`EventStore`](crate::events::EventStore) fills).
    #[must_use]
    pub fn with_revocations(mut self, revocations: RevocationIndex) -> Self {
        self.revocations = revocations;
        self
    }

    pub fn keys(&self) -> &JwksCache {
        &self.inner.keys
    }

    pub fn revocations(&self) -> &RevocationIndex {
        &self.revocations
    }

    /// The token's claims if it is a valid access token for us. `request_id` is passed
    /// on to the idp if the keys must be fetched.
    pub async fn validate(
        &self,
        token: &str,
        request_id: Option<&str>,
    ) -> Result<AccessTokenClaims, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(known) = self.inner.verified.get(&digest) {
            let key = self.key(&known.kid, request_id).await?;
            if Arc::ptr_eq(&key, &known.key) {
                self.check_claims(&known.claims)?;
                self.check_not_revoked(&known.claims)?;
                return Ok(known.claims.clone());
            }
            // The key set changed since: check the token afresh.
            self.inner.verified.invalidate(&digest);
        }
        let header = jws::parse_header(token, jws::ACCESS_TOKEN_TYPE)?;
        let key = self.key(&header.kid, request_id).await?;
        // josekit checks again that the header's alg is the verifier's (RS256) and that
        // the kids match, then verifies the signature.
        let (payload, _header) =
            josekit::jwt::decode_with_verifier(token, key.as_ref()).map_err(|e| match e {
                josekit::JoseError::InvalidSignature(_) => TokenError::BadSignature,
                other => TokenError::MalformedClaims(other.to_string()),
            })?;
        let claims = AccessTokenClaims::parse(payload.claims_set().clone())?;
        self.check_claims(&claims)?;
        self.check_not_revoked(&claims)?;
        self.inner.verified.insert(
            digest,
            Arc::new(Verified {
                claims: claims.clone(),
                kid: header.kid,
                key,
            }),
        );
        Ok(claims)
    }

    /// The key the JWKS cache holds for `kid` now (fetching as its rules allow).
    async fn key(
        &self,
        kid: &str,
        request_id: Option<&str>,
    ) -> Result<Arc<RsassaJwsVerifier>, TokenError> {
        self.inner
            .keys
            .verifier(kid, request_id)
            .await
            .map_err(|e| match e {
                KeyLookupError::UnknownKid => TokenError::UnknownKey,
                KeyLookupError::Unavailable => TokenError::KeysUnavailable,
            })
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

    fn check_not_revoked(&self, claims: &AccessTokenClaims) -> Result<(), TokenError> {
        if self.revocations.refuses(claims) {
            return Err(TokenError::Revoked);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::JwksConfig;
    use crate::test_issuer::{Issuer, Key, issuer};

    fn validator(issuer: &Issuer, clock: &Clock) -> TokenValidator {
        let keys = JwksCache::new(
            JwksConfig {
                refetch_cooldown: Duration::ZERO,
                ..JwksConfig::new(&issuer.url)
            },
            clock.clone(),
        )
        .unwrap();
        TokenValidator::new(
            ValidationConfig {
                issuer: issuer.url.clone(),
                audience: "api".to_owned(),
                leeway: Duration::from_secs(30),
            },
            keys,
            clock.clone(),
        )
    }

    #[tokio::test]
    async fn a_remembered_token_is_refused_once_it_expires() {
        let issuer = issuer().await;
        let key = Key::new("k1");
        *issuer.jwks.lock().unwrap() = json!({"keys": [key.public()]});
        // A clock this test moves forward.
        let offset = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let clock = {
            let offset = offset.clone();
            Clock::from_fn(move || {
                chrono::Utc::now()
                    + chrono::Duration::seconds(offset.load(std::sync::atomic::Ordering::Relaxed))
            })
        };
        let validator = validator(&issuer, &clock);
        let exp = chrono::Utc::now().timestamp() + 600;
        let token = key.sign(&issuer.url, exp);

        assert_eq!(
            validator.validate(&token, None).await.unwrap().subject,
            "user"
        );
        // Remembered now; a second check answers the same.
        assert_eq!(
            validator.validate(&token, None).await.unwrap().expires_at,
            exp
        );
        // Past exp and the leeway, the remembered token fails like any other.
        offset.store(600 + 31, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(
            validator.validate(&token, None).await,
            Err(TokenError::Expired)
        ));
    }

    #[tokio::test]
    async fn a_remembered_token_is_refused_once_revoked() {
        let issuer = issuer().await;
        let key = Key::new("k1");
        *issuer.jwks.lock().unwrap() = json!({"keys": [key.public()]});
        let clock = Clock::system();
        let revocations = RevocationIndex::new();
        let validator = validator(&issuer, &clock).with_revocations(revocations.clone());
        let now = chrono::Utc::now().timestamp();
        let token = key.sign(&issuer.url, now + 600);
        validator.validate(&token, None).await.unwrap();

        revocations.apply(&crate::revocation::Revocation::Subject {
            subject: "user".into(),
            before: now + 1,
            expires_at: now + 1000,
        });
        // The token is remembered, and refused all the same.
        assert!(matches!(
            validator.validate(&token, None).await,
            Err(TokenError::Revoked)
        ));
        validator.inner.verified.invalidate_all();
        assert!(matches!(
            validator.validate(&token, None).await,
            Err(TokenError::Revoked)
        ));
    }

    #[tokio::test]
    async fn a_remembered_token_is_refused_once_its_key_leaves_the_jwks() {
        let issuer = issuer().await;
        let (old, new) = (Key::new("old"), Key::new("new"));
        *issuer.jwks.lock().unwrap() = json!({"keys": [old.public()]});
        let clock = Clock::system();
        let validator = validator(&issuer, &clock);
        let exp = chrono::Utc::now().timestamp() + 600;
        let old_token = old.sign(&issuer.url, exp);
        validator.validate(&old_token, None).await.unwrap();

        // The issuer drops the old key; a token with the new kid makes us refetch.
        *issuer.jwks.lock().unwrap() = json!({"keys": [new.public()]});
        validator
            .validate(&new.sign(&issuer.url, exp), None)
            .await
            .unwrap();
        assert!(matches!(
            validator.validate(&old_token, None).await,
            Err(TokenError::UnknownKey)
        ));
    }

    #[tokio::test]
    async fn only_valid_tokens_are_remembered_and_tampered_ones_still_fail() {
        let issuer = issuer().await;
        let key = Key::new("k1");
        *issuer.jwks.lock().unwrap() = json!({"keys": [key.public()]});
        let clock = Clock::system();
        let validator = validator(&issuer, &clock);
        let token = key.sign(&issuer.url, chrono::Utc::now().timestamp() + 600);
        validator.validate(&token, None).await.unwrap();
        // Another token (one signature byte changed) is not the remembered one.
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(validator.validate(&tampered, None).await.is_err());
        assert!(validator.validate(&tampered, None).await.is_err());
        validator.inner.verified.run_pending_tasks();
        assert_eq!(validator.inner.verified.entry_count(), 1);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let issuer = issuer().await;
        let key = Key::new("k1");
        *issuer.jwks.lock().unwrap() = json!({"keys": [key.public()]});
        let clock = Clock::system();
        let plain = validator(&issuer, &clock);
        let validator = TokenValidator::with_cache_capacity(
            plain.inner.config.clone(),
            plain.inner.keys.clone(),
            clock.clone(),
            3,
        );
        let now = chrono::Utc::now().timestamp();
        for i in 0..10 {
            let token = key.sign(&issuer.url, now + 600 + i);
            validator.validate(&token, None).await.unwrap();
        }
        validator.inner.verified.run_pending_tasks();
        assert!(validator.inner.verified.entry_count() <= 3);
    }
}
