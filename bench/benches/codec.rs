//! Hot paths of the frame codec: the masking kernel and the decoder.
//!
//! - `apply_mask/<size>`: XOR-unmasking one payload in place, in bytes/s.
//!   Sizes: 16 B (a chat line), 125 B (the largest control frame), 1 KiB and
//!   64 KiB (the default frame limit). The buffer is offset by 1 byte so the
//!   kernel runs on an unaligned start, as payloads do after a header.
//! - `decode/1000_small_masked_frames`: one `Decoder` consuming a read buffer
//!   of 1000 masked 32-byte text frames, as the runtime's loop does, in
//!   frames/s.
//!
//! Run: `cargo bench -p ringcast-bench --bench codec`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ringcast::proto::decoder::{Decoder, Event, Limits, Role};
use ringcast::proto::frame::{encode_masked_frame_into, OpCode};
use ringcast::proto::mask::apply_mask;

fn bench_apply_mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply_mask");
    for size in [16usize, 125, 1024, 64 * 1024] {
        let mut buf = vec![0x5au8; size + 1];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(size.to_string(), |b| {
            b.iter(|| {
                apply_mask(
                    black_box(&mut buf[1..]),
                    black_box([0x37, 0xfa, 0x21, 0x3d]),
                    0,
                )
            })
        });
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    const FRAMES: usize = 1000;
    let payload = b"{\"channel\":\"btc\",\"data\":42.50}  ";
    assert_eq!(payload.len(), 32);
    // All-zero masking keys: decoding unmasks in place, and XOR with zero
    // leaves the buffer as it was, so the same bytes can be decoded again on
    // every iteration with no setup. The kernel does the same work whatever
    // the key (it cannot know it is zero).
    let mut wire = Vec::with_capacity(FRAMES * (6 + payload.len()));
    for _ in 0..FRAMES {
        encode_masked_frame_into(&mut wire, OpCode::Text, true, [0; 4], payload);
    }

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(FRAMES as u64));
    group.bench_function("1000_small_masked_frames", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new(Role::Server, Limits::default());
            let mut pos = 0;
            let mut bytes = 0;
            while pos < wire.len() {
                let decoded = decoder
                    .decode(black_box(&mut wire[pos..]))
                    .expect("valid frames");
                pos += decoded.consumed;
                if let Some(Event::Text(text)) = decoded.event {
                    bytes += black_box(text).len();
                }
            }
            assert_eq!(bytes, FRAMES * payload.len());
        })
    });
    group.finish();
}

criterion_group!(benches, bench_apply_mask, bench_decode);
criterion_main!(benches);
