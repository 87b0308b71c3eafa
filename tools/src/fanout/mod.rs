//! The `fanout` scenario (and the run under `storm`): S subscribers, P
//! publishers publishing at a total rate R; every delivery's latency is its
//! arrival minus the **intended** publish time carried in the payload.
//!
//! Two protocols:
//! - `ringcast`: wire protocol v1 on `/ws`. Subscriber `i` subscribes to
//!   channel `PREFIX:(i % C)`; publisher `j`'s `k`-th publish goes to channel
//!   `(k * P + j) % C`, so every channel gets R / C per second. Deliveries
//!   are checked by offset: per subscriber, offsets must run contiguously
//!   from its subscribe reply's (`gaps`, `duplicates`), and at the end every
//!   offset up to the last one acknowledged on the channel must have arrived
//!   (`lost_at_end`). `expected_deliveries` sums, per subscriber, the
//!   messages published on its channel after it subscribed.
//! - `broadcast`: a plain server that sends every message it receives to
//!   every connected client (how peer servers are measured). Publishers send
//!   text frames; each subscriber checks every publisher's sequence numbers.
//!   What comes back to the publishers is counted (`publisher_receipts`)
//!   and not measured.
//!
//! The payload is `stamp publisher sequence` in hex, then filler up to
//! `--size` bytes (see [`crate::stamp`]); in v1 it is the JSON string `data`.
//!
//! Each thread's pacing loop publishes its publishers' share of the global
//! schedule, samples its own lag every [`PROBE_EVERY`] (so a thread busy
//! receiving is caught falling behind even without publishers), and — under
//! `storm` — drops the chosen subscribers at the planned instant. After the
//! window it waits for the publishes' replies and until no delivery has
//! arrived for [`QUIET`] (bounded by `--drain`), then closes everything.
//!
//! Figures: `throughput.publishes_per_s`, `deliveries_per_s` (by intended
//! publish time, over the window) and `target_deliveries_per_s`; counts
//! `sent`, `acked`, `received` (deliveries), `gaps`, `duplicates`, `missed`,
//! `lost_at_end`, `undelivered` (the three kinds of loss together),
//! `unanswered` (publishes with no reply), `not_sent`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::engine::{self, duration_ns, EngineConfig, RunError, Tally, ThreadCtx, Window};
use crate::gaps::SeqTracker;
use crate::link::Link;
use crate::progress::Progress;
use crate::schedule::Schedule;
use crate::stamp::broadcast_template;
use crate::stats::{Counter, Metric};
use crate::storm::StormPlan;
use crate::summary::{ReportBase, RunReport};

mod publisher;
mod subscriber;

use publisher::{pub_task, Pub};
use subscriber::{sub_task, Sub};

/// Smallest payload: the stamp, publisher and sequence header.
pub const MIN_SIZE: usize = crate::stamp::BROADCAST_HEADER;

/// How often each thread samples its own lag.
pub const PROBE_EVERY: Duration = Duration::from_millis(10);

/// The drain ends once no delivery has arrived for this long.
pub const QUIET: Duration = Duration::from_millis(300);

/// Read buffer per connection, in bytes.
const READ_BUF: usize = 8 * 1024;

/// The `id` of every subscribe (a subscriber sends nothing else).
const SUBSCRIBE_ID: u64 = 1;

/// Pause before retrying a failed reconnect.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Ringcast,
    Broadcast,
}

/// Everything a `fanout` or `storm` run needs.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    pub engine: EngineConfig,
    pub protocol: Protocol,
    pub subscribers: u64,
    /// Channels (ringcast only).
    pub channels: u64,
    pub publishers: u64,
    /// Publishes per second, all publishers together.
    pub rate: f64,
    /// Payload bytes.
    pub size: usize,
    pub channel_prefix: String,
    /// `Some` for a storm.
    pub storm: Option<StormPlan>,
    pub fd_limit: Option<u64>,
}

const METRICS: &[(Metric, &str)] = &[
    (Metric::Latency, "delivery arrival − intended publish time"),
    (
        Metric::Lag,
        "generator: how late its pacing loop ran (publishes and 10 ms probes)",
    ),
    (
        Metric::Setup,
        "TCP connect + handshake (+ subscribe reply for subscribers)",
    ),
];

const STORM_METRICS: &[(Metric, &str)] = &[
    (Metric::Latency, "delivery arrival − intended publish time"),
    (
        Metric::Lag,
        "generator: how late its pacing loop ran (publishes and 10 ms probes)",
    ),
    (
        Metric::Setup,
        "TCP connect + handshake (+ subscribe reply for subscribers)",
    ),
    (
        Metric::Resubscribe,
        "drop → subscribe reply on the new connection",
    ),
    (Metric::Resume, "drop → first message on the new connection"),
];

const ALWAYS: &[Counter] = &[
    Counter::Sent,
    Counter::Received,
    Counter::Gaps,
    Counter::Duplicates,
    Counter::Missed,
    Counter::Unanswered,
    Counter::NotSent,
    Counter::BadMessages,
];

/// Runs the scenario and builds its report.
pub fn run(
    cfg: FanoutConfig,
    progress: &Progress,
    label: Option<String>,
) -> Result<RunReport, RunError> {
    let shared = Arc::new(cfg.clone());
    let outcome = engine::run(cfg.engine.clone(), progress, move |ctx| {
        thread_main(ctx, Arc::clone(&shared))
    })?;

    let e = &cfg.engine;
    let per_channel = cfg.subscribers as f64 / cfg.channels as f64;
    let (mode, target_deliveries) = match cfg.protocol {
        Protocol::Ringcast => (
            format!(
                "ringcast v1: {} subscribers over {} channel(s), {} publisher(s) at {} msg/s, {} B",
                cfg.subscribers, cfg.channels, cfg.publishers, cfg.rate, cfg.size
            ),
            cfg.rate * per_channel,
        ),
        Protocol::Broadcast => (
            format!(
                "broadcast: {} subscribers, {} publisher(s) at {} msg/s, {} B",
                cfg.subscribers, cfg.publishers, cfg.rate, cfg.size
            ),
            cfg.rate * cfg.subscribers as f64,
        ),
    };
    let mut settings = BTreeMap::new();
    settings.insert(
        "protocol".into(),
        json!(match cfg.protocol {
            Protocol::Ringcast => "ringcast",
            Protocol::Broadcast => "broadcast",
        }),
    );
    settings.insert("subscribers".into(), json!(cfg.subscribers));
    settings.insert("channels".into(), json!(cfg.channels));
    settings.insert("publishers".into(), json!(cfg.publishers));
    settings.insert("rate".into(), json!(cfg.rate));
    settings.insert("size".into(), json!(cfg.size));
    if let Some(plan) = &cfg.storm {
        settings.insert("drop_after_s".into(), json!(plan.drop_after.as_secs_f64()));
        settings.insert("drop_fraction".into(), json!(plan.fraction));
        settings.insert("resume".into(), json!(plan.resume));
    }
    let mut report = RunReport::new(
        if cfg.storm.is_some() {
            "storm"
        } else {
            "fanout"
        },
        &outcome,
        ReportBase {
            label,
            url: e.url.to_string(),
            mode,
            settings,
            threads: e.threads,
            cpus: e.cpus.as_ref().map(|c| c.cpus().to_vec()),
            fd_limit: cfg.fd_limit,
            connections: cfg.subscribers + cfg.publishers,
            warmup_s: e.warmup.as_secs_f64(),
            duration_s: e.duration.as_secs_f64(),
            target_rate: Some(cfg.rate),
            metrics: if cfg.storm.is_some() {
                STORM_METRICS
            } else {
                METRICS
            },
            always_count: ALWAYS,
            nap_us: e.nap.as_micros() as u64,
            spinning: !e.spin.is_zero(),
        },
    );
    let stats = &outcome.stats;
    let publishes = report.per_second(stats.count(Counter::SentInWindow));
    let deliveries = report.per_second(stats.count(Counter::ReceivedInWindow));
    report
        .throughput
        .insert("publishes_per_s".into(), publishes);
    report
        .throughput
        .insert("deliveries_per_s".into(), deliveries);
    report
        .throughput
        .insert("target_deliveries_per_s".into(), target_deliveries);

    let tail = tail_accounting(&cfg, &outcome.results);
    if let Some(expected) = tail.expected {
        report.counts.insert("expected_deliveries".into(), expected);
    }
    report.counts.insert("lost_at_end".into(), tail.lost);
    let undelivered = stats.count(Counter::Gaps) + stats.count(Counter::Missed) + tail.lost;
    report.counts.insert("undelivered".into(), undelivered);
    if cfg.protocol == Protocol::Ringcast {
        report
            .counts
            .insert("acked".into(), stats.count(Counter::Acked));
    }
    if outcome.results.len() < cfg.engine.threads {
        report
            .warnings
            .push("some threads did not finish: loss at the end was not counted for them".into());
    }
    if let Some(n) = report.errors_matching("rate_limited") {
        report.warnings.push(format!(
            "the server refused {n} publishes as rate_limited: raise its command rate \
             (ringcast serve --set limits.command_rate=N --set limits.command_burst=N) or use more --publishers"
        ));
    }
    if undelivered > 0 && cfg.storm.is_none() {
        report.warnings.push(format!(
            "{undelivered} deliveries missing (gaps {}, missed {}, lost at end {})",
            stats.count(Counter::Gaps),
            stats.count(Counter::Missed),
            tail.lost
        ));
    }
    if stats.count(Counter::Duplicates) > 0 {
        report.warnings.push(format!(
            "{} deliveries were duplicates or out of order",
            stats.count(Counter::Duplicates)
        ));
    }
    if let Some(plan) = &cfg.storm {
        plan.finish_report(&mut report, stats);
    }
    report.judge_client_bound();
    Ok(report)
}

/// Loss at the end of the streams, from every thread's final state.
struct Tail {
    lost: u64,
    /// Ringcast: deliveries the subscribers should have had in all.
    expected: Option<u64>,
}

fn tail_accounting(cfg: &FanoutConfig, results: &[ThreadEnd]) -> Tail {
    match cfg.protocol {
        Protocol::Ringcast => {
            let mut last = vec![0u64; cfg.channels as usize];
            for r in results {
                for (c, &offset) in r.acked_max.iter().enumerate() {
                    last[c] = last[c].max(offset);
                }
            }
            let (mut lost, mut expected) = (0, 0);
            for r in results {
                for s in &r.subs {
                    if let SubEnd::Ringcast {
                        channel,
                        next,
                        first_offset,
                    } = s
                    {
                        let end = last[*channel];
                        lost += SeqTracker::expecting(*next).missing_before(end);
                        expected += end.saturating_sub(*first_offset);
                    }
                }
            }
            Tail {
                lost,
                expected: Some(expected),
            }
        }
        Protocol::Broadcast => {
            let mut sent = vec![0u64; cfg.publishers as usize];
            for r in results {
                for &(j, n) in &r.pub_sent {
                    sent[j as usize] = n;
                }
            }
            let mut lost = 0;
            for r in results {
                for s in &r.subs {
                    if let SubEnd::Broadcast { nexts } = s {
                        for (j, &next) in nexts.iter().enumerate() {
                            if sent[j] > 0 {
                                lost += SeqTracker::expecting(next).missing_before(sent[j] - 1);
                            }
                        }
                    }
                }
            }
            Tail {
                lost,
                expected: None,
            }
        }
    }
}

/// What a thread hands back for the end-of-stream accounting.
pub struct ThreadEnd {
    /// Ringcast: the highest acknowledged offset per channel.
    acked_max: Vec<u64>,
    /// Broadcast: (publisher, messages sent) for this thread's publishers.
    pub_sent: Vec<(u64, u64)>,
    subs: Vec<SubEnd>,
}

enum SubEnd {
    Ringcast {
        channel: usize,
        /// The next offset the subscriber expected.
        next: u64,
        /// The offset in its first subscribe reply.
        first_offset: u64,
    },
    Broadcast {
        /// The next sequence expected from each publisher.
        nexts: Vec<u64>,
    },
}

/// One thread's fan-out state, shared by its connection tasks (in
/// `subscriber` and `publisher`).
struct FanThread {
    ctx: Rc<ThreadCtx>,
    cfg: Arc<FanoutConfig>,
    channels: Vec<String>,
    subs: Vec<Rc<Sub>>,
    pubs: Vec<Rc<Pub>>,
    tally: Rc<Tally>,
    /// Ringcast: highest acknowledged offset per channel.
    acked_max: RefCell<Vec<u64>>,
    /// Ringcast: publishes sent and not yet answered.
    replies_pending: Cell<u64>,
    window: Cell<Option<Window>>,
    last_delivery: Cell<Instant>,
    /// Set when the close phase starts: no more reconnects.
    closing: Cell<bool>,
    /// The payload, overwritten with each publish's header.
    payload: RefCell<Vec<u8>>,
    /// Scratch for building a command's JSON before framing it.
    scratch: RefCell<Vec<u8>>,
}

async fn thread_main(ctx: Rc<ThreadCtx>, cfg: Arc<FanoutConfig>) -> ThreadEnd {
    let now = Instant::now();
    let subs: Vec<Rc<Sub>> = ctx
        .my_indices(cfg.subscribers)
        .map(|i| {
            Rc::new(Sub {
                index: i,
                channel: (i % cfg.channels) as usize,
                offsets: Cell::new(None),
                first_offset: Cell::new(0),
                epoch: RefCell::new(String::new()),
                seqs: RefCell::new(match cfg.protocol {
                    Protocol::Broadcast => {
                        vec![SeqTracker::expecting(0); cfg.publishers as usize]
                    }
                    Protocol::Ringcast => Vec::new(),
                }),
                link: RefCell::new(None),
                setup_pending: Cell::new(true),
                setup_started: Cell::new(now),
                dropped_ns: Cell::new(None),
                awaiting_first: Cell::new(false),
            })
        })
        .collect();
    let pubs: Vec<Rc<Pub>> = ctx
        .my_indices(cfg.publishers)
        .map(|j| {
            Rc::new(Pub {
                index: j,
                sent: Cell::new(0),
                link: RefCell::new(None),
            })
        })
        .collect();
    let t = Rc::new(FanThread {
        channels: (0..cfg.channels)
            .map(|c| format!("{}:{c}", cfg.channel_prefix))
            .collect(),
        acked_max: RefCell::new(vec![0; cfg.channels as usize]),
        replies_pending: Cell::new(0),
        window: Cell::new(None),
        last_delivery: Cell::new(now),
        closing: Cell::new(false),
        payload: RefCell::new(broadcast_template(cfg.size)),
        scratch: RefCell::new(Vec::with_capacity(cfg.size + 128)),
        tally: Rc::new(Tally::default()),
        ctx: Rc::clone(&ctx),
        subs,
        pubs,
        cfg,
    });

    // Subscribers are connections 0..S, publishers S..S+P.
    let s = t.cfg.subscribers;
    let indices: Vec<u64> = ctx
        .my_indices(s)
        .chain(ctx.my_indices(t.cfg.publishers).map(|j| s + j))
        .collect();
    let threads = ctx.threads as u64;
    let index = ctx.index as u64;
    ctx.start_paced(indices.into_iter(), &t.tally, Duration::from_secs(2), |i| {
        let slot = if i < s { i } else { i - s };
        let slot = ((slot - index) / threads) as usize;
        let t = Rc::clone(&t);
        async move {
            if i < s {
                sub_task(t, slot).await;
            } else {
                pub_task(t, slot).await;
            }
        }
    })
    .await;

    if let Some(window) = ctx.ready().await {
        t.window.set(Some(window));
        t.last_delivery.set(Instant::now());
        pace(&t, &window).await;
        ctx.window_over();
        drain(&t, &window).await;
        ctx.stats()
            .add(Counter::Unanswered, t.replies_pending.get());
    }
    t.closing.set(true);
    let links: Vec<Rc<Link>> = t
        .subs
        .iter()
        .filter_map(|s| s.link.borrow().clone())
        .chain(t.pubs.iter().filter_map(|p| p.link.borrow().clone()))
        .collect();
    ctx.close_all(&links, &t.tally).await;

    let acked_max = t.acked_max.borrow().clone();
    let end = ThreadEnd {
        acked_max,
        pub_sent: t.pubs.iter().map(|p| (p.index, p.sent.get())).collect(),
        subs: t
            .subs
            .iter()
            .filter_map(|s| match t.cfg.protocol {
                Protocol::Ringcast => s.offsets.get().map(|o| SubEnd::Ringcast {
                    channel: s.channel,
                    next: o.next(),
                    first_offset: s.first_offset.get(),
                }),
                Protocol::Broadcast => Some(SubEnd::Broadcast {
                    nexts: s.seqs.borrow().iter().map(SeqTracker::next).collect(),
                }),
            })
            .collect(),
    };
    end
}

/// The window: publishes, lag probes, and the storm's drop.
async fn pace(t: &Rc<FanThread>, window: &Window) {
    let ctx = &t.ctx;
    let cfg = &t.cfg;
    let mut schedule = (!t.pubs.is_empty()).then(|| {
        let share = cfg.rate * t.pubs.len() as f64 / cfg.publishers as f64;
        let phase = ctx.index as f64 / ctx.threads as f64;
        Schedule::new(window.start_ns, window.end_ns, share, phase)
    });
    let probe = duration_ns(PROBE_EVERY);
    let mut next_probe = window.start_ns + probe;
    let mut drop_at = cfg.storm.map(|p| p.drop_at_ns(window));
    loop {
        let now = Instant::now();
        let now_ns = ctx.run.now_ns();
        ctx.tick(now, window);
        if ctx.run.stopped() || now_ns >= window.end_ns {
            return;
        }
        if drop_at.is_some_and(|d| now_ns >= d) {
            drop_at = None;
            drop_subscribers(t, now_ns);
        }
        if now_ns >= next_probe {
            if window.measures(next_probe) {
                ctx.stats()
                    .record(Metric::Lag, (now_ns - next_probe) / 1000);
            }
            while next_probe <= now_ns {
                next_probe += probe;
            }
        }
        let burst_over = schedule.as_mut().is_some_and(|schedule| {
            ctx.dispatch_due(schedule, window, now_ns, |j, intended| {
                let p = Rc::clone(&t.pubs[(j % t.pubs.len() as u64) as usize]);
                t.publish(&p, intended, window);
            })
        });
        if burst_over {
            ctx.yield_now().await;
            continue;
        }
        let mut next = next_probe.min(window.end_ns);
        if let Some(due) = schedule.as_ref().and_then(Schedule::next_due_ns) {
            next = next.min(due);
        }
        if let Some(d) = drop_at {
            next = next.min(d);
        }
        let next = ctx.run.instant(next).min(ctx.next_flush());
        ctx.wait_until(next, true).await;
    }
}

/// Storm: shuts down the chosen subscribers' sockets, all at once.
fn drop_subscribers(t: &FanThread, now_ns: u64) {
    let Some(plan) = t.cfg.storm else { return };
    let mut dropped = 0;
    for sub in &t.subs {
        if !plan.drops(sub.index) {
            continue;
        }
        let link = sub.link.borrow().clone();
        if let Some(link) = link {
            sub.dropped_ns.set(Some(now_ns));
            link.drop_now();
            dropped += 1;
        }
    }
    t.ctx.stats().add(Counter::Dropped, dropped);
}

/// After the window: replies to our publishes, then quiet, within `drain`.
async fn drain(t: &FanThread, window: &Window) {
    let ctx = &t.ctx;
    let drain_end = Instant::now().max(ctx.run.instant(window.end_ns)) + ctx.run.drain();
    let quiet = QUIET.min(ctx.run.drain());
    loop {
        let now = Instant::now();
        if now >= drain_end {
            return;
        }
        if t.replies_pending.get() == 0 && now.duration_since(t.last_delivery.get()) >= quiet {
            return;
        }
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
}
