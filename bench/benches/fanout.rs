//! Fan-out: one publish encoded once and queued to N local subscribers
//! (Elements = deliveries), and cross-core inbox throughput between two
//! threads (Elements = messages).
//!
//! `cargo bench -p ringcast-bench --bench fanout`

use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringcast::config::ServerConfig;
use ringcast::pubsub::hub::{Hub, Msg};
use ringcast::pubsub::inbox::Mesh;
use ringcast::server::slot::{Kicks, Slot};

/// A one-core hub with `n` connections subscribed to "bench".
fn hub_with_subscribers(n: usize) -> (Hub, Vec<Rc<Slot>>) {
    let config = ServerConfig {
        workers: 1,
        max_outbound_bytes: usize::MAX,
        max_subscriptions_per_connection: 1,
        ..ServerConfig::default()
    };
    let hub = Hub::new(0, Arc::new(Mesh::new(1, 1024)), &config);
    let kicks = Rc::new(Kicks::default());
    let slots: Vec<Rc<Slot>> = (0..n as u64)
        .map(|id| Rc::new(Slot::new(id, kicks.clone())))
        .collect();
    for slot in &slots {
        hub.join(slot.clone());
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
                    hub.publish(publisher, "bench", data.clone(), Some(1))
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

fn pin(core: usize) {
    if let Some(id) = core_affinity::get_core_ids().and_then(|ids| ids.get(core).copied()) {
        core_affinity::set_for_current(id);
    }
}

criterion_group!(benches, local_fanout, cross_core_inbox);
criterion_main!(benches);
