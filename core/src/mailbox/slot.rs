//! A connection's slot, shared between the connection (owned by its core's
//! reactor) and the core's pub/sub hub.
//!
//! The hub never touches a connection directly: it queues frames in the
//! slot's [`Outbox`] and raises a kick flag. The first kick since the reactor
//! last looked puts the connection on the core's [`Kicks`] queue and wakes the
//! reactor; further kicks in the same turn only add flags. So a push to ten
//! thousand local subscribers costs ten thousand queue entries at most, and
//! each connection writes everything queued for it once per turn (the batch).
//!
//! Everything here is `!Send`: it belongs to one core.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::Outbox;
use crate::proto::deflate::DeflateParams;

/// A connection's name on its core: slab key in the low 32 bits, generation
/// above, so a message for a connection that has gone never reaches the next
/// one that reuses the key. The raw value doubles as the connection's epoll
/// token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(u64);

impl ConnId {
    /// The id of slab entry `key` (below 2³²) in its `generation`.
    pub fn new(generation: u32, key: usize) -> Self {
        debug_assert!(key <= u32::MAX as usize, "slab key {key} over 32 bits");
        Self((u64::from(generation) << 32) | (key as u64 & u64::from(u32::MAX)))
    }

    /// The id whose raw value is `raw` (an epoll token, a test's literal).
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The slab key: the low 32 bits.
    pub const fn key(self) -> usize {
        (self.0 & u32::MAX as u64) as usize
    }
}

/// The server is shutting down: close with 1001.
pub const KICK_SHUTDOWN: u8 = 1;
/// Frames were queued in the outbox.
pub const KICK_OUTBOUND: u8 = 2;
/// The outbox passed `max_outbound_bytes`: close as a slow consumer.
pub const KICK_OVERFLOW: u8 = 4;
/// Answers to this connection's server API requests are waiting in its
/// core's hub (`Hub::take_answers`).
pub const KICK_ANSWER: u8 = 8;
/// The server API asked to close this `/ws` connection (`Hub::take_disconnect`
/// has the code and reason).
pub const KICK_DISCONNECT: u8 = 16;

/// The core's queue of kicked connections, drained by its reactor each turn.
#[derive(Default)]
pub struct Kicks {
    queue: RefCell<Vec<ConnId>>,
    waker: Cell<Option<Waker>>,
}

impl Kicks {
    /// Moves the kicked connections into `into` (emptying the queue).
    pub fn drain_into(&self, into: &mut Vec<ConnId>) {
        into.append(&mut self.queue.borrow_mut());
    }

    /// Ready when a connection was kicked; otherwise remembers the waker.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.queue.borrow().is_empty() {
            self.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    fn push(&self, id: ConnId) {
        self.queue.borrow_mut().push(id);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

pub struct Slot {
    id: ConnId,
    /// Bytes for the peer that its socket has not taken yet; written by the
    /// connection and by the hub, drained by the connection.
    pub outbox: RefCell<Outbox>,
    kicks: Cell<u8>,
    core: Rc<Kicks>,
    /// permessage-deflate as negotiated in the handshake; set once by the
    /// connection when it upgrades, read by whoever encodes a data frame
    /// for it (the connection's echo and replies, the hub's pushes).
    pub deflate: SlotDeflate,
}

/// A connection's permessage-deflate parameters as the senders see them:
/// 4 bytes that fit in the slot's padding, so a slot without compression
/// is no larger than before (the fan-out loop reads it for every
/// subscriber). A connection's own deflate stream, when it keeps context,
/// lives in its core's `pubsub::deflate::CoreDeflate`, not here.
#[derive(Debug, Default)]
pub struct SlotDeflate {
    /// `None`: not negotiated, every frame goes out as it is.
    params: Cell<Option<DeflateParams>>,
}

impl SlotDeflate {
    pub fn params(&self) -> Option<DeflateParams> {
        self.params.get()
    }

    pub fn set_params(&self, params: DeflateParams) {
        self.params.set(Some(params));
    }
}

impl Slot {
    pub fn new(id: ConnId, core: Rc<Kicks>) -> Self {
        Self {
            id,
            outbox: RefCell::default(),
            kicks: Cell::new(0),
            core,
            deflate: SlotDeflate::default(),
        }
    }

    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Raises `flags`; the first kick since the last [`Slot::take_kicks`]
    /// queues the connection for its reactor.
    pub fn kick(&self, flags: u8) {
        let before = self.kicks.replace(self.kicks.get() | flags);
        if before == 0 {
            self.core.push(self.id);
        }
    }

    pub fn take_kicks(&self) -> u8 {
        self.kicks.replace(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_kick_queues_once_and_flags_accumulate() {
        let kicks = Rc::new(Kicks::default());
        let id = ConnId::from_raw(42);
        let slot = Slot::new(id, kicks.clone());
        slot.kick(KICK_OUTBOUND);
        slot.kick(KICK_OUTBOUND);
        slot.kick(KICK_SHUTDOWN);
        let mut queued = Vec::new();
        kicks.drain_into(&mut queued);
        assert_eq!(queued, vec![id]);
        assert_eq!(slot.take_kicks(), KICK_OUTBOUND | KICK_SHUTDOWN);
        slot.kick(KICK_OVERFLOW);
        kicks.drain_into(&mut queued);
        assert_eq!(
            queued,
            vec![id, id],
            "queued again after the flags were taken"
        );
    }

    #[test]
    fn conn_id_keeps_key_and_generation_apart() {
        let id = ConnId::new(7, 3);
        assert_eq!(id.key(), 3);
        assert_eq!(id.raw(), (7 << 32) | 3);
        assert_eq!(ConnId::from_raw(id.raw()), id);
        let max = ConnId::new(u32::MAX - 1, u32::MAX as usize);
        assert_eq!(max.key(), u32::MAX as usize);
        assert_ne!(
            max.raw(),
            u64::MAX,
            "the reactor's listener token stays free"
        );
    }

    /// Every connection has a slot, and the fan-out loop touches each one:
    /// the deflate parameters must fit in its padding (72 bytes before
    /// compression existed).
    #[test]
    fn slot_stays_small() {
        assert!(std::mem::size_of::<SlotDeflate>() <= 4);
        let size = std::mem::size_of::<Slot>();
        assert!(size <= 72, "Slot is {size} bytes");
    }
}
