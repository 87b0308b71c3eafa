//! Tests of the decoder: the harness that runs the runtime's decode loop
//! over a stream cut at chosen points (asserting the progress contract on
//! every call), the table of [`cases`] fed whole, byte by byte and in random
//! splits, and the tests of allocation, limits and zero copy.

mod cases;
mod deflate;

use self::cases::cases;
use super::*;
use crate::proto::frame::{encode_frame_into, encode_masked_frame_into};

/// The masking key of the RFC 6455 §5.7 examples.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// An owned copy of an [`Event`], so results of different runs compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

fn own(event: Event<'_>) -> Ev {
    match event {
        Event::Text(t) => Ev::Text(t.to_owned()),
        Event::Binary(b) => Ev::Binary(b.to_vec()),
        Event::Ping(p) => Ev::Ping(p.to_vec()),
        Event::Pong(p) => Ev::Pong(p.to_vec()),
        Event::Close(c) => Ev::Close(c.map(|c| (c.code.0, c.reason.to_owned()))),
    }
}

fn text(s: &str) -> Ev {
    Ev::Text(s.to_owned())
}

fn masked(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    masked_with(MASK, opcode, fin, payload)
}

fn masked_with(mask: [u8; 4], opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_masked_frame_into(&mut out, opcode, fin, mask, payload);
    out
}

fn unmasked(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame_into(&mut out, opcode, fin, payload);
    out
}

fn server() -> Decoder {
    Decoder::new(Role::Server, Limits::default())
}

/// What a run of the runtime's decode loop produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Ev>,
    error: Option<ProtocolError>,
}

/// Runs the runtime's decode loop over `wire` delivered in pieces cut at
/// `cuts` (sorted), each piece copied into one reused scratch buffer that
/// is overwritten after use, as the per-core buffer will be. Asserts the
/// progress contract on every call.
fn run_cut(dec: &mut Decoder, wire: &[u8], cuts: &[usize]) -> Outcome {
    let mut events = Vec::new();
    let mut scratch = vec![0u8; wire.len()];
    let mut start = 0;
    for end in cuts.iter().copied().chain([wire.len()]) {
        let n = end - start;
        scratch[..n].copy_from_slice(&wire[start..end]);
        start = end;
        let mut pos = 0;
        while pos < n {
            match dec.decode(&mut scratch[pos..n]) {
                Ok(d) => {
                    assert!(d.consumed <= n - pos, "consumed past the end");
                    assert!(d.consumed > 0 || d.event.is_some(), "no progress");
                    if d.event.is_none() {
                        assert_eq!(d.consumed, n - pos, "no event but bytes left over");
                    }
                    pos += d.consumed;
                    events.extend(d.event.map(own));
                }
                Err(error) => {
                    return Outcome {
                        events,
                        error: Some(error),
                    }
                }
            }
        }
        // The decoder must have copied whatever it still needs.
        scratch.fill(0xEE);
    }
    Outcome {
        events,
        error: None,
    }
}

fn run_whole(role: Role, limits: Limits, wire: &[u8]) -> Outcome {
    run_cut(&mut Decoder::new(role, limits), wire, &[])
}

fn run_bytewise(role: Role, limits: Limits, wire: &[u8]) -> Outcome {
    let cuts: Vec<usize> = (1..wire.len()).collect();
    run_cut(&mut Decoder::new(role, limits), wire, &cuts)
}

/// xorshift64: deterministic pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn random_cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
    let count = rng.below(8);
    let mut cuts: Vec<usize> = (0..count).map(|_| rng.below(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

/// Index of the byte on whose `decode` call the error came, feeding one
/// byte per call.
fn error_at_byte(role: Role, limits: Limits, wire: &[u8]) -> Option<(usize, ProtocolError)> {
    let mut dec = Decoder::new(role, limits);
    for (i, &byte) in wire.iter().enumerate() {
        let mut one = [byte];
        if let Err(err) = dec.decode(&mut one) {
            return Some((i, err));
        }
    }
    None
}

fn concat(frames: &[&[u8]]) -> Vec<u8> {
    frames.concat()
}

#[test]
fn every_case_whole() {
    for case in cases() {
        let got = run_whole(case.role, case.limits, &case.wire);
        assert_eq!(got, case.expected, "{}", case.name);
    }
}

#[test]
fn every_case_byte_at_a_time() {
    for case in cases() {
        let got = run_bytewise(case.role, case.limits, &case.wire);
        assert_eq!(got, case.expected, "{}", case.name);
    }
}

#[test]
fn every_case_at_random_split_points() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in cases() {
        for _ in 0..25 {
            let cuts = random_cuts(&mut rng, case.wire.len());
            let mut dec = Decoder::new(case.role, case.limits);
            let got = run_cut(&mut dec, &case.wire, &cuts);
            assert_eq!(got, case.expected, "{} cut at {cuts:?}", case.name);
            // Every stream ends on a frame boundary; all but one also
            // finish their last message.
            if got.error.is_none() && case.name != "close between fragments" {
                assert!(dec.is_idle(), "{}: idle after complete frames", case.name);
                dec.reclaim();
                assert_eq!(
                    dec.buffered_bytes(),
                    0,
                    "{}: nothing held when idle",
                    case.name
                );
            }
        }
    }
}

#[test]
fn every_case_cut_at_every_single_point() {
    // Two pieces, cut everywhere; skips the 64 KiB cases to stay fast.
    for case in cases().into_iter().filter(|c| c.wire.len() < 2000) {
        for cut in 0..=case.wire.len() {
            let got = run_cut(
                &mut Decoder::new(case.role, case.limits),
                &case.wire,
                &[cut],
            );
            assert_eq!(got, case.expected, "{} cut at {cut}", case.name);
        }
    }
}

#[test]
fn frames_at_odd_alignments() {
    // The same frames placed at every offset 0..8 of the read buffer,
    // whole and cut at every mask phase.
    let payload: Vec<u8> = (0..77u8).collect();
    let wire = masked_with([0x9d, 0x01, 0xfe, 0x42], OpCode::Binary, true, &payload);
    for align in 0..8 {
        let mut buf = vec![0u8; align];
        buf.extend_from_slice(&wire);
        let mut dec = server();
        let d = dec.decode(&mut buf[align..]).expect("valid");
        assert_eq!(d.consumed, wire.len());
        assert_eq!(d.event, Some(Event::Binary(&payload)), "align {align}");
        for cut in 6..12 {
            let mut buf = vec![0u8; align];
            buf.extend_from_slice(&wire);
            let got = run_cut(&mut server(), &buf[align..], &[cut]);
            assert_eq!(
                got.events,
                vec![Ev::Binary(payload.clone())],
                "align {align} cut {cut}"
            );
        }
    }
}

#[test]
fn decodes_one_event_per_call() {
    let mut wire = masked(OpCode::Text, true, b"one");
    let first = wire.len();
    wire.extend(masked(OpCode::Ping, true, b"two"));
    let mut dec = server();
    let d = dec.decode(&mut wire).expect("valid");
    assert_eq!(
        d,
        Decoded {
            consumed: first,
            event: Some(Event::Text("one"))
        }
    );
    let rest = wire.len() - first;
    let d = dec.decode(&mut wire[first..]).expect("valid");
    assert_eq!(
        d,
        Decoded {
            consumed: rest,
            event: Some(Event::Ping(b"two"))
        }
    );
}

#[test]
fn fragments_are_consumed_in_one_call_until_the_message_completes() {
    let mut wire = masked(OpCode::Text, false, b"a");
    wire.extend(masked(OpCode::Continuation, false, b"b"));
    wire.extend(masked(OpCode::Continuation, true, b"c"));
    let end = wire.len();
    wire.extend(masked(OpCode::Text, true, b"next"));
    let mut dec = server();
    let d = dec.decode(&mut wire).expect("valid");
    assert_eq!(
        d,
        Decoded {
            consumed: end,
            event: Some(Event::Text("abc"))
        }
    );
}

#[test]
fn empty_buf_is_a_no_op() {
    let mut dec = server();
    assert_eq!(
        dec.decode(&mut []),
        Ok(Decoded {
            consumed: 0,
            event: None
        })
    );
    assert!(dec.is_idle());
}

#[test]
fn whole_frames_are_zero_copy() {
    let mut dec = server();
    for wire in [
        masked(OpCode::Text, true, b"hello there"),
        masked(OpCode::Binary, true, &[9; 1000]),
        masked(OpCode::Ping, true, b"p"),
        masked(OpCode::Close, true, b"\x03\xe8bye"),
    ] {
        let mut buf = wire.clone();
        let range = buf.as_ptr_range();
        let d = dec.decode(&mut buf).expect("valid");
        let payload_ptr = match d.event.expect("event") {
            Event::Text(t) => t.as_ptr(),
            Event::Binary(b) | Event::Ping(b) | Event::Pong(b) => b.as_ptr(),
            Event::Close(c) => c.expect("code").reason.as_ptr(),
        };
        assert!(range.contains(&payload_ptr), "payload is a slice of buf");
        assert_eq!(dec.buffered_bytes(), 0, "nothing was copied");
    }
    // The payload was unmasked in place.
    let mut buf = masked(OpCode::Binary, true, b"abc");
    dec.decode(&mut buf).expect("valid");
    assert_eq!(&buf[6..], b"abc");
}

#[test]
fn rfc_fragmented_hello_step_by_step() {
    let mut dec = Decoder::new(Role::Client, Limits::default());
    let mut first = *b"\x01\x03\x48\x65\x6c";
    assert_eq!(
        dec.decode(&mut first),
        Ok(Decoded {
            consumed: 5,
            event: None
        })
    );
    assert!(!dec.is_idle(), "a message is in progress");
    let mut last = *b"\x80\x02\x6c\x6f";
    assert_eq!(
        dec.decode(&mut last),
        Ok(Decoded {
            consumed: 4,
            event: Some(Event::Text("Hello"))
        })
    );
    assert!(dec.is_idle());
}

#[test]
fn invalid_utf8_fails_on_the_fragment_that_carries_it() {
    let first = masked(OpCode::Text, false, "κόσμε".as_bytes());
    let bad = masked(OpCode::Continuation, false, b"\xed\xa0\x80");
    let mut dec = server();
    assert_eq!(dec.decode(&mut first.clone()).map(|d| d.event), Ok(None));
    // The message is not over, yet the second fragment already fails.
    assert_eq!(
        dec.decode(&mut bad.clone()).map(|d| d.event),
        Err(ProtocolError::InvalidUtf8)
    );

    // Byte by byte: the failing call is the one delivering \xa0.
    let wire = concat(&[&first, &bad, &masked(OpCode::Continuation, true, b"edited")]);
    let a0 = first.len() + 6 + 1;
    assert_eq!(
        error_at_byte(Role::Server, Limits::default(), &wire),
        Some((a0, ProtocolError::InvalidUtf8))
    );
}

#[test]
fn invalid_utf8_fails_mid_frame() {
    // Autobahn 6.4.1: one text frame, sent in pieces; the server must fail
    // as soon as the surrogate's second byte arrives, not at the frame's end.
    let payload = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited";
    let wire = masked(OpCode::Text, true, payload);
    let header = 6;
    let mut dec = server();
    assert_eq!(
        dec.decode(&mut wire[..header + 11].to_vec())
            .map(|d| d.event),
        Ok(None)
    );
    assert_eq!(
        dec.decode(&mut wire[header + 11..header + 14].to_vec())
            .map(|d| d.event),
        Err(ProtocolError::InvalidUtf8)
    );
    assert_eq!(
        error_at_byte(Role::Server, Limits::default(), &wire),
        Some((header + 12, ProtocolError::InvalidUtf8))
    );
    // Split across fragments the same way.
    let wire = concat(&[
        &masked(OpCode::Text, false, &payload[..12]),
        &masked(OpCode::Continuation, true, &payload[12..]),
    ]);
    assert_eq!(
        error_at_byte(Role::Server, Limits::default(), &wire),
        Some((header + 12 + header, ProtocolError::InvalidUtf8))
    );
}

#[test]
fn limits_are_checked_on_the_header_before_any_allocation() {
    // 1 TiB declared, fed one header byte at a time: nothing is stored but
    // the partial header, and the last header byte is rejected.
    let wire = b"\x82\xff\x00\x00\x01\x00\x00\x00\x00\x00\x01\x02\x03\x04";
    let mut dec = server();
    for (i, &byte) in wire[..13].iter().enumerate() {
        assert_eq!(
            dec.decode(&mut [byte]),
            Ok(Decoded {
                consumed: 1,
                event: None
            }),
            "byte {i}"
        );
        assert_eq!(dec.buffered_bytes(), 0);
        assert!(!dec.is_idle(), "a partial header is not idle");
    }
    assert_eq!(
        dec.decode(&mut [wire[13]]),
        Err(ProtocolError::FrameTooLarge {
            len: 1 << 40,
            max: 64 * 1024
        })
    );
    assert_eq!(dec.buffered_bytes(), 0);

    // Rejected from the header alone even with the payload after it.
    let mut dec = server();
    let mut buf = wire.to_vec();
    buf.extend_from_slice(&[0; 100]);
    assert!(dec.decode(&mut buf).is_err());
    assert_eq!(dec.buffered_bytes(), 0);
}

#[test]
fn storage_grows_with_bytes_received_not_bytes_declared() {
    let huge = Limits {
        max_frame_size: 1 << 62,
        max_message_size: 1 << 62,
    };
    let mut dec = Decoder::new(Role::Server, huge);
    let mut header = b"\x82\xff\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
    assert_eq!(
        dec.decode(&mut header),
        Ok(Decoded {
            consumed: 14,
            event: None
        })
    );
    assert_eq!(
        dec.buffered_bytes(),
        0,
        "accepting a 1 TiB header allocates nothing"
    );
    assert!(!dec.is_idle());
    let mut received = 0;
    for _ in 0..300 {
        let mut piece = [7u8; 100];
        assert_eq!(
            dec.decode(&mut piece),
            Ok(Decoded {
                consumed: 100,
                event: None
            })
        );
        received += 100;
        assert!(
            dec.buffered_bytes() <= MIN_GROWTH.max(2 * received),
            "{} held for {received} received",
            dec.buffered_bytes()
        );
    }

    // A small frame that trickles in is stored once, at its own size.
    let mut dec = server();
    let wire = masked(OpCode::Binary, true, &[1; 200]);
    dec.decode(&mut wire[..10].to_vec()).expect("valid");
    assert_eq!(dec.buffered_bytes(), 200);
    dec.decode(&mut wire[10..].to_vec()).expect("valid");
    assert_eq!(dec.buffered_bytes(), 200);
}

#[test]
fn set_limits_applies_from_the_next_header() {
    let mut dec = server();
    let mut first = masked(OpCode::Binary, true, &[0; 500]);
    // The header and part of the payload, then the limit drops.
    dec.decode(&mut first[..100]).expect("valid");
    dec.set_limits(Limits {
        max_frame_size: 100,
        max_message_size: 100,
    });
    let d = dec
        .decode(&mut first[100..])
        .expect("frame accepted under the old limits");
    assert_eq!(d.event, Some(Event::Binary(&[0; 500])));
    let mut second = masked(OpCode::Binary, true, &[0; 101]);
    assert_eq!(
        dec.decode(&mut second),
        Err(ProtocolError::FrameTooLarge { len: 101, max: 100 })
    );
}

#[test]
fn idle_and_buffer_accounting_through_a_fragmented_message() {
    let mut dec = server();
    assert!(dec.is_idle());
    assert_eq!(dec.buffered_bytes(), 0);

    // Half a header.
    let first = masked(OpCode::Text, false, b"Hel");
    dec.decode(&mut first[..3].to_vec()).expect("valid");
    assert!(!dec.is_idle());
    assert_eq!(dec.buffered_bytes(), 0, "partial headers live inline");
    // Rest of the first fragment: a message is in progress.
    dec.decode(&mut first[3..].to_vec()).expect("valid");
    assert!(!dec.is_idle());
    assert_eq!(dec.buffered_bytes(), 3);

    // A ping split in two: the 125-byte box exists only while it is partial.
    let ping = masked(OpCode::Ping, true, b"ping!");
    dec.decode(&mut ping[..8].to_vec()).expect("valid");
    assert_eq!(dec.buffered_bytes(), 3 + 125);
    let mut rest = ping[8..].to_vec();
    let d = dec.decode(&mut rest).expect("valid");
    assert_eq!(d.event, Some(Event::Ping(b"ping!")));
    assert!(!dec.is_idle(), "the message is still in progress");
    dec.reclaim();
    assert_eq!(
        dec.buffered_bytes(),
        3,
        "the box is gone, the message stays"
    );

    // Last fragment: delivered from the message buffer.
    let mut last = masked(OpCode::Continuation, true, b"lo");
    let d = dec.decode(&mut last).expect("valid");
    assert_eq!(d.event, Some(Event::Text("Hello")));
    assert!(dec.is_idle());
    assert!(
        dec.buffered_bytes() > 0,
        "the event borrows the buffer until reclaim"
    );
    dec.reclaim();
    assert_eq!(dec.buffered_bytes(), 0, "an idle decoder holds no heap");

    // The next decode reclaims by itself too.
    let mut a = masked(OpCode::Binary, false, b"a");
    let mut b = masked(OpCode::Continuation, true, b"b");
    dec.decode(&mut a).expect("valid");
    dec.decode(&mut b).expect("valid");
    assert!(dec.buffered_bytes() > 0);
    let mut ping = masked(OpCode::Ping, true, b"");
    dec.decode(&mut ping).expect("valid");
    assert_eq!(dec.buffered_bytes(), 0);
}

#[test]
fn a_large_assembled_message_is_released() {
    let mut dec = server();
    let payload = vec![3u8; 60_000];
    let wire = masked(OpCode::Binary, true, &payload);
    let got = run_cut(&mut dec, &wire, &[5000, 30_000]);
    assert_eq!(got.events, vec![Ev::Binary(payload)]);
    dec.reclaim();
    assert_eq!(dec.buffered_bytes(), 0);
}

#[test]
fn decoder_is_small() {
    // Every open connection holds one inside its boxed state; 8 bytes more
    // moved that box into the allocator's next size class (proto/decoder).
    let size = std::mem::size_of::<Decoder>();
    assert!(size <= 88, "Decoder is {size} bytes");
}

#[test]
fn default_limits_are_64_kib() {
    let limits = Limits::default();
    assert_eq!(
        (limits.max_frame_size, limits.max_message_size),
        (65536, 65536)
    );
}
