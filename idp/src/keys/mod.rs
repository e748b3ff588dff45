//! Signing keys: RSA 2048 key pairs created with OpenSSL (through josekit), stored
//! encrypted in the database so restarts and every instance on one database sign with
//! the same key, and published as a JWKS (public parts only).
//!
//! Private-key operations go through OpenSSL only; the `rsa` crate is never used to sign
//! (RUSTSEC-2023-0071).

pub mod kek;
pub mod lifecycle;
pub mod signing;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::{Context, anyhow};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use josekit::jwk::Jwk;
use josekit::jws::RS256;
use josekit::jws::alg::rsassa::{RsassaJwsSigner, RsassaJwsVerifier};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use crate::keys::store::InsertKeyError;
pub use kek::KeyEncryptionKey;

pub const ALGORITHM: &str = "RS256";
const RSA_BITS: u32 = 2048;

/// The key that signs right now.
pub struct SigningKey {
    pub kid: String,
    pub signer: RsassaJwsSigner,
}

/// What the idp needs from its keys at run time: one signer, the JWKS document, and a
/// verifier per published key (to check tokens we signed, such as an `id_token_hint`).
///
/// Clones share one swappable snapshot: [`KeyRing::reload`] replaces it for every clone
/// (the token issuer, the JWKS route) at once, and each reader sees either the old or
/// the new snapshot whole.
#[derive(Clone)]
pub struct KeyRing {
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
}

struct Snapshot {
    signing: Arc<SigningKey>,
    jwks: Bytes,
    etag: String,
    verifiers: HashMap<String, Arc<RsassaJwsVerifier>>,
}

impl KeyRing {
    /// Loads the keys from the database, creating the first one if there is none. When
    /// several instances start at once, the unique index on the current key lets exactly
    /// one insert win; the others load the winner's key.
    pub async fn load_or_create(
        pool: &AnyPool,
        kek: &KeyEncryptionKey,
        now: i64,
    ) -> anyhow::Result<Self> {
        if let Some(ring) = Self::load(pool, kek).await? {
            return Ok(ring);
        }
        let (kid, public_jwk, private_der) = tokio::task::spawn_blocking(generate)
            .await
            .context("Key generation panicked")??;
        let sealed = kek.seal(&kid, &private_der)?;
        match store::insert_current(pool, &kid, &public_jwk, &sealed, now).await {
            Ok(()) => tracing::info!(kid = %kid, "Created the first signing key"),
            Err(InsertKeyError::CurrentExists) => {
                tracing::info!("Another instance created the signing key first; using it");
            }
            Err(InsertKeyError::Unexpected(e)) => return Err(e),
        }
        Self::load(pool, kek)
            .await?
            .ok_or_else(|| anyhow!("No current signing key after creating one"))
    }

    async fn load(pool: &AnyPool, kek: &KeyEncryptionKey) -> anyhow::Result<Option<Self>> {
        Ok(Snapshot::load(pool, kek).await?.map(|snapshot| Self {
            snapshot: Arc::new(RwLock::new(Arc::new(snapshot))),
        }))
    }

    /// Re-reads the published keys from the database and swaps them in, so changes made
    /// by another instance or the CLI take effect here. Returns whether anything changed.
    /// Without a current key (which the lifecycle never leaves) the old snapshot stays.
    pub async fn reload(&self, pool: &AnyPool, kek: &KeyEncryptionKey) -> anyhow::Result<bool> {
        let Some(fresh) = Snapshot::load(pool, kek).await? else {
            tracing::warn!("No current signing key in the database; keeping the loaded keys");
            return Ok(false);
        };
        let mut slot = self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let changed = slot.etag != fresh.etag || slot.signing.kid != fresh.signing.kid;
        if changed {
            *slot = Arc::new(fresh);
        }
        Ok(changed)
    }

    fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn signing_key(&self) -> Arc<SigningKey> {
        Arc::clone(&self.current().signing)
    }

    /// The verifier of the published key `kid`, built from its public JWK (so it checks
    /// exactly what relying parties check). `None` for a kid we never published.
    pub fn verifier(&self, kid: &str) -> Option<Arc<RsassaJwsVerifier>> {
        self.current().verifiers.get(kid).cloned()
    }

    /// The JWKS document (RFC 7517 §5), serialised once per snapshot.
    pub fn jwks_json(&self) -> Bytes {
        self.current().jwks.clone()
    }

    /// The JWKS document and its strong entity tag (quoted, for `ETag`), from one
    /// snapshot.
    pub fn jwks_with_etag(&self) -> (Bytes, String) {
        let snapshot = self.current();
        (snapshot.jwks.clone(), snapshot.etag.clone())
    }
}

impl Snapshot {
    async fn load(pool: &AnyPool, kek: &KeyEncryptionKey) -> anyhow::Result<Option<Self>> {
        let records = store::published(pool).await?;
        let Some(current) = records.iter().find(|r| r.state == "current") else {
            return Ok(None);
        };
        let der = kek.open(&current.kid, &current.private_key_enc)?;
        let signer = RS256
            .signer_from_der(&der)
            .context("A stored signing key is not a valid RSA private key")?;
        let keys = records
            .iter()
            .map(|r| serde_json::from_str::<Value>(&r.public_jwk))
            .collect::<Result<Vec<_>, _>>()
            .context("A stored public JWK is not JSON")?;
        let mut verifiers = HashMap::new();
        for record in &records {
            let jwk = Jwk::from_bytes(record.public_jwk.as_bytes())
                .context("A stored public JWK is not a JWK")?;
            let verifier = RS256
                .verifier_from_jwk(&jwk)
                .context("A stored public JWK is not an RS256 key")?;
            verifiers.insert(record.kid.clone(), Arc::new(verifier));
        }
        let jwks = json!({ "keys": keys }).to_string();
        let etag = format!(
            "\"{}\"",
            URL_SAFE_NO_PAD.encode(&Sha256::digest(jwks.as_bytes())[..16])
        );
        Ok(Some(Self {
            signing: Arc::new(SigningKey {
                kid: current.kid.clone(),
                signer,
            }),
            jwks: Bytes::from(jwks),
            etag,
            verifiers,
        }))
    }
}

/// A new key pair, ready to store: kid, public JWK (JSON) and the sealed private key.
pub(crate) struct NewKey {
    pub kid: String,
    pub public_jwk: String,
    pub private_key_enc: String,
}

/// Generates a key pair (on the blocking pool) and seals its private key under `kek`.
pub(crate) async fn new_sealed_key(kek: &KeyEncryptionKey) -> anyhow::Result<NewKey> {
    let (kid, public_jwk, private_der) = tokio::task::spawn_blocking(generate)
        .await
        .context("Key generation panicked")??;
    let private_key_enc = kek.seal(&kid, &private_der)?;
    Ok(NewKey {
        kid,
        public_jwk,
        private_key_enc,
    })
}

/// A new key pair: its kid, public JWK (JSON) and PKCS#8 private key (DER).
fn generate() -> anyhow::Result<(String, String, Vec<u8>)> {
    let pair = RS256
        .generate_key_pair(RSA_BITS)
        .context("Failed to generate an RSA key pair")?;
    let public = josekit::jwk::KeyPair::to_jwk_public_key(&pair);
    let kid = thumbprint(&public)?;
    let jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "alg": ALGORITHM,
        "kid": kid,
        "n": param(&public, "n")?,
        "e": param(&public, "e")?,
    });
    Ok((
        kid,
        jwk.to_string(),
        josekit::jwk::KeyPair::to_der_private_key(&pair),
    ))
}

fn param<'a>(jwk: &'a Jwk, name: &str) -> anyhow::Result<&'a str> {
    jwk.parameter(name)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("Generated JWK lacks `{name}`"))
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order.
fn thumbprint(jwk: &Jwk) -> anyhow::Result<String> {
    let mut members = Map::new();
    members.insert("e".into(), Value::from(param(jwk, "e")?));
    members.insert("kty".into(), Value::from("RSA"));
    members.insert("n".into(), Value::from(param(jwk, "n")?));
    // serde_json's Map is ordered by key and prints without whitespace, as §3 requires.
    let canonical = Value::Object(members).to_string();
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_match_the_rfc_7638_example() {
        // RFC 7638 §3.1.
        let jwk = Jwk::from_bytes(
            br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn generated_keys_publish_only_public_rsa_2048_parameters() {
        let (kid, public, private) = generate().unwrap();
        let jwk: Map<String, Value> = serde_json::from_str(&public).unwrap();
        let mut names: Vec<&str> = jwk.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["alg", "e", "kid", "kty", "n", "use"]);
        assert_eq!(jwk["kid"], kid.as_str());
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len() * 8, 2048);
        assert!(RS256.signer_from_der(&private).is_ok());
    }
}
