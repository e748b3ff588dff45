//! Key rotation (issue 4): the lifecycle through HTTP with a shifted clock, the `idp keys`
//! operations (through the library functions the CLI calls), the JWKS's caching headers,
//! and several instances on one database.

use std::time::Duration;

use chrono::Duration as Shift;
use idp::app::settings::Settings;
use idp::keys::lifecycle::{Change, KeyCommandError, KeyManager, KeyState, RotateMode};
use serde_json::Value;
use service_kit::clock::Clock;
use service_kit::testing::fresh_database;

use crate::helpers::{TestApp, decode_jwt, spawn_app_with_clock, verify_independently};

/// A long check interval, so the background task never ticks during a test: the test
/// ticks by hand. With it, pre-publication is 300 + 60 + 600 = 960 s and a retired key
/// stays max(900, 3600) + 300 + 60 + 600 = 4560 s.
const CHECK_INTERVAL: u64 = 600;
const PREPUBLICATION: i64 = 960;
const RETIRE_AFTER: i64 = 4560;
const ROTATION: i64 = 30 * 86_400;

fn quiet(settings: &mut Settings) {
    settings.key_check_interval_secs = CHECK_INTERVAL;
}

async fn spawn() -> TestApp {
    spawn_app_with_clock(fresh_database("idp").await, Clock::system(), quiet).await
}

async fn kids(app: &TestApp) -> Vec<String> {
    let jwks = app.get_json("/jwks").await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    decode_jwt(token).0["kid"].as_str().unwrap().to_owned()
}

/// The key manager exactly as `idp keys` builds it, on the app's database.
async fn cli_keys(app: &TestApp) -> KeyManager {
    let settings = Settings {
        database_url: app.database.url.clone(),
        keys_dir: app.database.path().join("keys"),
        key_check_interval_secs: CHECK_INTERVAL,
        ..Settings::default()
    };
    idp::cli::key_manager(&settings, app.clock.clone())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_scheduled_rotation_publishes_first_signs_later_and_keeps_the_old_key_until_its_tokens_expire()
 {
    let app = spawn().await;
    app.register("a@b.com").await;
    let first_token = app.login("a@b.com").await;
    let old = kid_of(&first_token);
    assert!(
        app.key_rotation.tick().await.unwrap().is_empty(),
        "nothing due"
    );

    // Past the staging time: a next key is published, tokens still use the old one.
    app.clock
        .shift(Shift::seconds(ROTATION - PREPUBLICATION + 5));
    let changes = app.key_rotation.tick().await.unwrap();
    let [Change::Staged { kid: new, .. }] = changes.as_slice() else {
        panic!("expected one staged key: {changes:?}");
    };
    let new = new.clone();
    assert_eq!(kids(&app).await, [old.clone(), new.clone()]);
    assert_eq!(kid_of(&app.login("a@b.com").await), old);

    // Just before activation nothing changes; at activation the new key signs.
    app.clock.shift(Shift::seconds(PREPUBLICATION - 10));
    assert!(app.key_rotation.tick().await.unwrap().is_empty());
    assert_eq!(kid_of(&app.login("a@b.com").await), old);
    app.clock.shift(Shift::seconds(10));
    let changes = app.key_rotation.tick().await.unwrap();
    assert_eq!(
        changes,
        [
            Change::Retired { kid: old.clone() },
            Change::Activated { kid: new.clone() }
        ]
    );
    let token = app.login("a@b.com").await;
    assert_eq!(kid_of(&token), new);
    let jwks = app.get_json("/jwks").await;
    assert!(verify_independently(&token, &jwks));
    assert!(
        verify_independently(&first_token, &jwks),
        "the retired key stays published"
    );

    // The retired key stays until its last tokens expired (plus margins), then goes.
    app.clock.shift(Shift::seconds(RETIRE_AFTER - 30));
    assert!(app.key_rotation.tick().await.unwrap().is_empty());
    assert_eq!(kids(&app).await, [new.clone(), old.clone()]);
    app.clock.shift(Shift::seconds(60));
    assert_eq!(
        app.key_rotation.tick().await.unwrap(),
        [Change::Removed { kid: old.clone() }]
    );
    assert_eq!(kids(&app).await, std::slice::from_ref(&new));

    let listed = app.key_rotation.manager().list().await.unwrap();
    let states: Vec<_> = listed.iter().map(|k| (k.kid.clone(), k.state)).collect();
    assert_eq!(states, [(old, KeyState::Removed), (new, KeyState::Current)]);
}

#[tokio::test]
async fn rotate_now_switches_at_once_and_keeps_the_old_key_published() {
    let app = spawn().await;
    app.register("a@b.com").await;
    let old_token = app.login("a@b.com").await;
    let old = kid_of(&old_token);

    let keys = cli_keys(&app).await;
    let changes = keys.rotate(RotateMode::Now).await.unwrap();
    let [
        Change::Retired { kid: retired },
        Change::Activated { kid: new },
    ] = changes.as_slice()
    else {
        panic!("unexpected changes {changes:?}");
    };
    assert_eq!(retired, &old);

    // The running instance picks it up on its next reload.
    app.key_rotation.tick().await.unwrap();
    let token = app.login("a@b.com").await;
    assert_eq!(&kid_of(&token), new);
    let jwks = app.get_json("/jwks").await;
    assert!(verify_independently(&token, &jwks));
    assert!(verify_independently(&old_token, &jwks));
    assert_eq!(kids(&app).await, [new.clone(), old]);
}

#[tokio::test]
async fn rotate_stages_a_key_that_signs_after_the_prepublication_window() {
    let app = spawn().await;
    app.register("a@b.com").await;
    let old = kid_of(&app.login("a@b.com").await);

    let keys = cli_keys(&app).await;
    let changes = keys.rotate(RotateMode::Staged).await.unwrap();
    let [Change::Staged { kid: new, .. }] = changes.as_slice() else {
        panic!("unexpected changes {changes:?}");
    };
    assert!(matches!(
        keys.rotate(RotateMode::Staged).await,
        Err(KeyCommandError::AlreadyStaged(_))
    ));
    app.key_rotation.tick().await.unwrap();
    assert_eq!(kids(&app).await, [old.clone(), new.clone()]);
    assert_eq!(kid_of(&app.login("a@b.com").await), old);

    app.clock.shift(Shift::seconds(PREPUBLICATION + 1));
    app.key_rotation.tick().await.unwrap();
    assert_eq!(&kid_of(&app.login("a@b.com").await), new);
}

#[tokio::test]
async fn revoke_drops_a_key_from_the_jwks_at_once() {
    let app = spawn().await;
    app.register("a@b.com").await;
    let old = kid_of(&app.login("a@b.com").await);

    let keys = cli_keys(&app).await;
    let changes = keys.revoke(&old).await.unwrap();
    let [
        Change::Revoked { kid: revoked },
        Change::Activated { kid: new },
    ] = changes.as_slice()
    else {
        panic!("unexpected changes {changes:?}");
    };
    assert_eq!(revoked, &old);
    app.key_rotation.tick().await.unwrap();
    assert_eq!(kids(&app).await, std::slice::from_ref(new));
    assert_eq!(&kid_of(&app.login("a@b.com").await), new);

    // The private key is destroyed, and a removed or unknown kid cannot be revoked.
    let (sealed,): (String,) =
        sqlx::query_as("SELECT private_key_enc FROM signing_keys WHERE kid = $1")
            .bind(&old)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(sealed.is_empty());
    assert!(matches!(
        keys.revoke(&old).await,
        Err(KeyCommandError::UnknownKid(_))
    ));
    assert!(matches!(
        keys.revoke("nope").await,
        Err(KeyCommandError::UnknownKid(_))
    ));

    // Each transition is in the audit trail, with the kid and who did it.
    let events: Vec<(String, String)> = sqlx::query_as(
        "SELECT event, detail FROM audit_events WHERE event LIKE 'signing_key_%' ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        events,
        [
            (
                "signing_key_revoked".to_owned(),
                format!("kid={old} by=operator")
            ),
            (
                "signing_key_activated".to_owned(),
                format!("kid={new} by=operator")
            ),
        ]
    );

    // Revoking a retired key (after an emergency rotation) keeps the current one.
    keys.rotate(RotateMode::Now).await.unwrap();
    keys.revoke(new).await.unwrap();
    app.key_rotation.tick().await.unwrap();
    let left = kids(&app).await;
    assert_eq!(left.len(), 1);
    assert_ne!(&left[0], new);
}

#[tokio::test]
async fn the_jwks_has_an_etag_and_a_max_age_from_the_schedule() {
    let app = spawn_app_with_clock(fresh_database("idp").await, Clock::system(), |s| {
        s.jwks_max_age_secs = 120;
    })
    .await;
    let response = app.client.get(app.url("/jwks")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=120");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let cached = app
        .client
        .get(app.url("/jwks"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(cached.headers()["etag"], etag.as_str());
    assert!(cached.bytes().await.unwrap().is_empty());

    let other = app
        .client
        .get(app.url("/jwks"))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    // A new key set has a new tag.
    app.key_rotation
        .manager()
        .rotate(RotateMode::Staged)
        .await
        .unwrap();
    app.key_rotation.tick().await.unwrap();
    let after = app
        .client
        .get(app.url("/jwks"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
    assert_ne!(after.headers()["etag"], etag.as_str());
    let body: Value = after.json().await.unwrap();
    assert_eq!(body["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_max_age_longer_than_the_prepublication_window_refuses_to_start() {
    let Err((error, _)) = crate::helpers::try_spawn_app_with(fresh_database("idp").await, |s| {
        s.jwks_max_age_secs = 3600;
        s.key_prepublication_secs = Some(600);
    })
    .await
    else {
        panic!("started with max-age > pre-publication");
    };
    assert!(
        format!("{error:#}").contains("IDP_KEY_PREPUBLICATION_SECS"),
        "{error:#}"
    );
}

#[tokio::test]
async fn of_two_instances_exactly_one_applies_a_transition_and_both_serve_the_same_jwks() {
    let database = fresh_database("idp").await;
    let clock = Clock::system();
    let a = spawn_app_with_clock(database.clone(), clock.clone(), quiet).await;
    let b = spawn_app_with_clock(database, clock.clone(), quiet).await;
    assert_eq!(kids(&a).await, kids(&b).await);

    clock.shift(Shift::seconds(ROTATION - PREPUBLICATION + 5));
    let (from_a, from_b) = tokio::join!(a.key_rotation.tick(), b.key_rotation.tick());
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    assert_eq!(
        usize::from(!from_a.is_empty()) + usize::from(!from_b.is_empty()),
        1,
        "exactly one instance staged: {from_a:?} {from_b:?}"
    );
    let staged: Vec<_> = from_a.iter().chain(&from_b).collect();
    assert!(matches!(staged.as_slice(), [Change::Staged { .. }]));

    // The other one picks it up on its next tick; both publish the same keys.
    let (x, y) = tokio::join!(a.key_rotation.tick(), b.key_rotation.tick());
    assert!(x.unwrap().is_empty() && y.unwrap().is_empty());
    assert_eq!(a.get_json("/jwks").await, b.get_json("/jwks").await);
    assert_eq!(kids(&a).await.len(), 2);

    // Promotion: both sign with the new key, and a token from one checks against the
    // other's JWKS.
    clock.shift(Shift::seconds(PREPUBLICATION));
    let (x, y) = tokio::join!(a.key_rotation.tick(), b.key_rotation.tick());
    assert_eq!(
        x.unwrap().len() + y.unwrap().len(),
        2,
        "retired + activated once"
    );
    a.key_rotation.tick().await.unwrap();
    b.key_rotation.tick().await.unwrap();
    a.register("a@b.com").await;
    let (ta, tb) = (a.login("a@b.com").await, b.login("a@b.com").await);
    assert_eq!(kid_of(&ta), kid_of(&tb));
    let jwks_a = a.get_json("/jwks").await;
    assert_eq!(jwks_a, b.get_json("/jwks").await);
    assert!(verify_independently(&tb, &jwks_a));
    let (database, _) = tokio::join!(a.stop(), b.stop());
    drop(database);
}

#[tokio::test]
async fn another_instance_picks_up_a_rotation_within_seconds() {
    let database = fresh_database("idp").await;
    let a = spawn_app_with_clock(database.clone(), Clock::system(), quiet).await;
    // b's background task reloads every second.
    let b = spawn_app_with_clock(database, Clock::system(), |s| {
        s.key_check_interval_secs = 1;
    })
    .await;
    a.key_rotation
        .manager()
        .rotate(RotateMode::Now)
        .await
        .unwrap();
    a.key_rotation.tick().await.unwrap();
    let wanted = a.get_json("/jwks").await;
    let mut seen = b.get_json("/jwks").await;
    for _ in 0..50 {
        if seen == wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        seen = b.get_json("/jwks").await;
    }
    assert_eq!(seen, wanted, "b reloaded a's rotation");
    b.register("a@b.com").await;
    assert_eq!(
        kid_of(&b.login("a@b.com").await),
        kid_of(&a.login("a@b.com").await)
    );
}
