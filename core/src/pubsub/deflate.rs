//! One core's compression of outgoing data frames (permessage-deflate).
//!
//! - Connections that negotiated `server_no_context_takeover` (all of them
//!   under the default policy) share the core's one deflate stream, reset
//!   before every message, so the core holds one compressor however many
//!   connections compress.
//! - A push is compressed at most once per core, lazily, when the first of
//!   its local subscribers that wants it compressed is reached
//!   ([`CoreDeflate::shared_variant`]); every such subscriber gets a clone
//!   of the same `Bytes`, as with the uncompressed push. A subscriber whose
//!   `server_max_window_bits` is too small for that message gets the
//!   uncompressed frame (always valid: RSV1 is per message).
//! - A connection that keeps context has its own stream (kept here, by
//!   connection, until the connection leaves the hub), and gets its own
//!   compressed copy of every push.
//! - Frames under `deflate.min_size`, control frames and frames that do not
//!   get smaller go out as they are.

use std::cell::RefCell;
use std::collections::HashMap;

use bytes::Bytes;

use crate::mailbox::{ConnId, Slot};
use crate::proto::deflate::{DeflateParams, MessageDeflater};
use crate::proto::frame::OpCode;

/// The core's deflate stream and what decides whether a frame is worth it.
#[derive(Debug)]
pub struct CoreDeflate {
    level: u32,
    min_size: usize,
    /// Made on first use: a core that never compresses holds none.
    shared: RefCell<Option<MessageDeflater>>,
    /// The own streams of connections that keep context (no
    /// `server_no_context_takeover`), made with their first compressed
    /// message, dropped by [`CoreDeflate::forget`] when they leave.
    own: RefCell<HashMap<ConnId, Box<MessageDeflater>>>,
}

impl CoreDeflate {
    pub fn new(level: u32, min_size: usize) -> Self {
        Self {
            level,
            min_size,
            shared: RefCell::new(None),
            own: RefCell::default(),
        }
    }

    /// Whether a frame or payload of `len` bytes is worth compressing.
    fn worth(&self, len: usize) -> bool {
        len >= self.min_size
    }

    /// Whether this core holds its shared deflate stream (tests, memory).
    pub fn holds_shared(&self) -> bool {
        self.shared.borrow().is_some()
    }

    /// Whether `conn` holds a deflate stream of its own (tests, memory).
    pub fn holds_own(&self, conn: ConnId) -> bool {
        self.own.borrow().contains_key(&conn)
    }

    /// Drops `conn`'s own stream, if it has one (the connection is gone).
    pub fn forget(&self, conn: ConnId) {
        let mut own = self.own.borrow_mut();
        if !own.is_empty() {
            own.remove(&conn);
        }
    }

    fn with_own<R>(&self, conn: ConnId, f: impl FnOnce(&mut MessageDeflater) -> R) -> R {
        let mut own = self.own.borrow_mut();
        let level = self.level;
        f(own
            .entry(conn)
            .or_insert_with(|| Box::new(MessageDeflater::new(level))))
    }

    fn with_shared<R>(&self, f: impl FnOnce(&mut MessageDeflater) -> R) -> R {
        let mut shared = self.shared.borrow_mut();
        f(shared.get_or_insert_with(|| MessageDeflater::new(self.level)))
    }

    /// The frame as `slot` should receive it: compressed when it negotiated
    /// deflate and the frame is worth it, else `frame` itself.
    pub fn for_slot(&self, slot: &Slot, frame: Bytes) -> Bytes {
        let Some(params) = slot.deflate.params() else {
            return frame;
        };
        if !self.worth(frame.len()) {
            return frame;
        }
        let packed = if params.server_no_context_takeover {
            if !params.window_fits(frame.len()) {
                return frame;
            }
            self.with_shared(|d| d.deflate_frame(&frame, true))
        } else {
            self.with_own(slot.id(), |d| d.deflate_frame(&frame, false))
        };
        packed.unwrap_or(frame)
    }

    /// The compressed variant of a push `frame` shared by the subscribers
    /// that reset per message, made on the first call (`cache` is the
    /// push's slot for it: `None` until made, `Some(None)` when it does not
    /// compress). `None` when this subscriber must get `frame` as it is.
    pub fn shared_variant(
        &self,
        params: &DeflateParams,
        frame: &Bytes,
        cache: &mut Option<Option<Bytes>>,
    ) -> Option<Bytes> {
        if !self.worth(frame.len()) || !params.window_fits(frame.len()) {
            return None;
        }
        cache
            .get_or_insert_with(|| self.with_shared(|d| d.deflate_frame(frame, true)))
            .clone()
    }

    /// Appends one data message for `slot` to `out`, compressed when it
    /// negotiated deflate and the payload is worth it (the echo path).
    pub fn encode_into(&self, slot: &Slot, out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
        if let Some(params) = slot.deflate.params() {
            if self.worth(payload.len()) {
                let done = if params.server_no_context_takeover {
                    params.window_fits(payload.len())
                        && self.with_shared(|d| d.encode_frame_into(out, opcode, payload, true))
                } else {
                    self.with_own(slot.id(), |d| {
                        d.encode_frame_into(out, opcode, payload, false)
                    })
                };
                if done {
                    return;
                }
            }
        }
        crate::proto::frame::encode_frame_into(out, opcode, true, payload);
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::mailbox::{ConnId, Kicks};
    use crate::proto::deflate::MessageInflater;
    use crate::proto::frame::{encode_frame_into, FrameHeader, RSV1};

    fn slot(params: Option<DeflateParams>) -> Slot {
        let slot = Slot::new(ConnId::from_raw(1), Rc::new(Kicks::default()));
        if let Some(params) = params {
            slot.deflate.set_params(params);
        }
        slot
    }

    const SHARED: DeflateParams = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
    };

    fn push(len: usize) -> Bytes {
        let text: String = (0..len)
            .map(|i| ["room ", "chat ", "json "][i % 3])
            .collect();
        let mut out = Vec::new();
        encode_frame_into(&mut out, OpCode::Text, true, &text.as_bytes()[..len]);
        Bytes::from(out)
    }

    /// The payload a frame carries, inflated when RSV1 is set.
    fn open(frame: &[u8], inflater: &mut MessageInflater) -> (bool, Vec<u8>) {
        let (header, at) = FrameHeader::parse(frame).expect("ok").expect("whole");
        if header.rsv & RSV1 == 0 {
            return (false, frame[at..].to_vec());
        }
        inflater
            .inflate_message(&frame[at..], 1 << 20)
            .expect("valid");
        (true, inflater.out.clone())
    }

    #[test]
    fn frames_pass_through_untouched_without_deflate() {
        let core = CoreDeflate::new(1, 64);
        let frame = push(1000);
        let out = core.for_slot(&slot(None), frame.clone());
        assert_eq!(out.as_ptr(), frame.as_ptr(), "the same bytes, not a copy");
        assert!(!core.holds_shared());
        // Below min_size: as it is, even when negotiated.
        let small = push(40);
        let out = core.for_slot(&slot(Some(SHARED)), small.clone());
        assert_eq!(out.as_ptr(), small.as_ptr());
    }

    #[test]
    fn a_push_is_compressed_once_and_shared() {
        let core = CoreDeflate::new(1, 64);
        let frame = push(2000);
        let mut cache = None;
        let a = core
            .shared_variant(&SHARED, &frame, &mut cache)
            .expect("compressed");
        let b = core
            .shared_variant(&SHARED, &frame, &mut cache)
            .expect("compressed");
        assert_eq!(a.as_ptr(), b.as_ptr(), "one compressed copy for both");
        assert!(a.len() < frame.len() / 4);
        let (packed, payload) = open(&a, &mut MessageInflater::new());
        assert!(packed);
        assert_eq!(payload, open(&frame, &mut MessageInflater::new()).1);
        // A client with a 2^8 window gets the uncompressed frame.
        let small_window = DeflateParams {
            server_max_window_bits: 8,
            ..SHARED
        };
        assert_eq!(core.shared_variant(&small_window, &frame, &mut cache), None);
    }

    #[test]
    fn context_takeover_gets_its_own_stream() {
        let core = CoreDeflate::new(1, 64);
        let own = DeflateParams {
            server_no_context_takeover: false,
            ..SHARED
        };
        let conn = slot(Some(own));
        let frame = push(500);
        let first = core.for_slot(&conn, frame.clone());
        let second = core.for_slot(&conn, frame.clone());
        assert!(core.holds_own(conn.id()));
        assert!(!core.holds_shared());
        // The second refers to the first: smaller, and only valid in order.
        assert!(
            second.len() < first.len(),
            "{} vs {}",
            second.len(),
            first.len()
        );
        let mut inflater = MessageInflater::new();
        let expected = open(&frame, &mut MessageInflater::new()).1;
        assert_eq!(open(&first, &mut inflater), (true, expected.clone()));
        assert_eq!(open(&second, &mut inflater), (true, expected));
        core.forget(conn.id());
        assert!(!core.holds_own(conn.id()));
    }

    #[test]
    fn echo_encodes_compressed_or_plain() {
        let core = CoreDeflate::new(1, 64);
        let payload = b"0123456789".repeat(50);
        let mut out = Vec::new();
        core.encode_into(&slot(Some(SHARED)), &mut out, OpCode::Binary, &payload);
        assert_eq!(
            open(&out, &mut MessageInflater::new()),
            (true, payload.clone())
        );
        let mut out = Vec::new();
        core.encode_into(&slot(None), &mut out, OpCode::Binary, &payload);
        assert_eq!(open(&out, &mut MessageInflater::new()), (false, payload));
    }
}
