//! What every criterion bench here shares (a folder under `benches/` is not
//! a bench target of its own).

use std::time::Duration;

use criterion::Criterion;

/// Warm up 0.5 s, measure 2 s: the whole suite fits in about 4.5 minutes on
/// the 2-core box.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}
