//! Wire protocol v1: parsing a client command and encoding the push every
//! subscriber gets, in commands/s and pushes/s.
//!
//! v1 is ringcast's own protocol, so no other implementation speaks it; the
//! `serde_json` lines are the baseline of writing it the obvious way with
//! the same JSON library, on the same bytes:
//! - `v1_parse/<impl>/<command>`: `ringcast` is `proto::v1::parse_command`
//!   (borrowed fields, `data` kept raw); `serde_json_value` parses the same
//!   text into a `serde_json::Value`. Commands: a `publish` with a small
//!   object as `data`, and a `subscribe` with a `since` resume point.
//! - `v1_encode/<impl>/push`: one push frame (`{"channel","offset","epoch",
//!   "data"}` in an unmasked text frame, ready to write to every subscriber):
//!   `ringcast` is `proto::v1::push_frame`; `serde_json` serializes a
//!   struct with `data` as a `RawValue` and then writes the frame header in
//!   front (a second copy).
//!
//! Run: `cargo bench -p ringcast-bench --bench v1`.

mod common;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringcast::proto::frame::{encode_frame_into, OpCode};
use ringcast::proto::v1::{parse_command, push_frame, Command};
use serde::Serialize;
use serde_json::value::RawValue;

const PUBLISH: &str = r#"{"id":42,"op":"publish","channel":"prices:btc","data":{"bid":101.25,"ask":101.5,"ts":1718000000123}}"#;
const SUBSCRIBE: &str =
    r#"{"id":7,"op":"subscribe","channel":"prices:btc","since":{"epoch":"k3j9x2","offset":1024}}"#;
const DATA: &str = r#"{"bid":101.25,"ask":101.5,"ts":1718000000123}"#;

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("v1_parse");
    group.throughput(Throughput::Elements(1));
    for (name, text) in [("publish", PUBLISH), ("subscribe", SUBSCRIBE)] {
        group.bench_function(BenchmarkId::new("ringcast", name), |b| {
            b.iter(|| {
                let request = parse_command(black_box(text)).expect("valid command");
                black_box(request.id);
                match request.command {
                    Command::Publish { channel, data } => black_box((channel, data.get().len())),
                    Command::Subscribe { channel, since } => {
                        black_box((channel, since.map_or(0, |s| s.get().len())))
                    }
                    _ => unreachable!("the inputs are publish and subscribe"),
                };
            })
        });
        group.bench_function(BenchmarkId::new("serde_json_value", name), |b| {
            b.iter(|| {
                let value: serde_json::Value =
                    serde_json::from_str(black_box(text)).expect("valid JSON");
                black_box(value)
            })
        });
    }
    group.finish();
}

#[derive(Serialize)]
struct Push<'a> {
    channel: &'a str,
    offset: u64,
    epoch: &'a str,
    data: &'a RawValue,
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("v1_encode");
    group.throughput(Throughput::Elements(1));
    let data: &RawValue = serde_json::from_str(DATA).expect("valid JSON");

    group.bench_function(BenchmarkId::new("ringcast", "push"), |b| {
        b.iter(|| {
            push_frame(
                black_box("prices:btc"),
                black_box(123_456),
                black_box("k3j9x2"),
                black_box(DATA),
            )
        })
    });
    group.bench_function(BenchmarkId::new("serde_json", "push"), |b| {
        b.iter(|| {
            let push = Push {
                channel: black_box("prices:btc"),
                offset: black_box(123_456),
                epoch: black_box("k3j9x2"),
                data: black_box(data),
            };
            let json = serde_json::to_vec(&push).expect("serializable");
            let mut frame = Vec::with_capacity(json.len() + 4);
            encode_frame_into(&mut frame, OpCode::Text, true, &json);
            bytes::Bytes::from(frame)
        })
    });
    group.finish();

    // Both write the same frame.
    let ours = push_frame("prices:btc", 123_456, "k3j9x2", DATA);
    let json = serde_json::to_vec(&Push {
        channel: "prices:btc",
        offset: 123_456,
        epoch: "k3j9x2",
        data,
    })
    .expect("serializable");
    assert_eq!(&ours[2..], &json[..]);
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_parse, bench_encode
}
criterion_main!(benches);
