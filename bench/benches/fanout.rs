//! Fan-out: one publish encoded once and queued to N local subscribers
//! (Elements = deliveries), fan-out of one channel's subscribers split over 1
//! or 2 pinned hub threads (Elements = deliveries), and cross-core inbox
//! throughput between two threads (Elements = messages), and
//! `fanout/deflate/<mode>`: one chat-JSON publish queued to 10,000 local
//! subscribers that all negotiated permessage-deflate, compressed once and
//! shared (`shared`, the default policy), compressed per connection with
//! each one's own deflate stream (`per_connection`, context takeover), or
//! not negotiated (`none`); Elements = deliveries. That group also prints
//! the bytes queued per delivery and the RSS the per-connection streams
//! took.
//!
//! `cargo bench -p ringcast-bench --bench fanout`

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringcast::bus::Mesh;
use ringcast::config::ServerConfig;
use ringcast::mailbox::{ConnId, Kicks, Slot};
use ringcast::pubsub::answer::ReplyTo;
use ringcast::pubsub::hub::{Hub, Msg};
use ringcast::pubsub::Settings;

/// A one-core hub with `n` connections subscribed to "bench".
fn hub_with_subscribers(n: usize) -> (Hub, Vec<Rc<Slot>>) {
    hub_with_subscribers_with(n, |_| {}, None)
}

/// [`hub_with_subscribers`] with `tweak` applied to the configuration, and
/// `deflate` (when given) set on every subscriber as negotiated.
fn hub_with_subscribers_with(
    n: usize,
    tweak: impl FnOnce(&mut ServerConfig),
    deflate: Option<ringcast::proto::deflate::DeflateParams>,
) -> (Hub, Vec<Rc<Slot>>) {
    let mut config = ServerConfig::default();
    tweak(&mut config);
    config.server.workers = 1;
    config.limits.max_outbound_bytes = usize::MAX;
    config.pubsub.max_subscriptions_per_connection = 1;
    let settings = Settings::from_config(&config);
    let hub = Hub::new(0, Arc::new(Mesh::new(1, 1024)), settings, Rc::default());
    let kicks = Rc::new(Kicks::default());
    let slots: Vec<Rc<Slot>> = (0..n as u64)
        .map(|id| Rc::new(Slot::new(ConnId::from_raw(id), kicks.clone())))
        .collect();
    for slot in &slots {
        hub.join(slot.clone(), "");
        // As a connection does: negotiated in the handshake, before any
        // subscribe (the owner learns of it with the subscribe).
        if let Some(params) = deflate {
            slot.deflate.set_params(params);
        }
        hub.subscribe(slot.id(), "bench", None, None)
            .expect("subscribe");
        slot.outbox.borrow_mut().clear();
    }
    (hub, slots)
}

fn local_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout/local");
    let data = Bytes::from_static(br#"{"price":101.25,"qty":3,"side":"buy"}"#);
    for n in [1usize, 100, 10_000] {
        let (hub, slots) = hub_with_subscribers(n);
        let publisher = slots[0].id();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    hub.publish(publisher, "bench", data.clone(), ReplyTo::Ws(Some(1)))
                        .expect("publish");
                    spent += start.elapsed();
                    for slot in &slots {
                        slot.outbox.borrow_mut().clear();
                    }
                }
                spent
            })
        });
    }
    group.finish();
}

fn cross_core_inbox(c: &mut Criterion) {
    let mut group = c.benchmark_group("inbox/cross_core");
    const BATCH: u64 = 100_000;
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("push_pop", |b| {
        b.iter_custom(|iters| {
            let mesh = Arc::new(Mesh::<u64>::new(2, 65_536));
            let total = iters * BATCH;
            let consumer = {
                let mesh = mesh.clone();
                std::thread::spawn(move || {
                    pin(1);
                    let mut got = 0u64;
                    while got < total {
                        match mesh.try_recv(1) {
                            Some(v) => {
                                black_box(v);
                                got += 1;
                            }
                            None => std::hint::spin_loop(),
                        }
                    }
                })
            };
            pin(0);
            let start = Instant::now();
            let mut sent = 0u64;
            while sent < total {
                if mesh.try_send(1, sent).is_ok() {
                    sent += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
            consumer.join().expect("consumer");
            start.elapsed()
        })
    });
    group.finish();
    // Keep the message type honest: a real `Msg` must stay small to queue cheaply.
    assert!(
        std::mem::size_of::<Msg>() <= 96,
        "Msg is {} bytes",
        std::mem::size_of::<Msg>()
    );
}

/// Subscribers of the one channel in `fanout/cores`, split evenly over the cores.
const CORES_SUBSCRIBERS: usize = 10_000;
/// Publishes per timed round; each subscriber's outbox holds at most this many
/// frames before the untimed reset.
const CORES_BATCH: u64 = 32;
/// Any phase of a round (setup, barrier, delivery) taking longer is a bug: the
/// worker panics instead of hanging, and the main thread stops waiting.
const CORES_DEADLINE: Duration = Duration::from_secs(20);
const CORES_CHANNEL: &str = "bench";

/// Does fan-out deliveries/s grow from 1 to 2 workers? `S` subscribers of one
/// channel, held by one hub (`1`) or split S/2 + S/2 over two hubs on a 2-core
/// mesh, each on its own pinned thread (`2`). A round is `CORES_BATCH`
/// publishes on the owner core; it is timed from the first publish until the
/// last subscriber on every core has its last frame (Elements = deliveries).
fn cores_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout/cores");
    // A round is tens of milliseconds: 10 samples fit the default 5 s window.
    group.sample_size(10);
    group.throughput(Throughput::Elements(CORES_BATCH * CORES_SUBSCRIBERS as u64));
    for cores in [1usize, 2] {
        let fleet = Fleet::start(cores, CORES_SUBSCRIBERS);
        group.bench_with_input(BenchmarkId::from_parameter(cores), &cores, |b, _| {
            b.iter_custom(|iters| (0..iters).map(|_| fleet.round(CORES_BATCH)).sum())
        });
        fleet.stop();
    }
    group.finish();
}

/// What the main thread asks a hub thread to do.
enum Command {
    /// Take part in barrier round `round`, then publish (owner only) `publishes`
    /// and deliver them to every local subscriber.
    Round {
        round: u64,
        publishes: u64,
    },
    Stop,
}

/// What a hub thread reports to the main thread.
enum Report {
    /// Every subscription of every core is confirmed; outboxes are empty.
    Ready,
    /// One round: when the owner started publishing (owner only), and when
    /// this core queued its last delivery.
    Done {
        first_publish: Option<Instant>,
        last_delivery: Instant,
    },
}

/// One pinned thread per core, each with its own `Hub` (an `Rc`-based, `!Send`
/// value, so each is built on its thread) and its share of the subscribers.
/// The threads live for one benchmark case so setup stays out of the timing.
struct Fleet {
    commands: Vec<mpsc::Sender<Command>>,
    reports: mpsc::Receiver<Report>,
    threads: Vec<JoinHandle<()>>,
    next_round: Cell<u64>,
}

impl Fleet {
    fn start(cores: usize, subscribers: usize) -> Self {
        let mut config = ServerConfig::default();
        config.server.workers = cores;
        config.pubsub.max_subscriptions_per_connection = 1;
        // The real inbox size (default `pubsub.inbox_capacity`), so a full inbox
        // spills exactly as it would in the server.
        let mesh = Arc::new(Mesh::new(cores, config.pubsub.inbox_capacity));
        // Written by every hub thread: setup confirmations, then barrier arrivals.
        let ready = Arc::new(AtomicU64::new(0));
        let arrived = Arc::new(AtomicU64::new(0));
        let (report_tx, reports) = mpsc::channel();
        let mut commands = Vec::new();
        let mut threads = Vec::new();
        for core in 0..cores {
            let (tx, rx) = mpsc::channel();
            commands.push(tx);
            let worker = HubThread {
                core,
                cores,
                local_subscribers: subscribers / cores,
                config: config.clone(),
                mesh: mesh.clone(),
                ready: ready.clone(),
                arrived: arrived.clone(),
            };
            let report = report_tx.clone();
            threads.push(std::thread::spawn(move || worker.run(rx, report)));
        }
        // Only the threads hold senders now: one that panics disconnects sooner.
        drop(report_tx);
        let fleet = Self {
            commands,
            reports,
            threads,
            next_round: Cell::new(1),
        };
        for _ in 0..cores {
            match fleet.recv() {
                Report::Ready => {}
                Report::Done { .. } => panic!("hub thread reported a round before setup"),
            }
        }
        fleet
    }

    fn recv(&self) -> Report {
        self.reports
            .recv_timeout(CORES_DEADLINE * 2)
            .expect("a hub thread failed or hung (see its panic above)")
    }

    /// One timed round: first publish to last delivery on any core.
    fn round(&self, publishes: u64) -> Duration {
        let round = self.next_round.get();
        self.next_round.set(round + 1);
        for tx in &self.commands {
            tx.send(Command::Round { round, publishes })
                .expect("hub thread alive");
        }
        let mut start = None;
        let mut end: Option<Instant> = None;
        for _ in 0..self.commands.len() {
            match self.recv() {
                Report::Done {
                    first_publish,
                    last_delivery,
                } => {
                    start = start.or(first_publish);
                    end = Some(end.map_or(last_delivery, |e| e.max(last_delivery)));
                }
                Report::Ready => panic!("hub thread reported setup twice"),
            }
        }
        let (start, end) = (start.expect("owner reported"), end.expect("reports"));
        end.saturating_duration_since(start)
    }

    fn stop(self) {
        for tx in &self.commands {
            // A thread that already panicked has dropped its receiver: ignore.
            let _ = tx.send(Command::Stop);
        }
        for thread in self.threads {
            thread.join().expect("hub thread panicked");
        }
    }
}

/// Everything a hub thread needs (all `Send`); the `Hub` itself is built inside.
struct HubThread {
    core: usize,
    cores: usize,
    local_subscribers: usize,
    config: ServerConfig,
    mesh: Arc<Mesh<Msg>>,
    ready: Arc<AtomicU64>,
    arrived: Arc<AtomicU64>,
}

impl HubThread {
    fn run(self, commands: mpsc::Receiver<Command>, reports: mpsc::Sender<Report>) {
        pin(self.core);
        let settings = Settings::from_config(&self.config);
        let hub = Hub::new(self.core, self.mesh.clone(), settings, Rc::default());
        let owner = hub.owner_of(CORES_CHANNEL) == self.core;
        let kicks = Rc::new(Kicks::default());
        // Ids are unique across cores (only for readability: each core has its own).
        let first_id = (self.core * 1_000_000) as u64;
        let subscribers: Vec<Rc<Slot>> = (0..self.local_subscribers as u64)
            .map(|i| Rc::new(Slot::new(ConnId::from_raw(first_id + i), kicks.clone())))
            .collect();
        for slot in &subscribers {
            hub.join(slot.clone(), "");
            hub.subscribe(slot.id(), CORES_CHANNEL, None, None)
                .expect("subscribe");
        }
        // The publisher is a connection of its own on the owner core, not a
        // subscriber, so deliveries are exactly S per publish.
        let publisher_id = ConnId::from_raw(first_id + 999_999);
        let publisher = Rc::new(Slot::new(publisher_id, kicks.clone()));
        hub.join(publisher.clone(), "");
        let mut slots = subscribers.clone();
        slots.push(publisher.clone());

        // Setup: subscriptions from a non-owner core travel through the mesh and
        // are pending until their reply comes back; every hub drives its inbox
        // (and spill) until all cores have every reply.
        let deadline = Instant::now() + CORES_DEADLINE;
        let mut confirmed = false;
        while self.ready.load(Ordering::Acquire) < self.cores as u64 {
            hub.drain_inbox(self.config.pubsub.inbox_batch);
            hub.retry_spill();
            if !confirmed && subscribers.iter().all(|s| !s.outbox.borrow().is_empty()) {
                confirmed = true;
                self.ready.fetch_add(1, Ordering::AcqRel);
            }
            assert!(
                Instant::now() < deadline,
                "core {}: setup timed out",
                self.core
            );
        }
        let ok: &[u8] = b"\"result\"";
        for slot in &subscribers {
            let reply = slot.outbox.borrow_mut().pop_front().expect("reply");
            assert!(
                reply.windows(ok.len()).any(|w| w == ok),
                "subscribe refused: {}",
                String::from_utf8_lossy(&reply)
            );
        }
        let mut kicked = Vec::new();
        reset(&slots, &kicks, &mut kicked);
        assert_eq!(hub.stats.deliveries.get(), 0);
        reports.send(Report::Ready).expect("main thread waits");

        let data = Bytes::from_static(br#"{"price":101.25,"qty":3,"side":"buy"}"#);
        while let Ok(Command::Round { round, publishes }) = commands.recv() {
            // Spin barrier: both threads start the round together, so no futex
            // wake-up lands inside the timing.
            let deadline = Instant::now() + CORES_DEADLINE;
            self.arrived.fetch_add(1, Ordering::AcqRel);
            while self.arrived.load(Ordering::Acquire) < round * self.cores as u64 {
                std::hint::spin_loop();
                assert!(
                    Instant::now() < deadline,
                    "core {}: barrier timed out",
                    self.core
                );
            }
            let target = hub.stats.deliveries.get() + publishes * self.local_subscribers as u64;
            let first_publish = owner.then(Instant::now);
            if owner {
                for _ in 0..publishes {
                    publish_taken(&hub, publisher.id(), &data, deadline);
                    hub.retry_spill();
                }
            }
            // The same loop as `hub::run`'s turn: drain, retry spills.
            while hub.stats.deliveries.get() < target {
                if hub.drain_inbox(self.config.pubsub.inbox_batch) == 0 && !hub.retry_spill() {
                    std::hint::spin_loop();
                }
                assert!(
                    Instant::now() < deadline,
                    "core {}: deliveries timed out",
                    self.core
                );
            }
            let last_delivery = Instant::now();
            // A spill left for the other core still has to go out.
            while hub.retry_spill() {
                assert!(
                    Instant::now() < deadline,
                    "core {}: spill timed out",
                    self.core
                );
            }
            assert_eq!(hub.stats.slow_consumer_closes.get(), 0);
            // Untimed, on every core alike: what the reactor's flush would do.
            reset(&slots, &kicks, &mut kicked);
            reports
                .send(Report::Done {
                    first_publish,
                    last_delivery,
                })
                .expect("main thread waits");
        }
    }
}

/// Publishes once, retrying while the owner refuses (`overloaded`: its spill
/// to a slow core is past the inbox capacity), as a client would.
fn publish_taken(hub: &Hub, conn: ConnId, data: &Bytes, deadline: Instant) {
    let before = hub.stats.publishes.get();
    loop {
        hub.publish(conn, CORES_CHANNEL, data.clone(), ReplyTo::Ws(Some(1)))
            .expect("a publish on the owner core is always handled");
        if hub.stats.publishes.get() > before {
            return;
        }
        hub.retry_spill();
        assert!(
            Instant::now() < deadline,
            "publish refused until the deadline"
        );
    }
}

/// Empties every outbox and takes every kick, as a reactor turn that flushed
/// all connections would, so outbox memory stays bounded by one round.
fn reset(slots: &[Rc<Slot>], kicks: &Kicks, kicked: &mut Vec<ConnId>) {
    for slot in slots {
        slot.outbox.borrow_mut().clear();
        slot.take_kicks();
    }
    kicks.drain_into(kicked);
    kicked.clear();
}

fn pin(core: usize) {
    if let Some(id) = core_affinity::get_core_ids().and_then(|ids| ids.get(core).copied()) {
        core_affinity::set_for_current(id);
    }
}

/// A v1 chat line as published (the push adds channel, offset and epoch).
const CHAT: &[u8] = br#"{"type":"message","user":"user-42","name":"Alice Martin","text":"on my way, see you at the station in ten minutes","ts":1733000123}"#;

/// `VmRSS` of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn deflate_fanout(c: &mut Criterion) {
    use ringcast::proto::deflate::DeflateParams;
    const N: usize = 10_000;
    let mut group = c.benchmark_group("fanout/deflate");
    group.throughput(Throughput::Elements(N as u64));
    let data = Bytes::from_static(CHAT);
    for mode in ["none", "shared", "per_connection"] {
        let before = rss_kib();
        let params = DeflateParams {
            server_no_context_takeover: mode == "shared",
            client_no_context_takeover: true,
            server_max_window_bits: 15,
        };
        let params = (mode != "none").then_some(params);
        let (hub, slots) = hub_with_subscribers_with(N, |c| c.deflate.enabled = true, params);
        let publisher = slots[0].id();
        // One publish outside the timing: per-connection streams are made
        // on first use, and the bytes per delivery are read off it.
        hub.publish(publisher, "bench", data.clone(), ReplyTo::Ws(Some(1)))
            .expect("publish");
        let queued: usize = slots.iter().map(|s| s.outbox.borrow().len()).sum();
        // The publisher's outbox also holds its publish reply.
        let reply = slots[0].outbox.borrow().len();
        let per_delivery = (queued - reply) as f64 / (N - 1) as f64;
        let grown = rss_kib().saturating_sub(before);
        eprintln!(
            "fanout/deflate/{mode}: {per_delivery:.1} bytes queued per delivery (push of {} bytes of data); RSS +{grown} KiB for the hub and {N} subscribers",
            CHAT.len()
        );
        for slot in &slots {
            slot.outbox.borrow_mut().clear();
        }
        group.bench_function(mode, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    hub.publish(publisher, "bench", data.clone(), ReplyTo::Ws(Some(1)))
                        .expect("publish");
                    spent += start.elapsed();
                    for slot in &slots {
                        slot.outbox.borrow_mut().clear();
                    }
                }
                spent
            })
        });
        drop((hub, slots));
    }
    group.finish();
}

criterion_group!(
    benches,
    local_fanout,
    deflate_fanout,
    cores_fanout,
    cross_core_inbox
);
criterion_main!(benches);
