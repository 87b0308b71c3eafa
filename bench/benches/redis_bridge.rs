//! What the Redis engine's bridge costs, against a `redis-server` started
//! here on a free loopback port (skipped, with a message, if there is none).
//!
//! Three measurements, each printed as HDR percentiles (µs) and a rate:
//! - `ping floor`: a `PING` round trip with the `redis` crate's own
//!   connection — the loopback and Redis floor, no bridge.
//! - `publish, one at a time`: enqueue a publish, wait for its ack; the
//!   bridge's thread hops plus one script run per round trip.
//! - `publish, pipelined`: up to 64, then 1024 in flight from one thread;
//!   acks/s, the ack latency (mostly queueing: in flight ÷ rate), and
//!   publishes per round trip (the batching).
//! - `publish → push`: the same pipelined load with one subscriber node;
//!   latency from enqueue to the push reaching the subscriber's sink.
//!
//! `cargo bench -p ringcast-bench --bench redis_bridge`

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use ringcast::engine::redis::{Bridge, Done, Published, Push, PushSink, RedisSettings, Subscriber};

const SEQUENTIAL: u64 = 5_000;
const PIPELINED: u64 = 100_000;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

fn report(name: &str, h: &Histogram<u64>, count: u64, took: Duration) {
    println!(
        "{name:<26} {:>9.0}/s  p50 {:>6} µs  p99 {:>6} µs  p99.9 {:>6} µs  max {:>6} µs",
        count as f64 / took.as_secs_f64(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}

/// Publishes `count` messages keeping at most `IN_FLIGHT` unacknowledged;
/// the payload carries the enqueue time (µs since `t0`) for the push side.
fn pipelined(
    bridge: &Bridge,
    channel: &str,
    count: u64,
    in_flight: u64,
    t0: Instant,
) -> (Histogram<u64>, Duration) {
    let (tx, rx) = mpsc::channel::<u64>();
    let mut acks = histogram();
    let started = Instant::now();
    let (mut sent, mut acked) = (0u64, 0u64);
    while acked < count {
        while sent < count && sent - acked < in_flight {
            let at = t0.elapsed().as_micros() as u64;
            let tx = tx.clone();
            let done: Done<Published> = Box::new(move |r| {
                r.expect("publish succeeds");
                let _ = tx.send(at);
            });
            match bridge.publish(channel, Bytes::from(at.to_string()), done) {
                Ok(()) => sent += 1,
                Err(_) => break,
            }
        }
        let at = rx.recv_timeout(Duration::from_secs(10)).expect("ack");
        acks.saturating_record((t0.elapsed().as_micros() as u64).saturating_sub(at).max(1));
        acked += 1;
    }
    (acks, started.elapsed())
}

/// Records enqueue → push latency from the payload's timestamp.
struct Latency {
    t0: Instant,
    pushes: AtomicU64,
    histogram: Mutex<Histogram<u64>>,
    subscribed: AtomicU64,
}

impl PushSink for Latency {
    fn push(&self, push: Push) {
        let at: u64 = std::str::from_utf8(&push.payload)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let now = self.t0.elapsed().as_micros() as u64;
        if let Ok(mut h) = self.histogram.lock() {
            h.saturating_record(now.saturating_sub(at).max(1));
        }
        self.pushes.fetch_add(1, Ordering::Relaxed);
    }
    fn subscribed(&self, _channel: &str) {
        self.subscribed.fetch_add(1, Ordering::Relaxed);
    }
    fn recover(&self, _channels: Vec<String>) {}
}

fn main() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn();
    let _server = match child {
        Ok(child) => Server(child),
        Err(e) => {
            println!("redis_bridge: skipped, cannot start redis-server ({e})");
            return;
        }
    };
    let url = format!("redis://127.0.0.1:{port}/0");
    let settings = RedisSettings::new(&url).expect("valid url");
    let deadline = Instant::now() + Duration::from_secs(10);
    let bridge = loop {
        match Bridge::connect(settings.clone()) {
            Ok(b) => break b,
            Err(e) if Instant::now() > deadline => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    println!(
        "redis-server {port} (loopback), history_size {}",
        settings.history_size
    );

    let mut direct = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("direct connection");
    let mut floor = histogram();
    let started = Instant::now();
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        let _: String = redis::cmd("PING").query(&mut direct).expect("PING");
        floor.saturating_record(t.elapsed().as_micros() as u64);
    }
    report(
        "ping floor (no bridge)",
        &floor,
        SEQUENTIAL,
        started.elapsed(),
    );

    let mut one = histogram();
    let started = Instant::now();
    for i in 0..SEQUENTIAL {
        let (tx, rx) = mpsc::channel();
        let t = Instant::now();
        let done: Done<Published> = Box::new(move |r| {
            let _ = tx.send(r);
        });
        bridge
            .publish("seq", Bytes::from(i.to_string()), done)
            .expect("queued");
        rx.recv().expect("answer").expect("publish succeeds");
        one.saturating_record(t.elapsed().as_micros() as u64);
    }
    report(
        "publish, one at a time",
        &one,
        SEQUENTIAL,
        started.elapsed(),
    );

    let t0 = Instant::now();
    for in_flight in [64, 1024] {
        let trips = bridge.stats().round_trips.load(Ordering::Relaxed);
        let (acks, took) = pipelined(&bridge, "pipe", PIPELINED, in_flight, t0);
        let trips = bridge.stats().round_trips.load(Ordering::Relaxed) - trips;
        report(
            &format!("publish, {in_flight} in flight"),
            &acks,
            PIPELINED,
            took,
        );
        println!(
            "{:<26} {:.1} publishes per round trip",
            "",
            PIPELINED as f64 / trips.max(1) as f64
        );
    }

    let sink = Arc::new(Latency {
        t0,
        pushes: AtomicU64::new(0),
        histogram: Mutex::new(histogram()),
        subscribed: AtomicU64::new(0),
    });
    let subscriber = Subscriber::start(settings, sink.clone());
    subscriber.subscribe("fan").expect("queued");
    while sink.subscribed.load(Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline + Duration::from_secs(10),
            "subscribed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    pipelined(&bridge, "fan", PIPELINED, 64, t0);
    while sink.pushes.load(Ordering::Relaxed) < PIPELINED {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "every push arrives"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = started.elapsed();
    let h = sink.histogram.lock().expect("histogram").clone();
    report("publish → push, 64 in fl.", &h, PIPELINED, took);
}
