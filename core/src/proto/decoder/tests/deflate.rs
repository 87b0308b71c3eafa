//! The decoder with permessage-deflate negotiated: RSV1 rules, inflating
//! whole and fragmented messages at every cut, the size limit on the
//! inflated bytes, invalid data, and when the inflate stream is held.

use super::*;
use crate::proto::deflate::MessageDeflater;
use crate::proto::frame::FrameHeader;

/// RFC 7692 §7.2.3.1: "Hello", compressed.
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
/// RFC 7692 §7.2.3.2: the second "Hello" on a context-takeover stream.
const HELLO_AGAIN: [u8; 5] = [0xf2, 0x00, 0x11, 0x00, 0x00];

/// A masked frame with RSV1 set (a compressed message's first frame).
fn rsv1(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = masked(opcode, fin, payload);
    out[0] |= 0x40;
    out
}

fn inflating(context_takeover: bool, limits: Limits) -> Decoder {
    let mut dec = Decoder::new(Role::Server, limits);
    dec.enable_deflate(context_takeover);
    dec
}

/// Compressed payload of `payload` (no frame header, tail stripped).
fn deflated(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut d = MessageDeflater::new(6);
    assert!(d.encode_frame_into(&mut out, OpCode::Binary, payload, true));
    let (_, at) = FrameHeader::parse(&out).expect("ok").expect("whole");
    out.split_off(at)
}

/// Runs `wire` whole, byte by byte and cut at every point; all must agree.
fn run_all_cuts(context_takeover: bool, limits: Limits, wire: &[u8]) -> Outcome {
    let whole = run_cut(&mut inflating(context_takeover, limits), wire, &[]);
    for cut in 1..wire.len() {
        let got = run_cut(&mut inflating(context_takeover, limits), wire, &[cut]);
        assert_eq!(got, whole, "cut at {cut}");
    }
    let cuts: Vec<usize> = (1..wire.len()).collect();
    let bytewise = run_cut(&mut inflating(context_takeover, limits), wire, &cuts);
    assert_eq!(bytewise, whole, "byte by byte");
    whole
}

#[test]
fn rfc_7692_hello_whole_and_at_every_cut() {
    let wire = rsv1(OpCode::Text, true, &HELLO);
    let got = run_all_cuts(false, Limits::default(), &wire);
    assert_eq!(got.events, vec![text("Hello")]);
    assert_eq!(got.error, None);
}

#[test]
fn fragmented_compressed_message_with_control_frames_between() {
    // The compressed bytes split over three frames; RSV1 on the first only.
    let wire = concat(&[
        &rsv1(OpCode::Text, false, &HELLO[..2]),
        &masked(OpCode::Continuation, false, &HELLO[2..5]),
        &masked(OpCode::Ping, true, b"p"),
        &masked(OpCode::Continuation, true, &HELLO[5..]),
        // Then an uncompressed message on the same connection.
        &masked(OpCode::Text, true, b"plain"),
    ]);
    let got = run_all_cuts(false, Limits::default(), &wire);
    assert_eq!(
        got.events,
        vec![Ev::Ping(b"p".to_vec()), text("Hello"), text("plain")]
    );
    assert_eq!(got.error, None);
}

#[test]
fn context_takeover_carries_the_window_to_the_next_message() {
    let wire = concat(&[
        &rsv1(OpCode::Text, true, &HELLO),
        &rsv1(OpCode::Text, true, &HELLO_AGAIN),
    ]);
    let got = run_all_cuts(true, Limits::default(), &wire);
    assert_eq!(got.events, vec![text("Hello"), text("Hello")]);
    // Without context takeover the second message refers to nothing.
    let got = run_cut(&mut inflating(false, Limits::default()), &wire, &[]);
    assert_eq!(got.events, vec![text("Hello")]);
    assert!(got.error.is_some());
}

#[test]
fn rsv1_rules() {
    let cases: [(&[u8], Decoder, ProtocolError); 4] = [
        // Not negotiated: RSV1 is a reserved bit.
        (
            &rsv1(OpCode::Text, true, &HELLO),
            server(),
            ProtocolError::ReservedBits,
        ),
        (
            &concat(&[
                &masked(OpCode::Text, false, b"a"),
                &rsv1(OpCode::Continuation, true, b"b"),
            ]),
            inflating(false, Limits::default()),
            ProtocolError::CompressedContinuation,
        ),
        (
            &rsv1(OpCode::Ping, true, b"x"),
            inflating(false, Limits::default()),
            ProtocolError::CompressedControlFrame,
        ),
        (
            &{
                let mut wire = rsv1(OpCode::Text, true, &HELLO);
                wire[0] |= 0x20; // RSV2 is still nobody's
                wire
            },
            inflating(false, Limits::default()),
            ProtocolError::ReservedBits,
        ),
    ];
    for (wire, mut dec, expected) in cases {
        let got = run_cut(&mut dec, wire, &[]);
        assert_eq!(got.error, Some(expected));
        assert_eq!(expected.close_code().0, 1002);
    }
}

#[test]
fn a_bomb_is_refused_at_the_inflated_limit_with_1009() {
    let payload = vec![0u8; 1 << 20];
    let packed = deflated(&payload);
    assert!(packed.len() < 2000, "{}", packed.len());
    let limits = Limits {
        max_frame_size: 64 * 1024,
        max_message_size: 64 * 1024,
    };
    let wire = rsv1(OpCode::Binary, true, &packed);
    let mut dec = inflating(false, limits);
    let got = run_cut(&mut dec, &wire, &[]);
    let err = got.error.expect("refused");
    assert_eq!(err, ProtocolError::InflatedTooLarge { max: 64 * 1024 });
    assert_eq!(err.close_code().0, 1009);
    // It never held much more than the limit.
    assert!(
        dec.buffered_bytes() <= 64 * 1024 + 1,
        "{}",
        dec.buffered_bytes()
    );
    // Exactly at the limit is fine.
    let payload = vec![7u8; 64 * 1024];
    let wire = rsv1(OpCode::Binary, true, &deflated(&payload));
    let got = run_cut(&mut inflating(false, limits), &wire, &[]);
    assert_eq!(got.events, vec![Ev::Binary(payload)]);
}

#[test]
fn invalid_data_and_invalid_utf8_after_inflating() {
    let wire = rsv1(OpCode::Binary, true, &[0xff, 0xff, 0xff]);
    let got = run_all_cuts(false, Limits::default(), &wire);
    assert_eq!(got.error, Some(ProtocolError::InvalidCompressedData));
    assert_eq!(ProtocolError::InvalidCompressedData.close_code().0, 1007);

    let bad_text = [b'a'; 100]
        .iter()
        .copied()
        .chain([0xc3, 0x28])
        .collect::<Vec<u8>>();
    let wire = rsv1(OpCode::Text, true, &deflated(&bad_text));
    let got = run_all_cuts(false, Limits::default(), &wire);
    assert_eq!(got.error, Some(ProtocolError::InvalidUtf8));
    // The same bytes as binary are fine.
    let wire = rsv1(OpCode::Binary, true, &deflated(&bad_text));
    let got = run_all_cuts(false, Limits::default(), &wire);
    assert_eq!(got.events, vec![Ev::Binary(bad_text)]);
}

#[test]
fn the_inflater_is_held_only_while_needed() {
    let wire = rsv1(OpCode::Text, true, &HELLO);
    // No context takeover: made for the message, gone after it.
    let mut dec = inflating(false, Limits::default());
    assert!(!dec.holds_inflater());
    let got = run_cut(&mut dec, &wire, &[]);
    assert_eq!(got.events, vec![text("Hello")]);
    dec.reclaim();
    assert!(!dec.holds_inflater());
    assert_eq!(dec.buffered_bytes(), 0);
    // Context takeover: kept (its window is the peer's), buffer freed.
    let mut dec = inflating(true, Limits::default());
    let got = run_cut(&mut dec, &wire, &[]);
    assert_eq!(got.events, vec![text("Hello")]);
    dec.reclaim();
    assert!(dec.holds_inflater());
    assert_eq!(dec.buffered_bytes(), 0);
}
