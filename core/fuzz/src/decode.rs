//! The frame decoder's contract, checked on arbitrary wire bytes.
//!
//! Input layout of the `decoder` target: `[cfg, max_chunk, seed_hi, seed_lo,
//! wire...]`. `cfg` picks the role (bit 0) and the limits (bits 1-3, an index
//! into [`LIMITS`]); the wire is decoded whole, one byte per read, and in reads
//! of 1..=`max_chunk` bytes drawn from `seed` (0 means one read), and the
//! three runs must agree. Every `decode` call is checked for:
//! - progress: consumes a byte or returns an event; no event means all consumed;
//! - events: text is UTF-8, control payloads are at most 125 bytes, messages
//!   fit `max_message_size`, close codes are sendable;
//! - memory: `buffered_bytes` never exceeds `max_message_size` + the 125-byte
//!   control box, nor 2x the bytes fed so far (or 1 KiB) + 125.

use ringcast::proto::decoder::{Decoder, Event, Limits, Role};
use ringcast::proto::error::ProtocolError;

use crate::input::{Reader, Rng};

/// An owned copy of an [`Event`], so that results of different runs compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

pub fn own(event: Event<'_>) -> Ev {
    match event {
        Event::Text(t) => Ev::Text(t.to_owned()),
        Event::Binary(b) => Ev::Binary(b.to_vec()),
        Event::Ping(p) => Ev::Ping(p.to_vec()),
        Event::Pong(p) => Ev::Pong(p.to_vec()),
        Event::Close(c) => Ev::Close(c.map(|c| (c.code.0, c.reason.to_owned()))),
    }
}

/// What one run of the runtime's decode loop produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Ev>,
    pub error: Option<ProtocolError>,
}

const fn limits(max_frame_size: u64, max_message_size: u64) -> Limits {
    Limits {
        max_frame_size,
        max_message_size,
    }
}

/// Limits the fuzzer picks from: the default, the boundaries (125, 126,
/// 65535), limits below the control-frame size, a message limit below the
/// frame limit, and none at all.
pub const LIMITS: [Limits; 8] = [
    limits(64 * 1024, 64 * 1024),
    limits(125, 125),
    limits(126, 300),
    limits(1000, 200),
    limits(0, 0),
    limits(16, 64),
    limits(65535, 65536),
    limits(u64::MAX, u64::MAX),
];

/// Role and limits from a configuration byte.
pub fn config(cfg: u8) -> (Role, Limits) {
    let role = if cfg & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    (role, LIMITS[usize::from(cfg >> 1) & 7])
}

/// Read sizes: all at once (`max_chunk == 0`), or 1..=`max_chunk` bytes drawn from `seed`.
pub fn chunker(max_chunk: u8, seed: u16) -> impl FnMut() -> usize {
    let mut rng = Rng::new(u64::from(seed));
    move || {
        if max_chunk == 0 {
            usize::MAX
        } else {
            1 + rng.below(u64::from(max_chunk)) as usize
        }
    }
}

/// Runs the runtime's decode loop over `wire` delivered in reads whose sizes
/// `next_chunk` gives, each read copied into one scratch buffer that is
/// overwritten after use (as the per-core buffer is). Checks the contract on
/// every call; stops at the first error.
pub fn run(
    role: Role,
    limits: Limits,
    wire: &[u8],
    mut next_chunk: impl FnMut() -> usize,
) -> Outcome {
    let mut dec = Decoder::new(role, limits);
    let mut events = Vec::new();
    let mut scratch = vec![0u8; wire.len()];
    let mut start = 0;
    while start < wire.len() {
        let n = next_chunk().clamp(1, wire.len() - start);
        scratch[..n].copy_from_slice(&wire[start..start + n]);
        start += n;

        // An empty read is a no-op.
        let empty = dec
            .decode(&mut [])
            .expect("decode of an empty buffer fails");
        assert_eq!((empty.consumed, empty.event), (0, None), "empty buffer");

        let mut pos = 0;
        while pos < n {
            let result = dec.decode(&mut scratch[pos..n]);
            let (consumed, event) = match result {
                Ok(d) => (d.consumed, d.event.map(own)),
                Err(error) => {
                    return Outcome {
                        events,
                        error: Some(error),
                    }
                }
            };
            assert!(
                consumed <= n - pos,
                "consumed {consumed} of {} bytes",
                n - pos
            );
            assert!(
                consumed > 0 || event.is_some(),
                "no progress on {} bytes",
                n - pos
            );
            if event.is_none() {
                assert_eq!(consumed, n - pos, "no event, but bytes left over");
            }
            pos += consumed;
            if let Some(event) = event {
                check_event(&event, limits);
                events.push(event);
            }
            check_memory(&dec, limits, start - n + pos);
        }
        // The decoder must have copied whatever it still needs.
        scratch[..n].fill(0xEE);
    }
    Outcome {
        events,
        error: None,
    }
}

fn check_event(event: &Ev, limits: Limits) {
    let max_message = usize::try_from(limits.max_message_size).unwrap_or(usize::MAX);
    match event {
        Ev::Text(text) => {
            assert!(
                std::str::from_utf8(text.as_bytes()).is_ok(),
                "text event is not UTF-8"
            );
            assert!(
                text.len() <= max_message,
                "text of {} bytes over the limit",
                text.len()
            );
        }
        Ev::Binary(data) => {
            assert!(
                data.len() <= max_message,
                "binary of {} bytes over the limit",
                data.len()
            );
        }
        Ev::Ping(payload) | Ev::Pong(payload) => {
            assert!(
                payload.len() <= 125,
                "control payload of {} bytes",
                payload.len()
            );
        }
        Ev::Close(None) => {}
        Ev::Close(Some((code, reason))) => {
            assert!(
                is_sendable(*code),
                "close code {code} may not be on the wire"
            );
            assert!(
                reason.len() <= 123,
                "close reason of {} bytes",
                reason.len()
            );
        }
    }
}

/// RFC 6455 §7.4 plus the IANA-registered 1012-1014, written out here rather
/// than calling `CloseCode::is_sendable`, so the fuzzer checks it too.
pub fn is_sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The decoder's heap never exceeds what the limits allow, nor runs far ahead
/// of the bytes actually received.
fn check_memory(dec: &Decoder, limits: Limits, fed: usize) {
    let held = dec.buffered_bytes();
    let max_message = usize::try_from(limits.max_message_size).unwrap_or(usize::MAX);
    assert!(
        held <= max_message.saturating_add(125),
        "decoder holds {held} bytes, limit {max_message} + 125"
    );
    assert!(
        held <= fed.saturating_mul(2).max(1024) + 125,
        "decoder holds {held} bytes after {fed} bytes were fed"
    );
}

/// The `decoder` target.
pub fn check(data: &[u8]) {
    let mut r = Reader::new(data);
    let (role, limits) = config(r.u8());
    let max_chunk = r.u8();
    let seed = r.u16();
    let wire = r.rest();

    let whole = run(role, limits, wire, || usize::MAX);
    let bytewise = run(role, limits, wire, || 1);
    assert_eq!(whole, bytewise, "whole vs one byte per read");
    let chunked = run(role, limits, wire, chunker(max_chunk, seed));
    assert_eq!(whole, chunked, "whole vs chunked");
}
