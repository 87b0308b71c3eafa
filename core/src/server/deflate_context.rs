//! How many connections of this worker keep zlib state between messages
//! (permessage-deflate with context takeover either way), against
//! `deflate.max_context_connections`.
//!
//! The count is the worker thread's own: a connection is accepted, served
//! and dropped on one worker thread for its whole life, so a thread-local
//! `Cell` is the worker's counter without a pointer in every connection's
//! state (`conn::Open` is boxed at 384 bytes, the top of an allocator size
//! class, and has no byte to spare).
//!
//! - `conn::route` takes a slot with [`ContextSlot::try_take`] when the
//!   negotiation would keep context; when none is left it answers with no
//!   context takeover instead. The [`ContextSlot`] guard travels with the
//!   upgrade; if the upgrade is dropped before the connection opens, the
//!   guard gives the slot back.
//! - `conn::Open::new` turns the guard into the connection's session
//!   (which remembers that it keeps context, [`ContextSlot::into_session`]);
//!   `Open`'s drop gives the slot back with [`release`]: when the
//!   connection closes, fails, or its worker drops it at shutdown.
//! - `/metrics` reads [`held`] as `ringcast_deflate_context_connections`.

use std::cell::Cell;
use std::marker::PhantomData;

thread_local! {
    /// Connections of this worker thread holding a context slot.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// Connections of this worker that keep zlib state between messages now.
pub(crate) fn held() -> usize {
    HELD.with(Cell::get)
}

/// Gives back a slot that a session took over from its [`ContextSlot`].
pub(crate) fn release() {
    HELD.with(|held| held.set(held.get().saturating_sub(1)));
}

/// One connection's place among the worker's context-keeping connections;
/// gives it back when dropped. Not `Send`: the count is this thread's.
#[derive(Debug)]
pub(crate) struct ContextSlot {
    _thread: PhantomData<*const ()>,
}

impl ContextSlot {
    /// A slot when fewer than `cap` connections hold one (`cap` 0: no limit).
    pub(crate) fn try_take(cap: usize) -> Option<Self> {
        HELD.with(|held| {
            let n = held.get();
            if cap != 0 && n >= cap {
                return None;
            }
            held.set(n + 1);
            Some(Self {
                _thread: PhantomData,
            })
        })
    }

    /// Hands the slot to the connection's session: from now on the session
    /// says it keeps context, and whoever drops the session calls
    /// [`release`].
    pub(crate) fn into_session(self, session: &mut crate::proto::session::Session) {
        session.set_keeps_deflate_context();
        std::mem::forget(self);
    }
}

impl Drop for ContextSlot {
    fn drop(&mut self) {
        release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_up_to_the_cap_and_given_back() {
        // Each test runs on a thread of its own: the count starts at 0.
        std::thread::spawn(|| {
            assert_eq!(held(), 0);
            let a = ContextSlot::try_take(2).expect("first");
            let b = ContextSlot::try_take(2).expect("second");
            assert_eq!(held(), 2);
            assert!(ContextSlot::try_take(2).is_none(), "the cap is reached");
            drop(a);
            assert_eq!(held(), 1);
            let c = ContextSlot::try_take(2).expect("one was given back");
            // No cap: always a slot.
            let d = ContextSlot::try_take(0).expect("no limit");
            assert_eq!(held(), 3);
            drop((b, c, d));
            assert_eq!(held(), 0);
            // A slot handed to a session is given back by `release`.
            let mut session = crate::proto::session::Session::new(
                &crate::proto::session::SessionConfig::default(),
                std::time::Instant::now(),
            );
            ContextSlot::try_take(1)
                .expect("free")
                .into_session(&mut session);
            assert!(session.keeps_deflate_context());
            assert_eq!(held(), 1);
            assert!(ContextSlot::try_take(1).is_none());
            release();
            assert_eq!(held(), 0);
        })
        .join()
        .expect("test thread");
    }
}
