//! The open-loop schedule: when each message is *meant* to be sent.
//!
//! Message `j` of a schedule is due at `start + (j + phase) / rate` seconds,
//! whatever happened to the messages before it. That is the whole point of an
//! open loop: a server that stalls does not slow the schedule down, so the
//! messages that should have gone out during the stall are still sent (late)
//! and their latency is measured from their **intended** time — the wait is
//! charged to the server instead of silently disappearing (coordinated
//! omission). A generator that falls behind its own schedule sees the same
//! messages come out of [`Schedule::pop_due`] at once, each with its original
//! intended time, and the gap between intended and actual dispatch is its own
//! lag, reported separately.
//!
//! All times are nanoseconds since the run's time base (plain `u64`), so the
//! schedule is pure arithmetic that the tests drive with made-up clocks.
//! `phase` (0..1) offsets one thread's schedule against the others', so that
//! threads sharing a global rate interleave instead of sending in lockstep.

/// An open-loop schedule of messages over `[start_ns, end_ns)`.
#[derive(Debug, Clone)]
pub struct Schedule {
    start_ns: u64,
    end_ns: u64,
    /// Nanoseconds between two messages (`1e9 / rate`).
    interval_ns: f64,
    phase: f64,
    /// Index of the next message to hand out.
    next: u64,
}

impl Schedule {
    /// `rate` messages per second (positive and finite), starting at
    /// `start_ns`; no message is due at or after `end_ns`.
    pub fn new(start_ns: u64, end_ns: u64, rate: f64, phase: f64) -> Schedule {
        debug_assert!(rate.is_finite() && rate > 0.0);
        Schedule {
            start_ns,
            end_ns,
            interval_ns: 1e9 / rate,
            phase: phase.clamp(0.0, 0.999_999),
            next: 0,
        }
    }

    /// When message `j` is due.
    pub fn intended_ns(&self, j: u64) -> u64 {
        self.start_ns + ((j as f64 + self.phase) * self.interval_ns) as u64
    }

    /// When the next message is due, or `None` once the schedule is over.
    pub fn next_due_ns(&self) -> Option<u64> {
        let due = self.intended_ns(self.next);
        (due < self.end_ns).then_some(due)
    }

    /// The next message if it is due at `now_ns`: its index and intended time.
    /// Late messages come out one by one, oldest first, with their original
    /// intended times: nothing is skipped and nothing is re-timed.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<(u64, u64)> {
        let due = self.next_due_ns()?;
        if due > now_ns {
            return None;
        }
        let j = self.next;
        self.next += 1;
        Some((j, due))
    }

    /// Messages handed out so far.
    pub fn popped(&self) -> u64 {
        self.next
    }

    /// Messages the whole schedule holds.
    pub fn total(&self) -> u64 {
        if self.end_ns <= self.start_ns {
            return 0;
        }
        let span = (self.end_ns - self.start_ns) as f64 / self.interval_ns - self.phase;
        let mut n = span.ceil().max(0.0) as u64;
        // Float rounding at the boundary: settle it with the exact test.
        while n > 0 && self.intended_ns(n - 1) >= self.end_ns {
            n -= 1;
        }
        while self.intended_ns(n) < self.end_ns {
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_evenly_spaced_from_the_start() {
        let s = Schedule::new(1_000, 1_000 + 1_000_000_000, 1000.0, 0.0);
        assert_eq!(s.intended_ns(0), 1_000);
        assert_eq!(s.intended_ns(1), 1_001_000);
        assert_eq!(s.intended_ns(999), 1_000 + 999_000_000);
        assert_eq!(s.total(), 1000);
    }

    #[test]
    fn phase_shifts_a_thread_between_the_others() {
        // Two threads sharing 2000/s: each runs 1000/s, offset by half an interval.
        let a = Schedule::new(0, 10_000_000, 1000.0, 0.0);
        let b = Schedule::new(0, 10_000_000, 1000.0, 0.5);
        assert_eq!(a.intended_ns(0), 0);
        assert_eq!(b.intended_ns(0), 500_000);
        assert_eq!(a.intended_ns(1), 1_000_000);
        assert_eq!(b.intended_ns(1), 1_500_000);
        assert_eq!(a.total(), 10);
        assert_eq!(b.total(), 10);
    }

    #[test]
    fn nothing_is_due_before_its_time() {
        let mut s = Schedule::new(100, 1_000_000_000, 10.0, 0.0);
        assert_eq!(s.pop_due(99), None);
        assert_eq!(s.pop_due(100), Some((0, 100)));
        assert_eq!(s.pop_due(100), None);
        assert_eq!(s.next_due_ns(), Some(100_000_100));
    }

    /// A generator that wakes 350 ms late gets every missed message at once,
    /// each with the time it should have been sent: the delay is measured,
    /// not forgiven.
    #[test]
    fn a_late_wake_up_returns_every_missed_message_with_its_intended_time() {
        let mut s = Schedule::new(0, 1_000_000_000, 10.0, 0.0);
        let now = 350_000_000;
        let mut got = Vec::new();
        while let Some(m) = s.pop_due(now) {
            got.push(m);
        }
        assert_eq!(
            got,
            vec![(0, 0), (1, 100_000_000), (2, 200_000_000), (3, 300_000_000)]
        );
        assert_eq!(s.popped(), 4);
        assert_eq!(s.next_due_ns(), Some(400_000_000));
    }

    #[test]
    fn the_schedule_ends_before_end_ns() {
        let mut s = Schedule::new(0, 250, 1e9 / 100.0, 0.0);
        assert_eq!(s.total(), 3); // 0, 100, 200
        let mut n = 0;
        while s.pop_due(u64::MAX).is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
        assert_eq!(s.next_due_ns(), None);
        assert_eq!(Schedule::new(10, 10, 5.0, 0.0).total(), 0);
    }

    #[test]
    fn high_rates_keep_nanosecond_accuracy_over_an_hour() {
        let s = Schedule::new(0, u64::MAX, 1_000_000.0, 0.0);
        let hour = 3_600_000_000u64; // messages in an hour at 1 M/s
        assert_eq!(s.intended_ns(hour), 3_600_000_000_000);
        assert_eq!(s.intended_ns(hour + 1), 3_600_000_001_000);
    }
}
