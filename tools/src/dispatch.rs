//! Sending on an open-loop schedule: the dispatch step every scenario's
//! pacing loop runs, and the counting of each send's outcome.
//!
//! [`ThreadCtx::dispatch_due`] hands out what a [`Schedule`] has due, each
//! message with its **intended** time (the caller stamps it into the payload
//! and latency runs from it, so a send held up by a stall is charged to the
//! server) and records the generator's own lateness on each as lag. It never
//! waits: the caller's pacing loop does the waiting
//! ([`ThreadCtx::wait_until`]) and the yielding.
//! At most [`BURST`] messages go out per call, so a thread far behind its
//! schedule still serves its sockets in between.
//!
//! [`ThreadCtx::count_send`] and [`ThreadCtx::not_sent`] keep the counters
//! `sent`, `sent_in_window` and `not_sent` the same way for every scenario.
//! These are methods of [`ThreadCtx`] kept out of `engine.rs`, which owns the
//! phases of a run; this file owns what happens to one scheduled message.

use crate::engine::{ThreadCtx, Window};
use crate::link::SendError;
use crate::schedule::Schedule;
use crate::stats::{Counter, Metric};

/// Most scheduled sends [`ThreadCtx::dispatch_due`] makes before its pacing
/// loop yields to IO: a thread far behind its schedule still serves its
/// reads and writes every `BURST` messages.
pub const BURST: u32 = 256;

/// The error counted for a scheduled message whose connection is not open.
pub const NOT_OPEN: &str = "not sent: connection not open";

impl ThreadCtx {
    /// Sends what `schedule` has due at `now_ns` through `send(j, intended)`,
    /// oldest first and each with its original intended time, recording the
    /// generator's lag (actual − intended dispatch) for every one the window
    /// measures. Returns `true` when it stopped after [`BURST`] sends: the
    /// pacing loop then yields to IO and comes straight back, and what is
    /// still due is sent then, still charged from its intended time.
    pub fn dispatch_due(
        &self,
        schedule: &mut Schedule,
        window: &Window,
        now_ns: u64,
        mut send: impl FnMut(u64, u64),
    ) -> bool {
        let mut burst = 0;
        while let Some((j, intended)) = schedule.pop_due(now_ns) {
            if window.measures(intended) {
                self.stats()
                    .record(Metric::Lag, now_ns.saturating_sub(intended) / 1000);
            }
            send(j, intended);
            burst += 1;
            if burst >= BURST {
                return true;
            }
        }
        false
    }

    /// Counts the outcome of queueing the message meant for `intended`:
    /// `sent` (and `sent_in_window` when the window measures it), or
    /// `not_sent` with the cause. Returns whether it was queued.
    pub fn count_send(
        &self,
        result: Result<(), SendError>,
        intended: u64,
        window: &Window,
    ) -> bool {
        match result {
            Ok(()) => {
                let mut stats = self.stats();
                stats.add(Counter::Sent, 1);
                if window.measures(intended) {
                    stats.add(Counter::SentInWindow, 1);
                }
                true
            }
            Err(e) => {
                self.not_sent(e.cause());
                false
            }
        }
    }

    /// Counts a message that could not be queued, and why.
    pub fn not_sent(&self, cause: &str) {
        let mut stats = self.stats();
        stats.add(Counter::NotSent, 1);
        stats.error(cause);
    }
}
