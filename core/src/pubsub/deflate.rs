//! Compression of outgoing data frames (permessage-deflate), and what the
//! cores tell each other so that a channel push is compressed once.
//!
//! # A push is compressed once, on the channel's owner core
//!
//! - Connections that negotiated `server_no_context_takeover` (all of them
//!   under the default policy) take messages compressed on their own, so
//!   one compressed frame serves all of them, on every core. The owner core
//!   that encodes a push frame once also compresses it once
//!   ([`CoreDeflate::shared_push`], on its one shared stream, reset before
//!   every message) and ships it beside the plain frame in the same
//!   `Msg::Deliver`; the subscriber cores only clone one or the other. The
//!   Redis engine's owner core (one per channel per node, fed by Redis
//!   pub/sub) and the disk engine's (the memory engine's path plus the log)
//!   do the same, so a message entering a node is compressed once there.
//! - The owner compresses only when some subscriber would take the result:
//!   each subscriber core counts, per channel, its subscribers that share
//!   the compressed frame by their `server_max_window_bits`
//!   ([`SharedWindows`], pending subscribers included), and every message
//!   that changes its subscribers of the channel for the owner (`Subscribe`,
//!   `PresenceLeave`: one per subscription, in order) carries the widest
//!   window left (`0`: none). The owner keeps that byte per (channel, core)
//!   (`OwnedChannel::set_core_deflate`; a core's `Unsubscribe` clears it)
//!   and compresses a push when the widest window of all cores is non-zero
//!   and fits the frame. With deflate off, or nobody compressing, the cost
//!   of a push is one byte read on the owner and one `None` per delivery.
//! - A subscriber whose window is too small for a message gets the plain
//!   frame (always valid: RSV1 is per message); so does every subscriber
//!   when the frame is under `deflate.min_size` or did not get smaller.
//! - A connection that keeps context has its own stream (kept here, on its
//!   core, by connection, until the connection leaves the hub), and gets its
//!   own compressed copy of every push, made on its core.
//! - Replies, replays and echo are compressed per connection on its core
//!   ([`CoreDeflate::for_slot`], [`CoreDeflate::encode_into`]); control
//!   frames never.
//!
//! [`CoreDeflate::compressions`] counts every message this core compressed
//! (`ringcast_deflate_compressions_total`): with every subscriber sharing,
//! one per compressible push, whatever the number of cores.

use std::cell::{Cell, RefCell};
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
    /// Messages compressed on this core (each deflate run, shared or own
    /// stream); written only here, read by the `/metrics` scrape
    /// (`Hub::snapshot`).
    compressions: Cell<u64>,
}

impl CoreDeflate {
    pub fn new(level: u32, min_size: usize) -> Self {
        Self {
            level,
            min_size,
            shared: RefCell::new(None),
            own: RefCell::default(),
            compressions: Cell::new(0),
        }
    }

    /// Messages this core has compressed so far.
    pub fn compressions(&self) -> u64 {
        self.compressions.get()
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
        self.compressions.set(self.compressions.get() + 1);
        f(own
            .entry(conn)
            .or_insert_with(|| Box::new(MessageDeflater::new(level))))
    }

    fn with_shared<R>(&self, f: impl FnOnce(&mut MessageDeflater) -> R) -> R {
        let mut shared = self.shared.borrow_mut();
        self.compressions.set(self.compressions.get() + 1);
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

    /// The compressed variant of a push `frame` for every subscriber that
    /// shares it, made once on the channel's owner core; `widest` is the
    /// widest `server_max_window_bits` among them (`0`: nobody shares, see
    /// [`SharedWindows`]). `None` when nobody would take it: the frame is
    /// under `deflate.min_size`, too large for every window, or did not get
    /// smaller.
    #[inline]
    pub fn shared_push(&self, frame: &Bytes, widest: u8) -> Option<Bytes> {
        if widest == 0 {
            return None;
        }
        self.shared_push_made(frame, widest)
    }

    /// [`CoreDeflate::shared_push`] once somebody shares: kept out of line
    /// so a publish nobody compresses pays one comparison.
    #[cold]
    #[inline(never)]
    fn shared_push_made(&self, frame: &Bytes, widest: u8) -> Option<Bytes> {
        if !self.worth(frame.len()) || !window(widest).window_fits(frame.len()) {
            return None;
        }
        self.with_shared(|d| d.deflate_frame(frame, true))
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

/// The parameters of a client that takes shared frames with a
/// `bits`-bit window: what [`DeflateParams::window_fits`] needs.
fn window(bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: bits,
    }
}

/// The window of a subscriber that takes the shared compressed push (its
/// `server_max_window_bits`), or `0` when it takes plain frames or keeps
/// context (its pushes are compressed on its own core).
pub fn shared_window(params: Option<DeflateParams>) -> u8 {
    match params {
        Some(p) if p.server_no_context_takeover => p.server_max_window_bits,
        _ => 0,
    }
}

/// One subscriber core's subscribers of one channel that take the shared
/// compressed push, counted by window (bits 8 to 15): what it tells the
/// channel's owner, as the widest window among them.
#[derive(Debug, Default)]
pub struct SharedWindows {
    /// `counts[bits - 8]`: subscribers with that window.
    counts: [u32; 8],
}

impl SharedWindows {
    /// Counts a subscriber of window `bits` (`0`: one that does not share,
    /// not counted).
    pub fn add(&mut self, bits: u8) {
        if let Some(n) = Self::index(bits).and_then(|i| self.counts.get_mut(i)) {
            *n += 1;
        }
    }

    /// Uncounts a subscriber [`SharedWindows::add`] counted with `bits`.
    pub fn remove(&mut self, bits: u8) {
        if let Some(n) = Self::index(bits).and_then(|i| self.counts.get_mut(i)) {
            *n = n.saturating_sub(1);
        }
    }

    /// The widest window counted, `0` when none.
    pub fn widest(&self) -> u8 {
        match self.counts.iter().rposition(|n| *n > 0) {
            Some(i) => 8 + i as u8,
            None => 0,
        }
    }

    fn index(bits: u8) -> Option<usize> {
        (8..=15).contains(&bits).then(|| usize::from(bits - 8))
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
    fn a_shared_push_is_made_only_when_someone_takes_it() {
        let core = CoreDeflate::new(1, 64);
        let frame = push(2000);
        assert_eq!(core.shared_push(&frame, 0), None, "nobody shares");
        assert_eq!(core.compressions(), 0);
        assert!(!core.holds_shared());
        let packed = core.shared_push(&frame, 15).expect("compressed");
        assert_eq!(core.compressions(), 1);
        assert!(packed.len() < frame.len() / 4);
        let (deflated, payload) = open(&packed, &mut MessageInflater::new());
        assert!(deflated);
        assert_eq!(payload, open(&frame, &mut MessageInflater::new()).1);
        // Reset per message: the same push compresses to the same bytes.
        assert_eq!(core.shared_push(&frame, 15), Some(packed));
        // The widest window is 2^8 and the frame is larger; under min_size.
        assert_eq!(core.shared_push(&frame, 8), None);
        assert_eq!(core.shared_push(&push(40), 15), None);
        assert_eq!(core.compressions(), 2, "no deflate run for those");
        // 2^11 bytes fit a 2^11 window, one byte more does not.
        let fits = push(2048 - 4);
        assert_eq!(fits.len(), 2048);
        assert!(core.shared_push(&fits, 11).is_some());
        assert_eq!(core.shared_push(&push(2048 - 3), 11), None);
    }

    #[test]
    fn shared_windows_report_the_widest_left() {
        let mut w = SharedWindows::default();
        assert_eq!(w.widest(), 0);
        w.add(0);
        assert_eq!(w.widest(), 0, "a subscriber that does not share");
        w.add(10);
        w.add(15);
        w.add(15);
        assert_eq!(w.widest(), 15);
        w.remove(15);
        assert_eq!(w.widest(), 15, "one of the two is left");
        w.remove(15);
        assert_eq!(w.widest(), 10);
        w.remove(10);
        w.remove(10);
        assert_eq!(w.widest(), 0, "a repeated remove does not wrap");
        w.add(8);
        assert_eq!(w.widest(), 8);
        let keeps_context = DeflateParams {
            server_no_context_takeover: false,
            ..SHARED
        };
        assert_eq!(shared_window(Some(SHARED)), 15);
        assert_eq!(shared_window(Some(keeps_context)), 0);
        assert_eq!(shared_window(None), 0);
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
