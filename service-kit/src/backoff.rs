//! Exponential backoff for work retried in the background (the idp's outboxes).

/// The wait after the `attempts`-th failure: `first` seconds, doubling with each
/// further failure, at most `longest`.
pub fn delay_secs(first: i64, longest: i64, attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    first.saturating_mul(1 << doublings).min(longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_longest() {
        assert_eq!(delay_secs(60, 3600, 1), 60);
        assert_eq!(delay_secs(60, 3600, 2), 120);
        assert_eq!(delay_secs(60, 3600, 4), 480);
        assert_eq!(delay_secs(60, 3600, 7), 3600);
        assert_eq!(delay_secs(60, 3600, 100), 3600);
        assert_eq!(delay_secs(5, 600, 0), 5);
    }
}
