//! Scenarios 6 and 7: how fast a revocation at the idp reaches the resource server, and
//! what a large revocation list costs `/users/me`.
//!
//! - 6: a user signs out (`POST /auth/logout`); from the idp's answer, the harness asks
//!   the resource server with the signed-out session's access token until it is refused,
//!   and records how long that took (the SET's trip through the outbox, the push, its
//!   verification and the index update).
//! - 7: `/users/me` on a resource server holding [`SEEDED_ENTRIES`] revocation entries,
//!   against one holding none, taking turns.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use sqlx::AnyPool;

use crate::services::ServiceConfig;

/// Revocation entries the loaded resource server holds in scenario 7.
pub const SEEDED_ENTRIES: usize = 100_000;
/// The longest the harness waits for one refusal before calling it lost.
const GIVE_UP: Duration = Duration::from_secs(10);
/// The environment variable `idp streams create --authorization-env` reads.
const AUTHORIZATION_VAR: &str = "BENCH_EVENTS_AUTHORIZATION";

/// Scenario 6's result.
#[derive(Clone, Debug)]
pub struct Latency {
    pub rounds: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Registers the resource server at `rs_url` as a receiver of the idp's events, with
/// `authorization` (what the resource server expects in `RS_EVENTS_AUTHORIZATION`).
pub fn connect(
    idp: &ServiceConfig,
    rs_url: &str,
    audience: &str,
    authorization: &str,
) -> anyhow::Result<()> {
    let mut idp = idp.clone();
    idp.env
        .push((AUTHORIZATION_VAR.to_owned(), authorization.to_owned()));
    idp.run_command(&[
        "streams",
        "create",
        "--name",
        "resource-server",
        "--push-url",
        &format!("{rs_url}/events"),
        "--audience",
        audience,
        "--authorization-env",
        AUTHORIZATION_VAR,
    ])?;
    Ok(())
}

/// `rounds` sign-outs, each timed from the idp's answer to the resource server's first
/// 401 for that session's token.
pub async fn latency(
    http: &reqwest::Client,
    issuer: &str,
    rs_url: &str,
    credentials: &str,
    rounds: usize,
) -> anyhow::Result<Latency> {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let token = &log_in(http, issuer, credentials).await?;
        let me = format!("{rs_url}/users/me");
        http.get(&me)
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()
            .context("The fresh token was refused before the sign-out")?;
        http.post(format!("{issuer}/auth/logout"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()
            .context("Sign-out failed")?;
        let answered = Instant::now();
        loop {
            let status = http.get(&me).bearer_auth(token).send().await?.status();
            if status == reqwest::StatusCode::UNAUTHORIZED {
                break;
            }
            if answered.elapsed() > GIVE_UP {
                bail!("The resource server still accepted a signed-out token after {GIVE_UP:?}");
            }
        }
        samples.push(answered.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[index]
    };
    Ok(Latency {
        rounds,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: samples.last().copied().unwrap_or_default(),
    })
}

/// A fresh session's access token, from `POST /auth/login`.
pub async fn log_in(
    http: &reqwest::Client,
    issuer: &str,
    credentials: &str,
) -> anyhow::Result<String> {
    let login: Value = http
        .post(format!("{issuer}/auth/login"))
        .header("content-type", "application/json")
        .body(credentials.to_owned())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(login["access_token"]
        .as_str()
        .context("No access token from login")?
        .to_owned())
}

/// Writes [`SEEDED_ENTRIES`] session revocations into a resource server's database (its
/// `jwt-auth` event store, created by its first start), as if that many sign-outs had
/// been received; the resource server loads them when it starts.
pub async fn seed(database_url: &str) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(database_url)
        .await
        .context("Failed to connect to the resource server's database")?;
    let now = chrono::Utc::now().timestamp();
    // Received an hour ago: a list that grew over time, which the resource server loads
    // at start and, older than its sync overlap, does not read again every 5 s.
    let at = now - 3600;
    let mut tx = pool.begin().await?;
    for chunk in (0..SEEDED_ENTRIES).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "('session', 'bench-sid-{i}', {at}, 0, {}, {at})",
                    at + 86_400
                )
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO jwt_auth_revocations (kind, id, at, disabled, expires_at, updated_at) \
             VALUES {}",
            values.join(", ")
        ))
        .execute(&mut *tx)
        .await
        .context("Failed to seed revocation entries")?;
    }
    tx.commit().await?;
    pool.close().await;
    Ok(())
}
