//! The thread-per-core engine every measuring scenario runs on.
//!
//! `--threads` OS threads, each pinned (`--cpus`) and running its own monoio
//! runtime, each owning the connections whose index `i` has
//! `i % threads == thread`. Threads share only the [`Run`]: the time base,
//! the start instant, the stop flag, and one [`Published`] slot each.
//!
//! Phases, every one bounded:
//! 1. **Setup.** Threads open their connections (connection `i` due at
//!    `setup_start + i / connect_rate`, each bounded by `connect_timeout`),
//!    then call [`ThreadCtx::ready`]. The main thread waits for every thread,
//!    up to a setup deadline derived from the connection count.
//! 2. **Window.** The main thread sets one start instant for all; the
//!    scenario runs `warmup` (measured but not recorded) then `duration`
//!    (recorded). All figures use [`Window::measures`] on the *intended*
//!    send time, so a message belongs to the window it was meant for.
//! 3. **Drain and close.** Sending stops at the window's end; replies still in
//!    flight are waited for up to `drain`, then every connection sends close
//!    1000 and waits up to `close_timeout`; whatever is left is cancelled.
//!
//! Stops: Ctrl-C (or SIGTERM) sets the stop flag — threads end their window
//! early and drain briefly, and the report covers what was measured, marked
//! interrupted; a second Ctrl-C exits at once. A **hard stop** guards against
//! a thread that never returns: past the last phase's deadline plus slack the
//! main thread reports from the published figures and returns without it.

use std::cell::{Cell, RefCell, RefMut};
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use monoio::io::{CancelHandle, Canceller};

use crate::client::{tcp_connect, ConnectError, Connection};
use crate::link::{nanos_since, Handler, Link, LinkEnd, Reader};
use crate::pace::{wait_until, Yielder};
use crate::progress::{Live, Progress};
use crate::report::new_latency_histogram;
use crate::rusage::{process_cpu, thread_cpu, CpuTime};
use crate::source::SourceAddrs;
use crate::stats::{Counter, Published, Stats};
use crate::url::WsUrl;
use ringcast::os::cpus::{pin_current_thread, CpuError, CpuList};

/// How often a thread moves its figures into its published slot.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Head start between "all threads ready" and the window's start, so every
/// thread sees the start instant before it comes.
const START_LEAD: Duration = Duration::from_millis(50);

/// Slack added to every phase deadline before the hard stop.
const HARD_STOP_SLACK: Duration = Duration::from_secs(5);

/// Drain allowed after a Ctrl-C, whatever `drain` says.
const INTERRUPT_DRAIN: Duration = Duration::from_millis(500);

/// Settings shared by every scenario.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub url: WsUrl,
    /// Connections from this index on dial this URL instead (fan-out's
    /// `--publish-url`: publishers on one node, subscribers on another).
    pub split: Option<(u64, WsUrl)>,
    /// Source addresses, round-robin by connection index.
    pub sources: Option<SourceAddrs>,
    pub threads: usize,
    pub cpus: Option<CpuList>,
    /// Measured but not recorded, before `duration`.
    pub warmup: Duration,
    /// The recorded window.
    pub duration: Duration,
    /// After the window, the longest wait for replies still in flight.
    pub drain: Duration,
    /// TCP connect + handshake (+ subscribe) of one connection.
    pub connect_timeout: Duration,
    /// The wait for the server's close frame at the end.
    pub close_timeout: Duration,
    /// Connections opened per second during setup, all threads together.
    pub connect_rate: f64,
    /// Connections the scenario opens in all (bounds the setup phase).
    pub connections: u64,
    /// Spin window before each scheduled send (see [`crate::pace`]).
    pub spin: Duration,
    /// Nap while spinning with nothing to do (see [`crate::pace`]); 0 = never.
    pub nap: Duration,
    /// Set by the Ctrl-C handler.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// Why a run could not be carried out at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("thread {thread}: cannot build the monoio runtime: {source}")]
    Runtime {
        thread: usize,
        source: std::io::Error,
    },
    #[error("thread {thread}: {source}")]
    Pin { thread: usize, source: CpuError },
    #[error("cannot start thread: {0}")]
    Spawn(std::io::Error),
}

/// The measured window, in ns since the run's time base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First scheduled send (warmup starts).
    pub start_ns: u64,
    /// Recording starts.
    pub measure_ns: u64,
    /// Sending stops; nothing intended at or after it is recorded.
    pub end_ns: u64,
}

impl Window {
    /// Whether a message intended at `ns` is recorded.
    pub fn measures(&self, ns: u64) -> bool {
        ns >= self.measure_ns && ns < self.end_ns
    }
}

/// What every thread shares.
pub struct Run {
    /// The time base of every stamp and schedule.
    pub base: Instant,
    pub cfg: EngineConfig,
    /// Connection `i` is due at `setup_start + i / connect_rate`.
    setup_start: Instant,
    /// Window start in ns since `base`; 0 until the main thread sets it.
    start_ns: AtomicU64,
    /// Set on Ctrl-C, hard stop, or a failed setup: end the window now.
    stop: AtomicBool,
    /// When `stop` was set, in ns since `base` (0 = not set).
    stop_ns: AtomicU64,
    /// Threads done with setup.
    ready: AtomicUsize,
    pub published: Vec<Published>,
}

impl Run {
    pub fn now_ns(&self) -> u64 {
        nanos_since(self.base)
    }

    pub fn instant(&self, ns: u64) -> Instant {
        self.base + Duration::from_nanos(ns)
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn set_stop(&self) {
        if !self.stop.swap(true, Ordering::Relaxed) {
            self.stop_ns.store(self.now_ns().max(1), Ordering::Relaxed);
        }
    }

    /// The window, once the main thread has set it.
    pub fn window(&self) -> Option<Window> {
        let start_ns = self.start_ns.load(Ordering::Acquire);
        (start_ns != 0).then(|| {
            let measure_ns = start_ns + duration_ns(self.cfg.warmup);
            Window {
                start_ns,
                measure_ns,
                end_ns: measure_ns + duration_ns(self.cfg.duration),
            }
        })
    }

    /// How long replies may still be waited for after the window.
    pub fn drain(&self) -> Duration {
        if self.stopped() {
            self.cfg.drain.min(INTERRUPT_DRAIN)
        } else {
            self.cfg.drain
        }
    }
}

pub fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One generator thread's view: the run, its figures, its canceller.
pub struct ThreadCtx {
    pub index: usize,
    pub threads: usize,
    pub run: Arc<Run>,
    stats: RefCell<Stats>,
    /// Every read of this thread's links is registered here; cancelled at the
    /// end of the close phase so no read outlives the run.
    canceller: RefCell<Canceller>,
    next_flush: Cell<Instant>,
    /// Thread CPU time when the recorded window began (taken by `tick`).
    cpu_at_measure: Cell<Option<CpuTime>>,
    cpu_done: Cell<bool>,
    /// Fair yields for this thread's spinning loops (made on first use,
    /// inside the runtime).
    yielder: RefCell<Option<Yielder>>,
}

impl ThreadCtx {
    /// This thread's [`Yielder`].
    pub fn yielder(&self) -> Yielder {
        self.yielder
            .borrow_mut()
            .get_or_insert_with(Yielder::start)
            .clone()
    }

    /// Lets every other ready task of this thread run once.
    pub async fn yield_now(&self) {
        self.yielder().yield_now().await;
    }

    pub fn stats(&self) -> RefMut<'_, Stats> {
        self.stats.borrow_mut()
    }

    pub fn cancel_handle(&self) -> CancelHandle {
        self.canceller.borrow().handle()
    }

    /// Cancels every pending read of this thread.
    pub fn cancel_all(&self) {
        let old = self.canceller.replace(Canceller::new());
        let _ = old.cancel();
    }

    /// The connection indices this thread owns among `0..n`.
    pub fn my_indices(&self, n: u64) -> impl Iterator<Item = u64> {
        (self.index as u64..n).step_by(self.threads)
    }

    /// When connection `i` (global index) is due to open.
    pub fn connect_due(&self, i: u64) -> Instant {
        self.run.setup_start + Duration::from_secs_f64(i as f64 / self.run.cfg.connect_rate)
    }

    /// Opens connection `i`: from its source address, TCP connect and
    /// handshake within `connect_timeout`. Records nothing.
    pub async fn dial(&self, i: u64) -> Result<Connection, ConnectError> {
        let cfg = &self.run.cfg;
        let source = cfg.sources.as_ref().map(|s| s.get(i));
        let url = match &cfg.split {
            Some((from, url)) if i >= *from => url,
            _ => &cfg.url,
        };
        let open = async {
            let stream = tcp_connect(url.addr, source).await?;
            Connection::handshake(stream, url).await
        };
        match monoio::time::timeout(cfg.connect_timeout, open).await {
            Ok(r) => r,
            Err(_) => Err(ConnectError::Timeout),
        }
    }

    /// Moves this thread's figures into its published slot.
    pub fn flush(&self) {
        let mut stats = self.stats.borrow_mut();
        self.run.published[self.index].flush(&mut stats);
        self.next_flush.set(Instant::now() + FLUSH_EVERY);
    }

    /// Flushes when due, and takes the CPU readings at the window's edges.
    /// Pacing loops call it every turn.
    pub fn tick(&self, now: Instant, window: &Window) {
        let now_ns = duration_ns(now.saturating_duration_since(self.run.base));
        if self.cpu_at_measure.get().is_none() && now_ns >= window.measure_ns {
            self.cpu_at_measure.set(Some(thread_cpu()));
        }
        if now >= self.next_flush.get() {
            self.flush();
        }
    }

    /// The window is over for this thread: record its CPU time in it.
    pub fn window_over(&self) {
        if self.cpu_done.replace(true) {
            return;
        }
        if let Some(at) = self.cpu_at_measure.get() {
            self.stats.borrow_mut().cpu = thread_cpu().since(&at);
        }
    }

    pub fn next_flush(&self) -> Instant {
        self.next_flush.get()
    }

    /// Setup is over: waits for the common start. `None` when the run was
    /// stopped first (Ctrl-C, setup deadline).
    pub async fn ready(&self) -> Option<Window> {
        self.flush();
        self.run.ready.fetch_add(1, Ordering::AcqRel);
        loop {
            if self.run.stopped() {
                return None;
            }
            if let Some(w) = self.run.window() {
                return Some(w);
            }
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Whether the window is over for senders at `now_ns` (its end, or a stop).
    pub fn sending_over(&self, window: &Window, now_ns: u64) -> bool {
        now_ns >= window.end_ns || self.run.stopped()
    }

    /// Waits until `deadline`, spinning the last stretch when `precise`.
    pub async fn wait_until(&self, deadline: Instant, precise: bool) {
        let spin = if precise {
            self.run.cfg.spin
        } else {
            Duration::ZERO
        };
        wait_until(deadline, spin, self.run.cfg.nap, &self.yielder()).await;
    }
}

/// What a run measured.
pub struct Outcome<T> {
    /// `None` when the window never started (setup failed or interrupted).
    pub window: Option<Window>,
    /// The recorded time actually covered (shorter when interrupted).
    pub measured: Duration,
    pub interrupted: bool,
    /// Some thread did not finish by the hard deadline.
    pub hard_stopped: bool,
    /// Setup did not finish by its deadline.
    pub setup_timed_out: bool,
    pub stats: Stats,
    /// What each finished thread returned.
    pub results: Vec<T>,
    /// The whole process's CPU time over the run (setup included).
    pub process_cpu: CpuTime,
    pub wall: Duration,
    /// `io_uring` or `epoll`.
    pub driver: &'static str,
}

/// Runs `thread_main` on every thread and gathers what they measured.
pub fn run<T, F, Fut>(
    cfg: EngineConfig,
    progress: &Progress,
    thread_main: F,
) -> Result<Outcome<T>, RunError>
where
    T: Send + 'static,
    F: Fn(Rc<ThreadCtx>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T>,
{
    let threads = cfg.threads.max(1);
    let base = Instant::now();
    let cpu_before = process_cpu();
    let setup_start = base + START_LEAD;
    let setup_span = Duration::from_secs_f64(cfg.connections as f64 / cfg.connect_rate);
    let setup_deadline = setup_start + setup_span + cfg.connect_timeout * 2 + HARD_STOP_SLACK;
    let run = Arc::new(Run {
        base,
        setup_start,
        start_ns: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        stop_ns: AtomicU64::new(0),
        ready: AtomicUsize::new(0),
        published: (0..threads).map(|_| Published::default()).collect(),
        cfg,
    });

    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let (thread_run, main) = (Arc::clone(&run), thread_main.clone());
        let spawned = thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || thread_entry(t, threads, thread_run, main));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                run.set_stop();
                return Err(RunError::Spawn(e));
            }
        }
    }

    let mut interrupted = false;
    let mut setup_timed_out = false;
    let mut hard_deadline: Option<Instant> = None;
    let mut live = LiveTracker::new();
    loop {
        thread::sleep(Duration::from_millis(10));
        let now = Instant::now();
        if let Some(flag) = &run.cfg.interrupt {
            if flag.load(Ordering::Relaxed) && !run.stopped() {
                interrupted = true;
                run.set_stop();
            }
        }
        let finished = handles.iter().filter(|h| h.is_finished()).count();
        if finished == threads {
            break;
        }
        match run.window() {
            None => {
                let ready = run.ready.load(Ordering::Acquire);
                if !run.stopped() && ready > 0 && ready + finished >= threads {
                    let start_ns = duration_ns(now + START_LEAD - base);
                    run.start_ns.store(start_ns, Ordering::Release);
                    let w = run.window().expect("just set");
                    hard_deadline = Some(
                        run.instant(w.end_ns)
                            + run.cfg.drain
                            + run.cfg.close_timeout
                            + HARD_STOP_SLACK,
                    );
                } else if !run.stopped() && (now > setup_deadline || ready + finished >= threads) {
                    setup_timed_out = now > setup_deadline;
                    run.set_stop();
                }
                if run.stopped() && hard_deadline.is_none() {
                    hard_deadline = Some(now + run.cfg.connect_timeout + HARD_STOP_SLACK);
                }
                progress.setup(&live.sample(&run, now));
            }
            Some(w) => {
                if run.stopped() {
                    let cap = now + INTERRUPT_DRAIN + run.cfg.close_timeout + HARD_STOP_SLACK;
                    hard_deadline = Some(hard_deadline.map_or(cap, |d| d.min(cap)));
                }
                let mut sample = live.sample(&run, now);
                sample.elapsed = now.saturating_duration_since(run.instant(w.start_ns));
                sample.warmup = run.cfg.warmup;
                sample.total = run.cfg.warmup + run.cfg.duration;
                progress.window(&sample);
            }
        }
        if hard_deadline.is_some_and(|d| now > d) {
            break;
        }
    }
    progress.finish();

    let hard_stopped = handles.iter().any(|h| !h.is_finished());
    if hard_stopped {
        run.set_stop();
    }
    let mut results = Vec::new();
    let mut first_error = None;
    for h in handles {
        if !h.is_finished() {
            continue; // left running: the process exits after the report
        }
        match h.join() {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(_) => {} // a panicked thread's published figures still count
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let mut stats = Stats::new();
    for slot in &run.published {
        stats.merge(&slot.snapshot());
    }
    let window = run.window();
    let measured = window.map_or(Duration::ZERO, |w| {
        let stop_ns = run.stop_ns.load(Ordering::Relaxed);
        let end = if stop_ns != 0 {
            stop_ns.min(w.end_ns)
        } else {
            w.end_ns
        };
        Duration::from_nanos(end.saturating_sub(w.measure_ns))
    });
    Ok(Outcome {
        window,
        measured,
        interrupted,
        hard_stopped,
        setup_timed_out,
        stats,
        results,
        process_cpu: process_cpu().since(&cpu_before),
        wall: base.elapsed(),
        driver: if monoio::utils::detect_uring() {
            "io_uring"
        } else {
            "epoll"
        },
    })
}

/// The runtime of one load thread: io_uring, or epoll where io_uring is
/// unavailable, with a timer.
pub(crate) type ThreadRuntime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

/// Pins load thread `t` to its CPU (thread `t` on `cpus.for_thread(t)`) when
/// a list is given, then builds its runtime with `entries` ring entries. Every
/// scenario's threads start here, `connect`'s included.
pub(crate) fn start_thread(
    t: usize,
    cpus: Option<&CpuList>,
    entries: u32,
) -> Result<ThreadRuntime, RunError> {
    if let Some(cpus) = cpus {
        pin_current_thread(cpus.for_thread(t))
            .map_err(|source| RunError::Pin { thread: t, source })?;
    }
    monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .with_entries(entries)
        .enable_timer()
        .build()
        .map_err(|source| RunError::Runtime { thread: t, source })
}

fn thread_entry<T, F, Fut>(
    t: usize,
    threads: usize,
    run: Arc<Run>,
    thread_main: F,
) -> Result<T, RunError>
where
    F: Fn(Rc<ThreadCtx>) -> Fut,
    Fut: Future<Output = T>,
{
    let mut rt = start_thread(t, run.cfg.cpus.as_ref(), 8192)?;
    crate::pace::precise_timer_slack();
    let ctx = Rc::new(ThreadCtx {
        index: t,
        threads,
        run,
        stats: RefCell::new(Stats::new()),
        canceller: RefCell::new(Canceller::new()),
        next_flush: Cell::new(Instant::now() + FLUSH_EVERY),
        cpu_at_measure: Cell::new(None),
        cpu_done: Cell::new(false),
        yielder: RefCell::new(None),
    });
    let result = rt.block_on(thread_main(Rc::clone(&ctx)));
    ctx.window_over();
    ctx.flush();
    Ok(result)
}

/// Turns the published counters into rates and percentiles for the
/// progress line, refreshed once a second.
struct LiveTracker {
    /// When the figures were last refreshed, and the counters then.
    last: Option<(Instant, u64, u64)>,
    /// Primary latency since the last refresh.
    interval: Histogram<u64>,
    shown: (f64, f64, Option<u64>, Option<u64>),
}

impl LiveTracker {
    fn new() -> LiveTracker {
        LiveTracker {
            last: None,
            interval: new_latency_histogram(),
            shown: (0.0, 0.0, None, None),
        }
    }

    fn sample(&mut self, run: &Run, now: Instant) -> Live {
        let (mut sent, mut received, mut errors, mut opened) = (0, 0, 0, 0);
        for slot in &run.published {
            let s = slot.live();
            sent += s.sent;
            received += s.received;
            errors += s.errors;
            opened += s.opened;
            if let Some(h) = slot.take_interval() {
                let _ = self.interval.add(&h);
            }
        }
        match self.last {
            None => self.last = Some((now, sent, received)),
            Some((at, s, r)) if now - at >= Duration::from_secs(1) => {
                let dt = (now - at).as_secs_f64();
                let pct =
                    |q| (!self.interval.is_empty()).then(|| self.interval.value_at_quantile(q));
                self.shown = (
                    sent.saturating_sub(s) as f64 / dt,
                    received.saturating_sub(r) as f64 / dt,
                    pct(0.5),
                    pct(0.99),
                );
                self.interval.reset();
                self.last = Some((now, sent, received));
            }
            Some(_) => {}
        }
        Live {
            elapsed: Duration::ZERO,
            warmup: Duration::ZERO,
            total: Duration::ZERO,
            opened,
            sent,
            received,
            errors,
            send_rate: self.shown.0,
            recv_rate: self.shown.1,
            p50_us: self.shown.2,
            p99_us: self.shown.3,
        }
    }
}

/// Counters a thread publishes for the live progress line.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveCounts {
    pub sent: u64,
    pub received: u64,
    pub errors: u64,
    pub opened: u64,
}

impl Published {
    /// The live counters of this slot.
    pub fn live(&self) -> LiveCounts {
        match self.total.lock() {
            Ok(t) => LiveCounts {
                sent: t.count(Counter::Sent),
                received: t.count(Counter::Received),
                errors: t.errors.total(),
                opened: t.hist(crate::stats::Metric::Setup).len(),
            },
            Err(_) => LiveCounts::default(),
        }
    }
}

/// Counts a thread's connection tasks: how many are still opening, how many
/// are still running. Written by the tasks, read by the thread's main loop to
/// know when setup is over and when every connection has closed.
#[derive(Debug, Default)]
pub struct Tally {
    opening: Cell<u64>,
    live: Cell<u64>,
}

impl Tally {
    /// A task starts (opening and live).
    pub fn begin(&self) {
        self.opening.set(self.opening.get() + 1);
        self.live.set(self.live.get() + 1);
    }

    /// The task's setup is over (opened or failed).
    pub fn setup_done(&self) {
        self.opening.set(self.opening.get().saturating_sub(1));
    }

    /// The task has ended.
    pub fn end(&self) {
        self.live.set(self.live.get().saturating_sub(1));
    }

    pub fn opening(&self) -> u64 {
        self.opening.get()
    }

    pub fn live(&self) -> u64 {
        self.live.get()
    }
}

impl ThreadCtx {
    /// Starts `task(i)` for each index at its connect due time, then waits
    /// until every task's setup is over (bounded by `connect_timeout` plus
    /// `extra` after the last start). Stops starting on a stop.
    pub async fn start_paced<F, Fut>(
        &self,
        indices: impl Iterator<Item = u64>,
        tally: &Rc<Tally>,
        extra: Duration,
        task: F,
    ) where
        F: Fn(u64) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        let mut since_flush = 0u32;
        for i in indices {
            if self.run.stopped() {
                break;
            }
            let due = self.connect_due(i);
            if due > Instant::now() {
                monoio::time::sleep(due - Instant::now()).await;
            }
            tally.begin();
            monoio::spawn(task(i));
            since_flush += 1;
            if since_flush >= 64 {
                // Behind schedule, many are due at once: let the started ones
                // run now and then instead of queueing thousands of connects.
                since_flush = 0;
                self.yield_now().await;
                if Instant::now() >= self.next_flush() {
                    self.flush();
                }
            }
        }
        let deadline = Instant::now() + self.run.cfg.connect_timeout + extra;
        while tally.opening() > 0 && Instant::now() < deadline && !self.run.stopped() {
            monoio::time::sleep(Duration::from_millis(2)).await;
            if Instant::now() >= self.next_flush() {
                self.flush();
            }
        }
    }

    /// Waits until every task of `tally` has ended, or `timeout`.
    pub async fn wait_ended(&self, tally: &Tally, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while tally.live() > 0 && Instant::now() < deadline {
            monoio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Reads `link` until its connection ends, handing messages to `handler`
    /// with arrival times on the run's time base; the read is registered with
    /// this thread's canceller, so the close phase can end it. `buf_size` is
    /// the read buffer in bytes.
    pub async fn read_until_end<H: Handler>(
        &self,
        reader: Reader,
        link: &Rc<Link>,
        handler: &mut H,
        buf_size: usize,
    ) -> LinkEnd {
        reader
            .run(link, handler, self.run.base, buf_size, self.cancel_handle())
            .await
    }

    /// Counts an end the run did not expect as the error `"{what}: {cause}"`,
    /// and the link's failed write, if any, as `"write: {error}"`.
    pub fn report_end(&self, link: &Link, end: &LinkEnd, what: &str) {
        if !end.is_clean() {
            self.stats().error(&format!("{what}: {}", end.cause()));
        }
        if let Some(e) = link.write_error() {
            self.stats().error(&format!("write: {e}"));
        }
    }

    /// Sends close 1000 on every link, waits up to `close_timeout` for the
    /// tasks to end, then cancels the reads left and waits for those.
    pub async fn close_all(&self, links: &[Rc<Link>], tally: &Tally) {
        for link in links {
            link.close(1000);
        }
        self.wait_ended(tally, self.run.cfg.close_timeout).await;
        self.cancel_all();
        self.wait_ended(tally, Duration::from_secs(1)).await;
    }
}
