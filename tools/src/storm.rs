//! The `storm` scenario's plan and verdict: hold N subscribers (as `fanout`
//! does, with publishers publishing throughout), drop all of them — or a
//! fraction — at one instant, and let each reconnect at once and resubscribe
//! with `since` = the epoch and the last offset it saw.
//!
//! The drop is a TCP shutdown with no close frame (what the server sees when
//! a network path dies); the reconnect follows at once, or after
//! `--reconnect-delay` (a client's back-off, which also makes the outage long
//! enough to publish into). The run itself is [`crate::fanout`]'s, with the drop
//! in its pacing loop; this module picks who is dropped and turns the
//! resulting figures into the storm's report:
//! - figure `all_back_s`: from the drop to the last dropped subscriber's
//!   subscribe reply (the max of metric `resubscribe`);
//! - figure `all_receiving_s`: from the drop to the last dropped subscriber's
//!   first message after the reconnect (the max of metric `resume`; it
//!   includes waiting for the next publish on the channel when the replay is
//!   empty, so keep each channel's rate well above 1/s);
//! - counts `dropped`, `resubscribed`, `recovered`, `not_recovered`, and
//!   `undelivered` — messages missed, which must be 0 with resume while the
//!   history covers the outage.

use std::time::Duration;

use crate::engine::{duration_ns, Window};
use crate::stats::{Counter, Metric, Stats};
use crate::summary::RunReport;

/// Who is dropped, when, and how they come back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StormPlan {
    /// From the start of the recorded window.
    pub drop_after: Duration,
    /// Share of the subscribers dropped, in (0, 1].
    pub fraction: f64,
    /// Resubscribe with `since` (else from now on, counting what was missed).
    pub resume: bool,
    /// Wait this long after the drop before reconnecting (clients back off;
    /// 0 = at once). Counted in `all_back_s`.
    pub reconnect_delay: Duration,
}

impl StormPlan {
    /// Whether subscriber `i` is dropped: exactly `floor(n * fraction)` of
    /// the first `n`, evenly spread.
    pub fn drops(&self, i: u64) -> bool {
        ((i + 1) as f64 * self.fraction).floor() > (i as f64 * self.fraction).floor()
    }

    /// When the drop happens, in ns since the run's time base.
    pub fn drop_at_ns(&self, window: &Window) -> u64 {
        window.measure_ns + duration_ns(self.drop_after)
    }

    /// Adds the storm's figures, counts and warnings to a fan-out report.
    pub fn finish_report(&self, report: &mut RunReport, stats: &Stats) {
        let dropped = stats.count(Counter::Dropped);
        let back = stats.hist(Metric::Resubscribe);
        let receiving = stats.hist(Metric::Resume);
        report.figures.insert("drop_fraction".into(), self.fraction);
        report.figures.insert(
            "all_back_s".into(),
            if back.is_empty() {
                0.0
            } else {
                back.max() as f64 / 1e6
            },
        );
        report.figures.insert(
            "all_receiving_s".into(),
            if receiving.is_empty() {
                0.0
            } else {
                receiving.max() as f64 / 1e6
            },
        );
        for c in [
            Counter::Dropped,
            Counter::Resubscribed,
            Counter::Recovered,
            Counter::NotRecovered,
        ] {
            report.counts.insert(c.name().into(), stats.count(c));
        }
        report.mode = format!(
            "{}; drop {:.0} % of subscribers at {} into the window, reconnect after {} {}",
            report.mode,
            self.fraction * 100.0,
            humantime::format_duration(self.drop_after),
            humantime::format_duration(self.reconnect_delay),
            if self.resume {
                "with resume (since)"
            } else {
                "without resume"
            }
        );
        if dropped == 0 {
            report
                .warnings
                .push("no subscriber was dropped (the window ended first?)".into());
            return;
        }
        if back.len() < dropped {
            report.warnings.push(format!(
                "only {} of {dropped} dropped subscribers subscribed again",
                back.len()
            ));
        }
        if receiving.len() < dropped {
            report.warnings.push(format!(
                "only {} of {dropped} dropped subscribers received a message after reconnecting",
                receiving.len()
            ));
        }
        let undelivered = report.counts.get("undelivered").copied().unwrap_or(0);
        if self.resume && undelivered > 0 {
            report.warnings.push(format!(
                "{undelivered} messages missed although every resubscribe asked to resume \
                 ({} not recovered: history too short for the outage?)",
                stats.count(Counter::NotRecovered)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(fraction: f64) -> StormPlan {
        StormPlan {
            drop_after: Duration::from_secs(1),
            fraction,
            resume: true,
            reconnect_delay: Duration::ZERO,
        }
    }

    #[test]
    fn a_fraction_drops_that_share_evenly() {
        let count = |p: StormPlan, n: u64| (0..n).filter(|&i| p.drops(i)).count();
        assert_eq!(count(plan(1.0), 5000), 5000);
        assert_eq!(count(plan(0.5), 5000), 2500);
        assert_eq!(count(plan(0.1), 1000), 100);
        assert_eq!(count(plan(0.3), 10), 3);
        // Spread, not bunched at the front.
        let p = plan(0.25);
        assert_eq!(
            (0..8).map(|i| p.drops(i)).collect::<Vec<_>>(),
            [false, false, false, true, false, false, false, true]
        );
    }

    #[test]
    fn the_drop_is_counted_from_the_recorded_window() {
        let w = Window {
            start_ns: 100,
            measure_ns: 1_000,
            end_ns: 10_000_000_000,
        };
        assert_eq!(plan(1.0).drop_at_ns(&w), 1_000_001_000);
    }
}
