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
//! The tests are in `decoder/tests.rs`, their table of wire streams (RFC
//! examples, every length boundary, every rule violation, close payloads,
//! limits) in `decoder/tests/cases.rs`: each stream is fed whole, byte by
//! byte, and cut at random points, and the results must all agree.

use super::close::{parse_close_payload, CloseFrame};
use super::deflate::MessageInflater;
use super::error::ProtocolError;
use super::frame::{FrameHeader, OpCode, MAX_HEADER_LEN, RSV1};
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

/// In [`Decoder`]'s `deflate_flags`: the data message in progress came with
/// RSV1, so its payload is collected compressed and inflated when its last
/// frame arrives.
const COMPRESSED: u8 = 1;
/// In [`Decoder`]'s `deflate_flags`: the peer keeps its LZ77 window across
/// messages (no `client_no_context_takeover`), so the inflater lives as long
/// as the connection once made. Otherwise it is made for a compressed
/// message and dropped with that message's buffer.
const INFLATE_CONTEXT: u8 = 2;

/// Decodes the frames a peer sends. See the module doc for the contract.
///
/// 88 bytes on x86-64 (a test keeps it there), and no heap allocation
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
    /// RSV bits an extension has claimed; any other set bit is an error.
    /// [`RSV1`] once permessage-deflate is negotiated
    /// ([`Decoder::enable_deflate`]), 0 otherwise.
    allowed_rsv: u8,
    /// [`COMPRESSED`] and [`INFLATE_CONTEXT`], in one byte: with the
    /// inflater's pointer the decoder is 88 bytes, and one more byte would
    /// make it 96 and move every open connection's state into the
    /// allocator's next size class (measured: +200 B of RSS per idle
    /// connection).
    deflate_flags: u8,
    /// The inflate stream and the last inflated message; `None` until a
    /// compressed message arrives (and again after it, without context).
    inflate: Option<Box<MessageInflater>>,
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
            deflate_flags: 0,
            inflate: None,
        }
    }

    /// permessage-deflate was negotiated: RSV1 marks a compressed message
    /// on its first frame. `context_takeover`: the peer did not agree to
    /// `client_no_context_takeover` (for a server decoder), so one inflate
    /// stream spans all its messages.
    fn flag(&self, flag: u8) -> bool {
        self.deflate_flags & flag != 0
    }

    fn set_flag(&mut self, flag: u8, on: bool) {
        if on {
            self.deflate_flags |= flag;
        } else {
            self.deflate_flags &= !flag;
        }
    }

    pub fn enable_deflate(&mut self, context_takeover: bool) {
        self.allowed_rsv |= RSV1;
        self.set_flag(INFLATE_CONTEXT, context_takeover);
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
            let compressed = self.flag(COMPRESSED);
            if whole && frame.fin && frame.opcode != OpCode::Continuation {
                // Zero-copy: the whole message is this one frame, here in `buf`.
                self.message_kind = None;
                let payload = &buf[start..pos];
                if compressed {
                    let event = self.inflate_event(kind, payload)?;
                    return Ok(Decoded {
                        consumed: pos,
                        event: Some(event),
                    });
                }
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

            if kind == Some(MessageKind::Text) && !compressed {
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
            if compressed {
                // The compressed bytes are not needed past this call: taking
                // them frees them as soon as they are inflated.
                let payload = std::mem::take(&mut self.message);
                let event = self.inflate_event(kind, &payload)?;
                return Ok(Decoded {
                    consumed: pos,
                    event: Some(event),
                });
            }
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
        self.message.capacity()
            + self.control.as_ref().map_or(0, |b| b.len())
            + self.inflate.as_ref().map_or(0, |i| i.out.capacity())
    }

    /// Whether an inflate stream is held (for tests and memory accounting).
    pub fn holds_inflater(&self) -> bool {
        self.inflate.is_some()
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
        if self.message_kind.is_none() {
            let keep = self.flag(INFLATE_CONTEXT);
            match &mut self.inflate {
                Some(inflate) if keep => {
                    // Keep the stream (its window is the peer's), drop the buffer.
                    inflate.out = Vec::new();
                }
                Some(_) => self.inflate = None,
                None => {}
            }
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
        if matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            self.set_flag(COMPRESSED, header.rsv & RSV1 != 0);
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
        if header.rsv & RSV1 != 0 {
            // Allowed (negotiated), but only on the first frame of a data
            // message (RFC 7692 §6.1).
            if header.opcode.is_control() {
                return Err(ProtocolError::CompressedControlFrame);
            }
            if header.opcode == OpCode::Continuation {
                return Err(ProtocolError::CompressedContinuation);
            }
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

    /// Inflates a whole compressed message and returns its event; the text
    /// is UTF-8-validated as inflated. The size limit applies to the
    /// inflated bytes as they grow.
    fn inflate_event(
        &mut self,
        kind: Option<MessageKind>,
        payload: &[u8],
    ) -> Result<Event<'_>, ProtocolError> {
        let keep = self.flag(INFLATE_CONTEXT);
        let inflate = self.inflate.get_or_insert_with(Box::default);
        if !keep {
            inflate.reset();
        }
        inflate.inflate_message(payload, self.limits.max_message_size)?;
        let out = &inflate.out;
        Ok(match kind {
            Some(MessageKind::Text) => {
                Event::Text(std::str::from_utf8(out).map_err(|_| ProtocolError::InvalidUtf8)?)
            }
            _ => Event::Binary(out),
        })
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
mod tests;
