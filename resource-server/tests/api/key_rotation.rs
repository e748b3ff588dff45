//! Key rotation end to end (issue 4): the real idp rotates its signing keys on schedule
//! while a load generator keeps calling the resource server with fresh tokens, and two
//! idp instances on one database serve tokens the resource server accepts alike.
//!
//! The idp and the resource server share one [`Clock`] that the drill moves forward a
//! step at a time, so a month-long schedule runs in seconds. The load pauses while the
//! clock jumps (a request in flight would otherwise age by a whole step at once).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Duration as Shift;
use idp::keys::lifecycle::{Change, RotateMode};
use jwt_auth::JwksStatus;
use service_kit::clock::Clock;
use service_kit::testing::fresh_database;
use tokio::sync::RwLock;

use crate::helpers::{TestApp, spawn_app_with, spawn_app_with_clock};
use crate::real_idp::{RealIdp, exp_of, kid_of, login, spawn_idp};

const EMAIL: &str = "drill@example.com";
/// The shortest rotation period the idp accepts. With the idp's defaults and the drill
/// ticking by hand (a 600 s check interval), a key is staged 960 s before it signs and
/// a retired key stays published 4560 s.
const ROTATION: u64 = 3600;
/// How far the clock jumps at a time: a fifth of the JWKS's `max-age` (300 s).
const STEP: i64 = 60;
/// The resource server's default JWKS freshness (the idp's `max-age`).
const JWKS_MAX_AGE: i64 = 300;
/// The resource server's default clock leeway.
const LEEWAY: i64 = 30;
const LOADERS: usize = 3;

#[derive(Default)]
struct Load {
    ok: AtomicU64,
    failures: Mutex<Vec<String>>,
    kids: Mutex<BTreeSet<String>>,
    stop: AtomicBool,
}

impl Load {
    fn done(&self) -> u64 {
        self.ok.load(Ordering::Acquire) + self.failures.lock().unwrap().len() as u64
    }
}

/// One load generator: log in for a fresh token, call `GET /users/me` with it, again.
/// It holds the gate's read side for each round, so the clock never jumps mid-request.
async fn generate_load(idp: String, me: String, gate: Arc<RwLock<()>>, load: Arc<Load>) {
    let client = reqwest::Client::new();
    while !load.stop.load(Ordering::Acquire) {
        let _round = gate.read().await;
        let outcome = match login(&client, &idp, EMAIL).await {
            Err(e) => Err(e),
            Ok(token) => {
                load.kids.lock().unwrap().insert(kid_of(&token));
                match client.get(&me).bearer_auth(&token).send().await {
                    Ok(r) if r.status() == 200 => Ok(()),
                    Ok(r) => Err(format!(
                        "/users/me answered {} for kid {}",
                        r.status(),
                        kid_of(&token)
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match outcome {
            Ok(()) => load.ok.fetch_add(1, Ordering::AcqRel),
            Err(e) => {
                load.failures.lock().unwrap().push(e);
                0
            }
        };
    }
}

struct Drill {
    clock: Clock,
    idp: RealIdp,
    rs: TestApp,
    gate: Arc<RwLock<()>>,
    load: Arc<Load>,
}

impl Drill {
    /// Lets the load make progress, then (with the load paused) moves the clock one
    /// step and applies whatever the schedule says is due, as the idp's background
    /// task would.
    async fn step(&self) -> Vec<Change> {
        let target = self.load.done() + LOADERS as u64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.load.done() < target {
            assert!(tokio::time::Instant::now() < deadline, "the load stalled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _paused = self.gate.write().await;
        self.clock.shift(Shift::seconds(STEP));
        self.idp.key_rotation.tick().await.unwrap()
    }

    /// Steps until a transition `wanted` happens; returns its kid.
    async fn step_until(&self, wanted: fn(&Change) -> Option<&String>) -> String {
        for _ in 0..200 {
            if let Some(kid) = self.step().await.iter().find_map(wanted) {
                return kid.clone();
            }
        }
        panic!("the transition never came");
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    async fn me(&self, token: &str) -> u16 {
        self.rs
            .get("/users/me", Some(token))
            .await
            .status()
            .as_u16()
    }

    async fn keys_at_the_resource_server(&self) -> usize {
        match self.rs.validator.keys().status().await {
            JwksStatus::Loaded { keys, .. } => keys,
            JwksStatus::NotFetched => 0,
        }
    }
}

fn staged(change: &Change) -> Option<&String> {
    match change {
        Change::Staged { kid, .. } => Some(kid),
        _ => None,
    }
}

fn activated(change: &Change) -> Option<&String> {
    match change {
        Change::Activated { kid } => Some(kid),
        _ => None,
    }
}

fn removed(change: &Change) -> Option<&String> {
    match change {
        Change::Removed { kid } => Some(kid),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_two_scheduled_rotations_and_a_revocation_fail_no_request() {
    let clock = Clock::system();
    let idp = spawn_idp(fresh_database("rs_idp").await, clock.clone(), |s| {
        s.key_rotation_period_secs = ROTATION;
        s.key_check_interval_secs = 600;
    })
    .await;
    let rs = spawn_app_with_clock(clock.clone(), |s| s.issuer = idp.issuer.clone()).await;
    idp.register(EMAIL).await;
    let first = kid_of(&idp.login(EMAIL).await);

    let gate = Arc::new(RwLock::new(()));
    let load = Arc::new(Load::default());
    let loaders: Vec<_> = (0..LOADERS)
        .map(|_| {
            tokio::spawn(generate_load(
                idp.address.clone(),
                rs.url("/users/me"),
                Arc::clone(&gate),
                Arc::clone(&load),
            ))
        })
        .collect();
    let drill = Drill {
        clock,
        idp,
        rs,
        gate,
        load,
    };

    // 1. The first scheduled rotation stages a key that does not sign yet...
    let second = drill.step_until(staged).await;
    assert_eq!(kid_of(&drill.idp.login(EMAIL).await), first);

    // ...and by the time it signs, the resource server has long had it.
    let mut last_of_first;
    let mut keys_before_activation;
    loop {
        last_of_first = drill.idp.login(EMAIL).await;
        keys_before_activation = drill.keys_at_the_resource_server().await;
        if drill.step().await.iter().find_map(activated) == Some(&second) {
            break;
        }
    }
    assert_eq!(
        keys_before_activation, 2,
        "the staged key was cached before it signed"
    );
    assert_eq!(kid_of(&last_of_first), first);
    assert_eq!(kid_of(&drill.idp.login(EMAIL).await), second);

    // 2. A token the retired key signed keeps validating until it expires.
    let expires = exp_of(&last_of_first);
    while drill.now() < expires {
        assert_eq!(
            drill.me(&last_of_first).await,
            200,
            "retired key, {}s before exp",
            expires - drill.now()
        );
        drill.step().await;
    }
    while drill.now() <= expires + LEEWAY {
        drill.step().await;
    }
    assert_eq!(drill.me(&last_of_first).await, 401, "expired");

    // 3. The second scheduled rotation.
    let third = drill.step_until(staged).await;
    let mut last_of_second;
    loop {
        last_of_second = drill.idp.login(EMAIL).await;
        if drill.step().await.iter().find_map(activated) == Some(&third) {
            break;
        }
    }
    assert_eq!(kid_of(&last_of_second), second);
    assert_eq!(drill.me(&last_of_second).await, 200);

    // 4. The retired second key is revoked (say it leaked): its unexpired token fails
    //    once the resource server's cache has refreshed, within one JWKS lifetime.
    drill
        .idp
        .key_rotation
        .manager()
        .revoke(&second)
        .await
        .unwrap();
    drill.idp.key_rotation.tick().await.unwrap();
    let revoked_at = drill.now();
    while drill.me(&last_of_second).await == 200 {
        assert!(
            drill.now() - revoked_at <= JWKS_MAX_AGE + 2 * STEP,
            "the revoked key still validates {}s later",
            drill.now() - revoked_at
        );
        drill.step().await;
    }
    assert!(
        drill.now() < exp_of(&last_of_second),
        "refused for the revoked key, not for age"
    );

    // 5. The first key is removed on schedule, and the resource server drops it too.
    assert_eq!(drill.step_until(removed).await, first);
    let removed_at = drill.now();
    while drill.keys_at_the_resource_server().await != 1 {
        assert!(
            drill.now() - removed_at <= JWKS_MAX_AGE + 2 * STEP,
            "the removed key is still cached"
        );
        drill.step().await;
    }

    drill.load.stop.store(true, Ordering::Release);
    for loader in loaders {
        loader.await.unwrap();
    }
    let failures = drill.load.failures.lock().unwrap().clone();
    let ok = drill.load.ok.load(Ordering::Acquire);
    eprintln!("rotation drill: {ok} requests, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} failed: {failures:?}",
        failures.len(),
        ok
    );
    assert!(ok >= 100, "only {ok} requests");
    let kids = drill.load.kids.lock().unwrap().clone();
    assert_eq!(
        kids,
        BTreeSet::from([first, second, third]),
        "the load saw all three keys sign"
    );
}

#[tokio::test]
async fn tokens_from_either_of_two_idp_instances_on_one_database_validate() {
    // Two instances behind one issuer URL, as behind a load balancer; the resource
    // server fetches the JWKS from the first.
    let database = fresh_database("rs_idp").await;
    let a = spawn_idp(database.clone(), Clock::system(), |_| {}).await;
    let b = spawn_idp(database, Clock::system(), |s| {
        s.issuer = a.issuer.clone();
        s.key_check_interval_secs = 1;
    })
    .await;
    let rs = spawn_app_with(|s| s.issuer = a.issuer.clone()).await;
    a.register(EMAIL).await;
    let (from_a, from_b) = (a.login(EMAIL).await, b.login(EMAIL).await);
    assert_eq!(kid_of(&from_a), kid_of(&from_b));
    assert_eq!(rs.get("/users/me", Some(&from_a)).await.status(), 200);
    assert_eq!(rs.get("/users/me", Some(&from_b)).await.status(), 200);

    // An emergency rotation at a: b signs with the new key within seconds, and the
    // resource server picks the key up through its unknown-kid refetch.
    a.key_rotation
        .manager()
        .rotate(RotateMode::Now)
        .await
        .unwrap();
    a.key_rotation.tick().await.unwrap();
    let new = kid_of(&a.login(EMAIL).await);
    assert_ne!(new, kid_of(&from_a));
    let mut from_b = b.login(EMAIL).await;
    for _ in 0..50 {
        if kid_of(&from_b) == new {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        from_b = b.login(EMAIL).await;
    }
    assert_eq!(kid_of(&from_b), new, "b signs with the key a rotated to");
    rs.advance(31); // past the resource server's refetch cooldown since its first fetch
    assert_eq!(rs.get("/users/me", Some(&from_b)).await.status(), 200);
    assert_eq!(
        rs.get("/users/me", Some(&from_a)).await.status(),
        200,
        "the old key still validates"
    );
}
