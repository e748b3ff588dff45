//! The one source of "now". Services take a [`Clock`] instead of calling
//! `Utc::now()` so tests can move time (token expiry, key lifecycles) without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

/// Wall-clock time, optionally shifted by an offset that tests control.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The real system clock.
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) by `by`, forwards or backwards.
    /// Only tests do this; production code never shifts its clock.
    pub fn shift(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_a_clone_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = clock.now();
        other.shift(Duration::hours(2));
        let moved = clock.now() - before;
        assert!(moved >= Duration::hours(2) && moved < Duration::hours(2) + Duration::seconds(5));
    }
}
