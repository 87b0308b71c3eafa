//! Counting primitives for per-core figures: a counter bump and a latency
//! histogram with fixed buckets.
//!
//! Every figure is a plain `Cell` written by one core only, so nothing on the
//! hot path is shared between cores. The subsystems that write figures
//! (`pubsub`, `server`) keep them in their own structs built from these; the
//! worker owns them all and the `/metrics` scrape reads them together.

use std::cell::Cell;
use std::time::Duration;

/// Upper bounds of the latency histograms, in seconds (+Inf is implied).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Buckets per histogram: one per bound, and the one above every bound.
pub const BUCKETS: usize = LATENCY_BUCKETS.len() + 1;

/// Adds `by` to a counter (wrapping: a counter's reader takes differences).
pub fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get().wrapping_add(by));
}

/// A latency histogram with fixed buckets, written by one core.
#[derive(Default)]
pub struct Histogram {
    counts: [Cell<u64>; BUCKETS],
    sum_ns: Cell<u64>,
}

impl Histogram {
    pub fn record(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(BUCKETS - 1);
        self.counts[i].set(self.counts[i].get() + 1);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.set(self.sum_ns.get().saturating_add(ns));
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self.counts.each_ref().map(Cell::get),
            sum_ns: self.sum_ns.get(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Per bucket (not cumulative); the last is above every bound.
    pub counts: [u64; BUCKETS],
    pub sum_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_latency_lands_in_the_first_bucket_that_holds_it() {
        let h = Histogram::default();
        h.record(Duration::from_micros(5));
        h.record(Duration::from_micros(6));
        h.record(Duration::from_secs(2));
        let s = h.snapshot();
        assert_eq!(s.counts[0], 1, "5 µs is on the first bound");
        assert_eq!(s.counts[1], 1);
        assert_eq!(s.counts[BUCKETS - 1], 1, "past every bound");
        assert_eq!(s.sum_ns, 2_000_011_000);
    }
}
