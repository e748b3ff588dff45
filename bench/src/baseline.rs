//! The baselines each figure is a ratio to, measured in the same run on the same cores:
//! bare RS256 signing of an access token with josekit, bare Argon2id with the idp's
//! parameters, and a bare axum hello-world handler. They are what the work would cost
//! with no server around it: the physical floor of each scenario.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::password_hash::PasswordHasher as _;
use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use hdrhistogram::Histogram;
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};

use crate::load::new_histogram;
use crate::machine;

/// What a bare in-process run measured inside its window.
#[derive(Clone, Debug)]
pub struct BareResult {
    pub ops: u64,
    pub window: Duration,
    /// CPU time the harness used during the window (nothing else runs then).
    pub cpu_seconds: f64,
    /// Time per operation, in microseconds.
    pub latency: Histogram<u64>,
}

impl BareResult {
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.window.as_secs_f64()
    }

    /// Adds another run's figures to this one (one run measured in several slices).
    pub fn absorb(&mut self, other: Self) -> anyhow::Result<()> {
        self.ops += other.ops;
        self.window += other.window;
        self.cpu_seconds += other.cpu_seconds;
        self.latency
            .add(&other.latency)
            .context("Failed to merge histograms")
    }

    pub fn cpu_micros_per_op(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.ops.max(1) as f64
    }

    pub fn p50_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.50) as f64 / 1000.0
    }

    pub fn p99_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.99) as f64 / 1000.0
    }
}

/// Runs `op` on `threads` threads for `warmup + window`; counts and times the calls that
/// start and end inside the window, and the process's CPU time over it.
fn run_threads<F>(
    threads: usize,
    warmup: Duration,
    window: Duration,
    make_op: impl Fn() -> anyhow::Result<F> + Sync,
) -> anyhow::Result<BareResult>
where
    F: FnMut() -> anyhow::Result<()>,
{
    let begin = Instant::now();
    let window_start = begin + warmup;
    let window_end = window_start + window;
    let pid = std::process::id();
    let (per_thread, cpu) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<(u64, Histogram<u64>)> {
                    let mut op = make_op()?;
                    let mut hist = new_histogram()?;
                    let mut ops = 0;
                    loop {
                        let started = Instant::now();
                        if started >= window_end {
                            break;
                        }
                        op()?;
                        let finished = Instant::now();
                        if started >= window_start && finished <= window_end {
                            ops += 1;
                            let micros =
                                u64::try_from((finished - started).as_micros()).unwrap_or(u64::MAX);
                            hist.saturating_record(micros.max(1));
                        }
                    }
                    Ok((ops, hist))
                })
            })
            .collect();
        // Sample the CPU clock at the window's edges from this (sleeping) thread.
        let sample = |at: Instant| -> anyhow::Result<f64> {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            machine::cpu_seconds(pid)
        };
        let cpu = sample(window_start).and_then(|before| Ok(sample(window_end)? - before));
        let per_thread: Vec<_> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("A baseline thread panicked")))
            })
            .collect();
        (per_thread, cpu)
    });
    let mut ops = 0;
    let mut latency = new_histogram()?;
    for result in per_thread {
        let (n, hist) = result?;
        ops += n;
        latency.add(&hist).context("Failed to merge histograms")?;
    }
    Ok(BareResult {
        ops,
        window,
        cpu_seconds: cpu?,
        latency,
    })
}

/// A fresh RSA 2048 private key (DER), as the idp makes its signing keys.
pub fn signing_key() -> anyhow::Result<Vec<u8>> {
    let pair = RS256
        .generate_key_pair(2048)
        .context("Failed to generate an RSA key pair")?;
    Ok(josekit::jwk::KeyPair::to_der_private_key(&pair))
}

/// Bare RS256 signing of a client_credentials access token like the idp's (same header,
/// same claims, a fresh `jti` each time) with `der`, a [`signing_key`].
pub fn sign(
    der: &[u8],
    threads: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<BareResult> {
    let kid = "QKpN8x0f3sCkYVcR3Tq9oJd2WJ7h2b5mE1qkq8A0b1c";
    run_threads(threads, warmup, window, || {
        let signer = RS256
            .signer_from_der(der)
            .context("Failed to load the key")?;
        Ok(move || -> anyhow::Result<()> {
            let now = chrono::Utc::now().timestamp();
            let claims = json!({
                "iss": "http://127.0.0.1:3000",
                "sub": "c_8mJq2cXz5yHn1LwS0aRt7bK4",
                "aud": "http://127.0.0.1:4000",
                "exp": now + 900,
                "iat": now,
                "jti": uuid::Uuid::new_v4().to_string(),
                "client_id": "c_8mJq2cXz5yHn1LwS0aRt7bK4",
                "scope": "users:read",
            });
            let Value::Object(map) = claims else {
                anyhow::bail!("claims are an object");
            };
            let payload = JwtPayload::from_map(map)?;
            let mut header = JwsHeader::new();
            header.set_token_type("at+jwt");
            header.set_key_id(kid);
            let token = jwt::encode_with_signer(&payload, &header, &signer)?;
            std::hint::black_box(token);
            Ok(())
        })
    })
}

/// The idp's Argon2id: m=19456 KiB, t=2, p=1 (OWASP), version 0x13.
fn idp_argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(19_456, 2, 1, None)
        .map_err(|e| anyhow::anyhow!("Invalid Argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

const PASSWORD: &[u8] = b"correct horse battery staple";

/// The PHC string of [`PASSWORD`] with the idp's parameters, to verify against.
pub fn argon2_phc() -> anyhow::Result<String> {
    Ok(idp_argon2()?
        .hash_password(PASSWORD)
        .map_err(|e| anyhow::anyhow!("Failed to hash: {e}"))?
        .to_string())
}

/// Bare Argon2id verifications of a password against its PHC string: the work of one
/// password login, with each thread reusing one 19 MiB working buffer as the idp does
/// (`idp/src/passwords`), so the baseline is the computation alone.
pub fn argon2(
    phc: &str,
    threads: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<BareResult> {
    let argon = idp_argon2()?;
    run_threads(threads, warmup, window, || {
        let mut memory = vec![Block::new(); argon.params().block_count()];
        Ok(move || -> anyhow::Result<()> {
            let hash = PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("{e}"))?;
            let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
                anyhow::bail!("The PHC string lacks a salt or an output");
            };
            let params = Params::try_from(&hash).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut output = vec![0u8; expected.len()];
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password_into_with_memory(PASSWORD, salt.as_ref(), &mut output, &mut memory)
                .map_err(|e| anyhow::anyhow!("Hashing failed: {e}"))?;
            let computed = Output::new(&output).map_err(|e| anyhow::anyhow!("{e}"))?;
            anyhow::ensure!(computed == *expected, "The password did not verify");
            Ok(())
        })
    })
}

/// A bare axum hello-world server on its own multi-threaded runtime with `workers`
/// threads (as many as a service gets), so it does not share the load generator's.
pub struct HelloServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HelloServer {
    pub fn start(workers: usize) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("Failed to bind")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .context("Failed to start a runtime")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let app = axum::Router::new()
                    .route("/", axum::routing::get(|| async { "Hello, world!" }));
                if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                }
            });
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for HelloServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
