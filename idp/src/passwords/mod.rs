//! Password hashing: Argon2id with OWASP's parameters (m=19456 KiB, t=2, p=1), run on
//! the blocking pool behind a semaphore so a login flood queues instead of allocating
//! 19 MiB per request until memory runs out.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::domain::Password;

/// OWASP Password Storage Cheat Sheet, Argon2id option 2.
const M_COST_KIB: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified for unknown users so that "no such
    /// account" takes as long as "wrong password".
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub async fn new(max_concurrent: usize) -> anyhow::Result<Self> {
        let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
            .map_err(|e| anyhow::anyhow!("Invalid Argon2 parameters: {e}"))?;
        let mut hasher = Self {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            permits: Arc::new(Semaphore::new(max_concurrent)),
            dummy_hash: Arc::from(""),
        };
        let random = Password::for_login(uuid::Uuid::new_v4().to_string());
        hasher.dummy_hash = Arc::from(hasher.hash(random).await?);
        Ok(hasher)
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) of `password`.
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let argon = self.argon.clone();
        self.run(move || {
            argon
                .hash_password(password.expose())
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("Failed to hash a password: {e}"))
        })
        .await
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no
    /// account, so both cases cost the same.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> anyhow::Result<bool> {
        let argon = self.argon.clone();
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .run(move || {
                Ok(argon
                    .verify_password(password.expose(), hash.as_str())
                    .is_ok())
            })
            .await?;
        Ok(known && matches)
    }

    async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> anyhow::Result<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("The password hasher was shut down")?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .instrument(tracing::Span::current())
            .await
            .context("A password hashing task panicked")?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_use_owasp_argon2id_parameters_and_verify() {
        let hasher = PasswordHasher::new(2).await.unwrap();
        let hash = hasher
            .hash(Password::for_login("correct horse".to_owned()))
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let ok = hasher
            .verify(
                Password::for_login("correct horse".to_owned()),
                Some(hash.clone()),
            )
            .await
            .unwrap();
        let wrong = hasher
            .verify(Password::for_login("correct horsf".to_owned()), Some(hash))
            .await
            .unwrap();
        assert!(ok);
        assert!(!wrong);
    }

    #[tokio::test]
    async fn unknown_users_never_verify_even_with_the_dummy_password() {
        let hasher = PasswordHasher::new(1).await.unwrap();
        let any = Password::for_login("whatever-it-is".to_owned());
        assert!(!hasher.verify(any, None).await.unwrap());
    }
}
