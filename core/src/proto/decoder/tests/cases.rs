//! The table of wire streams every decoder test runs: RFC 6455 examples,
//! every length boundary, every rule violation, close payloads and limits,
//! each with the events (and the error) it must give whether it is fed
//! whole, byte by byte, or cut at random points.

use super::*;

pub(super) struct Case {
    pub(super) name: String,
    pub(super) role: Role,
    pub(super) limits: Limits,
    pub(super) wire: Vec<u8>,
    pub(super) expected: Outcome,
}

fn ok(name: &str, role: Role, wire: Vec<u8>, events: Vec<Ev>) -> Case {
    let expected = Outcome {
        events,
        error: None,
    };
    Case {
        name: name.to_owned(),
        role,
        limits: Limits::default(),
        wire,
        expected,
    }
}

fn fails(name: &str, role: Role, wire: Vec<u8>, events: Vec<Ev>, error: ProtocolError) -> Case {
    let expected = Outcome {
        events,
        error: Some(error),
    };
    Case {
        name: name.to_owned(),
        role,
        limits: Limits::default(),
        wire,
        expected,
    }
}

/// Every stream the decoder is tested on. Each one is also fed whole,
/// byte by byte, and cut at random points, and must give the same result.
pub(super) fn cases() -> Vec<Case> {
    use OpCode::*;
    use ProtocolError as E;
    use Role::{Client, Server};
    let mut cases = vec![
        // RFC 6455 §5.7, literally.
        ok(
            "rfc unmasked Hello",
            Client,
            b"\x81\x05\x48\x65\x6c\x6c\x6f".to_vec(),
            vec![text("Hello")],
        ),
        ok(
            "rfc masked Hello",
            Server,
            b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58".to_vec(),
            vec![text("Hello")],
        ),
        ok(
            "rfc fragmented Hel lo",
            Client,
            b"\x01\x03\x48\x65\x6c\x80\x02\x6c\x6f".to_vec(),
            vec![text("Hello")],
        ),
        ok(
            "rfc unmasked ping",
            Client,
            b"\x89\x05\x48\x65\x6c\x6c\x6f".to_vec(),
            vec![Ev::Ping(b"Hello".to_vec())],
        ),
        ok(
            "rfc masked pong",
            Server,
            b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58".to_vec(),
            vec![Ev::Pong(b"Hello".to_vec())],
        ),
        ok(
            "rfc 256 bytes binary",
            Client,
            concat(&[b"\x82\x7e\x01\x00", &[0x5a; 256]]),
            vec![Ev::Binary(vec![0x5a; 256])],
        ),
        ok(
            "rfc 64 KiB binary",
            Client,
            concat(&[b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", &[0xa5; 65536]]),
            vec![Ev::Binary(vec![0xa5; 65536])],
        ),
        ok(
            "masked fragmented Hel lo",
            Server,
            concat(&[
                &masked(Text, false, b"Hel"),
                &masked(Continuation, true, b"lo"),
            ]),
            vec![text("Hello")],
        ),
        // Empty payloads.
        ok(
            "empty text",
            Server,
            b"\x81\x80\x01\x02\x03\x04".to_vec(),
            vec![text("")],
        ),
        ok(
            "empty binary",
            Server,
            masked(Binary, true, b""),
            vec![Ev::Binary(vec![])],
        ),
        ok(
            "empty ping",
            Server,
            b"\x89\x80\xaa\xbb\xcc\xdd".to_vec(),
            vec![Ev::Ping(vec![])],
        ),
        ok(
            "empty fragments",
            Server,
            concat(&[
                &masked(Text, false, b""),
                &masked(Continuation, false, b""),
                &masked(Continuation, true, b""),
            ]),
            vec![text("")],
        ),
        ok(
            "empty first and last fragment",
            Server,
            concat(&[
                &masked(Binary, false, b""),
                &masked(Continuation, false, b"ab"),
                &masked(Continuation, true, b""),
            ]),
            vec![Ev::Binary(b"ab".to_vec())],
        ),
        // Control frames between fragments leave the message alone.
        ok(
            "ping between fragments",
            Server,
            concat(&[
                &masked(Text, false, b"Hel"),
                &masked(Ping, true, b"are you there"),
                &masked(Continuation, true, b"lo"),
            ]),
            vec![Ev::Ping(b"are you there".to_vec()), text("Hello")],
        ),
        ok(
            "pong and ping between every fragment",
            Server,
            concat(&[
                &masked(Pong, true, b"1"),
                &masked(Binary, false, b"ab"),
                &masked(Ping, true, b"2"),
                &masked(Continuation, false, b"cd"),
                &masked(Pong, true, b""),
                &masked(Ping, true, &[0x70; 125]),
                &masked(Continuation, true, b"ef"),
                &masked(Ping, true, b"3"),
            ]),
            vec![
                Ev::Pong(b"1".to_vec()),
                Ev::Ping(b"2".to_vec()),
                Ev::Pong(vec![]),
                Ev::Ping(vec![0x70; 125]),
                Ev::Binary(b"abcdef".to_vec()),
                Ev::Ping(b"3".to_vec()),
            ],
        ),
        ok(
            "close between fragments",
            Server,
            concat(&[
                &masked(Text, false, b"Hel"),
                &masked(Close, true, b"\x03\xe8"),
            ]),
            vec![Ev::Close(Some((1000, String::new())))],
        ),
        // A stream of several messages.
        ok(
            "mixed stream",
            Server,
            concat(&[
                &masked_with([0xff, 0x00, 0xaa, 0x55], Text, true, "κόσμε".as_bytes()),
                &masked_with([0, 0, 0, 0], Binary, true, &[0, 1, 2]),
                &masked_with([1, 2, 3, 4], Ping, true, b"p"),
                &masked(Text, true, &[b'x'; 300]),
                &masked(Close, true, b"\x03\xe9going"),
            ]),
            vec![
                text("κόσμε"),
                Ev::Binary(vec![0, 1, 2]),
                Ev::Ping(b"p".to_vec()),
                text(&"x".repeat(300)),
                Ev::Close(Some((1001, "going".to_owned()))),
            ],
        ),
        ok(
            "non-minimal length",
            Server,
            b"\x82\xfe\x00\x02\x00\x00\x00\x00\xab\xcd".to_vec(),
            vec![Ev::Binary(vec![0xab, 0xcd])],
        ),
        ok(
            "max control payload",
            Server,
            masked(Ping, true, &[0x33; 125]),
            vec![Ev::Ping(vec![0x33; 125])],
        ),
        // Rule violations.
        fails(
            "unmasked to server",
            Server,
            b"\x81\x05Hello".to_vec(),
            vec![],
            E::UnmaskedFrame,
        ),
        fails(
            "masked to client",
            Client,
            b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58".to_vec(),
            vec![],
            E::MaskedFrameFromServer,
        ),
        fails(
            "rsv1",
            Server,
            b"\xc1\x80\x00\x00\x00\x00".to_vec(),
            vec![],
            E::ReservedBits,
        ),
        fails(
            "rsv2",
            Server,
            b"\xa1\x80\x00\x00\x00\x00".to_vec(),
            vec![],
            E::ReservedBits,
        ),
        fails(
            "rsv3",
            Server,
            b"\x91\x80\x00\x00\x00\x00".to_vec(),
            vec![],
            E::ReservedBits,
        ),
        fails(
            "ping with 126 bytes",
            Server,
            masked(Ping, true, &[0; 126]),
            vec![],
            E::ControlFrameTooLong(126),
        ),
        fails(
            "close declaring 1 TiB",
            Server,
            b"\x88\xff\x00\x00\x01\x00\x00\x00\x00\x00\x01\x02\x03\x04".to_vec(),
            vec![],
            E::ControlFrameTooLong(1 << 40),
        ),
        fails(
            "fragmented ping",
            Server,
            masked(Ping, false, b"x"),
            vec![],
            E::FragmentedControlFrame,
        ),
        fails(
            "continuation first",
            Server,
            masked(Continuation, true, b"x"),
            vec![],
            E::UnexpectedContinuation,
        ),
        fails(
            "continuation after a complete message",
            Server,
            concat(&[&masked(Text, true, b"a"), &masked(Continuation, true, b"b")]),
            vec![text("a")],
            E::UnexpectedContinuation,
        ),
        fails(
            "text inside a fragmented message",
            Server,
            concat(&[&masked(Text, false, b"a"), &masked(Text, true, b"b")]),
            vec![],
            E::ExpectedContinuation,
        ),
        fails(
            "binary inside a fragmented text",
            Server,
            concat(&[
                &masked(Text, false, b"a"),
                &masked(Ping, true, b""),
                &masked(Binary, true, b"b"),
            ]),
            vec![Ev::Ping(vec![])],
            E::ExpectedContinuation,
        ),
        fails(
            "length top bit",
            Server,
            b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04".to_vec(),
            vec![],
            E::LengthMsbSet,
        ),
        fails(
            "1 TiB data frame",
            Server,
            b"\x82\xff\x00\x00\x01\x00\x00\x00\x00\x00\x01\x02\x03\x04".to_vec(),
            vec![],
            E::FrameTooLarge {
                len: 1 << 40,
                max: 65536,
            },
        ),
        fails(
            "frame one byte over the limit",
            Server,
            masked(Binary, true, &[0; 65537]),
            vec![],
            E::FrameTooLarge {
                len: 65537,
                max: 65536,
            },
        ),
        fails(
            "message one byte over the limit",
            Server,
            concat(&[
                &masked(Binary, false, &[0; 65535]),
                &masked(Continuation, true, b"ab"),
            ]),
            vec![],
            E::MessageTooLarge {
                len: 65537,
                max: 65536,
            },
        ),
        fails(
            "invalid utf-8 in a single frame",
            Server,
            masked(
                Text,
                true,
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            ),
            vec![],
            E::InvalidUtf8,
        ),
        fails(
            "invalid utf-8 in a middle fragment",
            Server,
            concat(&[
                &masked(Text, false, "κόσμε".as_bytes()),
                &masked(Continuation, false, b"\xed\xa0\x80"),
                &masked(Continuation, true, b"edited"),
            ]),
            vec![],
            E::InvalidUtf8,
        ),
        fails(
            "message ends inside a character",
            Server,
            concat(&[
                &masked(Text, false, b"ok"),
                &masked(Continuation, true, b"\xce"),
            ]),
            vec![],
            E::InvalidUtf8,
        ),
        fails(
            "single frame ends inside a character",
            Server,
            masked(Text, true, b"ok\xe2\x82"),
            vec![],
            E::InvalidUtf8,
        ),
        fails(
            "valid then invalid message",
            Server,
            concat(&[&masked(Text, true, b"fine"), &masked(Text, true, b"\xff")]),
            vec![text("fine")],
            E::InvalidUtf8,
        ),
    ];

    for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let wire = vec![0x80 | op, 0x80, 1, 2, 3, 4];
        cases.push(fails(
            &format!("opcode {op:#x}"),
            Server,
            wire,
            vec![],
            E::ReservedOpcode(op),
        ));
    }

    // Every length boundary, both roles, text and binary.
    for len in [0usize, 1, 125, 126, 127, 65535, 65536] {
        let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let s = String::from_utf8(payload.clone()).expect("ascii");
        cases.push(ok(
            &format!("masked text {len}"),
            Server,
            masked(Text, true, &payload),
            vec![text(&s)],
        ));
        cases.push(ok(
            &format!("unmasked binary {len}"),
            Client,
            unmasked(Binary, true, &payload),
            vec![Ev::Binary(payload.clone())],
        ));
    }

    // A multi-byte character cut between two fragments at every point.
    let word = "κόσμε𝄞€".as_bytes();
    for cut in 0..=word.len() {
        cases.push(ok(
            &format!("text fragmented at byte {cut}"),
            Server,
            concat(&[
                &masked(Text, false, &word[..cut]),
                &masked(Continuation, true, &word[cut..]),
            ]),
            vec![text("κόσμε𝄞€")],
        ));
    }

    // Close frames: the payload decides the event or the error.
    /// A close payload, and the code and reason it decodes to or the error.
    type CloseCase = (
        &'static [u8],
        Result<Option<(u16, &'static str)>, ProtocolError>,
    );
    let close_cases: [CloseCase; 16] = [
        (b"", Ok(None)),
        (b"\x03", Err(E::CloseFrameOneByte)),
        (b"\x03\xe8", Ok(Some((1000, "")))),
        (b"\x03\xe8bye \xce\xba", Ok(Some((1000, "bye κ")))),
        (b"\x0b\xb8", Ok(Some((3000, "")))),
        (b"\x13\x87x", Ok(Some((4999, "x")))),
        (b"\x03\xe7", Err(E::InvalidCloseCode(999))),
        (b"\x03\xec", Err(E::InvalidCloseCode(1004))),
        (b"\x03\xed", Err(E::InvalidCloseCode(1005))),
        (b"\x03\xee", Err(E::InvalidCloseCode(1006))),
        (b"\x03\xf7", Err(E::InvalidCloseCode(1015))),
        (b"\x03\xf8", Err(E::InvalidCloseCode(1016))),
        (b"\x0b\xb7", Err(E::InvalidCloseCode(2999))),
        (b"\x13\x88", Err(E::InvalidCloseCode(5000))),
        (b"\x03\xe8\xce\xba\xed\xa0\x80", Err(E::InvalidCloseReason)),
        (b"\x03\xe8ok\xce", Err(E::InvalidCloseReason)),
    ];
    for (payload, expected) in close_cases {
        let name = format!("close {payload:x?}");
        let wire = masked(Close, true, payload);
        cases.push(match expected {
            Ok(frame) => {
                let ev = Ev::Close(frame.map(|(code, reason)| (code, reason.to_owned())));
                ok(&name, Server, wire, vec![ev])
            }
            Err(err) => fails(&name, Server, wire, vec![], err),
        });
    }
    let mut longest = b"\x03\xe8".to_vec();
    longest.extend_from_slice(&[b'r'; 123]);
    cases.push(ok(
        "close with a 123-byte reason",
        Server,
        masked(Close, true, &longest),
        vec![Ev::Close(Some((1000, "r".repeat(123))))],
    ));

    // Limits below the defaults.
    let tight = Limits {
        max_frame_size: 1000,
        max_message_size: 1500,
    };
    let mut limited = vec![
        ok(
            "frame at the limit, message at the limit",
            Server,
            concat(&[
                &masked(Binary, false, &[1; 1000]),
                &masked(Continuation, true, &[2; 500]),
            ]),
            vec![Ev::Binary([vec![1; 1000], vec![2; 500]].concat())],
        ),
        fails(
            "frame over a tight limit",
            Server,
            masked(Binary, true, &[1; 1001]),
            vec![],
            E::FrameTooLarge {
                len: 1001,
                max: 1000,
            },
        ),
        fails(
            "message over a tight limit",
            Server,
            concat(&[
                &masked(Text, false, &[b'a'; 1000]),
                &masked(Continuation, false, &[b'b'; 500]),
                &masked(Continuation, true, b"c"),
            ]),
            vec![],
            E::MessageTooLarge {
                len: 1501,
                max: 1500,
            },
        ),
    ];
    for case in &mut limited {
        case.limits = tight;
    }
    cases.extend(limited);
    cases
}
