//! The decoder against an independent model of RFC 6455 §5, on streams of
//! well-formed frames built from the fuzzer's bytes.
//!
//! Random bytes rarely get past a masked frame header, so this target builds
//! the wire itself: a list of [`Spec`]s (any opcode nibble, FIN, RSV, mask or
//! not, payload of any length up to 128 KiB in minimal or padded length form),
//! encoded by a small encoder written here. A model that works on the specs,
//! not the bytes, says which events the decoder must deliver and which rules
//! the first bad frame breaks; the decoder's error must be one of those.
//!
//! Input layout: `[cfg, max_chunk, seed_hi, seed_lo, spec...]`, with `cfg`,
//! `max_chunk` and `seed` as in the `decoder` target (see `decode`), and each
//! spec as read by [`Spec::read`].

use ringcast::proto::decoder::{Limits, Role};
use ringcast::proto::error::ProtocolError;

use crate::decode::{chunker, config, is_sendable, run, Ev, Outcome};
use crate::input::Reader;

/// Most frames in one case, and most payload bytes from `big` frames.
const MAX_FRAMES: usize = 64;
const MAX_BIG_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LenForm {
    Minimal,
    /// The 16-bit form (126) even when the length fits 7 bits.
    Two,
    /// The 64-bit form (127) even when the length fits 16 bits.
    Eight,
}

/// One frame to put on the wire.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Raw opcode nibble; reserved ones included.
    pub opcode: u8,
    pub fin: bool,
    pub rsv: u8,
    pub mask: Option<[u8; 4]>,
    pub len_form: LenForm,
    pub payload: Vec<u8>,
}

impl Spec {
    /// One spec from the fuzzer's bytes: a flags byte
    /// `[big, pad, rsv?, unmasked, fin, op op op]`, then as needed the raw
    /// opcode, RSV bits, length form, mask key, and the payload: a length byte
    /// and that many bytes, or (`big`) a 16-bit length, a 64 KiB bit and a fill byte.
    pub fn read(r: &mut Reader<'_>, big_budget: &mut usize) -> Spec {
        let flags = r.u8();
        let opcode = match flags & 7 {
            0 => 0x0,
            1 | 6 => 0x1,
            2 => 0x2,
            3 => 0x8,
            4 => 0x9,
            5 => 0xA,
            _ => r.u8() & 0xF,
        };
        let fin = flags & 0x08 != 0;
        let masked = flags & 0x10 == 0;
        let rsv = if flags & 0x20 != 0 { r.u8() & 7 } else { 0 };
        let len_form = if flags & 0x40 != 0 {
            if r.u8() & 1 == 0 {
                LenForm::Two
            } else {
                LenForm::Eight
            }
        } else {
            LenForm::Minimal
        };
        let mask = masked.then(|| [r.u8(), r.u8(), r.u8(), r.u8()]);
        let payload = if flags & 0x80 != 0 {
            let mut len = usize::from(r.u16());
            if r.u8() & 1 != 0 {
                len += 65536;
            }
            let len = len.min(*big_budget);
            *big_budget -= len;
            vec![r.u8(); len]
        } else {
            let len = usize::from(r.u8());
            r.bytes(len).to_vec()
        };
        // The 16-bit form cannot hold a longer payload.
        let len_form = match len_form {
            LenForm::Two if payload.len() > 0xFFFF => LenForm::Eight,
            other => other,
        };
        Spec {
            opcode,
            fin,
            rsv,
            mask,
            len_form,
            payload,
        }
    }

    /// Appends the frame's wire bytes; the encoder is this one, not ringcast's.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let len = self.payload.len();
        out.push(u8::from(self.fin) << 7 | self.rsv << 4 | self.opcode);
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let form = match self.len_form {
            LenForm::Minimal if len <= 125 => None,
            LenForm::Minimal if len <= 0xFFFF => Some(LenForm::Two),
            LenForm::Minimal => Some(LenForm::Eight),
            other => Some(other),
        };
        match form {
            None => out.push(mask_bit | len as u8),
            Some(LenForm::Two) => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            Some(_) => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        match self.mask {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend_from_slice(&self.payload),
        }
    }
}

fn is_control(opcode: u8) -> bool {
    matches!(opcode, 0x8..=0xA)
}

/// What the model expects: the events, then either a clean end or an error
/// that must be one of `allowed` (every rule the first bad frame breaks).
#[derive(Debug)]
pub struct Expected {
    pub events: Vec<Ev>,
    pub allowed: Option<Vec<ProtocolError>>,
}

/// The model: RFC 6455 §5 over frames, with ringcast's limits.
pub fn model(role: Role, limits: Limits, specs: &[Spec]) -> Expected {
    let mut events = Vec::new();
    // The data message in progress: its opcode and payload so far.
    let mut message: Option<(u8, Vec<u8>)> = None;
    for spec in specs {
        let len = spec.payload.len() as u64;
        let mut broken = Vec::new();
        match (role, spec.mask.is_some()) {
            (Role::Server, false) => broken.push(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => broken.push(ProtocolError::MaskedFrameFromServer),
            _ => {}
        }
        if spec.rsv != 0 {
            broken.push(ProtocolError::ReservedBits);
        }
        if !matches!(spec.opcode, 0x0 | 0x1 | 0x2 | 0x8 | 0x9 | 0xA) {
            broken.push(ProtocolError::ReservedOpcode(spec.opcode));
        } else if is_control(spec.opcode) {
            if !spec.fin {
                broken.push(ProtocolError::FragmentedControlFrame);
            }
            if len > 125 {
                broken.push(ProtocolError::ControlFrameTooLong(len));
            }
        } else {
            match (spec.opcode, &message) {
                (0x0, None) => broken.push(ProtocolError::UnexpectedContinuation),
                (0x1 | 0x2, Some(_)) => broken.push(ProtocolError::ExpectedContinuation),
                _ => {}
            }
            let so_far = match (&message, spec.opcode) {
                (Some((_, bytes)), 0x0) => bytes.len() as u64,
                _ => 0,
            };
            if so_far + len > limits.max_message_size {
                broken.push(ProtocolError::MessageTooLarge {
                    len: so_far + len,
                    max: limits.max_message_size,
                });
            }
        }
        if len > limits.max_frame_size {
            broken.push(ProtocolError::FrameTooLarge {
                len,
                max: limits.max_frame_size,
            });
        }
        if !broken.is_empty() {
            return Expected {
                events,
                allowed: Some(broken),
            };
        }

        // The header is fine; now the payload.
        let payload = &spec.payload;
        if is_control(spec.opcode) {
            let event = match spec.opcode {
                0x9 => Ev::Ping(payload.clone()),
                0xA => Ev::Pong(payload.clone()),
                _ => match close_event(payload) {
                    Ok(event) => event,
                    Err(error) => {
                        return Expected {
                            events,
                            allowed: Some(vec![error]),
                        }
                    }
                },
            };
            events.push(event);
            continue;
        }
        let (kind, bytes) = message.get_or_insert_with(|| (spec.opcode, Vec::new()));
        bytes.extend_from_slice(payload);
        if *kind == 0x1 {
            // Fail fast: bytes that no continuation can make valid are an error
            // on this frame; an unfinished code point only at the end.
            match std::str::from_utf8(bytes) {
                Ok(_) => {}
                Err(e) if e.error_len().is_none() && !spec.fin => {}
                Err(_) => {
                    return Expected {
                        events,
                        allowed: Some(vec![ProtocolError::InvalidUtf8]),
                    }
                }
            }
        }
        if spec.fin {
            let (kind, bytes) = message.take().expect("a message is in progress");
            events.push(if kind == 0x1 {
                Ev::Text(String::from_utf8(bytes).expect("checked above"))
            } else {
                Ev::Binary(bytes)
            });
        }
    }
    Expected {
        events,
        allowed: None,
    }
}

/// §5.5.1: empty, or a sendable 2-byte code then a UTF-8 reason.
fn close_event(payload: &[u8]) -> Result<Ev, ProtocolError> {
    match payload {
        [] => Ok(Ev::Close(None)),
        [_] => Err(ProtocolError::CloseFrameOneByte),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_sendable(code) {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            let reason =
                std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok(Ev::Close(Some((code, reason.to_owned()))))
        }
    }
}

/// Reads up to [`MAX_FRAMES`] specs from the rest of the input.
pub fn read_specs(r: &mut Reader<'_>) -> Vec<Spec> {
    let mut budget = MAX_BIG_BYTES;
    let mut specs = Vec::new();
    while !r.is_empty() && specs.len() < MAX_FRAMES {
        specs.push(Spec::read(r, &mut budget));
    }
    specs
}

pub fn encode(specs: &[Spec]) -> Vec<u8> {
    let mut wire = Vec::new();
    for spec in specs {
        spec.encode_into(&mut wire);
    }
    wire
}

/// Whether a decoder run matches the model.
pub fn assert_matches(outcome: &Outcome, expected: &Expected) {
    assert_eq!(
        outcome.events, expected.events,
        "events differ from the model"
    );
    match (&outcome.error, &expected.allowed) {
        (None, None) => {}
        (Some(error), Some(allowed)) => {
            assert!(
                allowed.contains(error),
                "error {error:?}, the model allows {allowed:?}"
            )
        }
        (error, allowed) => panic!("decoder error {error:?}, the model expects {allowed:?}"),
    }
}

/// The `decoder_frames` target.
pub fn check(data: &[u8]) {
    let mut r = Reader::new(data);
    let (role, limits) = config(r.u8());
    let max_chunk = r.u8();
    let seed = r.u16();
    let specs = read_specs(&mut r);
    let wire = encode(&specs);
    let expected = model(role, limits, &specs);

    let whole = run(role, limits, &wire, || usize::MAX);
    assert_matches(&whole, &expected);
    let chunked = run(role, limits, &wire, chunker(max_chunk, seed));
    assert_eq!(whole, chunked, "whole vs chunked");
}
