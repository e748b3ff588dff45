//! The cache of the trusted issuer's signing keys.
//!
//! Keys come only from the `jwks_uri` of the configured issuer's discovery document
//! (OIDC Discovery §4; its `issuer` must equal ours exactly, §4.3). The cache follows
//! these rules:
//! - a fetched key set is fresh for the `max-age` of the JWKS response's
//!   `Cache-Control`, clamped to [`JwksConfig::min_ttl`, `JwksConfig::max_ttl`]
//!   (`no-cache`/`no-store` count as 0, so the minimum), or for
//!   [`JwksConfig::default_ttl`] when the response names none;
//! - refreshes are conditional: the last `ETag` goes out as `If-None-Match`, and a 304
//!   keeps the current keys, fresh again (with the 304's `max-age` if it has one);
//! - a background task ([`JwksCache::spawn_refresher`]) refreshes the set once
//!   [`REFRESH_AHEAD_PERCENT`] of its freshness has passed, so requests practically never
//!   wait for a fetch. A request that finds the set stale but knows the `kid` is served at
//!   once and starts a refresh in the background (stale-while-revalidate);
//! - **at most one fetch per `refetch_cooldown`, whatever triggers it** (the background
//!   task, stale keys or an unknown `kid`), and single-flight: concurrent lookups that
//!   need a fetch wait for the one in progress instead of starting their own. A flood of
//!   random `kid`s therefore costs at most one fetch per cooldown window;
//! - when fetches fail, the last good set keeps serving for `max_stale` beyond its
//!   freshness, then lookups fail closed. An unknown `kid` always fails. A successful
//!   fetch replaces the whole set, so a key the issuer removed stops validating.
//!
//! All of this runs on the injected [`Clock`], so tests move time instead of sleeping;
//! only the background task's polling interval is real time.

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
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::extractor::REQUEST_ID;

/// Discovery documents and key sets larger than this are refused.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The background task refreshes a key set once this share of its freshness has passed.
pub const REFRESH_AHEAD_PERCENT: u32 = 80;

#[derive(Clone, Debug)]
pub struct JwksConfig {
    /// The issuer exactly as configured; the discovery document lives under it.
    pub issuer: String,
    /// Freshness of a key set whose response carries no `Cache-Control: max-age`.
    pub default_ttl: Duration,
    /// Lower bound on a response's `max-age`.
    pub min_ttl: Duration,
    /// Upper bound on a response's `max-age`.
    pub max_ttl: Duration,
    /// At most one fetch per this long, whatever triggers it.
    pub refetch_cooldown: Duration,
    /// How long past its freshness the last good set serves while fetches fail.
    pub max_stale: Duration,
    /// Timeout of each HTTP call (connect included).
    pub fetch_timeout: Duration,
    /// How often (real time) the background refresher checks whether a refresh is due.
    pub refresh_check_interval: Duration,
}

impl JwksConfig {
    /// The defaults for `issuer`: fresh for 300 s without `max-age`, `max-age` clamped to
    /// [30 s, 3600 s], one fetch per 30 s at most, 3600 s of stale keys when the issuer
    /// is down, 5 s fetch timeout, the background refresher checking every second.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(3600),
            refetch_cooldown: Duration::from_secs(30),
            max_stale: Duration::from_secs(3600),
            fetch_timeout: Duration::from_secs(5),
            refresh_check_interval: Duration::from_secs(1),
        }
    }

    /// The freshness a response grants: its `max-age` within bounds, else the default.
    fn ttl_for(&self, max_age: Option<Duration>) -> Duration {
        match max_age {
            Some(age) => age.max(self.min_ttl).min(self.max_ttl),
            None => self.default_ttl,
        }
    }
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
        /// The freshness the last response granted (`max-age` within bounds).
        ttl_secs: u64,
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
    /// Built on the first fetch: building it loads the system's CA certificates (for
    /// an https issuer), which took 100 ms of a 110 ms start-up, and a server that
    /// never sees a token never needs it.
    http: std::sync::OnceLock<reqwest::Client>,
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
    keys: Arc<HashMap<String, Arc<RsassaJwsVerifier>>>,
    fetched_at: DateTime<Utc>,
    ttl: Duration,
    /// The JWKS response's `ETag`, sent back as `If-None-Match`.
    etag: Option<HeaderValue>,
}

/// What one fetch brought.
enum Fetched {
    Keys {
        keys: HashMap<String, Arc<RsassaJwsVerifier>>,
        max_age: Option<Duration>,
        etag: Option<HeaderValue>,
    },
    /// 304: the set we have is still current.
    NotModified { max_age: Option<Duration> },
}

/// The background refresher started by [`JwksCache::spawn_refresher`]; it stops when
/// this handle is dropped (or [`RefreshTask::stop`] is called).
#[must_use = "the refresher stops when this handle is dropped"]
pub struct RefreshTask(JoinHandle<()>);

impl RefreshTask {
    pub fn stop(self) {}
}

impl Drop for RefreshTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl JwksCache {
    pub fn new(config: JwksConfig, clock: Clock) -> anyhow::Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http: std::sync::OnceLock::new(),
                clock,
                state: RwLock::new(State::default()),
                fetch_lock: Mutex::new(()),
                fetches: AtomicU64::new(0),
            }),
        })
    }

    /// How many fetches have completed so far, successful or not (observable for tests
    /// and metrics). It is counted once the cache holds the fetch's outcome.
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Acquire)
    }

    /// Starts the background refresher on the current tokio runtime. Every
    /// `refresh_check_interval` it refreshes the key set if [`REFRESH_AHEAD_PERCENT`] of
    /// its freshness has passed (within the cooldown, single-flight with lookups). It
    /// never makes the first fetch: keys are fetched when a token first needs them.
    pub fn spawn_refresher(&self) -> RefreshTask {
        let cache = self.clone();
        RefreshTask(tokio::spawn(async move {
            loop {
                tokio::time::sleep(cache.inner.config.refresh_check_interval).await;
                if cache.refresh_due().await {
                    cache.refresh_if_allowed(None).await;
                }
            }
        }))
    }

    /// The verifier for `kid`. A fresh set answers at once; a stale set that knows `kid`
    /// answers at once too and starts a refresh in the background; otherwise (no set,
    /// unknown `kid`, expired set) the lookup refreshes first, subject to the cooldown.
    /// `request_id` is passed on to the idp.
    pub async fn verifier(
        &self,
        kid: &str,
        request_id: Option<&str>,
    ) -> Result<Arc<RsassaJwsVerifier>, KeyLookupError> {
        let config = &self.inner.config;
        let known = {
            let state = self.inner.state.read().await;
            state.keys.as_ref().and_then(|keys| {
                let key = keys.keys.get(kid)?;
                Some((
                    keys.freshness(self.inner.clock.now(), config),
                    Arc::clone(key),
                ))
            })
        };
        match known {
            Some((Freshness::Fresh, key)) => return Ok(key),
            Some((Freshness::Stale, key)) => {
                self.refresh_detached(request_id).await;
                return Ok(key);
            }
            Some((Freshness::Expired, _)) | None => {}
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
                    ttl_secs: keys.ttl.as_secs(),
                    freshness: keys.freshness(now, &self.inner.config),
                }
            }
        }
    }

    /// Whether the background refresher should refresh now: a set exists and
    /// [`REFRESH_AHEAD_PERCENT`] of its freshness has passed.
    async fn refresh_due(&self) -> bool {
        let state = self.inner.state.read().await;
        state.keys.as_ref().is_some_and(|keys| {
            let refresh_after = keys.ttl * REFRESH_AHEAD_PERCENT / 100;
            self.inner.clock.now() - keys.fetched_at >= chrono_duration(refresh_after)
        })
    }

    /// Starts a refresh on its own task unless one is running or the cooldown forbids it.
    async fn refresh_detached(&self, request_id: Option<&str>) {
        if self.inner.fetch_lock.try_lock().is_err() || !self.may_fetch().await {
            return;
        }
        let cache = self.clone();
        let request_id = request_id.map(str::to_owned);
        tokio::spawn(async move { cache.refresh_if_allowed(request_id.as_deref()).await });
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
        let current = self.inner.state.read().await.keys.clone();
        let etag = current.as_ref().and_then(|keys| keys.etag.clone());
        let fetched = self.fetch(request_id, etag).await;
        let now = self.inner.clock.now();
        let config = &self.inner.config;
        let mut state = self.inner.state.write().await;
        state.last_attempt = Some(now);
        match (fetched, current) {
            (
                Ok(Fetched::Keys {
                    keys,
                    max_age,
                    etag,
                }),
                _,
            ) => {
                let ttl = config.ttl_for(max_age);
                tracing::info!(
                    keys = keys.len(),
                    ttl_secs = ttl.as_secs(),
                    "Fetched the issuer's signing keys"
                );
                state.keys = Some(Arc::new(KeySet {
                    keys: Arc::new(keys),
                    fetched_at: now,
                    ttl,
                    etag,
                }));
            }
            (Ok(Fetched::NotModified { max_age }), Some(current)) => {
                let ttl = max_age.map_or(current.ttl, |age| config.ttl_for(Some(age)));
                tracing::debug!(
                    ttl_secs = ttl.as_secs(),
                    "The issuer's signing keys are unchanged"
                );
                state.keys = Some(Arc::new(KeySet {
                    keys: Arc::clone(&current.keys),
                    fetched_at: now,
                    ttl,
                    etag: current.etag.clone(),
                }));
            }
            (Ok(Fetched::NotModified { .. }), None) => {
                tracing::warn!("The JWKS answered 304 to an unconditional request");
            }
            (Err(error), _) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "Failed to fetch the issuer's signing keys; keeping the last good set"
                );
            }
        }
        drop(state);
        self.inner.fetches.fetch_add(1, Ordering::Release);
    }

    async fn fetch(
        &self,
        request_id: Option<&str>,
        etag: Option<HeaderValue>,
    ) -> anyhow::Result<Fetched> {
        let issuer = &self.inner.config.issuer;
        // OIDC Discovery §4: a trailing slash on the issuer is removed before appending.
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let response = self
            .get(&discovery_url, request_id, None)
            .await
            .and_then(|r| Ok(r.error_for_status()?))
            .context("Failed to fetch the issuer's discovery document")?;
        let discovery: Discovery = read_json(response)
            .await
            .context("Failed to read the issuer's discovery document")?;
        if discovery.issuer != *issuer {
            bail!("the discovery document names another issuer");
        }
        let url = reqwest::Url::parse(&discovery.jwks_uri).context("jwks_uri is not a URL")?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("jwks_uri is not an http(s) URL");
        }
        let response = self
            .get(url.as_str(), request_id, etag.as_ref())
            .await
            .context("Failed to fetch the JWKS")?;
        let max_age = max_age(response.headers());
        if etag.is_some() && response.status() == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified { max_age });
        }
        let response = response
            .error_for_status()
            .context("Failed to fetch the JWKS")?;
        let etag = response.headers().get(ETAG).cloned();
        let set: JwkSetDocument = read_json(response)
            .await
            .context("Failed to read the JWKS")?;
        let keys = usable_keys(set.keys);
        if keys.is_empty() {
            bail!("the JWKS has no usable RS256 signing key");
        }
        Ok(Fetched::Keys {
            keys,
            max_age,
            etag,
        })
    }

    /// The HTTP client, built on first use (the fetch is single-flight, so once).
    fn http_client(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(client) = self.inner.http.get() {
            return Ok(client);
        }
        let config = &self.inner.config;
        let client = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout)
            // The discovery document and the key set must come from where we asked.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("Failed to build the HTTP client for JWKS fetches")?;
        Ok(self.inner.http.get_or_init(|| client))
    }

    async fn get(
        &self,
        url: &str,
        request_id: Option<&str>,
        if_none_match: Option<&HeaderValue>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self.http_client()?.get(url);
        if let Some(id) = request_id {
            request = request.header(REQUEST_ID, id);
        }
        if let Some(etag) = if_none_match {
            request = request.header(IF_NONE_MATCH, etag.clone());
        }
        Ok(request.send().await?)
    }
}

/// Reads a JSON body of at most [`MAX_DOCUMENT_BYTES`].
async fn read_json<T: serde::de::DeserializeOwned>(
    mut response: reqwest::Response,
) -> anyhow::Result<T> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            bail!("the response is larger than {MAX_DOCUMENT_BYTES} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).context("the response is not the expected JSON")
}

/// The `max-age` of a response's `Cache-Control` (RFC 9111 §5.2.2.1); `no-cache` and
/// `no-store` count as 0. When a directive repeats, the smallest value wins.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found: Option<Duration> = None;
    let mut keep = |age: Duration| found = Some(found.map_or(age, |f| f.min(age)));
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for directive in value.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                keep(Duration::ZERO);
            } else if name.eq_ignore_ascii_case("max-age") {
                if let Some(secs) = argument.and_then(|a| a.parse::<u64>().ok()) {
                    keep(Duration::from_secs(secs));
                }
            }
        }
    }
    found
}

impl KeySet {
    fn freshness(&self, now: DateTime<Utc>, config: &JwksConfig) -> Freshness {
        let age = now - self.fetched_at;
        let ttl = chrono_duration(self.ttl);
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

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        let secs = |values: &[&str]| max_age(&headers(values)).map(|d| d.as_secs());
        assert_eq!(secs(&[]), None);
        assert_eq!(secs(&["public"]), None);
        assert_eq!(secs(&["public, max-age=600"]), Some(600));
        assert_eq!(secs(&["Max-Age=\"42\", must-revalidate"]), Some(42));
        assert_eq!(secs(&["max-age=x"]), None);
        assert_eq!(secs(&["max-age=600", "max-age=60"]), Some(60));
        assert_eq!(secs(&["no-store"]), Some(0));
        assert_eq!(secs(&["max-age=600, no-cache"]), Some(0));
    }

    #[tokio::test]
    async fn the_http_client_is_built_only_when_keys_are_first_fetched() {
        // A port nothing listens on: the fetch fails, but it needed the client.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cache = JwksCache::new(
            JwksConfig::new(format!("http://127.0.0.1:{port}")),
            Clock::system(),
        )
        .unwrap();
        assert!(cache.inner.http.get().is_none(), "built at start-up");
        assert_eq!(
            cache.verifier("k1", None).await.err(),
            Some(KeyLookupError::Unavailable)
        );
        assert!(cache.inner.http.get().is_some());
        assert_eq!(cache.fetch_count(), 1);
    }

    #[test]
    fn max_age_is_clamped_and_absent_means_the_default() {
        let config = JwksConfig::new("http://idp");
        let ttl = |age: Option<u64>| config.ttl_for(age.map(Duration::from_secs)).as_secs();
        assert_eq!(ttl(None), 300);
        assert_eq!(ttl(Some(0)), 30);
        assert_eq!(ttl(Some(600)), 600);
        assert_eq!(ttl(Some(86_400)), 3600);
    }
}
