//! The `connect` scenario: open many WebSocket connections at a fixed rate,
//! hold them idle, and measure what they cost the server.
//!
//! Phases, each bounded in count and time:
//! 1. **Open.** Connection `i` (global index) is due at `t0 + i / rate`
//!    (an open-loop schedule: a slow server does not slow the schedule down).
//!    Thread `t` of `--threads` owns the connections with `i % threads == t`,
//!    each on its own monoio runtime, and connects from source address
//!    `sources[i % len]`. A connection that is not open within
//!    `connect_timeout` counts as failed (`timeout`). Connect and handshake
//!    latencies are measured from the moment the connection really started;
//!    how late that was against its due time is reported beside them as the
//!    start lag (monoio's timer ticks in milliseconds, so up to ~1 ms of lag is
//!    the schedule's resolution; more means the generator fell behind).
//! 2. **Hold.** Every open connection idles, answering pings with masked
//!    pongs. After `settle` the server's RSS is read again: growth divided by
//!    the connections open at that moment is the memory per idle connection.
//! 3. **Close.** When the hold ends, each connection sends close 1000 and
//!    waits up to `close_timeout` for the server's close frame.
//!
//! Threads share only the [`Shared`] atomics below; each keeps its own
//! histograms and counters and hands them back when it ends.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use monoio::io::{CancelHandle, Canceller};
use ringcast::proto::close::CloseCode;
use serde::Serialize;

use crate::client::{tcp_connect, ConnectError, Connection, HoldEnd};
use crate::engine;
use crate::report::{
    new_latency_histogram, record_us, CauseCounts, LatencySummary, ServerRss, ServerRssJson,
};
use crate::rss::{read_rss_kib, RssError};
use crate::source::SourceAddrs;
use crate::url::WsUrl;
use ringcast::os::cpus::CpuList;

/// Everything a `connect` run needs; the binary fills it from the command line.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    pub url: WsUrl,
    /// Connections to open in all.
    pub connections: u64,
    /// Connections started per second, over all threads.
    pub rate: f64,
    /// How long to keep the connections open once the open phase is over.
    pub hold: Duration,
    /// Wait after the open phase before reading the server's RSS (capped at `hold`).
    pub settle: Duration,
    /// Source addresses used round-robin; `None` lets the kernel choose.
    pub sources: Option<SourceAddrs>,
    /// Process whose RSS is read before and after opening.
    pub server_pid: Option<u32>,
    /// Generator threads, each with its own runtime. At least 1.
    pub threads: usize,
    /// Pin thread `i` to `cpus.for_thread(i)`.
    pub cpus: Option<CpuList>,
    /// Limit on TCP connect + handshake of one connection.
    pub connect_timeout: Duration,
    /// Limit on waiting for the server's close frame at the end.
    pub close_timeout: Duration,
}

/// Why a run could not be carried out (as opposed to connections failing,
/// which the report counts).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("server memory: {0}")]
    Rss(#[from] RssError),
    /// A thread could not be started, pinned or given its runtime (the
    /// same errors as the measuring scenarios').
    #[error(transparent)]
    Thread(#[from] engine::RunError),
    #[error("generator thread {0} panicked")]
    Panicked(usize),
}

/// Counters every thread updates and the main thread reads for progress
/// lines and the RSS sample. Written with relaxed atomics: they are
/// statistics, and each thread's exact figures come back in its
/// [`ThreadResult`].
#[derive(Debug, Default)]
struct Shared {
    /// Set by the main thread when the hold is over (or at the hard deadline of
    /// the open phase). Threads stop starting connections, cancel their holds,
    /// close, and return.
    stop: AtomicBool,
    opened: AtomicU64,
    failed: AtomicU64,
    /// Connections open right now (opened and not yet ended).
    open_now: AtomicU64,
    /// Threads whose open phase is over (every connection open or failed).
    opening_done: AtomicUsize,
}

/// What one thread measured.
struct ThreadResult {
    start_lag: Histogram<u64>,
    connect: Histogram<u64>,
    handshake: Histogram<u64>,
    failures: CauseCounts,
    hold_ends: CauseCounts,
    closes: CauseCounts,
    pings: u64,
    messages: u64,
}

impl ThreadResult {
    fn new() -> ThreadResult {
        ThreadResult {
            start_lag: new_latency_histogram(),
            connect: new_latency_histogram(),
            handshake: new_latency_histogram(),
            failures: CauseCounts::default(),
            hold_ends: CauseCounts::default(),
            closes: CauseCounts::default(),
            pings: 0,
            messages: 0,
        }
    }
}

/// The outcome of a `connect` run; printed as text, written as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectReport {
    pub scenario: &'static str,
    pub url: String,
    pub connections_requested: u64,
    pub rate_per_s: f64,
    pub hold_s: f64,
    pub threads: usize,
    /// monoio driver of the generator threads: `io_uring`, or `epoll` where
    /// io_uring is unavailable or `MONOIO_FORCE_LEGACY_DRIVER=1`.
    pub driver: &'static str,
    pub sources: usize,
    pub opened: u64,
    pub failed: u64,
    /// Failed opens by cause.
    pub failures: CauseCounts,
    /// From the first due time to the last connection opened or failed.
    pub open_phase_s: f64,
    /// Connections open when the server's RSS was sampled.
    pub open_at_sample: u64,
    /// Connections the server ended during the hold, by how.
    pub ended_during_hold: CauseCounts,
    /// How the final close handshakes went (`answered 1000`, `no close frame (timeout)`...).
    pub closes: CauseCounts,
    pub pings_answered: u64,
    pub messages_received: u64,
    /// How late each connection started against its due time.
    pub start_lag: LatencySummary,
    /// TCP connect, from the connection's start.
    pub connect_latency: LatencySummary,
    /// TCP connect + WebSocket handshake (101 checked), from the connection's start.
    pub handshake_latency: LatencySummary,
    pub server_rss: Option<ServerRssJson>,
    /// This generator's own RSS before opening and at the sample, in KiB.
    pub generator_rss_before_kib: Option<u64>,
    pub generator_rss_after_kib: Option<u64>,
    /// Set by the caller: the open-file limit and what it allows.
    pub fd_limit: Option<u64>,
}

impl std::fmt::Display for ConnectReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let achieved = if self.open_phase_s > 0.0 {
            (self.opened + self.failed) as f64 / self.open_phase_s
        } else {
            0.0
        };
        writeln!(
            f,
            "connect {}: {} connections at {}/s, {} thread(s) on {}, {} source address(es), hold {} s",
            self.url,
            self.connections_requested,
            self.rate_per_s,
            self.threads,
            self.driver,
            self.sources,
            self.hold_s
        )?;
        writeln!(
            f,
            "opened {}, failed {} ({}) in {:.2} s ({:.0}/s)",
            self.opened, self.failed, self.failures, self.open_phase_s, achieved
        )?;
        writeln!(f, "start lag:           {}", self.start_lag)?;
        writeln!(f, "tcp connect latency: {}", self.connect_latency)?;
        writeln!(f, "handshake latency:   {}", self.handshake_latency)?;
        if let Some(rss) = &self.server_rss {
            writeln!(f, "{}", rss.rss)?;
        }
        if let (Some(before), Some(after)) =
            (self.generator_rss_before_kib, self.generator_rss_after_kib)
        {
            let growth = after as i64 - before as i64;
            let per = if self.open_at_sample > 0 {
                format!("{:.2} KiB", growth as f64 / self.open_at_sample as f64)
            } else {
                "n/a".to_string()
            };
            writeln!(
                f,
                "generator RSS: before {before} KiB, after {after} KiB, growth {growth} KiB, per connection {per}"
            )?;
        }
        writeln!(
            f,
            "hold: {} open at sample; ended by the server during hold: {}; pings answered {}, messages received {}",
            self.open_at_sample,
            self.ended_during_hold,
            self.pings_answered,
            self.messages_received
        )?;
        write!(f, "close: {}", self.closes)
    }
}

/// Runs the scenario. `progress` gets a line about once a second while
/// connections open, and at each phase change.
pub fn run(cfg: &ConnectConfig, progress: &mut dyn FnMut(&str)) -> Result<ConnectReport, RunError> {
    let threads = cfg.threads.max(1);
    let rss_before = cfg.server_pid.map(read_rss_kib).transpose()?;
    let own_rss_before = read_rss_kib(std::process::id()).ok();
    let shared = Arc::new(Shared::default());
    // A little head start so every runtime is built before the first due time.
    let t0 = Instant::now() + Duration::from_millis(50);

    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let (thread_cfg, thread_shared) = (cfg.clone(), Arc::clone(&shared));
        let handle = thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || thread_main(t, threads, &thread_cfg, &thread_shared, t0))
            .map_err(|e| RunError::from(engine::RunError::Spawn(e)));
        match handle {
            Ok(h) => handles.push(h),
            Err(e) => {
                shared.stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
    }

    // Open phase: bounded by the schedule plus one connect timeout plus slack.
    let schedule = Duration::from_secs_f64(cfg.connections as f64 / cfg.rate);
    let open_deadline = t0 + schedule + cfg.connect_timeout + Duration::from_secs(5);
    let mut next_progress = Instant::now() + Duration::from_secs(1);
    loop {
        let done = shared.opening_done.load(Ordering::Relaxed);
        let exited = handles.iter().filter(|h| h.is_finished()).count();
        if done + exited >= threads {
            break;
        }
        let now = Instant::now();
        if now >= open_deadline {
            progress("open phase over its deadline: stopping");
            shared.stop.store(true, Ordering::Relaxed);
            break;
        }
        if now >= next_progress {
            progress(&progress_line(&shared, "opening"));
            next_progress += Duration::from_secs(1);
        }
        thread::sleep(Duration::from_millis(10));
    }
    let open_phase = t0.elapsed();
    progress(&progress_line(&shared, "open phase done"));

    // Hold: settle, sample the server, then wait out the hold.
    let hold_start = Instant::now();
    let hold_end = hold_start + cfg.hold;
    sleep_until(hold_start + cfg.settle.min(cfg.hold), &shared.stop);
    let open_at_sample = shared.open_now.load(Ordering::Relaxed);
    let rss = match (cfg.server_pid, rss_before) {
        (Some(pid), Some(before_kib)) => Some(ServerRss {
            pid,
            before_kib,
            after_kib: read_rss_kib(pid)?,
            open: open_at_sample,
        }),
        _ => None,
    };
    let own_rss_after = read_rss_kib(std::process::id()).ok();
    if let Some(rss) = &rss {
        progress(&rss.to_string());
    }
    sleep_until(hold_end, &shared.stop);
    progress(&progress_line(&shared, "hold over, closing"));
    shared.stop.store(true, Ordering::Relaxed);

    let mut total = ThreadResult::new();
    let mut first_error = None;
    for (t, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(r)) => {
                // Same bounds on every histogram, so `add` cannot fail.
                let _ = total.start_lag.add(&r.start_lag);
                let _ = total.connect.add(&r.connect);
                let _ = total.handshake.add(&r.handshake);
                total.failures.merge(&r.failures);
                total.hold_ends.merge(&r.hold_ends);
                total.closes.merge(&r.closes);
                total.pings += r.pings;
                total.messages += r.messages;
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(_) => {
                first_error.get_or_insert(RunError::Panicked(t));
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }

    Ok(ConnectReport {
        scenario: "connect",
        url: format!("ws://{}{}", cfg.url.authority, cfg.url.target),
        connections_requested: cfg.connections,
        rate_per_s: cfg.rate,
        hold_s: cfg.hold.as_secs_f64(),
        threads,
        driver: if monoio::utils::detect_uring() {
            "io_uring"
        } else {
            "epoll"
        },
        sources: cfg.sources.as_ref().map_or(0, SourceAddrs::len),
        opened: total.handshake.len(),
        failed: total.failures.total(),
        failures: total.failures,
        open_phase_s: open_phase.as_secs_f64(),
        open_at_sample,
        ended_during_hold: total.hold_ends,
        closes: total.closes,
        pings_answered: total.pings,
        messages_received: total.messages,
        start_lag: LatencySummary::from_histogram(&total.start_lag),
        connect_latency: LatencySummary::from_histogram(&total.connect),
        handshake_latency: LatencySummary::from_histogram(&total.handshake),
        server_rss: rss.map(ServerRssJson::from),
        generator_rss_before_kib: own_rss_before,
        generator_rss_after_kib: own_rss_after,
        fd_limit: None,
    })
}

fn progress_line(shared: &Shared, phase: &str) -> String {
    format!(
        "{phase}: opened {}, failed {}, open now {}",
        shared.opened.load(Ordering::Relaxed),
        shared.failed.load(Ordering::Relaxed),
        shared.open_now.load(Ordering::Relaxed)
    )
}

/// Sleeps until `deadline`, waking early if `stop` is set.
fn sleep_until(deadline: Instant, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

fn thread_main(
    t: usize,
    threads: usize,
    cfg: &ConnectConfig,
    shared: &Arc<Shared>,
    t0: Instant,
) -> Result<ThreadResult, RunError> {
    let mut rt = engine::start_thread(t, cfg.cpus.as_ref(), 4096)?;
    let result = rt.block_on(thread_loop(t, threads, cfg, shared, t0));
    Ok(result)
}

/// Per-thread bookkeeping shared by the thread's connection tasks (one
/// thread, so `Rc`/`Cell`).
struct Local {
    result: RefCell<ThreadResult>,
    /// Tasks still connecting or handshaking.
    opening: Cell<u64>,
    /// Tasks not finished (opening, holding or closing).
    live: Cell<u64>,
}

async fn thread_loop(
    t: usize,
    threads: usize,
    cfg: &ConnectConfig,
    shared: &Arc<Shared>,
    t0: Instant,
) -> ThreadResult {
    let local = Rc::new(Local {
        result: RefCell::new(ThreadResult::new()),
        opening: Cell::new(0),
        live: Cell::new(0),
    });
    // Every hold's read is registered with this canceller; cancelling it at
    // the end of the hold wakes all of them at once.
    let canceller = Canceller::new();
    let cfg = Rc::new(cfg.clone());
    let seconds_per_conn = 1.0 / cfg.rate;

    // Open phase.
    let mut i = t as u64;
    let mut started_without_yield = 0u32;
    while i < cfg.connections && !shared.stop.load(Ordering::Relaxed) {
        let due = t0 + Duration::from_secs_f64(i as f64 * seconds_per_conn);
        let now = Instant::now();
        if due > now {
            started_without_yield = 0;
            monoio::time::sleep(due - now).await;
            continue;
        }
        local.opening.set(local.opening.get() + 1);
        local.live.set(local.live.get() + 1);
        monoio::spawn(conn_task(
            i,
            due,
            Rc::clone(&cfg),
            Arc::clone(shared),
            Rc::clone(&local),
            canceller.handle(),
        ));
        i += threads as u64;
        // Behind schedule, many are due at once: let the started ones run
        // now and then instead of queueing thousands of connects.
        started_without_yield += 1;
        if started_without_yield >= 64 {
            started_without_yield = 0;
            YieldNow(false).await;
        }
    }
    let open_deadline = Instant::now() + cfg.connect_timeout + Duration::from_secs(1);
    while local.opening.get() > 0 && Instant::now() < open_deadline {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    shared.opening_done.fetch_add(1, Ordering::Relaxed);

    // Hold until the main thread says stop.
    while !shared.stop.load(Ordering::Relaxed) {
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
    let _canceller = canceller.cancel();
    let close_deadline =
        Instant::now() + cfg.connect_timeout.max(cfg.close_timeout) + Duration::from_secs(2);
    while local.live.get() > 0 && Instant::now() < close_deadline {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    let result = std::mem::replace(&mut *local.result.borrow_mut(), ThreadResult::new());
    let stuck = local.live.get();
    let mut result = result;
    if stuck > 0 {
        result.closes.add("still closing at the deadline", stuck);
    }
    result
}

async fn conn_task(
    i: u64,
    due: Instant,
    cfg: Rc<ConnectConfig>,
    shared: Arc<Shared>,
    local: Rc<Local>,
    cancel: CancelHandle,
) {
    let source = cfg.sources.as_ref().map(|s| s.get(i));
    let started = Instant::now();
    record_us(
        &mut local.result.borrow_mut().start_lag,
        micros_since(due, started),
    );
    let open = async {
        let stream = tcp_connect(cfg.url.addr, source).await?;
        let connected = Instant::now();
        let conn = Connection::handshake(stream, &cfg.url).await?;
        Ok::<_, ConnectError>((conn, connected))
    };
    // Boxed, like the close below: an async fn's state is as large as its
    // largest await point, and only the hold should stay in an idle
    // connection's task (2.1 KiB unboxed against a few hundred bytes boxed).
    let opened = match Box::pin(monoio::time::timeout(cfg.connect_timeout, open)).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Timeout),
    };
    local.opening.set(local.opening.get().saturating_sub(1));
    let mut conn = match opened {
        Ok((conn, connected)) => {
            let mut r = local.result.borrow_mut();
            record_us(&mut r.connect, micros_since(started, connected));
            record_us(&mut r.handshake, micros_since(started, Instant::now()));
            shared.opened.fetch_add(1, Ordering::Relaxed);
            shared.open_now.fetch_add(1, Ordering::Relaxed);
            conn
        }
        Err(e) => {
            local.result.borrow_mut().failures.add(&e.cause(), 1);
            shared.failed.fetch_add(1, Ordering::Relaxed);
            local.live.set(local.live.get().saturating_sub(1));
            return;
        }
    };

    let end = conn.hold(cancel).await;
    shared.open_now.fetch_sub(1, Ordering::Relaxed);
    {
        let mut r = local.result.borrow_mut();
        r.pings += u64::from(conn.received.pings);
        r.messages += u64::from(conn.received.messages);
    }
    if end == HoldEnd::Cancelled {
        let outcome = match Box::pin(conn.close(CloseCode::NORMAL, cfg.close_timeout)).await {
            Ok(Some(code)) => format!("answered {code}"),
            Ok(None) => "answered with an empty close".to_string(),
            Err(why) => why,
        };
        local.result.borrow_mut().closes.add(&outcome, 1);
    } else {
        local.result.borrow_mut().hold_ends.add(&end.cause(), 1);
    }
    local.live.set(local.live.get().saturating_sub(1));
}

fn micros_since(start: Instant, end: Instant) -> u64 {
    u64::try_from(end.saturating_duration_since(start).as_micros()).unwrap_or(u64::MAX)
}

/// Returns `Pending` once after waking itself: lets the runtime run the other
/// ready tasks (monoio 0.2.4 has no `yield_now`).
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection's task is this future (plus the socket, a 256-byte
    /// read buffer and the runtime's op): the open and close steps are boxed
    /// so their state does not stay in it. 888 bytes on x86-64 today.
    #[test]
    fn an_idle_connection_task_stays_small() {
        let cfg = Rc::new(ConnectConfig {
            url: WsUrl::parse("ws://127.0.0.1:1/").expect("url"),
            connections: 1,
            rate: 1.0,
            hold: Duration::ZERO,
            settle: Duration::ZERO,
            sources: None,
            server_pid: None,
            threads: 1,
            cpus: None,
            connect_timeout: Duration::ZERO,
            close_timeout: Duration::ZERO,
        });
        let local = Rc::new(Local {
            result: RefCell::new(ThreadResult::new()),
            opening: Cell::new(0),
            live: Cell::new(0),
        });
        let canceller = Canceller::new();
        let task = conn_task(
            0,
            Instant::now(),
            cfg,
            Arc::default(),
            local,
            canceller.handle(),
        );
        let size = std::mem::size_of_val(&task);
        assert!(size <= 1024, "conn_task future is {size} bytes");
    }
}
