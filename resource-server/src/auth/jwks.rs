//! The cache of the trusted issuer's signing keys.
//!
//! Keys come only from the `jwks_uri` of the configured issuer's discovery document
//! (OIDC Discovery §4; its `issuer` must equal ours exactly, §4.3). The cache follows
//! three rules:
//! - a fetched key set is fresh for `cache_ttl`; after that the next lookup refreshes it;
//! - **at most one fetch per `refetch_cooldown`, whatever triggers it** (stale keys or an
//!   unknown `kid`), and single-flight: concurrent lookups that need a fetch wait for the
//!   one in progress instead of starting their own. A flood of random `kid`s therefore
//!   costs at most one fetch per cooldown window;
//! - when fetches fail, the last good set keeps serving for `max_stale` beyond its
//!   freshness, then lookups fail closed. A successful fetch replaces the whole set, so a
//!   key the issuer removed stops validating.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use josekit::jwk::Jwk;
use josekit::jws::RS256;
use josekit::jws::alg::rsassa::RsassaJwsVerifier;
use serde::Deserialize;
use serde_json::Value;
use service_kit::clock::Clock;
use service_kit::http::REQUEST_ID;
use tokio::sync::{Mutex, RwLock};

/// Discovery documents and key sets larger than this are refused.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

#[derive(Clone, Debug)]
pub struct JwksConfig {
    /// The issuer exactly as configured; the discovery document lives under it.
    pub issuer: String,
    pub cache_ttl: Duration,
    pub refetch_cooldown: Duration,
    pub max_stale: Duration,
    pub fetch_timeout: Duration,
}

/// Why no key could be handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookupError {
    /// The current key set has no usable key with this `kid`.
    UnknownKid,
    /// There is no key set young enough to trust (never fetched, or too stale).
    Unavailable,
}

/// What `/health` shows about the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksStatus {
    NotFetched,
    Loaded {
        keys: usize,
        age_secs: i64,
        freshness: Freshness,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Past its freshness but still serving (the idp could not be reached).
    Stale,
    /// Too old to trust: every token fails until a fetch succeeds.
    Expired,
}

/// Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

struct Inner {
    config: JwksConfig,
    http: reqwest::Client,
    clock: Clock,
    state: RwLock<State>,
    /// Held for the duration of a fetch: the single flight.
    fetch_lock: Mutex<()>,
    fetches: AtomicU64,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    last_attempt: Option<DateTime<Utc>>,
}

struct KeySet {
    keys: HashMap<String, Arc<RsassaJwsVerifier>>,
    fetched_at: DateTime<Utc>,
}

impl JwksCache {
    pub fn new(config: JwksConfig, clock: Clock) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout)
            // The discovery document and the key set must come from where we asked.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("Failed to build the HTTP client for JWKS fetches")?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                clock,
                state: RwLock::new(State::default()),
                fetch_lock: Mutex::new(()),
                fetches: AtomicU64::new(0),
            }),
        })
    }

    /// How many fetches were attempted so far (observable for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The verifier for `kid`, refreshing the key set first when it is stale or does not
    /// know `kid` (subject to the cooldown). `request_id` is passed on to the idp.
    pub async fn verifier(
        &self,
        kid: &str,
        request_id: Option<&str>,
    ) -> Result<Arc<RsassaJwsVerifier>, KeyLookupError> {
        let config = &self.inner.config;
        {
            let state = self.inner.state.read().await;
            if let Some(keys) = &state.keys {
                if keys.freshness(self.inner.clock.now(), config) == Freshness::Fresh {
                    if let Some(key) = keys.keys.get(kid) {
                        return Ok(Arc::clone(key));
                    }
                }
            }
        }
        self.refresh_if_allowed(request_id).await;
        let state = self.inner.state.read().await;
        match &state.keys {
            Some(keys) if keys.freshness(self.inner.clock.now(), config) != Freshness::Expired => {
                keys.keys
                    .get(kid)
                    .cloned()
                    .ok_or(KeyLookupError::UnknownKid)
            }
            _ => Err(KeyLookupError::Unavailable),
        }
    }

    pub async fn status(&self) -> JwksStatus {
        let state = self.inner.state.read().await;
        match &state.keys {
            None => JwksStatus::NotFetched,
            Some(keys) => {
                let now = self.inner.clock.now();
                JwksStatus::Loaded {
                    keys: keys.keys.len(),
                    age_secs: (now - keys.fetched_at).num_seconds(),
                    freshness: keys.freshness(now, &self.inner.config),
                }
            }
        }
    }

    async fn may_fetch(&self) -> bool {
        let last_attempt = self.inner.state.read().await.last_attempt;
        last_attempt.is_none_or(|at| {
            self.inner.clock.now() - at >= chrono_duration(self.inner.config.refetch_cooldown)
        })
    }

    /// Fetches the key set unless a fetch happened within the cooldown. Lookups that
    /// arrive during a fetch queue on the lock, then find the cooldown running and use
    /// the set that fetch produced.
    async fn refresh_if_allowed(&self, request_id: Option<&str>) {
        if !self.may_fetch().await {
            return;
        }
        let _flight = self.inner.fetch_lock.lock().await;
        if !self.may_fetch().await {
            return;
        }
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = self.fetch(request_id).await;
        let now = self.inner.clock.now();
        let mut state = self.inner.state.write().await;
        state.last_attempt = Some(now);
        match fetched {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "Fetched the issuer's signing keys");
                state.keys = Some(Arc::new(KeySet {
                    keys,
                    fetched_at: now,
                }));
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "Failed to fetch the issuer's signing keys; keeping the last good set"
                );
            }
        }
    }

    async fn fetch(
        &self,
        request_id: Option<&str>,
    ) -> anyhow::Result<HashMap<String, Arc<RsassaJwsVerifier>>> {
        let issuer = &self.inner.config.issuer;
        // OIDC Discovery §4: a trailing slash on the issuer is removed before appending.
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self
            .get_json(&discovery_url, request_id)
            .await
            .context("Failed to fetch the issuer's discovery document")?;
        if discovery.issuer != *issuer {
            bail!("the discovery document names another issuer");
        }
        let url = reqwest::Url::parse(&discovery.jwks_uri).context("jwks_uri is not a URL")?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("jwks_uri is not an http(s) URL");
        }
        let set: JwkSetDocument = self
            .get_json(url.as_str(), request_id)
            .await
            .context("Failed to fetch the JWKS")?;
        let keys = usable_keys(set.keys);
        if keys.is_empty() {
            bail!("the JWKS has no usable RS256 signing key");
        }
        Ok(keys)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        request_id: Option<&str>,
    ) -> anyhow::Result<T> {
        let mut request = self.inner.http.get(url);
        if let Some(id) = request_id {
            request = request.header(REQUEST_ID, id);
        }
        let mut response = request.send().await?.error_for_status()?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                bail!("the response is larger than {MAX_DOCUMENT_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).context("the response is not the expected JSON")
    }
}

impl KeySet {
    fn freshness(&self, now: DateTime<Utc>, config: &JwksConfig) -> Freshness {
        let age = now - self.fetched_at;
        let ttl = chrono_duration(config.cache_ttl);
        if age < ttl {
            Freshness::Fresh
        } else if age < ttl + chrono_duration(config.max_stale) {
            Freshness::Stale
        } else {
            Freshness::Expired
        }
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct JwkSetDocument {
    keys: Vec<Value>,
}

/// Keeps RSA signing keys fit for RS256 (`use` sig or absent, `alg` RS256 or absent,
/// modulus >= 2048 bits, with a `kid`). A `kid` that appears twice is ambiguous and
/// dropped altogether.
fn usable_keys(keys: Vec<Value>) -> HashMap<String, Arc<RsassaJwsVerifier>> {
    let mut usable = HashMap::new();
    let mut ambiguous = Vec::new();
    for key in keys {
        let Some((kid, verifier)) = usable_key(key) else {
            continue;
        };
        match usable.entry(kid) {
            Entry::Vacant(slot) => {
                slot.insert(Arc::new(verifier));
            }
            Entry::Occupied(slot) => ambiguous.push(slot.key().clone()),
        }
    }
    for kid in ambiguous {
        tracing::warn!(kid, "The JWKS publishes this kid twice; ignoring it");
        usable.remove(&kid);
    }
    usable
}

fn usable_key(key: Value) -> Option<(String, RsassaJwsVerifier)> {
    let Value::Object(map) = key else {
        return None;
    };
    let str_param = |name: &str| map.get(name).map(Value::as_str);
    let kid = match str_param("kid") {
        Some(Some(kid)) if !kid.is_empty() => kid.to_owned(),
        _ => return None,
    };
    let fit = str_param("kty") == Some(Some("RSA"))
        && matches!(str_param("use"), None | Some(Some("sig")))
        && matches!(str_param("alg"), None | Some(Some("RS256")));
    if !fit {
        tracing::debug!(kid, "Skipping a JWKS key that is not an RS256 signing key");
        return None;
    }
    // josekit checks `key_ops` and refuses moduli under 2048 bits.
    match Jwk::from_map(map).and_then(|jwk| RS256.verifier_from_jwk(&jwk)) {
        Ok(verifier) => Some((kid, verifier)),
        Err(error) => {
            tracing::debug!(kid, error = %error, "Skipping an unusable JWKS key");
            None
        }
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use josekit::jwk::alg::rsa::RsaKeyPair;
    use serde_json::json;

    fn public_jwk(bits: u32, kid: &str) -> Value {
        let pair = RsaKeyPair::generate(bits).unwrap();
        let mut jwk = josekit::jwk::KeyPair::to_jwk_public_key(&pair);
        jwk.set_key_id(kid);
        serde_json::to_value(jwk.as_ref()).unwrap()
    }

    #[test]
    fn only_rs256_signing_keys_of_2048_bits_or_more_are_kept() {
        let good = public_jwk(2048, "good");
        let mut with_use_and_alg = public_jwk(2048, "explicit");
        with_use_and_alg["use"] = json!("sig");
        with_use_and_alg["alg"] = json!("RS256");
        let mut encryption = public_jwk(2048, "enc");
        encryption["use"] = json!("enc");
        let mut ps256 = public_jwk(2048, "ps");
        ps256["alg"] = json!("PS256");
        let mut no_kid = public_jwk(2048, "x");
        no_kid.as_object_mut().unwrap().remove("kid");
        let small = public_jwk(1024, "small");
        let oct = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "oct"});

        let keys = usable_keys(vec![
            good,
            with_use_and_alg,
            encryption,
            ps256,
            no_kid,
            small,
            oct,
        ]);
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, vec!["explicit", "good"]);
    }

    #[test]
    fn a_kid_published_twice_is_dropped() {
        let keys = usable_keys(vec![public_jwk(2048, "same"), public_jwk(2048, "same")]);
        assert!(keys.is_empty());
    }
}
