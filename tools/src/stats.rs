//! What a generator thread measures: latency histograms by [`Metric`],
//! counters by [`Counter`], errors by cause, and its own CPU time.
//!
//! Each thread records into a [`Stats`] of its own (no locking on the hot
//! path) and, every flush interval, moves it into its [`Published`] slot: the
//! cumulative total, plus an interval histogram of the primary latency that the
//! main thread takes for live progress. The main thread reads only the
//! published slots, so what was measured up to the last flush survives a
//! thread that never finishes (the hard stop) and a Ctrl-C.

use std::sync::Mutex;

use hdrhistogram::Histogram;

use crate::report::{new_latency_histogram, record_us, CauseCounts};
use crate::rusage::CpuTime;

/// A latency metric (each one an HDR histogram in µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// The scenario's primary latency: echo round trip, or publish → delivery,
    /// measured from the intended send time in open loop.
    Latency,
    /// How late the generator dispatched a scheduled message (its own lag).
    Lag,
    /// Opening a connection: TCP connect + WebSocket handshake (+ subscribe
    /// reply for pub/sub subscribers).
    Setup,
    /// Storm: from the drop to the reconnected subscriber's subscribe reply.
    Resubscribe,
    /// Storm: from the drop to the first message after the reconnect.
    Resume,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::Latency,
        Metric::Lag,
        Metric::Setup,
        Metric::Resubscribe,
        Metric::Resume,
    ];

    /// The name used in reports, JSON and `.hgrm` file names.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Latency => "latency",
            Metric::Lag => "generator_lag",
            Metric::Setup => "setup",
            Metric::Resubscribe => "resubscribe",
            Metric::Resume => "resume",
        }
    }
}

/// An event count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Messages sent (echo requests or publishes), whole run.
    Sent,
    /// Of those, intended inside the measured window.
    SentInWindow,
    /// Messages received and measured (echoes, or deliveries to subscribers).
    Received,
    /// Of those, sent (intended) inside the measured window.
    ReceivedInWindow,
    /// Messages sent that got no answer by the end of the drain.
    Unanswered,
    /// Scheduled messages not sent: the connection was closed or its
    /// outbound backlog was over the limit.
    NotSent,
    /// Publishes the server acknowledged with an offset.
    Acked,
    /// Messages skipped in a subscriber's stream (offset or sequence gaps).
    Gaps,
    /// Messages seen twice, or out of order.
    Duplicates,
    /// Messages a resubscribe reported as gone (`recovered: false`): the
    /// offsets between the last one seen and the reply's.
    Missed,
    /// Messages a publisher sent on a broadcast server that came back to it.
    PublisherReceipts,
    /// Frames that could not be read as what the scenario expects.
    BadMessages,
    /// Pings answered.
    Pings,
    /// Storm: subscribers dropped on purpose.
    Dropped,
    /// Storm: dropped subscribers that subscribed again.
    Resubscribed,
    /// Storm: resubscribes answered `recovered: true`.
    Recovered,
    /// Storm: resubscribes answered `recovered: false`.
    NotRecovered,
    /// A subscriber saw its channel's epoch change.
    EpochChanges,
}

impl Counter {
    pub const COUNT: usize = 18;
    pub const ALL: [Counter; Counter::COUNT] = [
        Counter::Sent,
        Counter::SentInWindow,
        Counter::Received,
        Counter::ReceivedInWindow,
        Counter::Unanswered,
        Counter::NotSent,
        Counter::Acked,
        Counter::Gaps,
        Counter::Duplicates,
        Counter::Missed,
        Counter::PublisherReceipts,
        Counter::BadMessages,
        Counter::Pings,
        Counter::Dropped,
        Counter::Resubscribed,
        Counter::Recovered,
        Counter::NotRecovered,
        Counter::EpochChanges,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::Sent => "sent",
            Counter::SentInWindow => "sent_in_window",
            Counter::Received => "received",
            Counter::ReceivedInWindow => "received_in_window",
            Counter::Unanswered => "unanswered",
            Counter::NotSent => "not_sent",
            Counter::Acked => "acked",
            Counter::Gaps => "gaps",
            Counter::Duplicates => "duplicates",
            Counter::Missed => "missed",
            Counter::PublisherReceipts => "publisher_receipts",
            Counter::BadMessages => "bad_messages",
            Counter::Pings => "pings",
            Counter::Dropped => "dropped",
            Counter::Resubscribed => "resubscribed",
            Counter::Recovered => "recovered",
            Counter::NotRecovered => "not_recovered",
            Counter::EpochChanges => "epoch_changes",
        }
    }
}

/// One thread's measurements (or the merge of several).
#[derive(Debug, Clone)]
pub struct Stats {
    hists: Vec<Histogram<u64>>,
    counts: [u64; Counter::COUNT],
    pub errors: CauseCounts,
    /// CPU time of the generator threads during the measured window.
    pub cpu: CpuTime,
    /// Longest stretch with messages outstanding and nothing received, in µs
    /// (closed loop: what its latency percentiles cannot show).
    pub longest_silence_us: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            hists: Metric::ALL
                .iter()
                .map(|_| new_latency_histogram())
                .collect(),
            counts: [0; Counter::COUNT],
            errors: CauseCounts::default(),
            cpu: CpuTime::default(),
            longest_silence_us: 0,
        }
    }

    pub fn record(&mut self, metric: Metric, us: u64) {
        record_us(&mut self.hists[metric as usize], us);
    }

    pub fn hist(&self, metric: Metric) -> &Histogram<u64> {
        &self.hists[metric as usize]
    }

    pub fn add(&mut self, counter: Counter, n: u64) {
        self.counts[counter as usize] += n;
    }

    pub fn count(&self, counter: Counter) -> u64 {
        self.counts[counter as usize]
    }

    pub fn error(&mut self, cause: &str) {
        self.errors.add(cause, 1);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.hists.iter_mut().zip(&other.hists) {
            // `add` walks every bucket: skip the (usually many) empty ones.
            // Same bounds on every histogram, so `add` cannot fail.
            if !theirs.is_empty() {
                let _ = mine.add(theirs);
            }
        }
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.errors.merge(&other.errors);
        self.cpu.user_us += other.cpu.user_us;
        self.cpu.system_us += other.cpu.system_us;
        self.longest_silence_us = self.longest_silence_us.max(other.longest_silence_us);
    }

    /// Empties every figure, keeping the allocations.
    pub fn reset(&mut self) {
        for h in self.hists.iter_mut().filter(|h| !h.is_empty()) {
            h.reset();
        }
        self.counts = [0; Counter::COUNT];
        self.errors = CauseCounts::default();
        self.cpu = CpuTime::default();
        self.longest_silence_us = 0;
    }
}

/// One thread's published figures, read by the main thread.
///
/// Written by the thread's flush (every flush interval and when it ends);
/// read by the main thread's progress loop and final report. A thread that
/// dies or hangs leaves what it last flushed.
#[derive(Debug, Default)]
pub struct Published {
    pub total: Mutex<Stats>,
    /// Primary latency since the main thread last took it (live p50/p99).
    pub interval: Mutex<Option<Histogram<u64>>>,
}

impl Published {
    /// Moves `local` into the published figures and empties it.
    pub fn flush(&self, local: &mut Stats) {
        if let Ok(mut total) = self.total.lock() {
            total.merge(local);
        }
        let latency = local.hist(Metric::Latency);
        if latency.is_empty() {
            local.reset();
            return;
        }
        if let Ok(mut interval) = self.interval.lock() {
            match interval.as_mut() {
                Some(h) => {
                    let _ = h.add(latency);
                }
                None => *interval = Some(latency.clone()),
            }
        }
        local.reset();
    }

    /// A copy of the cumulative figures.
    pub fn snapshot(&self) -> Stats {
        match self.total.lock() {
            Ok(total) => total.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Takes the interval latency histogram (leaving it empty).
    pub fn take_interval(&self) -> Option<Histogram<u64>> {
        self.interval.lock().ok().and_then(|mut i| i.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_metrics_have_distinct_names() {
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::COUNT);
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i);
        }
    }

    #[test]
    fn flush_moves_everything_and_merges() {
        let published = Published::default();
        let mut local = Stats::new();
        local.record(Metric::Latency, 100);
        local.add(Counter::Sent, 3);
        local.error("reset");
        local.longest_silence_us = 7;
        published.flush(&mut local);
        assert_eq!(local.count(Counter::Sent), 0);
        assert!(local.hist(Metric::Latency).is_empty());
        local.record(Metric::Latency, 300);
        local.add(Counter::Sent, 2);
        published.flush(&mut local);
        let total = published.snapshot();
        assert_eq!(total.count(Counter::Sent), 5);
        assert_eq!(total.hist(Metric::Latency).len(), 2);
        assert_eq!(total.errors.total(), 1);
        assert_eq!(total.longest_silence_us, 7);
        let interval = published.take_interval().expect("interval");
        assert_eq!(interval.len(), 2);
        assert!(published.take_interval().is_none());
    }
}
