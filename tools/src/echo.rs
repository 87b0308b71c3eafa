//! The `echo` scenario: N connections to an echo endpoint; every message
//! carries its send time, and latency is the echo's arrival minus that time.
//!
//! Two load shapes:
//! - **Open loop** (`--rate R`): one global schedule of R messages per second
//!   spread round-robin over the connections (each thread runs the share of
//!   its connections, phase-shifted against the others). A message carries
//!   its *intended* send time, and latency is measured from it: when the
//!   server (or the socket) holds a message up, the messages due behind it
//!   are sent late and charged the wait, so a stall shows in the tail
//!   (coordinated omission corrected). The generator's own lateness is
//!   recorded separately (`generator_lag`); p99 over 1 ms flags the run
//!   client-bound.
//! - **Closed loop** (`--inflight K`): every connection keeps K messages in
//!   flight and sends the next as soon as one comes back — maximum
//!   throughput. Latency is from the actual send, so a stall hides in fewer
//!   samples; the report says so, and names the longest silence it saw.
//!
//! Figures: `throughput.sent_per_s` and `received_per_s` over the recorded
//! window (by intended send time); counts `sent`, `received`, `unanswered`
//! (no echo by the end of the drain), `not_sent`, `bad_messages`; figure
//! `longest_silence_ms` (closed loop).
//!
//! Each echo is checked: a stamp that does not parse or a length that
//! differs from what was sent counts as `bad_messages`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast::proto::frame::OpCode;
use serde_json::json;

use crate::dispatch::NOT_OPEN;
use crate::engine::{self, EngineConfig, RunError, Tally, ThreadCtx, Window};
use crate::link::{self, Handler, Link, DEFAULT_MAX_BACKLOG};
use crate::progress::Progress;
use crate::report::Micros;
use crate::schedule::Schedule;
use crate::stamp::{echo_template, parse_stamp, write_hex, STAMP_LEN};
use crate::stats::{Counter, Metric};
use crate::summary::{ReportBase, RunReport};

/// Read buffer per connection, in bytes.
const READ_BUF: usize = 8 * 1024;

/// The load shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// R messages per second over all connections.
    Open { rate: f64 },
    /// K messages in flight per connection.
    Closed { inflight: u32 },
}

/// Everything an `echo` run needs.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    pub engine: EngineConfig,
    pub connections: u64,
    /// Message size in bytes (at least the 16-byte stamp).
    pub size: usize,
    /// Binary frames instead of text.
    pub binary: bool,
    pub load: Load,
}

const METRICS_OPEN: &[(Metric, &str)] = &[
    (
        Metric::Latency,
        "echo arrival − intended send time (open loop)",
    ),
    (
        Metric::Lag,
        "generator: actual − intended dispatch of each message",
    ),
    (Metric::Setup, "TCP connect + WebSocket handshake"),
];

const METRICS_CLOSED: &[(Metric, &str)] = &[
    (
        Metric::Latency,
        "echo arrival − actual send time (closed loop)",
    ),
    (Metric::Setup, "TCP connect + WebSocket handshake"),
];

const ALWAYS: &[Counter] = &[
    Counter::Sent,
    Counter::Received,
    Counter::Unanswered,
    Counter::NotSent,
    Counter::BadMessages,
];

/// Runs the scenario and builds its report.
pub fn run(
    cfg: EchoConfig,
    progress: &Progress,
    label: Option<String>,
    fd_limit: Option<u64>,
) -> Result<RunReport, RunError> {
    let shared = Arc::new(cfg.clone());
    let outcome = engine::run(cfg.engine.clone(), progress, move |ctx| {
        thread_main(ctx, Arc::clone(&shared))
    })?;
    let (mode, target, metrics, spinning) = match cfg.load {
        Load::Open { rate } => (
            format!(
                "open loop at {rate} msg/s over {} connections, {} B {}",
                cfg.connections,
                cfg.size,
                kind(cfg.binary)
            ),
            Some(rate),
            METRICS_OPEN,
            !cfg.engine.spin.is_zero(),
        ),
        Load::Closed { inflight } => (
            format!(
                "closed loop, {inflight} in flight on each of {} connections, {} B {}",
                cfg.connections,
                cfg.size,
                kind(cfg.binary)
            ),
            None,
            METRICS_CLOSED,
            false,
        ),
    };
    let mut settings = BTreeMap::new();
    settings.insert("connections".into(), json!(cfg.connections));
    settings.insert("size".into(), json!(cfg.size));
    settings.insert("binary".into(), json!(cfg.binary));
    match cfg.load {
        Load::Open { rate } => settings.insert("rate".into(), json!(rate)),
        Load::Closed { inflight } => settings.insert("inflight".into(), json!(inflight)),
    };
    let e = &cfg.engine;
    let mut report = RunReport::new(
        "echo",
        &outcome,
        ReportBase {
            label,
            url: e.url.to_string(),
            mode,
            settings,
            threads: e.threads,
            cpus: e.cpus.as_ref().map(|c| c.cpus().to_vec()),
            fd_limit,
            connections: cfg.connections,
            warmup_s: e.warmup.as_secs_f64(),
            duration_s: e.duration.as_secs_f64(),
            target_rate: target,
            metrics,
            always_count: ALWAYS,
            nap_us: e.nap.as_micros() as u64,
            spinning,
        },
    );
    let stats = &outcome.stats;
    let sent = report.per_second(stats.count(Counter::SentInWindow));
    let received = report.per_second(stats.count(Counter::ReceivedInWindow));
    report.throughput.insert("sent_per_s".into(), sent);
    report.throughput.insert("received_per_s".into(), received);
    if let Load::Closed { .. } = cfg.load {
        let silence = stats.longest_silence_us;
        report
            .figures
            .insert("longest_silence_ms".into(), silence as f64 / 1000.0);
        report.warnings.push(
            "closed loop: latency is measured from each actual send, which waits for the previous \
             echo; a server stall delays the sends instead of showing in the percentiles \
             (coordinated omission). Use --rate for latency figures"
                .into(),
        );
        let p99 = report
            .metrics
            .get(Metric::Latency.name())
            .map_or(0, |m| m.summary.p99_us);
        if silence > (10 * p99).max(10_000) {
            report.warnings.push(format!(
                "the server went silent for {} (longest stretch with messages in flight and no \
                 echo); at the achieved rate an open-loop run would have charged ~{:.0} messages \
                 with up to that latency",
                Micros(silence),
                received * silence as f64 / 1e6
            ));
        }
    }
    let unanswered = stats.count(Counter::Unanswered);
    if unanswered > 0 {
        report.warnings.push(format!(
            "{unanswered} messages got no echo by the end of the drain ({} after the window)",
            humantime::format_duration(cfg.engine.drain)
        ));
    }
    let bad = stats.count(Counter::BadMessages);
    if bad > 0 {
        report
            .warnings
            .push(format!("{bad} echoes did not match what was sent"));
    }
    report.judge_client_bound();
    Ok(report)
}

fn kind(binary: bool) -> &'static str {
    if binary {
        "binary"
    } else {
        "text"
    }
}

/// One thread's echo state, shared by its connection tasks.
struct EchoThread {
    ctx: Rc<ThreadCtx>,
    cfg: Arc<EchoConfig>,
    /// Links by slot (slot `k` is this thread's `k`-th connection index);
    /// `None` until opened, and for connections that failed.
    slots: RefCell<Vec<Option<Rc<Link>>>>,
    tally: Rc<Tally>,
    /// Messages sent and not yet echoed, over the thread's links.
    outstanding: Cell<u64>,
    /// The payload, overwritten with each message's stamp before framing.
    payload: RefCell<Vec<u8>>,
    window: Cell<Option<Window>>,
    /// When the previous echo arrived (closed-loop silence tracking).
    last_echo_ns: Cell<u64>,
}

impl EchoThread {
    fn opcode(&self) -> OpCode {
        if self.cfg.binary {
            OpCode::Binary
        } else {
            OpCode::Text
        }
    }

    /// Queues one message stamped `stamp` on `link`.
    fn send(&self, link: &Link, stamp: u64, window: &Window) {
        let mut payload = self.payload.borrow_mut();
        write_hex(&mut payload[..STAMP_LEN], stamp);
        let result = link.send(self.opcode(), &payload);
        if self.ctx.count_send(result, stamp, window) {
            self.outstanding.set(self.outstanding.get() + 1);
        }
    }
}

async fn thread_main(ctx: Rc<ThreadCtx>, cfg: Arc<EchoConfig>) {
    let mine: Vec<u64> = ctx.my_indices(cfg.connections).collect();
    let t = Rc::new(EchoThread {
        slots: RefCell::new(vec![None; mine.len()]),
        tally: Rc::new(Tally::default()),
        outstanding: Cell::new(0),
        payload: RefCell::new(echo_template(cfg.size)),
        window: Cell::new(None),
        last_echo_ns: Cell::new(0),
        ctx: Rc::clone(&ctx),
        cfg,
    });
    let threads = ctx.threads as u64;
    let index = ctx.index as u64;
    ctx.start_paced(
        mine.iter().copied(),
        &t.tally,
        Duration::from_secs(1),
        |i| conn_task(Rc::clone(&t), i, ((i - index) / threads) as usize),
    )
    .await;

    if let Some(window) = ctx.ready().await {
        t.window.set(Some(window));
        match t.cfg.load {
            Load::Open { rate } => {
                let share = rate * mine.len() as f64 / t.cfg.connections as f64;
                if share > 0.0 {
                    open_loop(&t, &window, share).await;
                }
            }
            Load::Closed { inflight } => closed_loop(&t, &window, inflight).await,
        }
        ctx.window_over();
        // Drain: wait for the echoes still in flight.
        let drain_end = Instant::now().max(ctx.run.instant(window.end_ns)) + ctx.run.drain();
        while t.outstanding.get() > 0 && Instant::now() < drain_end {
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
        ctx.stats().add(Counter::Unanswered, t.outstanding.get());
    }
    let links: Vec<Rc<Link>> = t.slots.borrow().iter().flatten().cloned().collect();
    ctx.close_all(&links, &t.tally).await;
}

/// Dispatches this thread's share of the global schedule.
async fn open_loop(t: &Rc<EchoThread>, window: &Window, rate: f64) {
    let ctx = &t.ctx;
    let phase = ctx.index as f64 / ctx.threads as f64;
    let mut schedule = Schedule::new(window.start_ns, window.end_ns, rate, phase);
    let slots = t.slots.borrow().len() as u64;
    loop {
        let now = Instant::now();
        let now_ns = ctx.run.now_ns();
        ctx.tick(now, window);
        if ctx.run.stopped() {
            return;
        }
        let burst_over = ctx.dispatch_due(&mut schedule, window, now_ns, |j, intended| {
            let link = t.slots.borrow()[(j % slots) as usize].clone();
            match link {
                Some(link) => t.send(&link, intended, window),
                None => ctx.not_sent(NOT_OPEN),
            }
        });
        if burst_over {
            ctx.yield_now().await;
            continue;
        }
        match schedule.next_due_ns() {
            None => return,
            Some(due) => {
                let next = ctx.run.instant(due).min(ctx.next_flush());
                ctx.wait_until(next, true).await;
            }
        }
    }
}

/// Fills every link with `inflight` messages; the handlers keep it full
/// until the window ends.
async fn closed_loop(t: &Rc<EchoThread>, window: &Window, inflight: u32) {
    let ctx = &t.ctx;
    ctx.wait_until(ctx.run.instant(window.start_ns), false)
        .await;
    let now_ns = ctx.run.now_ns();
    let links: Vec<Rc<Link>> = t.slots.borrow().iter().flatten().cloned().collect();
    for link in &links {
        for _ in 0..inflight {
            t.send(link, now_ns, window);
        }
    }
    loop {
        let now = Instant::now();
        ctx.tick(now, window);
        if ctx.sending_over(window, ctx.run.now_ns()) {
            return;
        }
        let next = ctx.run.instant(window.end_ns).min(ctx.next_flush());
        ctx.wait_until(next, false).await;
    }
}

async fn conn_task(t: Rc<EchoThread>, i: u64, slot: usize) {
    let ctx = Rc::clone(&t.ctx);
    let started = Instant::now();
    let conn = match ctx.dial(i).await {
        Ok(c) => c,
        Err(e) => {
            ctx.stats().error(&format!("connect: {}", e.cause()));
            t.tally.setup_done();
            t.tally.end();
            return;
        }
    };
    ctx.stats()
        .record(Metric::Setup, started.elapsed().as_micros() as u64);
    let (link, reader) = link::start(conn, DEFAULT_MAX_BACKLOG);
    t.slots.borrow_mut()[slot] = Some(Rc::clone(&link));
    t.tally.setup_done();
    let mut handler = EchoHandler { t: Rc::clone(&t) };
    let end = ctx
        .read_until_end(reader, &link, &mut handler, READ_BUF)
        .await;
    ctx.report_end(&link, &end, "connection");
    t.tally.end();
}

struct EchoHandler {
    t: Rc<EchoThread>,
}

impl Handler for EchoHandler {
    fn on_message(&mut self, link: &Link, data: &[u8], _text: bool, now_ns: u64) {
        let t = &self.t;
        let Some(window) = t.window.get() else {
            t.ctx.stats().add(Counter::BadMessages, 1);
            return;
        };
        let stamp = match parse_stamp(data) {
            Some(s) if data.len() == t.cfg.size.max(STAMP_LEN) => s,
            _ => {
                let mut stats = t.ctx.stats();
                stats.add(Counter::BadMessages, 1);
                stats.error("bad echo");
                return;
            }
        };
        t.outstanding.set(t.outstanding.get().saturating_sub(1));
        {
            let mut stats = t.ctx.stats();
            stats.add(Counter::Received, 1);
            if window.measures(stamp) {
                stats.add(Counter::ReceivedInWindow, 1);
                stats.record(Metric::Latency, now_ns.saturating_sub(stamp) / 1000);
            }
            let last = t.last_echo_ns.replace(now_ns);
            if last != 0 && window.measures(last) {
                let silence = now_ns.saturating_sub(last) / 1000;
                stats.longest_silence_us = stats.longest_silence_us.max(silence);
            }
        }
        if let Load::Closed { .. } = t.cfg.load {
            if !t.ctx.sending_over(&window, now_ns) {
                t.send(link, now_ns, &window);
            }
        }
    }

    fn on_ping(&mut self) {
        self.t.ctx.stats().add(Counter::Pings, 1);
    }
}
