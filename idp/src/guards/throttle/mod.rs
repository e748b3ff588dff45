//! Throttling of credential checks, shared by every instance on one database (the
//! `auth_failures` table). Keys are `account:<sha256 of the normalised email>` (the
//! submitted email, whether or not an account has it, so a lock says nothing about
//! existence, and no submitted text is stored), `ip:<address>` (failed sign-ins and
//! client authentications) and `register-ip:<address>` (failed registrations).
//!
//! A key with `max_failures` failures in a fixed window of `window_secs` is locked for
//! `lock_secs`, doubled for each further failure up to `max_lock_secs`; failures while
//! locked are not counted, so a lock always ends `max_lock_secs` at most after the last
//! counted failure: never a permanent lockout.
//!
//! Successes can be limited too, by a [`Rate`] with a burst: `accounts-ip:<address>`
//! (accounts created from one address).

pub mod store;

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use service_kit::clock::Clock;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use crate::accounts::email::Email;

/// How many failures a key may have, and how long it is locked after that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub max_failures: u32,
    pub window_secs: u64,
    pub lock_secs: u64,
    pub max_lock_secs: u64,
}

impl Policy {
    /// The lock earned by the `failures`-th failure in a window, if any.
    pub fn lock_for(&self, failures: i64) -> Option<u64> {
        let over = failures - i64::from(self.max_failures);
        if over < 0 {
            return None;
        }
        let doublings = u32::try_from(over.min(32)).unwrap_or(32);
        Some(
            self.lock_secs
                .saturating_mul(1u64 << doublings)
                .min(self.max_lock_secs),
        )
    }
}

/// A sustained rate with a burst, by the generic cell rate algorithm: `burst` at once,
/// then one every `3600 / per_hour` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_hour: u32,
    pub burst: u32,
}

impl Rate {
    fn interval_secs(&self) -> i64 {
        3600 / i64::from(self.per_hour.max(1))
    }

    /// How far ahead of now a key's theoretical arrival time may be and still take one.
    fn tolerance_secs(&self) -> i64 {
        self.interval_secs() * i64::from(self.burst.saturating_sub(1))
    }
}

/// The policies of each kind of key.
#[derive(Clone, Debug)]
pub struct Policies {
    pub account: Policy,
    pub ip: Policy,
    /// Failed registrations per address.
    pub registration: Policy,
    /// Accounts created per address.
    pub accounts_created: Rate,
}

/// Two failures in 15 minutes lock for a minute: tests reach a lock in two steps.
#[cfg(test)]
pub const STRICT: Policy = Policy {
    max_failures: 2,
    window_secs: 900,
    lock_secs: 60,
    max_lock_secs: 900,
};

#[cfg(test)]
impl Policies {
    /// `policy` for every kind of key.
    pub fn uniform(policy: Policy) -> Self {
        Self {
            account: policy,
            ip: policy,
            registration: policy,
            accounts_created: Rate {
                per_hour: 60,
                burst: 2,
            },
        }
    }
}

/// Which counter.
#[derive(Clone, Copy, Debug)]
pub enum Key<'a> {
    /// The submitted email, as typed.
    Account(&'a str),
    Ip(IpAddr),
    RegisterIp(IpAddr),
    AccountsCreated(IpAddr),
    /// Password reset mails requested for the submitted email, as typed.
    ResetRequests(&'a str),
    ResetIp(IpAddr),
    /// Verification mails asked for by an account (its user id).
    VerificationRequests(&'a str),
    /// Failed second steps of an account's sign-ins (its user id).
    SecondFactor(&'a str),
}

impl Key<'_> {
    fn stored(&self) -> String {
        match self {
            Self::Account(email) => format!("account:{}", email_digest(email)),
            Self::ResetRequests(email) => format!("reset:{}", email_digest(email)),
            Self::ResetIp(ip) => format!("reset-ip:{}", canonical(*ip)),
            Self::VerificationRequests(user_id) => format!("verify:{user_id}"),
            Self::SecondFactor(user_id) => format!("second-factor:{user_id}"),
            Self::Ip(ip) => format!("ip:{}", canonical(*ip)),
            Self::RegisterIp(ip) => format!("register-ip:{}", canonical(*ip)),
            Self::AccountsCreated(ip) => format!("accounts-ip:{}", canonical(*ip)),
        }
    }
}

/// The submitted email under the same normalisation as registration, so case variants
/// share one counter (malformed input is normalised the same way for symmetry), hashed
/// so no submitted text is stored.
fn email_digest(email: &str) -> String {
    let normalised = Email::parse(email)
        .map(|e| e.as_ref().to_owned())
        .unwrap_or_else(|_| email.trim().to_lowercase());
    URL_SAFE_NO_PAD.encode(Sha256::digest(normalised.as_bytes()))
}

/// IPv4-mapped IPv6 addresses count as their IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What the throttle holds on one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyState {
    /// Seconds until its lock ends, if it is locked now.
    pub locked_for: Option<u64>,
    /// Whether it has a counter at all: a successful sign-in has something to reset.
    pub recorded: bool,
}

#[derive(Clone)]
pub struct Throttle {
    pool: AnyPool,
    clock: Clock,
    policies: Arc<Policies>,
}

impl Throttle {
    pub fn new(pool: AnyPool, clock: Clock, policies: Policies) -> Self {
        Self {
            pool,
            clock,
            policies: Arc::new(policies),
        }
    }

    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// Seconds until `key`'s lock ends, if it is locked now.
    pub async fn locked(&self, key: Key<'_>) -> anyhow::Result<Option<u64>> {
        let [state] = self.states([key]).await?;
        Ok(state.locked_for)
    }

    /// What is on record for each of `keys`, in one database read (a sign-in checks
    /// two keys on every attempt).
    pub async fn states<const N: usize>(
        &self,
        keys: [Key<'_>; N],
    ) -> anyhow::Result<[KeyState; N]> {
        let stored = keys.map(|key| key.stored());
        let rows = store::locks(&self.pool, &stored).await?;
        let now = self.clock.now().timestamp();
        Ok(stored.map(|key| {
            rows.iter()
                .find(|(k, _)| *k == key)
                .map_or_else(KeyState::default, |&(_, until)| KeyState {
                    locked_for: (until > now).then(|| u64::try_from(until - now).unwrap_or(1)),
                    recorded: true,
                })
        }))
    }

    /// Counts a failure of `key` under `policy`; the lock it earned, in seconds, if any.
    pub async fn fail(&self, key: Key<'_>, policy: &Policy) -> anyhow::Result<Option<u64>> {
        let stored = key.stored();
        let now = self.clock.now().timestamp();
        let window = i64::try_from(policy.window_secs).unwrap_or(i64::MAX);
        let failures =
            store::count_failure(&self.pool, &stored, now, now.saturating_sub(window)).await?;
        let Some(lock) = policy.lock_for(failures) else {
            return Ok(None);
        };
        let until = now.saturating_add(i64::try_from(lock).unwrap_or(i64::MAX));
        store::lock(&self.pool, &stored, until).await?;
        Ok(Some(lock))
    }

    /// Takes one of `key`'s allowance under `rate`: `None` if taken, otherwise the seconds
    /// until one is free again.
    pub async fn take(&self, key: Key<'_>, rate: &Rate) -> anyhow::Result<Option<u64>> {
        let stored = key.stored();
        let now = self.clock.now().timestamp();
        let (interval, tolerance) = (rate.interval_secs(), rate.tolerance_secs());
        if store::take(&self.pool, &stored, now, interval, tolerance).await? {
            return Ok(None);
        }
        let tat = store::arrival_time(&self.pool, &stored)
            .await?
            .unwrap_or(now);
        let wait = tat.saturating_sub(tolerance).saturating_sub(now).max(1);
        Ok(Some(u64::try_from(wait).unwrap_or(1)))
    }

    /// Gives back what [`Throttle::take`] took, for an attempt that came to nothing.
    pub async fn give_back(&self, key: Key<'_>, rate: &Rate) -> anyhow::Result<()> {
        store::give_back(&self.pool, &key.stored(), rate.interval_secs()).await
    }

    /// Forgets `key`'s failures.
    pub async fn reset(&self, key: Key<'_>) -> anyhow::Result<()> {
        store::reset(&self.pool, &key.stored()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_from_the_limit_and_are_capped() {
        let policy = Policy {
            max_failures: 5,
            window_secs: 900,
            lock_secs: 60,
            max_lock_secs: 900,
        };
        let locks: Vec<_> = (1..=10).map(|n| policy.lock_for(n)).collect();
        assert_eq!(
            locks,
            [
                None,
                None,
                None,
                None,
                Some(60),
                Some(120),
                Some(240),
                Some(480),
                Some(900),
                Some(900)
            ]
        );
        assert_eq!(policy.lock_for(i64::MAX), Some(900));
    }

    #[tokio::test]
    async fn states_reads_each_key_in_order_in_one_go() {
        let test_db = service_kit::testing::fresh_database("idp_throttle").await;
        let db = service_kit::db::Database::connect(&test_db.url, 2)
            .await
            .unwrap();
        db.migrate(&crate::storage::MIGRATIONS).await.unwrap();
        let policy = STRICT;
        let throttle = Throttle::new(db.pool.clone(), Clock::system(), Policies::uniform(policy));
        let ip = Key::Ip("192.0.2.1".parse().unwrap());
        let failed = Key::Account("failed@example.com");
        let clean = Key::Account("clean@example.com");
        for _ in 0..2 {
            throttle.fail(ip, &policy).await.unwrap();
        }
        throttle.fail(failed, &policy).await.unwrap();

        let [by_ip, by_failed, by_clean] = throttle.states([ip, failed, clean]).await.unwrap();
        assert!(by_ip.recorded);
        assert!(matches!(by_ip.locked_for, Some(1..=60)));
        assert_eq!(
            by_failed,
            KeyState {
                locked_for: None,
                recorded: true
            }
        );
        assert_eq!(by_clean, KeyState::default());
        // The same key twice reads the same.
        let [a, b] = throttle.states([failed, failed]).await.unwrap();
        assert_eq!(a, b);
        throttle.reset(failed).await.unwrap();
        assert_eq!(
            throttle.states([failed]).await.unwrap(),
            [KeyState::default()]
        );
    }

    #[test]
    fn account_keys_hide_the_email_and_ignore_case() {
        let a = Key::Account(" Alice@Example.com").stored();
        assert_eq!(a, Key::Account("alice@example.com").stored());
        assert!(!a.contains("alice"));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(Key::Ip(mapped).stored(), "ip:10.0.0.1");
    }
}
