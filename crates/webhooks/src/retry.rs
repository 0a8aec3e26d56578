//! How long to wait before the next attempt of a delivery: exponential backoff with full
//! jitter (a uniformly random wait between zero and the exponential bound), so receivers that
//! come back are not hit by every endpoint's retry at once.

use std::time::Duration;

use rand::Rng;

/// The bound of the wait after failed attempt `attempt` (1, 2, 3 …): `base · 2^(attempt-1)`,
/// at most `cap`.
pub fn bound(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let doublings = attempt.saturating_sub(1).min(32);
    base.saturating_mul(1u32 << doublings.min(31)).min(cap)
}

/// A wait drawn uniformly from zero to [`bound`].
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let bound = bound(attempt, base, cap);
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_doubles_from_the_base_up_to_the_cap() {
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(bound(1, base, cap), Duration::from_secs(1));
        assert_eq!(bound(2, base, cap), Duration::from_secs(2));
        assert_eq!(bound(3, base, cap), Duration::from_secs(4));
        assert_eq!(bound(6, base, cap), Duration::from_secs(32));
        assert_eq!(bound(7, base, cap), cap);
        assert_eq!(bound(1_000, base, cap), cap);
        assert_eq!(bound(0, base, cap), base);
    }

    #[test]
    fn every_wait_lies_between_zero_and_the_bound() {
        let (base, cap) = (Duration::from_millis(10), Duration::from_millis(200));
        for attempt in 1..40 {
            let wait = backoff(attempt, base, cap);
            assert!(wait <= bound(attempt, base, cap), "{attempt}: {wait:?}");
        }
    }
}
