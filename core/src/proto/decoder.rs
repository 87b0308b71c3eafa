//! The incoming-frame state machine: bytes from the peer in, events out.
//!
//! The runtime reads into a per-core scratch buffer shared by all connections
//! of the core, and calls [`Decoder::decode`] until the bytes are used up:
//!
//! ```text
//! let mut pos = 0;
//! while pos < n {
//!     let d = decoder.decode(&mut scratch[pos..n])?;
//!     pos += d.consumed;
//!     if let Some(event) = d.event { handle(event) }
//! }
//! decoder.reclaim(); // optional: frees the buffer of the last event now
//! ```
//!
//! Contract:
//! - **Progress.** On a non-empty `buf`, `decode` consumes at least one byte
//!   or returns an event. When it returns no event it has consumed all of
//!   `buf`: whatever it still needs (a partial header, the payload so far) is
//!   copied into the decoder. The caller never keeps bytes for it, so the
//!   scratch buffer can be reused for the next connection at once.
//! - **Zero copy when possible.** A whole unfragmented data frame, or a whole
//!   control frame, found in `buf` is unmasked in place and returned as a slice
//!   of `buf`. Anything else is unmasked piece by piece (with the right mask
//!   phase) and appended to an internal buffer: data to a `Vec` that grows as
//!   bytes arrive, a split control frame to a lazily allocated 125-byte box.
//! - **Checks before allocation.** Every rule and limit is checked on the
//!   header, before a byte of payload is stored, and storage grows with the
//!   bytes actually received (never ahead by more than 2x or 1 KiB), not with
//!   the length a header declares: a header claiming 1 TiB, or 64 KiB that
//!   never come, costs nothing.
//! - **Fail fast.** Text is UTF-8-validated as bytes arrive, across reads and
//!   fragments; the error comes on the call that delivers the bad byte.
//! - Control frames between fragments are delivered at once and leave the
//!   message being assembled untouched.
//! - **Idle costs no heap.** A delivered message's buffer and a delivered split
//!   control frame's box are freed at the start of the next `decode` (they
//!   cannot be freed earlier: the event borrows them), or by [`Decoder::reclaim`].
//! - After an error the decoder's state is unspecified; the connection must be
//!   closed with [`ProtocolError::close_code`].
//!
//! The file is long because of its tests: under 500 lines of code, then a
//! table of wire streams (RFC examples, every length boundary, every rule
//! violation, close payloads, limits) that each test feeds whole, byte by
//! byte, and cut at random points, and which must all agree.
//!
//! The file is long because its tests live beside the code: the table of wire streams fed whole, byte by byte and in random splits.

use super::close::{parse_close_payload, CloseFrame};
use super::error::ProtocolError;
use super::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use super::mask::apply_mask;
use super::utf8::Utf8Validator;

/// Which end of the connection the decoder sits at; decides masking (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We are the server: peer frames must be masked.
    Server,
    /// We are the client: peer frames must be unmasked.
    Client,
}

/// Size limits on incoming data, checked on frame headers (RFC 6455 §10.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload of a single frame, in bytes. Default: 64 KiB (65536).
    /// Applies to control frames too, so keep it at least 125.
    pub max_frame_size: u64,
    /// Largest message (all its fragments together), in bytes. Default: 64 KiB (65536).
    pub max_message_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 64 * 1024,
            max_message_size: 64 * 1024,
        }
    }
}

/// A complete message or control frame. Slices borrow either the caller's
/// buffer (zero-copy path) or the decoder (assembled path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole text message, validated UTF-8.
    Text(&'a str),
    /// A whole binary message.
    Binary(&'a [u8]),
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// A close frame; `None` when it carried no status code.
    Close(Option<CloseFrame<'a>>),
}

/// What one [`Decoder::decode`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Bytes of `buf` used up, from the front. Equal to `buf.len()` when `event` is `None`.
    pub consumed: usize,
    pub event: Option<Event<'a>>,
}

/// Decodes the frames a peer sends. See the module doc for the contract.
///
/// 80 bytes on x86-64 (a test keeps it at most 96), and no heap allocation
/// while idle: most of a million idle connections' decoders is this struct.
#[derive(Debug)]
pub struct Decoder {
    /// Where we are between or inside frames.
    state: State,
    /// Payload of the message being assembled when it could not be returned
    /// zero-copy. Emptied and freed by `reclaim` once delivered.
    message: Vec<u8>,
    /// The payload of a control frame split across `decode` calls. Allocated
    /// when one starts, freed by `reclaim` once delivered: split pings are
    /// rare, and a 125-byte array inline would cost every idle connection.
    control: Option<Box<[u8; 125]>>,
    limits: Limits,
    /// Incremental validation of the text message being assembled.
    utf8: Utf8Validator,
    /// The data message in progress (set by its first frame, cleared when its
    /// last frame is delivered), or `None` between messages.
    message_kind: Option<MessageKind>,
    role: Role,
    /// RSV bits an extension has claimed; any other set bit is an error. Always
    /// 0 today: permessage-deflate will allow `RSV1` here and pass the bit on
    /// with the event.
    allowed_rsv: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames, holding the first `len` bytes of a header that was cut
    /// at the end of a previous `buf`.
    Header { buf: [u8; MAX_HEADER_LEN], len: u8 },
    /// Inside the payload of an accepted frame.
    Payload(Frame),
}

impl State {
    const IDLE: Self = Self::Header {
        buf: [0; MAX_HEADER_LEN],
        len: 0,
    };
}

/// A frame whose header has been accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Declared payload length, within the limits.
    len: u64,
    /// Payload bytes received so far; also the mask phase of the next byte.
    done: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageKind {
    Text,
    Binary,
}

/// Below this, the message buffer is sized to the whole frame at once.
const MIN_GROWTH: usize = 1024;

impl Decoder {
    pub fn new(role: Role, limits: Limits) -> Self {
        Self {
            state: State::IDLE,
            message: Vec::new(),
            control: None,
            limits,
            utf8: Utf8Validator::new(),
            message_kind: None,
            role,
            allowed_rsv: 0,
        }
    }

    /// Decodes at most one event from the front of `buf`, unmasking in place.
    /// See the module doc for the contract.
    pub fn decode<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<Decoded<'a>, ProtocolError> {
        self.reclaim();
        let mut pos = 0;
        loop {
            let mut frame = match self.state {
                State::Payload(frame) => frame,
                State::Header { .. } => {
                    if pos == buf.len() {
                        return Ok(Decoded {
                            consumed: pos,
                            event: None,
                        });
                    }
                    let (used, header) = self.read_header(&buf[pos..])?;
                    pos += used;
                    match header {
                        Some(header) => self.start_frame(&header)?,
                        None => {
                            debug_assert_eq!(pos, buf.len(), "a partial header is stored whole");
                            return Ok(Decoded {
                                consumed: pos,
                                event: None,
                            });
                        }
                    }
                }
            };

            // The part of the payload that is in `buf`; possibly empty (an
            // empty frame, or a header that ended exactly at the end of `buf`).
            let start = pos;
            let remaining = frame.len - frame.done;
            let take =
                usize::try_from(remaining).map_or(buf.len() - pos, |r| r.min(buf.len() - pos));
            pos += take;
            let chunk = &mut buf[start..pos];
            if let Some(mask) = frame.mask {
                // Only the low 2 bits of the phase matter.
                apply_mask(chunk, mask, (frame.done & 3) as usize);
            }
            let whole = frame.done == 0 && take as u64 == frame.len;
            let offset = frame.done;
            frame.done += take as u64;
            let complete = frame.done == frame.len;
            self.state = if complete {
                State::IDLE
            } else {
                State::Payload(frame)
            };

            if frame.opcode.is_control() {
                if whole {
                    let event = control_event(frame.opcode, &buf[start..pos])?;
                    return Ok(Decoded {
                        consumed: pos,
                        event: Some(event),
                    });
                }
                // `offset + take <= frame.len <= 125`: checked in `check_header`.
                let stored = self.control.get_or_insert_with(|| Box::new([0; 125]));
                stored[offset as usize..offset as usize + take].copy_from_slice(chunk);
                if !complete {
                    return Ok(Decoded {
                        consumed: pos,
                        event: None,
                    });
                }
                let event = control_event(frame.opcode, &stored[..frame.len as usize])?;
                return Ok(Decoded {
                    consumed: pos,
                    event: Some(event),
                });
            }

            let kind = self.message_kind;
            if whole && frame.fin && frame.opcode != OpCode::Continuation {
                // Zero-copy: the whole message is this one frame, here in `buf`.
                self.message_kind = None;
                let payload = &buf[start..pos];
                let event = match kind {
                    Some(MessageKind::Text) => Event::Text(
                        std::str::from_utf8(payload).map_err(|_| ProtocolError::InvalidUtf8)?,
                    ),
                    _ => Event::Binary(payload),
                };
                return Ok(Decoded {
                    consumed: pos,
                    event: Some(event),
                });
            }

            if kind == Some(MessageKind::Text) {
                self.utf8.feed(chunk)?;
            }
            self.append(chunk, frame.len - frame.done);
            if !complete {
                return Ok(Decoded {
                    consumed: pos,
                    event: None,
                });
            }
            if !frame.fin {
                // A fragment ended; the next frame may be in `buf` already.
                continue;
            }
            self.message_kind = None;
            let event = match kind {
                Some(MessageKind::Text) => {
                    self.utf8.finish()?;
                    // Validated piece by piece already; checked again as a
                    // whole rather than trusting that with `from_utf8_unchecked`.
                    // This copy path is the slow path anyway.
                    Event::Text(
                        std::str::from_utf8(&self.message)
                            .map_err(|_| ProtocolError::InvalidUtf8)?,
                    )
                }
                _ => Event::Binary(&self.message),
            };
            return Ok(Decoded {
                consumed: pos,
                event: Some(event),
            });
        }
    }

    /// True when no partial header, frame or message is held: the peer is
    /// between messages. While false, the peer owes us bytes (the runtime's
    /// timeout for a half-sent frame keys on this).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Header { len: 0, .. }) && self.message_kind.is_none()
    }

    /// Heap bytes held (capacity, not length), for memory accounting: the
    /// message buffer and the split-control-frame box. Includes the buffer of
    /// the last delivered event until the next `decode` or [`reclaim`](Self::reclaim).
    /// Partial headers live inside the struct and are not counted.
    pub fn buffered_bytes(&self) -> usize {
        self.message.capacity() + self.control.as_ref().map_or(0, |b| b.len())
    }

    /// Replaces the limits. They apply from the next frame header; a frame
    /// already accepted is finished under the old ones.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Frees the buffers that only served already delivered events. `decode`
    /// calls this first thing; call it yourself after the decode loop to drop
    /// the memory before the connection goes quiet.
    pub fn reclaim(&mut self) {
        if self.message_kind.is_none() && self.message.capacity() != 0 {
            self.message = Vec::new();
        }
        let in_control_frame =
            matches!(self.state, State::Payload(frame) if frame.opcode.is_control());
        if !in_control_frame {
            self.control = None;
        }
    }

    /// Takes header bytes from the front of `input`, joined to those kept from
    /// earlier calls. Returns how many bytes of `input` were used and the
    /// header once complete; when incomplete, all of `input` was used.
    fn read_header(&mut self, input: &[u8]) -> Result<(usize, Option<FrameHeader>), ProtocolError> {
        let State::Header { buf: held, len } = &mut self.state else {
            unreachable!("read_header is only called between frames");
        };
        let have = usize::from(*len);
        if have == 0 {
            // Common case: the whole header is in `input`, parse it in place.
            if let Some((header, used)) = FrameHeader::parse(input)? {
                return Ok((used, Some(header)));
            }
        }
        // `have < MAX_HEADER_LEN`, and an incomplete header is shorter than
        // MAX_HEADER_LEN, so when parsing fails below all of `input` fits.
        let take = input.len().min(MAX_HEADER_LEN - have);
        held[have..have + take].copy_from_slice(&input[..take]);
        match FrameHeader::parse(&held[..have + take])? {
            Some((header, used)) => {
                *len = 0;
                Ok((used - have, Some(header)))
            }
            None => {
                *len = (have + take) as u8;
                Ok((take, None))
            }
        }
    }

    /// Applies every rule and limit to a parsed header and returns the frame
    /// to receive. Nothing is allocated here.
    fn start_frame(&mut self, header: &FrameHeader) -> Result<Frame, ProtocolError> {
        self.check_header(header)?;
        match header.opcode {
            OpCode::Text => self.begin_message(MessageKind::Text),
            OpCode::Binary => self.begin_message(MessageKind::Binary),
            _ => {}
        }
        Ok(Frame {
            opcode: header.opcode,
            fin: header.fin,
            mask: header.mask,
            len: header.payload_len,
            done: 0,
        })
    }

    fn check_header(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrameFromServer),
            _ => {}
        }
        if header.rsv & !self.allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        let len = header.payload_len;
        if header.opcode.is_control() {
            if !header.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if len > 125 {
                return Err(ProtocolError::ControlFrameTooLong(len));
            }
        } else {
            match (header.opcode, self.message_kind) {
                (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
                (OpCode::Text | OpCode::Binary, Some(_)) => {
                    return Err(ProtocolError::ExpectedContinuation)
                }
                _ => {}
            }
        }
        let max = self.limits.max_frame_size;
        if len > max {
            return Err(ProtocolError::FrameTooLarge { len, max });
        }
        if !header.opcode.is_control() {
            // A continuation adds to the fragments in `message`; a first frame
            // starts a new message.
            let so_far = if header.opcode == OpCode::Continuation {
                self.message.len()
            } else {
                0
            };
            let total = (so_far as u64).saturating_add(len);
            let max = self.limits.max_message_size;
            if total > max {
                return Err(ProtocolError::MessageTooLarge { len: total, max });
            }
        }
        Ok(())
    }

    fn begin_message(&mut self, kind: MessageKind) {
        self.message_kind = Some(kind);
        self.message.clear();
        self.utf8.reset();
    }

    /// Appends payload bytes to the message. Grows geometrically (amortized
    /// O(1) per byte) but never past what the current frame has declared, and
    /// by at most 2x (or [`MIN_GROWTH`]) of what has actually arrived: a peer
    /// that declares a big frame and then stalls gets no big buffer.
    fn append(&mut self, bytes: &[u8], still_expected: u64) {
        let len = self.message.len();
        let cap = self.message.capacity();
        if cap - len < bytes.len() {
            let needed = len + bytes.len();
            let frame_end =
                usize::try_from(still_expected).map_or(usize::MAX, |n| needed.saturating_add(n));
            let target = (cap * 2).max(MIN_GROWTH).min(frame_end).max(needed);
            self.message.reserve_exact(target - len);
        }
        self.message.extend_from_slice(bytes);
    }
}

/// The event for a complete control frame's payload.
fn control_event(opcode: OpCode, payload: &[u8]) -> Result<Event<'_>, ProtocolError> {
    Ok(match opcode {
        OpCode::Ping => Event::Ping(payload),
        OpCode::Pong => Event::Pong(payload),
        OpCode::Close => Event::Close(parse_close_payload(payload)?),
        OpCode::Continuation | OpCode::Text | OpCode::Binary => {
            unreachable!("control_event is only called for control opcodes")
        }
    })
}
#[cfg(test)]
mod tests {
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

    struct Case {
        name: String,
        role: Role,
        limits: Limits,
        wire: Vec<u8>,
        expected: Outcome,
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

    fn concat(frames: &[&[u8]]) -> Vec<u8> {
        frames.concat()
    }

    /// Every stream the decoder is tested on. Each one is also fed whole,
    /// byte by byte, and cut at random points, and must give the same result.
    fn cases() -> Vec<Case> {
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
        let size = std::mem::size_of::<Decoder>();
        assert!(size <= 96, "Decoder is {size} bytes");
    }

    #[test]
    fn default_limits_are_64_kib() {
        let limits = Limits::default();
        assert_eq!(
            (limits.max_frame_size, limits.max_message_size),
            (65536, 65536)
        );
    }
}
