//! The load generator: N keep-alive HTTP/1.1 connections, each sending one request at a
//! time (closed loop) or on a schedule (paced), recording the latency of every request
//! completed inside the measurement window into an HDR histogram, and counting errors.
//!
//! It is kept lean because it shares the machine's cores with the server it measures:
//! plain `hyper` connections (no pool, no redirects, no cookies), one request template
//! cloned per request, one histogram per connection merged at the end, and it runs on the
//! harness's single-threaded runtime.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One kind of request, sent over and over.
#[derive(Clone, Debug)]
pub struct RequestTemplate {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// Anything else counts as an error.
    pub expect: StatusCode,
}

impl RequestTemplate {
    pub fn get(path: &str) -> Self {
        Self {
            method: Method::GET,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
            expect: StatusCode::OK,
        }
    }

    pub fn post(path: &str, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            method: Method::POST,
            path: path.to_owned(),
            headers: vec![(CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body: body.into(),
            expect: StatusCode::OK,
        }
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> anyhow::Result<Self> {
        self.headers.push((
            name,
            HeaderValue::from_str(value).context("Invalid header value")?,
        ));
        Ok(self)
    }

    fn build(&self, host: &HeaderValue) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
        let mut request = hyper::Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(HOST, host.clone());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
            .body(Full::new(self.body.clone()))
            .context("Failed to build a request")
    }
}

/// How to load a server.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub request: RequestTemplate,
    pub connections: usize,
    /// Requests during the warm-up are sent but not recorded.
    pub warmup: Duration,
    pub duration: Duration,
    /// `Some(r)`: pace the connections to `r` requests per second in total, each
    /// latency measured from when the request was due (so a server that stalls cannot
    /// hide it by holding back the next request). `None`: as fast as answers come.
    pub rate: Option<f64>,
    /// A process whose CPU time over the window is recorded (the server under load).
    pub server_pid: Option<u32>,
}

/// What a load run measured inside its window.
#[derive(Clone, Debug)]
pub struct LoadResult {
    pub completed: u64,
    pub errors: u64,
    pub window: Duration,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
    /// The first error, to show what went wrong.
    pub first_error: Option<String>,
    /// CPU seconds the server used over the window, when its pid was given.
    pub server_cpu_seconds: Option<f64>,
    /// CPU seconds the harness itself (the load generator) used over the window.
    pub client_cpu_seconds: f64,
    /// CPU seconds the whole machine was busy over the window (everything, others too).
    pub machine_busy_seconds: f64,
}

impl LoadResult {
    fn empty(window: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            completed: 0,
            errors: 0,
            window,
            latency: new_histogram()?,
            first_error: None,
            server_cpu_seconds: None,
            client_cpu_seconds: 0.0,
            machine_busy_seconds: 0.0,
        })
    }

    pub fn per_second(&self) -> f64 {
        self.completed as f64 / self.window.as_secs_f64()
    }

    /// Adds another run's figures to this one (one run measured in several slices).
    pub fn absorb(&mut self, other: Self) -> anyhow::Result<()> {
        self.completed += other.completed;
        self.errors += other.errors;
        self.window += other.window;
        self.latency
            .add(&other.latency)
            .context("Failed to merge histograms")?;
        self.first_error = self.first_error.take().or(other.first_error);
        self.server_cpu_seconds = match (self.server_cpu_seconds, other.server_cpu_seconds) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.client_cpu_seconds += other.client_cpu_seconds;
        self.machine_busy_seconds += other.machine_busy_seconds;
        Ok(())
    }

    pub fn p50_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.50) as f64 / 1000.0
    }

    pub fn p99_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.99) as f64 / 1000.0
    }

    /// Server CPU time per completed request, in microseconds.
    /// Cores that processes other than the server and the harness kept busy, on
    /// average over the window: the noise of a shared machine.
    pub fn background_cores(&self) -> f64 {
        let ours = self.client_cpu_seconds + self.server_cpu_seconds.unwrap_or(0.0);
        ((self.machine_busy_seconds - ours) / self.window.as_secs_f64()).max(0.0)
    }

    pub fn server_cpu_micros_per_request(&self) -> Option<f64> {
        self.server_cpu_seconds
            .map(|cpu| cpu * 1e6 / self.completed.max(1) as f64)
    }
}

/// CPU seconds of `pids` between two instants, sampled by a task of its own.
/// The machine's busy time comes last.
async fn sample_cpu(pids: Vec<u32>, from: Instant, to: Instant) -> anyhow::Result<Vec<f64>> {
    let sample = || -> anyhow::Result<Vec<f64>> {
        let mut v: Vec<f64> = pids
            .iter()
            .map(|pid| crate::machine::cpu_seconds(*pid))
            .collect::<anyhow::Result<_>>()?;
        v.push(crate::machine::machine_busy_seconds()?);
        Ok(v)
    };
    tokio::time::sleep_until(from.into()).await;
    let before = sample()?;
    tokio::time::sleep_until(to.into()).await;
    let after = sample()?;
    Ok(after.iter().zip(before).map(|(a, b)| a - b).collect())
}

pub fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs to 60 s, three significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).context("Failed to create a histogram")
}

/// Runs the load and returns what was measured after the warm-up.
pub async fn run(spec: &LoadSpec) -> anyhow::Result<LoadResult> {
    let begin = Instant::now();
    let window_start = begin + spec.warmup;
    let window_end = window_start + spec.duration;
    let host = HeaderValue::from_str(&spec.addr.to_string()).context("Invalid host")?;
    let mut pids = vec![std::process::id()];
    pids.extend(spec.server_pid);
    let cpu = tokio::spawn(sample_cpu(pids, window_start, window_end));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..spec.connections.max(1) {
        let spec = spec.clone();
        let host = host.clone();
        tasks.spawn(async move {
            connection_loop(&spec, &host, index, begin, window_start, window_end).await
        });
    }
    let mut total = LoadResult::empty(spec.duration)?;
    while let Some(joined) = tasks.join_next().await {
        let one = joined.context("A load connection panicked")??;
        total.completed += one.completed;
        total.errors += one.errors;
        total
            .latency
            .add(&one.latency)
            .context("Failed to merge histograms")?;
        if total.first_error.is_none() {
            total.first_error = one.first_error;
        }
    }
    let cpu = cpu.await.context("The CPU sampler panicked")??;
    total.client_cpu_seconds = cpu.first().copied().unwrap_or_default();
    total.machine_busy_seconds = cpu.last().copied().unwrap_or_default();
    if spec.server_pid.is_some() {
        total.server_cpu_seconds = cpu.get(1).copied();
    }
    Ok(total)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("Failed to connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake failed")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn connection_loop(
    spec: &LoadSpec,
    host: &HeaderValue,
    index: usize,
    begin: Instant,
    window_start: Instant,
    window_end: Instant,
) -> anyhow::Result<LoadResult> {
    let mut result = LoadResult::empty(spec.duration)?;
    // Paced: this connection's share of the rate, its first slot staggered.
    let interval = spec
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(spec.connections.max(1) as f64 / r));
    let mut due = interval.map(|i| begin + i.mul_f64(index as f64 / spec.connections as f64));
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        let started = match (&mut due, interval) {
            (Some(slot), Some(interval)) => {
                let now = Instant::now();
                let started = if now > *slot + Duration::from_millis(1) {
                    // The server made us late: count from when the request was due.
                    *slot
                } else {
                    tokio::time::sleep_until((*slot).into()).await;
                    Instant::now()
                };
                *slot += interval;
                started
            }
            _ => Instant::now(),
        };
        if started >= window_end {
            break;
        }
        let outcome = send_one(spec, host, &mut sender).await;
        let finished = Instant::now();
        let counted = started >= window_start && finished <= window_end;
        match outcome {
            Ok(()) if counted => {
                result.completed += 1;
                let micros =
                    u64::try_from(finished.duration_since(started).as_micros()).unwrap_or(u64::MAX);
                result.latency.saturating_record(micros.max(1));
            }
            Ok(()) => {}
            Err(e) => {
                sender = None;
                if started >= window_start {
                    result.errors += 1;
                    if result.first_error.is_none() {
                        result.first_error = Some(format!("{e:#}"));
                    }
                }
                if finished >= window_end {
                    break;
                }
                // Do not spin on a server that refuses connections.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    Ok(result)
}

async fn send_one(
    spec: &LoadSpec,
    host: &HeaderValue,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
) -> anyhow::Result<()> {
    let conn = match sender {
        Some(conn) => conn,
        None => sender.insert(connect(spec.addr).await?),
    };
    conn.ready().await.context("Connection closed")?;
    let response = conn
        .send_request(spec.request.build(host)?)
        .await
        .context("Request failed")?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("Failed to read a response body")?
        .to_bytes();
    if status != spec.request.expect {
        let snippet = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        anyhow::bail!(
            "{} {} answered {status}: {snippet}",
            spec.request.method,
            spec.request.path
        );
    }
    Ok(())
}
