//! The frame codec's hot paths, each beside the well-known implementations of
//! the same operation on the same input, so the report reads as ratios.
//!
//! - `mask/<impl>/<size>B+<offset>`: XOR-unmasking one payload in place, in
//!   bytes/s, at 16 B (a chat line), 125 B (the largest control frame),
//!   1 KiB and 64 KiB (the default frame limit), with the payload starting
//!   on a 64-byte boundary (`+0`) and one byte past it (`+1`, odd alignment,
//!   as payloads do after a 2- or 6-byte header). Implementations:
//!   `ringcast` (`proto::mask::apply_mask`) and `fastwebsockets`
//!   (`fastwebsockets::unmask`, public). **tungstenite does not export its
//!   kernel**: `apply_mask` lives in the private module
//!   `protocol::frame::mask` and `Frame` has no public masking method.
//!   fastwebsockets 0.10's `unmask` is tungstenite's `apply_mask_fast32`
//!   (its source says so), so that line stands for both; tungstenite's only
//!   public masking path, formatting a masked frame, is in `mask_encode`.
//! - `mask_encode/<impl>/<size>B`: writing one masked frame (header, payload
//!   copy, mask) into a reused `Vec`, in payload bytes/s: `ringcast`
//!   (`encode_masked_frame_into`), `tungstenite` (`Frame::format` with a
//!   masked header; it copies the payload into a fresh `Vec` to mask it),
//!   `fastwebsockets` (`Frame::mask` on a borrowed buffer, then `Frame::write`).
//! - `header_parse/<impl>/<form>` and `header_encode/<impl>/<form>`: one
//!   frame header, in headers/s, for the three length forms (7-bit: 125 B;
//!   16-bit: 65535 B; 64-bit: 65536 B), masked for parse (client frames) and
//!   unmasked for encode (server frames). tungstenite: `FrameHeader::parse`
//!   over a `Cursor` and `FrameHeader::format`; fastwebsockets has no public
//!   header parser, and encodes with `Frame::fmt_head` into a stack array,
//!   which `ringcast-stack` (`FrameHeader::encode`) matches; `ringcast`
//!   appends to a `Vec` (`FrameHeader::encode_into`) like tungstenite.
//! - `decode/<impl>/<kind>`: a read buffer of 1000 masked 32-byte frames
//!   decoded into messages, in frames/s: headers parsed, payloads unmasked,
//!   messages assembled, text validated as UTF-8 (`text`) or not (`binary`).
//!   Each implementation first gets the bytes into its own read buffer, as a
//!   socket read would: ringcast copies them into a reused buffer and runs
//!   its sans-IO `Decoder`; tungstenite reads them from an in-memory stream
//!   through `WebSocket::read` (server role; its public `FrameSocket` does not
//!   unmask, so the message layer is its only public decoder that does);
//!   fastwebsockets through `WebSocket::read_frame` on an always-ready
//!   in-memory stream (it has no sans-IO decoder).
//!
//! Run: `cargo bench -p ringcast-bench --bench codec`.

mod common;

use std::io::Cursor;

use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};
use ringcast::proto::decoder::{Decoder, Event, Limits, Role};
use ringcast::proto::frame::{encode_masked_frame_into, FrameHeader, OpCode};
use ringcast::proto::mask::apply_mask;
use ringcast_bench::aligned::AlignedBuf;
use ringcast_bench::inputs::{masked_frames, SMALL_PAYLOAD};
use ringcast_bench::mem_stream::{ready, MemStream};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const MASK_SIZES: [usize; 4] = [16, 125, 1024, 64 * 1024];

fn bench_mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in MASK_SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for offset in [0usize, 1] {
            let param = format!("{size}B+{offset}");
            let mut buf = AlignedBuf::new(size, offset, 0x5a);
            group.bench_function(BenchmarkId::new("ringcast", &param), |b| {
                b.iter(|| apply_mask(black_box(buf.as_mut_slice()), black_box(KEY), 0))
            });
            group.bench_function(BenchmarkId::new("fastwebsockets", &param), |b| {
                b.iter(|| fastwebsockets::unmask(black_box(buf.as_mut_slice()), black_box(KEY)))
            });
        }
    }
    group.finish();
}

fn bench_mask_encode(c: &mut Criterion) {
    use tungstenite::protocol::frame::coding::{Data, OpCode as TOpCode};
    let mut group = c.benchmark_group("mask_encode");
    for size in [125usize, 64 * 1024] {
        let payload = vec![0x5au8; size];
        let shared = tungstenite::Bytes::from(payload.clone());
        let mut out = Vec::with_capacity(size + 16);
        group.throughput(Throughput::Bytes(size as u64));
        let param = format!("{size}B");

        group.bench_function(BenchmarkId::new("ringcast", &param), |b| {
            b.iter(|| {
                out.clear();
                encode_masked_frame_into(&mut out, OpCode::Binary, true, KEY, black_box(&payload));
                black_box(&out);
            })
        });
        group.bench_function(BenchmarkId::new("tungstenite", &param), |b| {
            b.iter(|| {
                out.clear();
                let mut frame = tungstenite::protocol::frame::Frame::message(
                    black_box(shared.clone()),
                    TOpCode::Data(Data::Binary),
                    true,
                );
                frame.header_mut().mask = Some(KEY);
                frame.format(&mut out).expect("a Vec takes any frame");
                black_box(&out);
            })
        });
        let mut scratch = payload.clone();
        group.bench_function(BenchmarkId::new("fastwebsockets", &param), |b| {
            b.iter(|| {
                let mut frame = fastwebsockets::Frame::new(
                    true,
                    fastwebsockets::OpCode::Binary,
                    Some(KEY),
                    fastwebsockets::Payload::BorrowedMut(black_box(&mut scratch)),
                );
                frame.mask();
                black_box(frame.write(&mut out));
            })
        });
    }
    group.finish();
}

/// The three length forms, by payload length.
const FORMS: [(&str, usize); 3] = [("7bit", 125), ("16bit", 65_535), ("64bit", 65_536)];

fn bench_header_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("header_parse");
    group.throughput(Throughput::Elements(1));
    for (form, len) in FORMS {
        let mut wire = Vec::new();
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: Some(KEY),
            payload_len: len as u64,
        }
        .encode_into(&mut wire);

        group.bench_function(BenchmarkId::new("ringcast", form), |b| {
            b.iter(|| {
                let parsed = FrameHeader::parse(black_box(&wire)).expect("valid header");
                black_box(parsed)
            })
        });
        group.bench_function(BenchmarkId::new("tungstenite", form), |b| {
            b.iter(|| {
                let mut cursor = Cursor::new(black_box(&wire[..]));
                let parsed = tungstenite::protocol::frame::FrameHeader::parse(&mut cursor)
                    .expect("valid header");
                black_box(parsed)
            })
        });
    }
    group.finish();
}

fn bench_header_encode(c: &mut Criterion) {
    use tungstenite::protocol::frame::coding::{Data, OpCode as TOpCode};
    let mut group = c.benchmark_group("header_encode");
    group.throughput(Throughput::Elements(1));
    for (form, len) in FORMS {
        let payload = vec![0u8; len];
        let mut out = Vec::with_capacity(16);

        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: None,
            payload_len: len as u64,
        };
        group.bench_function(BenchmarkId::new("ringcast", form), |b| {
            b.iter(|| {
                out.clear();
                black_box(&header).encode_into(&mut out);
                black_box(&out);
            })
        });
        // Like for like with fastwebsockets' `fmt_head`: the header built
        // in a fixed stack array (`FrameHeader::encode`, what v1 replies use).
        group.bench_function(BenchmarkId::new("ringcast-stack", form), |b| {
            b.iter(|| black_box(black_box(&header).encode()))
        });

        let theader = tungstenite::protocol::frame::FrameHeader {
            opcode: TOpCode::Data(Data::Binary),
            ..Default::default()
        };
        group.bench_function(BenchmarkId::new("tungstenite", form), |b| {
            b.iter(|| {
                out.clear();
                black_box(&theader)
                    .format(black_box(len as u64), &mut out)
                    .expect("a Vec takes any header");
                black_box(&out);
            })
        });

        let mut head = [0u8; 16];
        group.bench_function(BenchmarkId::new("fastwebsockets", form), |b| {
            b.iter(|| {
                let mut frame = fastwebsockets::Frame::new(
                    true,
                    fastwebsockets::OpCode::Binary,
                    None,
                    fastwebsockets::Payload::Borrowed(black_box(&payload)),
                );
                black_box(frame.fmt_head(&mut head));
                black_box(&head);
            })
        });
    }
    group.finish();
}

const FRAMES: usize = 1000;

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(FRAMES as u64));
    for (kind, opcode) in [("binary", OpCode::Binary), ("text", OpCode::Text)] {
        let wire = masked_frames(FRAMES, opcode, KEY, SMALL_PAYLOAD);
        let mut read_buf = vec![0u8; wire.len()];

        group.bench_function(BenchmarkId::new("ringcast", kind), |b| {
            b.iter(|| {
                read_buf.copy_from_slice(black_box(&wire));
                let mut decoder = Decoder::new(Role::Server, Limits::default());
                let (mut pos, mut frames) = (0, 0);
                while pos < read_buf.len() {
                    let decoded = decoder.decode(&mut read_buf[pos..]).expect("valid frames");
                    pos += decoded.consumed;
                    match decoded.event {
                        Some(Event::Binary(data)) => {
                            frames += usize::from(!black_box(data).is_empty())
                        }
                        Some(Event::Text(text)) => {
                            frames += usize::from(!black_box(text).is_empty())
                        }
                        _ => {}
                    }
                }
                assert_eq!(frames, FRAMES);
            })
        });

        group.bench_function(BenchmarkId::new("tungstenite", kind), |b| {
            b.iter_batched(
                || {
                    tungstenite::WebSocket::from_raw_socket(
                        Cursor::new(wire.clone()),
                        tungstenite::protocol::Role::Server,
                        None,
                    )
                },
                |mut ws| {
                    for _ in 0..FRAMES {
                        let msg = ws.read().expect("valid frames");
                        black_box(msg.len());
                    }
                    ws
                },
                BatchSize::SmallInput,
            )
        });

        group.bench_function(BenchmarkId::new("fastwebsockets", kind), |b| {
            b.iter_batched(
                || {
                    fastwebsockets::WebSocket::after_handshake(
                        MemStream::new(wire.clone()),
                        fastwebsockets::Role::Server,
                    )
                },
                |mut ws| {
                    for _ in 0..FRAMES {
                        let frame = ready(ws.read_frame()).expect("valid frames");
                        black_box(frame.payload.len());
                    }
                    ws
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_mask, bench_mask_encode, bench_header_parse, bench_header_encode, bench_decode
}
criterion_main!(benches);
