//! Password hashing: Argon2id with OWASP's parameters (m=19456 KiB, t=2, p=1), run on
//! a few hashing threads of our own (one per core by default) fed by a queue, so a
//! login flood queues instead of allocating 19 MiB per request until memory runs out.
//!
//! Each hash needs 19 MiB of working memory. Allocating it per hash (as the argon2
//! crate's `hash_password`/`verify_password` do) costs more than the hash itself under
//! load: the zeroed pages are faulted in again every time, and glibc keeps freed 19 MiB
//! chunks in per-thread arenas, so resident memory grows with the number of threads
//! that ever hashed (we measured 0.9 GiB). Instead, each hashing thread owns one buffer
//! and reuses it for every hash: memory is bounded by `threads × 19 MiB`, no hash pays
//! for page faults, and a buffer stays with the thread (and mostly with the core) that
//! fills it, as when hashing alone; on tokio's blocking pool the hashes hopped between
//! threads and ran about 5 % slower than bare ones. A thread that has hashed nothing
//! for [`RELEASE_IDLE_AFTER`] frees its buffer, so an idle idp is small again.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use argon2::password_hash::phc::{Output, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::accounts::password::Password;

/// OWASP Password Storage Cheat Sheet, Argon2id option 2.
const M_COST_KIB: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
/// Bytes of salt and of hash output in the PHC strings we write (the crate's defaults).
const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;

/// A hashing thread that hashed nothing for this long frees its working buffer.
pub const RELEASE_IDLE_AFTER: Duration = Duration::from_secs(10);

/// Argon2 working memory, one block per KiB of `m`.
type Memory = Vec<Block>;

/// Blocks of address space reserved per buffer: 32 MiB and a page. glibc serves an
/// allocation this large with a mapping of its own and unmaps it when freed (32 MiB is
/// the most its dynamic mmap threshold rises to). A 19 MiB allocation would, once the
/// first one was freed, come from a heap arena that keeps the memory after `free`.
/// Only the 19 MiB written are resident.
const RESERVED_BLOCKS: usize = 32 * 1024 + 4;

/// One hash, run by a hashing thread with its working memory.
type Job = Box<dyn FnOnce(&mut [Block]) + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    /// The hashing threads' queue; they stop when the last clone of this is dropped.
    jobs: flume::Sender<Job>,
    /// Working buffers that exist now: at most one per hashing thread.
    #[cfg(test)]
    buffers: Arc<AtomicUsize>,
    /// A PHC string with our parameters, a random salt and a random output, verified
    /// for unknown users so that "no such account" costs as much as "wrong password". No
    /// password matches it (that would take finding a 256-bit preimage).
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// A hasher running up to `max_concurrent` hashes at once, each on its own thread.
    pub fn new(max_concurrent: usize) -> anyhow::Result<Self> {
        Self::releasing_after(max_concurrent, RELEASE_IDLE_AFTER)
    }

    /// Frees working buffers unused for `idle` (tests use a short one).
    fn releasing_after(max_concurrent: usize, idle: Duration) -> anyhow::Result<Self> {
        let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN))
            .map_err(|e| anyhow!("Invalid Argon2 parameters: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut random_output = [0u8; OUTPUT_LEN];
        rand::fill(&mut random_output);
        let dummy_hash = phc_string(&argon, &random_salt(), &random_output)?;
        let (jobs, queue) = flume::unbounded();
        let buffers = Arc::new(AtomicUsize::new(0));
        for n in 0..max_concurrent.max(1) {
            let (queue, buffers) = (queue.clone(), Arc::clone(&buffers));
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || hashing_thread(&queue, idle, &buffers))
                .context("Failed to start a password hashing thread")?;
        }
        Ok(Self {
            argon,
            jobs,
            #[cfg(test)]
            buffers,
            dummy_hash: Arc::from(dummy_hash),
        })
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) of `password`.
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let argon = self.argon.clone();
        let salt = random_salt();
        self.run(move |memory| {
            let mut output = [0u8; OUTPUT_LEN];
            argon
                .hash_password_into_with_memory(password.expose(), &salt, &mut output, memory)
                .map_err(|e| anyhow!("Failed to hash a password: {e}"))?;
            phc_string(&argon, &salt, &output)
        })
        .await
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no
    /// account, so both cases cost the same.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> anyhow::Result<bool> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .run(move |memory| verify_with_memory(password.expose(), &hash, memory))
            .await?;
        Ok(known && matches)
    }

    /// Runs `work` on a hashing thread, after the hashes queued before it.
    async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut [Block]) -> anyhow::Result<T> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move |memory| {
            // Whoever asked is gone (a cancelled request): nobody needs this hash.
            if reply.is_closed() {
                return;
            }
            // An error if the caller left meanwhile, which is nothing to report.
            let _ = reply.send(span.in_scope(|| work(memory)));
        });
        self.jobs
            .send(job)
            .map_err(|_| anyhow!("The password hashing threads have stopped"))?;
        result.await.context("A password hash failed")?
    }
}

/// Runs the queue's hashes one after another with one working buffer, made on the first
/// hash and freed after `idle` without one; returns once every sender is gone.
fn hashing_thread(queue: &flume::Receiver<Job>, idle: Duration, buffers: &AtomicUsize) {
    let mut memory: Option<Memory> = None;
    loop {
        let next = if memory.is_some() {
            queue.recv_timeout(idle)
        } else {
            queue
                .recv()
                .map_err(|_| flume::RecvTimeoutError::Disconnected)
        };
        let job = match next {
            Ok(job) => job,
            Err(flume::RecvTimeoutError::Timeout) => {
                memory = None;
                buffers.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            Err(flume::RecvTimeoutError::Disconnected) => return,
        };
        let memory = memory.get_or_insert_with(|| {
            buffers.fetch_add(1, Ordering::Relaxed);
            new_memory()
        });
        // A panicking hash drops its reply (its caller gets an error); the thread and
        // its buffer (scratch space, rewritten by every hash) carry on.
        let _ = catch_unwind(AssertUnwindSafe(|| job(memory)));
    }
}

fn new_memory() -> Memory {
    let blocks = usize::try_from(M_COST_KIB).unwrap_or(usize::MAX);
    let mut memory = Vec::with_capacity(RESERVED_BLOCKS.max(blocks));
    memory.resize(blocks, Block::new());
    memory
}

fn random_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rand::fill(&mut salt);
    salt
}

/// `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<output>`, as the argon2 crate writes it.
fn phc_string(argon: &Argon2<'_>, salt: &[u8], output: &[u8]) -> anyhow::Result<String> {
    let params = argon.params();
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: params
            .try_into()
            .map_err(|e| anyhow!("Failed to encode Argon2 parameters: {e}"))?,
        salt: Some(Salt::new(salt).map_err(|e| anyhow!("Invalid salt: {e}"))?),
        hash: Some(Output::new(output).map_err(|e| anyhow!("Invalid output: {e}"))?),
    };
    Ok(hash.to_string())
}

/// What the argon2 crate's `verify_password` does (the algorithm, version and
/// parameters come from the PHC string; outputs compared in constant time by
/// `Output`'s `PartialEq`), with `memory` as the working memory when it is big enough.
fn verify_with_memory(password: &[u8], phc: &str, memory: &mut [Block]) -> anyhow::Result<bool> {
    let hash = PasswordHash::new(phc).map_err(|e| anyhow!("Unreadable password hash: {e}"))?;
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(hash.algorithm.as_str())
        .map_err(|e| anyhow!("Unsupported password hash algorithm: {e}"))?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| anyhow!("Unsupported Argon2 version: {e}"))?
        .unwrap_or_default();
    let params =
        Params::try_from(&hash).map_err(|e| anyhow!("Unreadable Argon2 parameters: {e}"))?;
    let mut output = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    let computed = if memory.len() >= params.block_count() {
        argon.hash_password_into_with_memory(password, salt.as_ref(), &mut output, memory)
    } else {
        // A hash made with more memory than ours (older or future parameters).
        argon.hash_password_into(password, salt.as_ref(), &mut output)
    };
    computed.map_err(|e| anyhow!("Failed to verify a password: {e}"))?;
    let computed = Output::new(&output).map_err(|e| anyhow!("Invalid output: {e}"))?;
    Ok(computed == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    #[tokio::test]
    async fn hashes_use_owasp_argon2id_parameters_and_verify() {
        let hasher = PasswordHasher::new(2).unwrap();
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
        let hasher = PasswordHasher::new(1).unwrap();
        let any = Password::for_login("whatever-it-is".to_owned());
        assert!(!hasher.verify(any, None).await.unwrap());
        // The dummy hash costs what a real one does: same algorithm and parameters.
        assert!(
            hasher
                .dummy_hash
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
    }

    #[tokio::test]
    async fn hashes_are_interchangeable_with_the_argon2_crates_own() {
        let hasher = PasswordHasher::new(1).unwrap();
        let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap();
        let crate_argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        // Ours verify with the crate ...
        let ours = hasher
            .hash(Password::for_login("tr0ub4dor&3".to_owned()))
            .await
            .unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(crate_argon.verify_password(b"tr0ub4dor&3", &parsed).is_ok());
        // ... and the crate's (every hash stored so far) verify with ours, including
        // ones made with other parameters.
        let theirs = crate_argon
            .hash_password(b"tr0ub4dor&3")
            .unwrap()
            .to_string();
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(b"tr0ub4dor&3")
        .unwrap()
        .to_string();
        let big = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(M_COST_KIB * 2, 1, 1, None).unwrap(),
        )
        .hash_password(b"tr0ub4dor&3")
        .unwrap()
        .to_string();
        for stored in [theirs, small, big] {
            let right = Password::for_login("tr0ub4dor&3".to_owned());
            let wrong = Password::for_login("tr0ub4dor&4".to_owned());
            assert!(hasher.verify(right, Some(stored.clone())).await.unwrap());
            assert!(!hasher.verify(wrong, Some(stored)).await.unwrap());
        }
    }

    #[tokio::test]
    async fn working_memory_is_released_after_it_has_been_idle_a_while() {
        let idle = Duration::from_millis(300);
        let hasher = PasswordHasher::releasing_after(2, idle).unwrap();
        let hash = hasher
            .hash(Password::for_login("correct horse".to_owned()))
            .await
            .unwrap();
        assert_eq!(hasher.buffers.load(Ordering::Relaxed), 1);
        tokio::time::sleep(idle * 3).await;
        assert_eq!(hasher.buffers.load(Ordering::Relaxed), 0);
        // Hashing still works afterwards, with a new buffer.
        let again = hasher
            .verify(Password::for_login("correct horse".to_owned()), Some(hash))
            .await
            .unwrap();
        assert!(again);
        assert_eq!(hasher.buffers.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn working_memory_is_reused_and_never_exceeds_one_buffer_per_thread() {
        let hasher = PasswordHasher::new(2).unwrap();
        let hashes = (0..6).map(|i| {
            let hasher = hasher.clone();
            async move {
                hasher
                    .hash(Password::for_login(format!("password number {i}")))
                    .await
                    .unwrap()
            }
        });
        let hashes = futures::future::join_all(hashes).await;
        assert_eq!(hashes.len(), 6);
        let buffers = hasher.buffers.load(Ordering::Relaxed);
        assert!((1..=2).contains(&buffers), "{buffers} buffers");
    }
}
