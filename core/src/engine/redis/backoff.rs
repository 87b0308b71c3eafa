//! Reconnect delays: exponential with full jitter.
//!
//! After the `n`-th failed attempt in a row the next one waits a uniformly
//! random time in `[0, min(max, base · 2^n)]`. Full jitter spreads the
//! reconnects of many nodes (and of a node's several connections) after a
//! Redis restart instead of having them arrive in lockstep.

use std::time::Duration;

/// Counts consecutive failures; [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: 0,
        }
    }

    /// Records a failure and returns how long to wait before the next try.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let cap = self
            .base
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        let cap_us = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(fastrand::u64(0..=cap_us))
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_the_growing_cap() {
        let base = Duration::from_millis(10);
        let max = Duration::from_millis(100);
        let mut backoff = Backoff::new(base, max);
        for cap_ms in [10, 20, 40, 80, 100, 100, 100] {
            for _ in 0..20 {
                let mut probe = backoff.clone();
                assert!(probe.next_delay() <= Duration::from_millis(cap_ms));
            }
            backoff.next_delay();
        }
        backoff.reset();
        let mut spread = std::collections::HashSet::new();
        for _ in 0..50 {
            spread.insert(backoff.clone().next_delay());
        }
        assert!(spread.len() > 1, "jittered, not fixed");
    }
}
