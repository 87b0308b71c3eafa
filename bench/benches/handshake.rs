//! The server side of the opening handshake, in handshakes/s, beside
//! tungstenite on the same request bytes.
//!
//! - `handshake/<impl>`: a browser's upgrade request (13 headers, see
//!   `inputs::UPGRADE_REQUEST`) parsed, validated (method, version, `Host`,
//!   `Upgrade`, `Connection`, `Sec-WebSocket-Version`, the key) and
//!   answered: the accept key computed and the `101` response written into a
//!   reused buffer. `ringcast`: `parse_request` + `validate_upgrade` +
//!   `encode_accept_response_into`. `tungstenite`: `Request::try_parse`
//!   (its public `TryParse`) + `create_response` + `write_response`.
//!   fastwebsockets is left out: it parses requests only through hyper's
//!   connection, which has no public parser to call on a byte slice.
//! - `accept_key/<impl>`: `Sec-WebSocket-Accept` alone (SHA-1 + base64):
//!   `ringcast::proto::handshake::accept_key` and tungstenite's
//!   `derive_accept_key` (fastwebsockets' is private).
//!
//! Run: `cargo bench -p ringcast-bench --bench handshake`.

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ringcast::proto::handshake::{
    accept_key, encode_accept_response_into, parse_request, validate_upgrade, HandshakeLimits,
};
use ringcast_bench::inputs::{UPGRADE_ACCEPT, UPGRADE_REQUEST};
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::{create_response, write_response, Request};

fn bench_handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Elements(1));
    let limits = HandshakeLimits::default();
    let mut out = Vec::with_capacity(256);

    group.bench_function("ringcast", |b| {
        b.iter(|| {
            let (len, head) = parse_request(black_box(UPGRADE_REQUEST), &limits)
                .expect("valid request")
                .expect("a whole head");
            let accept = validate_upgrade(&head).expect("valid upgrade");
            out.clear();
            encode_accept_response_into(&mut out, &accept, None, &[]);
            black_box((len, &out));
        })
    });
    group.bench_function("tungstenite", |b| {
        b.iter(|| {
            let (len, request) = Request::try_parse(black_box(UPGRADE_REQUEST))
                .expect("valid request")
                .expect("a whole head");
            let response = create_response(&request).expect("valid upgrade");
            out.clear();
            write_response(&mut out, &response).expect("a Vec takes any response");
            black_box((len, &out));
        })
    });
    group.finish();

    // Both answer the same thing.
    let (_, head) = parse_request(UPGRADE_REQUEST, &limits)
        .expect("valid")
        .expect("whole");
    assert_eq!(validate_upgrade(&head).expect("valid"), UPGRADE_ACCEPT);
}

fn bench_accept_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("accept_key");
    group.throughput(Throughput::Elements(1));
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_eq!(accept_key(key), UPGRADE_ACCEPT);
    assert_eq!(
        tungstenite::handshake::derive_accept_key(key.as_bytes()),
        UPGRADE_ACCEPT
    );
    group.bench_function("ringcast", |b| b.iter(|| accept_key(black_box(key))));
    group.bench_function("tungstenite", |b| {
        b.iter(|| tungstenite::handshake::derive_accept_key(black_box(key.as_bytes())))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_handshake, bench_accept_key
}
criterion_main!(benches);
