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
//! - A connection that keeps context has its own stream (in its slot), and
//!   gets its own compressed copy of every push.
//! - Frames under `deflate.min_size`, control frames and frames that do not
//!   get smaller go out as they are.

use std::cell::RefCell;

use bytes::Bytes;

use crate::mailbox::Slot;
use crate::proto::deflate::{DeflateParams, MessageDeflater};
use crate::proto::frame::OpCode;

/// The core's deflate stream and what decides whether a frame is worth it.
#[derive(Debug)]
pub struct CoreDeflate {
    level: u32,
    min_size: usize,
    /// Made on first use: a core that never compresses holds none.
    shared: RefCell<Option<MessageDeflater>>,
}

impl CoreDeflate {
    pub fn new(level: u32, min_size: usize) -> Self {
        Self {
            level,
            min_size,
            shared: RefCell::new(None),
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
            slot.deflate
                .with_own(self.level, |d| d.deflate_frame(&frame, false))
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
                    slot.deflate.with_own(self.level, |d| {
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
