//! UTF-8 validation of text messages, in bytes/s, beside `std::str::from_utf8`
//! and `simdutf8` on the same bytes.
//!
//! - `utf8_whole/<impl>/<text>`: one whole message, as when a text message
//!   arrives in one frame. `ringcast` is `Utf8Validator::feed` + `finish`;
//!   `std` is `std::str::from_utf8`; `simdutf8` is `simdutf8::basic::from_utf8`
//!   (runtime-selected SIMD, the validator fastwebsockets uses).
//! - `utf8_fragments/<impl>/<text>`: the same message arriving as 1021-byte
//!   pieces (an odd size, so pieces end inside multi-byte characters), as
//!   fragments or reads deliver it. `ringcast` feeds each piece to one
//!   `Utf8Validator` (fail-fast: an error is reported on the piece that
//!   makes the stream invalid, as Autobahn 6.x requires); `std` has no
//!   incremental validator, so it appends each piece to a reused buffer and
//!   validates the whole at the end (what an implementation without one
//!   does); `simdutf8` is its streaming `basic::imp::x86::avx2::Utf8ValidatorImp`
//!   (feature `public_imp`; AVX2 only, checked at run time; it reports only
//!   at `finalize`, so it does not fail fast).
//!
//! Texts: `ascii` (JSON, all ASCII) and `mixed` (ASCII with Cyrillic, CJK
//! and emoji), at 1 KiB and 64 KiB.
//!
//! Run: `cargo bench -p ringcast-bench --bench utf8`.

mod common;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringcast::proto::utf8::Utf8Validator;
use ringcast_bench::inputs::{ascii_text, mixed_text};

const PIECE: usize = 1021;

fn texts() -> Vec<(String, Vec<u8>)> {
    let mut texts = Vec::new();
    for (size, size_name) in [(1024, "1KiB"), (64 * 1024, "64KiB")] {
        texts.push((format!("ascii_{size_name}"), ascii_text(size).into_bytes()));
        texts.push((format!("mixed_{size_name}"), mixed_text(size).into_bytes()));
    }
    texts
}

fn bench_whole(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8_whole");
    for (name, text) in texts() {
        group.throughput(Throughput::Bytes(text.len() as u64));
        let mut validator = Utf8Validator::new();
        group.bench_function(BenchmarkId::new("ringcast", &name), |b| {
            b.iter(|| {
                validator.feed(black_box(&text)).expect("valid");
                validator.finish().expect("valid");
            })
        });
        group.bench_function(BenchmarkId::new("std", &name), |b| {
            b.iter(|| std::str::from_utf8(black_box(&text)).expect("valid").len())
        });
        group.bench_function(BenchmarkId::new("simdutf8", &name), |b| {
            b.iter(|| {
                simdutf8::basic::from_utf8(black_box(&text))
                    .expect("valid")
                    .len()
            })
        });
    }
    group.finish();
}

fn bench_fragments(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8_fragments");
    for (name, text) in texts().into_iter().filter(|(n, _)| n.ends_with("64KiB")) {
        let pieces: Vec<&[u8]> = text.chunks(PIECE).collect();
        assert!(
            name.starts_with("ascii") || pieces.iter().any(|p| std::str::from_utf8(p).is_err()),
            "some pieces must end inside a character"
        );
        group.throughput(Throughput::Bytes(text.len() as u64));

        let mut validator = Utf8Validator::new();
        group.bench_function(BenchmarkId::new("ringcast", &name), |b| {
            b.iter(|| {
                for piece in &pieces {
                    validator.feed(black_box(piece)).expect("valid");
                }
                validator.finish().expect("valid");
            })
        });

        let mut assembled = Vec::with_capacity(text.len());
        group.bench_function(BenchmarkId::new("std", &name), |b| {
            b.iter(|| {
                assembled.clear();
                for piece in &pieces {
                    assembled.extend_from_slice(black_box(piece));
                }
                std::str::from_utf8(&assembled).expect("valid").len()
            })
        });

        if avx2_streaming::available() {
            group.bench_function(BenchmarkId::new("simdutf8", &name), |b| {
                b.iter(|| assert!(avx2_streaming::is_valid(black_box(&pieces))))
            });
        }
    }
    group.finish();
}

/// simdutf8's streaming validator, whose methods are `unsafe` because they
/// need AVX2.
#[cfg(target_arch = "x86_64")]
mod avx2_streaming {
    use simdutf8::basic::imp::x86::avx2::Utf8ValidatorImp;
    use simdutf8::basic::imp::Utf8Validator;

    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx2")
    }

    /// Validates the concatenation of `pieces`. Panics without AVX2.
    pub fn is_valid(pieces: &[&[u8]]) -> bool {
        assert!(available(), "simdutf8's avx2 validator needs AVX2");
        // SAFETY: the methods' only requirement is a CPU with AVX2, checked
        // just above (the detection result is cached, so this is a load).
        unsafe {
            let mut validator = Utf8ValidatorImp::new();
            for piece in pieces {
                validator.update(piece);
            }
            validator.finalize().is_ok()
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2_streaming {
    pub fn available() -> bool {
        false
    }

    pub fn is_valid(_pieces: &[&[u8]]) -> bool {
        unreachable!("only called when available()")
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_whole, bench_fragments
}
criterion_main!(benches);
