//! Per-core metrics and their Prometheus text rendering.
//!
//! Each core counts in plain `Cell`s that only it writes: nothing on the hot
//! path is shared between cores. The worker owns one [`Metrics`]: the
//! connection counters written by its reactor and connections, and the
//! pub/sub counters its hub writes ([`crate::pubsub::Stats`]). A scrape of
//! `GET /metrics` on any core asks every core for a [`Snapshot`] over the
//! bus (`scrape.rs`); the scraping core merges them and renders the text
//! exposition format here, one series per worker (label `worker`), so nothing
//! is summed across cores until the scrape.

use std::cell::Cell;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::OnceLock;

use crate::pubsub::{PubsubSnapshot, Stats as PubsubStats};
use crate::stats::{bump, Histogram, HistogramSnapshot, BUCKETS, LATENCY_BUCKETS};

/// Why a connection ended, as counted in `ringcast_connections_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The close handshake completed.
    Normal,
    /// The peer broke RFC 6455 (see `ringcast_protocol_errors_total`).
    ProtocolError,
    IdleTimeout,
    /// Our close frame or last bytes got no answer in time.
    CloseTimeout,
    /// Outbound queue over its limit (close 1008).
    SlowConsumer,
    /// Closed by the server's drain (close 1001).
    Drained,
    /// Still open when the drain timed out: dropped without a close
    /// handshake as the worker stopped (counted by the reactor just before
    /// the worker ends, so mostly seen in its `worker stopped` line).
    DrainTimeout,
    /// The peer vanished: EOF or reset without a close handshake.
    Reset,
    HandshakeTimeout,
    /// The handshake was answered with an error status.
    Refused,
    /// A plain HTTP request (`/healthz`, `/readyz`, `/metrics`) was served.
    Http,
}

impl CloseReason {
    pub const ALL: [CloseReason; 11] = [
        CloseReason::Normal,
        CloseReason::ProtocolError,
        CloseReason::IdleTimeout,
        CloseReason::CloseTimeout,
        CloseReason::SlowConsumer,
        CloseReason::Drained,
        CloseReason::DrainTimeout,
        CloseReason::Reset,
        CloseReason::HandshakeTimeout,
        CloseReason::Refused,
        CloseReason::Http,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Normal => "normal",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::CloseTimeout => "close_timeout",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Drained => "drained",
            CloseReason::DrainTimeout => "drain_timeout",
            CloseReason::Reset => "reset",
            CloseReason::HandshakeTimeout => "handshake_timeout",
            CloseReason::Refused => "refused",
            CloseReason::Http => "http",
        }
    }
}

/// Statuses a handshake can be refused with, in the order counted.
pub const REFUSAL_STATUSES: [u16; 9] = [400, 401, 403, 404, 405, 426, 431, 503, 0];
/// Close codes of protocol errors, in the order counted (0: any other).
pub const PROTOCOL_CODES: [u16; 5] = [1002, 1007, 1008, 1009, 0];

fn index_of(table: &[u16], value: u16) -> usize {
    table
        .iter()
        .position(|v| *v == value)
        .unwrap_or(table.len() - 1)
}

/// One core's counters. Only that core writes them; the worker owns them.
#[derive(Default)]
pub struct Metrics {
    pub connections_opened: Cell<u64>,
    /// Sockets this core holds (any phase).
    pub connections_current: Cell<u64>,
    /// Connections past the upgrade, not yet closed.
    pub upgraded_current: Cell<u64>,
    closed: [Cell<u64>; CloseReason::ALL.len()],
    refused: [Cell<u64>; REFUSAL_STATUSES.len()],
    protocol_errors: [Cell<u64>; PROTOCOL_CODES.len()],
    pub messages_received: Cell<u64>,
    pub bytes_received: Cell<u64>,
    pub bytes_sent: Cell<u64>,
    /// `sendmsg` calls that flushed an outbox, and the whole frames they
    /// completed: frames / calls is the write batch size.
    pub flush_calls: Cell<u64>,
    pub flushed_frames: Cell<u64>,
    /// Connections answered with no context takeover because the worker's
    /// `deflate.max_context_connections` were keeping zlib state already.
    pub deflate_context_downgrades: Cell<u64>,
    /// Multishot receives the completion path saw end with `ENOBUFS` (the
    /// core's provided buffers all taken); each is re-armed once buffers
    /// come back.
    pub recv_buffer_exhausted: Cell<u64>,
    /// Receive buffers handed to the kernel (completion socket IO; 0 on readiness).
    pub recv_buffers: Cell<u64>,
    pub handshake: Histogram,
    pub loop_turn: Histogram,
    /// The pub/sub counters, lent to this core's hub, which writes them.
    pub pubsub: Rc<PubsubStats>,
}

impl Metrics {
    pub fn closed(&self, reason: CloseReason) {
        bump(&self.closed[Self::closed_index(reason)], 1);
    }

    /// Connections this core has closed for `reason` so far.
    pub fn closed_count(&self, reason: CloseReason) -> u64 {
        self.closed[Self::closed_index(reason)].get()
    }

    fn closed_index(reason: CloseReason) -> usize {
        CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0)
    }

    pub fn refused(&self, status: u16) {
        bump(&self.refused[index_of(&REFUSAL_STATUSES, status)], 1);
    }

    pub fn protocol_error(&self, code: u16) {
        bump(&self.protocol_errors[index_of(&PROTOCOL_CODES, code)], 1);
    }

    pub fn add(cell: &Cell<u64>, by: u64) {
        bump(cell, by);
    }

    /// This core's figures, with `pubsub` (the hub's counters and gauges,
    /// `Hub::snapshot`).
    pub fn snapshot(&self, worker: usize, pubsub: PubsubSnapshot) -> Snapshot {
        let get = |cells: &[Cell<u64>]| cells.iter().map(Cell::get).collect::<Vec<_>>();
        Snapshot {
            worker,
            connections_opened: self.connections_opened.get(),
            connections_current: self.connections_current.get(),
            upgraded_current: self.upgraded_current.get(),
            closed: get(&self.closed),
            refused: get(&self.refused),
            protocol_errors: get(&self.protocol_errors),
            messages_received: self.messages_received.get(),
            bytes_received: self.bytes_received.get(),
            bytes_sent: self.bytes_sent.get(),
            flush_calls: self.flush_calls.get(),
            flushed_frames: self.flushed_frames.get(),
            deflate_context_connections: super::deflate_context::held() as u64,
            deflate_context_downgrades: self.deflate_context_downgrades.get(),
            recv_buffer_exhausted: self.recv_buffer_exhausted.get(),
            recv_buffers: self.recv_buffers.get(),
            handshake: self.handshake.snapshot(),
            loop_turn: self.loop_turn.snapshot(),
            pubsub,
        }
    }
}

/// Everything one core reports to a scrape (sent across cores).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub worker: usize,
    pub connections_opened: u64,
    pub connections_current: u64,
    pub upgraded_current: u64,
    pub closed: Vec<u64>,
    pub refused: Vec<u64>,
    pub protocol_errors: Vec<u64>,
    pub messages_received: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub flush_calls: u64,
    pub flushed_frames: u64,
    pub deflate_context_connections: u64,
    pub deflate_context_downgrades: u64,
    pub recv_buffer_exhausted: u64,
    pub recv_buffers: u64,
    pub handshake: HistogramSnapshot,
    pub loop_turn: HistogramSnapshot,
    pub pubsub: PubsubSnapshot,
}

/// Process RSS when the server started, for the bytes-per-connection estimate.
static BASELINE_RSS: OnceLock<u64> = OnceLock::new();

/// Records the RSS at start (the first call wins).
pub fn set_baseline_rss() {
    let _ = BASELINE_RSS.set(process_rss_bytes().unwrap_or(0));
}

/// Resident set size of this process, from `/proc/self/statm`.
pub fn process_rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf takes no pointers.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).unwrap_or(4096))
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn per_worker(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        snaps: &[Snapshot],
        value: impl Fn(&Snapshot) -> u64,
    ) {
        self.head(name, kind, help);
        for s in snaps {
            let _ = writeln!(self.out, "{name}{{worker=\"{}\"}} {}", s.worker, value(s));
        }
    }

    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        snaps: &[Snapshot],
        pick: impl Fn(&Snapshot) -> &HistogramSnapshot,
    ) {
        self.head(name, "histogram", help);
        for s in snaps {
            let h = pick(s);
            let mut cumulative = 0;
            for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
                cumulative += h.counts[i];
                let _ = writeln!(
                    self.out,
                    "{name}_bucket{{worker=\"{}\",le=\"{le}\"}} {cumulative}",
                    s.worker
                );
            }
            cumulative += h.counts[BUCKETS - 1];
            let w = s.worker;
            let _ = writeln!(
                self.out,
                "{name}_bucket{{worker=\"{w}\",le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(
                self.out,
                "{name}_sum{{worker=\"{w}\"}} {}",
                h.sum_ns as f64 / 1e9
            );
            let _ = writeln!(self.out, "{name}_count{{worker=\"{w}\"}} {cumulative}");
        }
    }
}

/// Renders every core's snapshot in the Prometheus text format (0.0.4).
pub fn render(snaps: &[Snapshot]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let mut f = Family { out: &mut out };
    f.per_worker(
        "ringcast_connections",
        "gauge",
        "Sockets held (any phase).",
        snaps,
        |s| s.connections_current,
    );
    f.per_worker(
        "ringcast_websockets",
        "gauge",
        "Connections past the upgrade.",
        snaps,
        |s| s.upgraded_current,
    );
    f.per_worker(
        "ringcast_connections_opened_total",
        "counter",
        "Connections accepted.",
        snaps,
        |s| s.connections_opened,
    );
    f.head(
        "ringcast_connections_closed_total",
        "counter",
        "Connections ended, by reason.",
    );
    for s in snaps {
        for (reason, n) in CloseReason::ALL.iter().zip(&s.closed) {
            let _ = writeln!(
                f.out,
                "ringcast_connections_closed_total{{worker=\"{}\",reason=\"{}\"}} {n}",
                s.worker,
                reason.as_str()
            );
        }
    }
    f.head(
        "ringcast_handshakes_refused_total",
        "counter",
        "Handshakes answered with an error status.",
    );
    for s in snaps {
        for (status, n) in REFUSAL_STATUSES.iter().zip(&s.refused) {
            let status = if *status == 0 {
                "other".to_string()
            } else {
                status.to_string()
            };
            let _ = writeln!(
                f.out,
                "ringcast_handshakes_refused_total{{worker=\"{}\",status=\"{status}\"}} {n}",
                s.worker
            );
        }
    }
    f.head(
        "ringcast_protocol_errors_total",
        "counter",
        "Connections failed for breaking RFC 6455, by close code sent.",
    );
    for s in snaps {
        for (code, n) in PROTOCOL_CODES.iter().zip(&s.protocol_errors) {
            let code = if *code == 0 {
                "other".to_string()
            } else {
                code.to_string()
            };
            let _ = writeln!(
                f.out,
                "ringcast_protocol_errors_total{{worker=\"{}\",code=\"{code}\"}} {n}",
                s.worker
            );
        }
    }
    f.per_worker(
        "ringcast_messages_received_total",
        "counter",
        "WebSocket messages received.",
        snaps,
        |s| s.messages_received,
    );
    f.per_worker(
        "ringcast_received_bytes_total",
        "counter",
        "Bytes read from sockets.",
        snaps,
        |s| s.bytes_received,
    );
    f.per_worker(
        "ringcast_sent_bytes_total",
        "counter",
        "Bytes written to sockets.",
        snaps,
        |s| s.bytes_sent,
    );
    f.per_worker(
        "ringcast_flush_calls_total",
        "counter",
        "Vectored writes of queued output.",
        snaps,
        |s| s.flush_calls,
    );
    f.per_worker(
        "ringcast_flushed_frames_total",
        "counter",
        "Frames completed by those writes (frames / calls = batch size).",
        snaps,
        |s| s.flushed_frames,
    );
    f.per_worker(
        "ringcast_deflate_context_connections",
        "gauge",
        "Connections keeping permessage-deflate state between messages.",
        snaps,
        |s| s.deflate_context_connections,
    );
    f.per_worker(
        "ringcast_deflate_context_downgrades_total",
        "counter",
        "Connections answered with no context takeover: deflate.max_context_connections reached.",
        snaps,
        |s| s.deflate_context_downgrades,
    );
    f.per_worker(
        "ringcast_recv_buffer_exhausted_total",
        "counter",
        "Receives paused because the core's provided buffers were all taken (completion socket IO).",
        snaps,
        |s| s.recv_buffer_exhausted,
    );
    f.per_worker(
        "ringcast_recv_buffers",
        "gauge",
        "Receive buffers handed to the kernel (completion socket IO): io_uring.recv_buffers_initial, doubled at each exhaustion up to io_uring.recv_buffers.",
        snaps,
        |s| s.recv_buffers,
    );
    f.per_worker(
        "ringcast_publishes_total",
        "counter",
        "Publishes accepted by this owner core.",
        snaps,
        |s| s.pubsub.publishes,
    );
    f.per_worker(
        "ringcast_publishes_refused_total",
        "counter",
        "Publishes refused as overloaded.",
        snaps,
        |s| s.pubsub.publishes_refused,
    );
    f.per_worker(
        "ringcast_deliveries_total",
        "counter",
        "Push frames queued to local subscribers.",
        snaps,
        |s| s.pubsub.deliveries,
    );
    f.per_worker(
        "ringcast_slow_consumer_closes_total",
        "counter",
        "Subscribers closed for an outbound queue over its limit.",
        snaps,
        |s| s.pubsub.slow_consumer_closes,
    );
    f.per_worker(
        "ringcast_channels_evicted_total",
        "counter",
        "Idle channels evicted after the history TTL.",
        snaps,
        |s| s.pubsub.evicted_channels,
    );
    f.per_worker(
        "ringcast_presence_info_dropped_total",
        "counter",
        "Connections whose token info claim was over pubsub.max_presence_info_bytes (shown in presence without it).",
        snaps,
        |s| s.pubsub.presence_info_dropped,
    );
    f.per_worker(
        "ringcast_deflate_compressions_total",
        "counter",
        "Messages compressed with permessage-deflate by this core: a channel push shared by subscribers once on its owner core, else once per connection that keeps context, reply and echo.",
        snaps,
        |s| s.pubsub.deflate_compressions,
    );
    f.per_worker(
        "ringcast_channels",
        "gauge",
        "Channels owned by this core.",
        snaps,
        |s| s.pubsub.channels,
    );
    f.per_worker(
        "ringcast_subscriptions",
        "gauge",
        "Subscriptions of this core's connections.",
        snaps,
        |s| s.pubsub.subscriptions,
    );
    f.per_worker(
        "ringcast_history_bytes",
        "gauge",
        "Bytes of history kept by this core's channels.",
        snaps,
        |s| s.pubsub.history_bytes,
    );
    f.per_worker(
        "ringcast_inbox_depth",
        "gauge",
        "Messages waiting in this core's cross-core inbox.",
        snaps,
        |s| s.pubsub.inbox_depth,
    );
    f.histogram(
        "ringcast_handshake_duration_seconds",
        "From accept to the 101 response queued.",
        snaps,
        |s| &s.handshake,
    );
    f.histogram(
        "ringcast_publish_fanout_duration_seconds",
        "Owner core: offset, encode, history and dispatch of one publish.",
        snaps,
        |s| &s.pubsub.publish_fanout,
    );
    f.histogram(
        "ringcast_loop_turn_duration_seconds",
        "One turn of a core's event loop (work between two waits).",
        snaps,
        |s| &s.loop_turn,
    );
    let rss = process_rss_bytes().unwrap_or(0);
    let sockets: u64 = snaps.iter().map(|s| s.connections_current).sum();
    let baseline = BASELINE_RSS.get().copied().unwrap_or(rss);
    f.head(
        "ringcast_process_resident_memory_bytes",
        "gauge",
        "Resident set size of the process.",
    );
    let _ = writeln!(f.out, "ringcast_process_resident_memory_bytes {rss}");
    f.head(
        "ringcast_bytes_per_connection",
        "gauge",
        "RSS growth since start divided by open sockets (an estimate).",
    );
    let per = rss
        .saturating_sub(baseline)
        .checked_div(sockets)
        .unwrap_or(0);
    let _ = writeln!(f.out, "ringcast_bytes_per_connection {per}");
    out
}

/// The Redis engine's process-wide figures (`engine.kind = "redis"`),
/// read from the counters its threads keep.
pub fn render_engine(out: &mut String, cluster: &crate::pubsub::cluster::Cluster) {
    use std::sync::atomic::Ordering::Relaxed;
    let bridge = cluster.bridge_stats();
    let sub = cluster.subscriber_stats();
    let series: [(&str, &str, &str, u64); 8] = [
        (
            "ringcast_redis_connected",
            "gauge",
            "1 while the node's Redis command connection is up (else /readyz says degraded).",
            u64::from(bridge.connected.load(Relaxed)),
        ),
        (
            "ringcast_redis_unavailable_total",
            "counter",
            "Publishes and history reads answered unavailable (Redis down or no reply in time).",
            bridge.unavailable.load(Relaxed),
        ),
        (
            "ringcast_redis_reconnects_total",
            "counter",
            "Command connection re-established after a loss.",
            bridge.reconnects.load(Relaxed),
        ),
        (
            "ringcast_redis_round_trips_total",
            "counter",
            "Pipelines sent to Redis (each carries every request queued since the last).",
            bridge.round_trips.load(Relaxed),
        ),
        (
            "ringcast_redis_pushes_total",
            "counter",
            "Pushes received on the node's Redis pub/sub connections.",
            sub.pushes.load(Relaxed),
        ),
        (
            "ringcast_redis_subscriber_disconnects_total",
            "counter",
            "Redis pub/sub connections lost (each followed by resubscribe and recovery).",
            sub.disconnects.load(Relaxed),
        ),
        (
            "ringcast_redis_subscriber_reconnects_total",
            "counter",
            "Redis pub/sub connections re-established.",
            sub.reconnects.load(Relaxed),
        ),
        (
            "ringcast_redis_offsets_skipped_total",
            "counter",
            "Offsets this node's subscribers never got: Redis history no longer held them when the gap was found (raise pubsub.history_size or fix what cuts the pub/sub connections).",
            cluster.skipped.load(Relaxed),
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

/// The disk engine's process-wide figures (`engine.kind = "disk"`).
pub fn render_store(out: &mut String, stats: &crate::engine::disk::StoreStats) {
    use crate::engine::disk::StoreStats as S;
    let series: [(&str, &str, &str, u64); 14] = [
        ("ringcast_store_records_total", "counter", "Records written to the log.", S::get(&stats.records)),
        ("ringcast_store_bytes_written_total", "counter", "Bytes written to the log.", S::get(&stats.bytes_written)),
        ("ringcast_store_commits_total", "counter", "Group commits: one write (and with fsync = always one fdatasync) per core loop turn with publishes.", S::get(&stats.commits)),
        ("ringcast_store_fsyncs_total", "counter", "fdatasync calls on log segments.", S::get(&stats.fsyncs)),
        ("ringcast_store_write_errors_total", "counter", "Failed log writes or syncs (their publishes answered unavailable).", S::get(&stats.write_errors)),
        ("ringcast_store_refused_total", "counter", "Publishes refused because no log segment had room (disk full or below store.min_free) or the store had failed.", S::get(&stats.refused)),
        ("ringcast_store_disk_bytes", "gauge", "Bytes of every log segment on disk (preallocated size).", S::get(&stats.disk_bytes)),
        ("ringcast_store_segments", "gauge", "Log segments on disk.", S::get(&stats.segments)),
        ("ringcast_store_free_bytes", "gauge", "Free bytes of the store's filesystem when a segment was last created.", S::get(&stats.free_bytes)),
        ("ringcast_store_segments_deleted_total", "counter", "Segments deleted by retention, by reason: ttl (pubsub.history_ttl), budget (store.max_disk), history (no channel's retained history reached them).", 0),
        ("ringcast_store_checkpoints_total", "counter", "Checkpoint records written so that a deleted segment's channels keep their epoch and offset.", S::get(&stats.checkpoints)),
        ("ringcast_store_corrupt_segments", "gauge", "Segments whose rest was skipped at start after a corrupt record.", S::get(&stats.corrupt_segments)),
        ("ringcast_store_torn_tails", "gauge", "Torn tails cut at start.", S::get(&stats.torn_tails)),
        ("ringcast_store_recovery_seconds", "gauge", "How long start-up recovery read the log.", 0),
    ];
    for (name, kind, help, value) in series {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        if name == "ringcast_store_recovery_seconds" {
            let secs = S::get(&stats.recovery_ms) as f64 / 1000.0;
            let _ = writeln!(out, "{name} {secs}");
        } else if name == "ringcast_store_segments_deleted_total" {
            for (reason, counter) in [
                ("ttl", &stats.deleted_ttl),
                ("budget", &stats.deleted_budget),
                ("history", &stats.deleted_history),
            ] {
                let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {}", S::get(counter));
            }
        } else {
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn histogram_buckets_are_cumulative_in_the_text() {
        let m = Metrics::default();
        m.handshake.record(Duration::from_micros(3));
        m.handshake.record(Duration::from_millis(3));
        m.handshake.record(Duration::from_secs(5));
        m.closed(CloseReason::SlowConsumer);
        m.refused(431);
        m.refused(418);
        let text = render(&[m.snapshot(0, PubsubSnapshot::default())]);
        assert!(
            text.contains(
                "ringcast_handshake_duration_seconds_bucket{worker=\"0\",le=\"0.000005\"} 1\n"
            ),
            "{text}"
        );
        assert!(text
            .contains("ringcast_handshake_duration_seconds_bucket{worker=\"0\",le=\"0.005\"} 2\n"));
        assert!(text
            .contains("ringcast_handshake_duration_seconds_bucket{worker=\"0\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("ringcast_handshake_duration_seconds_count{worker=\"0\"} 3\n"));
        assert!(text.contains(
            "ringcast_connections_closed_total{worker=\"0\",reason=\"slow_consumer\"} 1\n"
        ));
        assert!(text.contains("ringcast_handshakes_refused_total{worker=\"0\",status=\"431\"} 1\n"));
        assert!(
            text.contains("ringcast_handshakes_refused_total{worker=\"0\",status=\"other\"} 1\n")
        );
    }

    #[test]
    fn drain_timeout_closes_have_their_own_series() {
        let m = Metrics::default();
        m.closed(CloseReason::DrainTimeout);
        m.closed(CloseReason::DrainTimeout);
        m.closed(CloseReason::Drained);
        assert_eq!(m.closed_count(CloseReason::DrainTimeout), 2);
        assert_eq!(m.closed_count(CloseReason::Normal), 0);
        let text = render(&[m.snapshot(1, PubsubSnapshot::default())]);
        assert!(
            text.contains(
                "ringcast_connections_closed_total{worker=\"1\",reason=\"drain_timeout\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("ringcast_connections_closed_total{worker=\"1\",reason=\"drained\"} 1\n")
        );
    }
}
