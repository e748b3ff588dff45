//! Where the crate reads "now": the system clock, or a function the service passes in
//! so that its tests can move time (expiry, key freshness) without sleeping.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// The time source of the key cache and the validator. Clones share the source.
#[derive(Clone, Default)]
pub struct Clock {
    source: Option<Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>>,
}

impl Clock {
    /// The real system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// "Now" is whatever `now` returns: a service's own injected clock, for example
    /// `Clock::from_fn(move || my_clock.now())`.
    pub fn from_fn(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self {
            source: Some(Arc::new(now)),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.source.as_ref().map_or_else(Utc::now, |now| now())
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.source.is_some() {
            "Clock(injected)"
        } else {
            "Clock(system)"
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_injected_clock_answers_with_its_function() {
        let at = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(Clock::from_fn(move || at).now(), at);
        let system = Clock::system().now();
        assert!((system - Utc::now()).num_seconds().abs() < 5);
    }
}
