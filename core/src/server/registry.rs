//! The per-core table of live connections, and how a core pokes one of them.
//!
//! A connection task spends its life parked on "socket readable" with no
//! timer of its own (a timer per idle connection costs memory). Instead each
//! connection owns a small [`Slot`] in its core's [`Registry`]:
//!
//! - the connection writes its next deadline into the slot and parks on
//!   [`Slot::kicked`] alongside its socket readiness;
//! - the core's timer sweep ([`Registry::kick_expired`], every `timer_tick`)
//!   kicks the slots whose deadline passed;
//! - shutdown kicks every slot ([`Registry::kick_all`]);
//! - the pub/sub hub of the core queues frames in the slot's [`Outbox`] and
//!   kicks it (`KICK_OUTBOUND`), or tells it that it overflowed (`KICK_OVERFLOW`).
//!
//! A slot is named by a [`ConnId`]: its slab key plus a generation, so a
//! message addressed to a connection that has gone never reaches the next
//! connection that reuses the key.
//!
//! Everything here is `!Send`: a registry belongs to one core, so `Cell` and
//! `RefCell` are enough. A slot is removed when its connection task ends
//! ([`SlotGuard`]'s drop), so the table only ever holds live connections.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use slab::Slab;

use super::outbox::Outbox;

/// A connection's name on its core: slab key in the low 32 bits, generation above.
pub type ConnId = u64;

/// Kick reasons, as bit flags so that several can be pending at once.
pub const KICK_TIMER: u8 = 1;
pub const KICK_SHUTDOWN: u8 = 2;
/// Frames were queued in the slot's outbox.
pub const KICK_OUTBOUND: u8 = 4;
/// The outbox passed `max_outbound_bytes`: close as a slow consumer.
pub const KICK_OVERFLOW: u8 = 8;

/// One connection's mailbox: who to wake, why, and when its next deadline is.
pub struct Slot {
    id: ConnId,
    /// Bytes for the peer that the socket has not taken yet; written by the
    /// connection itself and by its core's hub, drained by the connection.
    pub outbox: RefCell<Outbox>,
    waker: Cell<Option<Waker>>,
    kicks: Cell<u8>,
    deadline: Cell<Option<Instant>>,
}

impl Slot {
    pub fn id(&self) -> ConnId {
        self.id
    }

    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.deadline.set(deadline);
    }

    /// Raises `flags` and wakes the connection if it is parked.
    pub fn kick(&self, flags: u8) {
        self.kicks.set(self.kicks.get() | flags);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Takes the pending kick flags without waiting (0 when none).
    #[cfg(test)]
    pub fn take_kicks(&self) -> u8 {
        self.kicks.replace(0)
    }

    /// Takes the pending kick flags, or registers `cx`'s waker for the next kick.
    pub fn poll_kicked(&self, cx: &mut Context<'_>) -> Poll<u8> {
        match self.kicks.replace(0) {
            0 => {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
            flags => Poll::Ready(flags),
        }
    }

    /// Resolves with the pending kick flags once at least one is raised.
    pub async fn kicked(&self) -> u8 {
        poll_fn(|cx| self.poll_kicked(cx)).await
    }
}

#[derive(Default)]
pub struct Registry {
    slots: RefCell<Slab<Rc<Slot>>>,
    generation: Cell<u32>,
}

impl Registry {
    /// Adds a connection; the returned guard removes it when dropped.
    pub fn register(self: &Rc<Self>) -> SlotGuard {
        let mut slots = self.slots.borrow_mut();
        let entry = slots.vacant_entry();
        let key = entry.key();
        let generation = self.generation.get().wrapping_add(1);
        self.generation.set(generation);
        let slot = Rc::new(Slot {
            id: (u64::from(generation) << 32) | key as u64,
            outbox: RefCell::default(),
            waker: Cell::default(),
            kicks: Cell::default(),
            deadline: Cell::default(),
        });
        entry.insert(slot.clone());
        drop(slots);
        SlotGuard {
            registry: self.clone(),
            key,
            slot,
        }
    }

    /// The live connection named `id`, if it still exists.
    pub fn get(&self, id: ConnId) -> Option<Rc<Slot>> {
        let slots = self.slots.borrow();
        let slot = slots.get((id & u64::from(u32::MAX)) as usize)?;
        (slot.id == id).then(|| slot.clone())
    }

    pub fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.borrow().is_empty()
    }

    pub fn kick_all(&self, flags: u8) {
        for (_, slot) in self.slots.borrow().iter() {
            slot.kick(flags);
        }
    }

    /// Kicks every connection whose deadline is at or before `now`.
    pub fn kick_expired(&self, now: Instant) {
        for (_, slot) in self.slots.borrow().iter() {
            if slot.deadline.get().is_some_and(|deadline| deadline <= now) {
                slot.kick(KICK_TIMER);
            }
        }
    }
}

/// A connection's registration; dropping it frees the slot.
pub struct SlotGuard {
    registry: Rc<Registry>,
    key: usize,
    slot: Rc<Slot>,
}

impl std::ops::Deref for SlotGuard {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        &self.slot
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.registry.slots.borrow_mut().remove(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expired_deadlines_are_kicked_and_others_are_not() {
        let registry = Rc::new(Registry::default());
        let t0 = Instant::now();
        let early = registry.register();
        let late = registry.register();
        early.set_deadline(Some(t0 + Duration::from_secs(1)));
        late.set_deadline(Some(t0 + Duration::from_secs(5)));
        registry.kick_expired(t0 + Duration::from_secs(2));
        assert_eq!(early.take_kicks(), KICK_TIMER);
        assert_eq!(late.take_kicks(), 0);
        registry.kick_all(KICK_SHUTDOWN);
        assert_eq!(late.take_kicks(), KICK_SHUTDOWN);
    }

    #[test]
    fn dropping_the_guard_frees_the_slot() {
        let registry = Rc::new(Registry::default());
        let a = registry.register();
        let b = registry.register();
        assert_eq!(registry.len(), 2);
        let a_id = a.id();
        assert!(registry.get(a_id).is_some());
        drop(a);
        assert!(registry.get(a_id).is_none());
        let c = registry.register();
        assert!(
            registry.get(a_id).is_none(),
            "a reused key does not answer to the old id"
        );
        assert!(registry.get(c.id()).is_some());
        drop(c);
        assert_eq!(registry.len(), 1);
        drop(b);
        assert!(registry.is_empty());
    }
}
