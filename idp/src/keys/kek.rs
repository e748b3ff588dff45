//! The key-encryption key (KEK) that protects secrets at rest (signing keys, the
//! secrets of authenticator apps): AES-256-GCM with a random 96-bit nonce per
//! encryption and the secret's name (a key's `kid`, `totp:<id>`) as associated data,
//! so a ciphertext cannot be swapped onto another row.
//!
//! It comes from `IDP_KEY_ENCRYPTION_KEY` (base64 of 32 bytes; required for several
//! instances on one database) or, for the embedded default, from
//! `{IDP_KEYS_DIR}/key-encryption-key`, created with mode 0600 on first start.

use std::fmt;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, Generate, Key, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, anyhow, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const FILE_NAME: &str = "key-encryption-key";
const NONCE_LEN: usize = 12;

pub struct KeyEncryptionKey(Aes256Gcm);

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

impl KeyEncryptionKey {
    /// From the configured value if any, else from (or into) the file under `keys_dir`.
    pub fn load_or_create(configured: Option<&str>, keys_dir: &Path) -> anyhow::Result<Self> {
        if let Some(encoded) = configured {
            return Self::from_base64(encoded).context("IDP_KEY_ENCRYPTION_KEY");
        }
        let path = keys_dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(encoded) => Self::from_base64(encoded.trim()).with_context(|| {
                format!("The key-encryption key in {} is invalid", path.display())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create_file(&path),
            Err(e) => Err(anyhow!(e).context(format!("Failed to read {}", path.display()))),
        }
    }

    fn from_base64(encoded: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| anyhow!("must be base64 (standard alphabet)"))?;
        ensure!(bytes.len() == 32, "must decode to exactly 32 bytes");
        let key = Key::<Aes256Gcm>::try_from(bytes.as_slice())
            .map_err(|_| anyhow!("must decode to exactly 32 bytes"))?;
        Ok(Self(Aes256Gcm::new(&key)))
    }

    fn create_file(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("Failed to create {}", dir.display()))?;
        }
        let key = Key::<Aes256Gcm>::generate();
        let encoded = STANDARD.encode(key.as_slice());
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(encoded.as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("Failed to write {}", path.display()))?;
                tracing::info!(path = %path.display(), "Created a key-encryption key");
                Ok(Self(Aes256Gcm::new(&key)))
            }
            // Another process created it between our read and our create: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load_or_create(None, path.parent().unwrap_or(Path::new(".")))
            }
            Err(e) => Err(anyhow!(e).context(format!("Failed to create {}", path.display()))),
        }
    }

    /// `base64(nonce || ciphertext)`, bound to `kid`.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> anyhow::Result<String> {
        let nonce = Nonce::generate();
        let ciphertext = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| anyhow!("Failed to encrypt {kid}"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, kid: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let bytes = STANDARD
            .decode(sealed)
            .with_context(|| format!("Stored secret {kid} is not base64"))?;
        ensure!(bytes.len() > NONCE_LEN, "Stored secret {kid} is truncated");
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| anyhow!("A stored nonce is malformed"))?;
        self.0
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow!(
                    "Failed to decrypt {kid}: the key-encryption key differs from \
                     the one it was stored with"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_kek_and_kid() {
        let dir = tempfile::tempdir().unwrap();
        let kek = KeyEncryptionKey::load_or_create(None, dir.path()).unwrap();
        let sealed = kek.seal("kid-1", b"private key").unwrap();
        assert_eq!(kek.open("kid-1", &sealed).unwrap(), b"private key");
        assert!(kek.open("kid-2", &sealed).is_err(), "kid is bound as AAD");

        let again = KeyEncryptionKey::load_or_create(None, dir.path()).unwrap();
        assert_eq!(
            again.open("kid-1", &sealed).unwrap(),
            b"private key",
            "same file, same key"
        );

        let other =
            KeyEncryptionKey::load_or_create(None, tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.open("kid-1", &sealed).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_kek_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        KeyEncryptionKey::load_or_create(None, dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_configured_kek_must_be_32_bytes_of_base64() {
        let dir = tempfile::tempdir().unwrap();
        assert!(KeyEncryptionKey::load_or_create(Some("not base64!"), dir.path()).is_err());
        assert!(
            KeyEncryptionKey::load_or_create(Some(&STANDARD.encode([1u8; 16])), dir.path())
                .is_err()
        );
        assert!(
            KeyEncryptionKey::load_or_create(Some(&STANDARD.encode([1u8; 32])), dir.path()).is_ok()
        );
        assert!(
            !dir.path().join(FILE_NAME).exists(),
            "no file when configured"
        );
    }
}
