//! The deflate backend for permessage-deflate, chosen by this measurement:
//! `flate2` on `zlib-rs` (what core/ uses) beside `miniz_oxide` (flate2's
//! default backend, called here directly through its core API).
//!
//! - `deflate_compress/<backend>/<payload>/level<N>`: one message
//!   compressed the way a push is with `server_no_context_takeover`: the
//!   compressor is reset, fed the whole message with a sync flush (raw
//!   deflate, levels 1, 2, 6). Unit: bytes of input per second. The
//!   compressed sizes are printed to stderr.
//! - `deflate_inflate/<backend>/<payload>`: the same message inflated by a
//!   reset decompressor (a client with `client_no_context_takeover`). Unit:
//!   bytes of output per second.
//!
//! Payloads: `chat_json` (a 203-byte v1 push of a chat line), `json_4KiB`
//! (a history page of such lines), `ascii_64KiB` (generated text).
//!
//! Run: `cargo bench -p ringcast-bench --bench deflate`.

mod common;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use miniz_oxide::deflate::core::{
    compress as mz_compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush,
};
use miniz_oxide::inflate::core::{decompress as mz_decompress, DecompressorOxide};
use ringcast_bench::inputs::ascii_text;

/// The level inflate inputs are made with.
const LEVEL: u32 = 1;
/// The levels compression is measured at: zlib-rs's level 1 is its "quick"
/// strategy (fixed Huffman codes only), which leaves short JSON about as
/// large as it was; level 2 is its fast strategy with dynamic codes.
const LEVELS: [u32; 3] = [1, 2, 6];

fn chat_line(i: usize) -> String {
    format!(
        r#"{{"channel":"room:lobby","offset":{},"epoch":"3f9a8c21d07b44e1","data":{{"type":"message","user":"user-{}","name":"Alice Martin","text":"on my way, see you at the station in ten minutes","ts":17330{:05}}}}}"#,
        1000 + i,
        i % 97,
        i * 37 % 100000
    )
}

fn payloads() -> Vec<(&'static str, Vec<u8>)> {
    let mut page = String::from("[");
    let mut i = 0;
    while page.len() < 4096 {
        if i > 0 {
            page.push(',');
        }
        page.push_str(&chat_line(i));
        i += 1;
    }
    page.push(']');
    vec![
        ("chat_json", chat_line(7).into_bytes()),
        ("json_4KiB", page.into_bytes()),
        ("ascii_64KiB", ascii_text(64 * 1024).into_bytes()),
    ]
}

fn flate2_compress(c: &mut Compress, input: &[u8], out: &mut Vec<u8>) {
    c.reset();
    out.clear();
    c.compress_vec(input, out, FlushCompress::Sync)
        .expect("compress");
}

fn miniz_compress(c: &mut CompressorOxide, input: &[u8], out: &mut [u8]) -> usize {
    c.reset();
    let (_, _, written) = mz_compress(c, input, out, TDEFLFlush::Sync);
    written
}

fn bench_compress(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate_compress");
    for (name, payload) in payloads() {
        group.throughput(Throughput::Bytes(payload.len() as u64));
        let room = payload.len() + payload.len() / 8 + 64;
        for level in LEVELS {
            let id = format!("{name}/level{level}");
            let mut flate = Compress::new(Compression::new(level), false);
            let mut out = Vec::with_capacity(room);
            group.bench_function(BenchmarkId::new("zlib-rs", &id), |b| {
                b.iter(|| {
                    flate2_compress(&mut flate, black_box(&payload), &mut out);
                    out.len()
                })
            });
            let flags = create_comp_flags_from_zip_params(level as i32, -15, 0);
            let mut mz = CompressorOxide::new(flags);
            let mut buf = vec![0u8; room];
            group.bench_function(BenchmarkId::new("miniz_oxide", &id), |b| {
                b.iter(|| miniz_compress(&mut mz, black_box(&payload), &mut buf))
            });
            let written = miniz_compress(&mut mz, &payload, &mut buf);
            flate2_compress(&mut flate, &payload, &mut out);
            eprintln!(
                "{id}: {} bytes -> zlib-rs {} bytes, miniz_oxide {written} bytes",
                payload.len(),
                out.len()
            );
        }
    }
    group.finish();
}

fn bench_inflate(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate_inflate");
    for (name, payload) in payloads() {
        group.throughput(Throughput::Bytes(payload.len() as u64));
        let mut flate = Compress::new(Compression::new(LEVEL), false);
        let mut compressed = Vec::with_capacity(payload.len() + 64);
        flate2_compress(&mut flate, &payload, &mut compressed);
        let mut out = Vec::with_capacity(payload.len() + 64);
        let mut inflate = Decompress::new(false);
        group.bench_function(BenchmarkId::new("zlib-rs", name), |b| {
            b.iter(|| {
                inflate.reset(false);
                out.clear();
                inflate
                    .decompress_vec(black_box(&compressed), &mut out, FlushDecompress::Sync)
                    .expect("inflate");
                assert_eq!(out.len(), payload.len());
            })
        });
        let mut mz = DecompressorOxide::new();
        let mut buf = vec![0u8; payload.len() + 64];
        // Raw deflate, more input may follow (no final block), flat output buffer.
        let flags = miniz_oxide::inflate::core::inflate_flags::TINFL_FLAG_HAS_MORE_INPUT
            | miniz_oxide::inflate::core::inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        group.bench_function(BenchmarkId::new("miniz_oxide", name), |b| {
            b.iter(|| {
                mz.init();
                let (_, _, written) =
                    mz_decompress(&mut mz, black_box(&compressed), &mut buf, 0, flags);
                assert_eq!(written, payload.len());
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_compress, bench_inflate
}
criterion_main!(benches);
