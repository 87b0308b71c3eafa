//! One core's end of a [`Mesh`]: sends that keep per-target order when a
//! target's inbox is full, and receives.
//!
//! A full inbox never blocks the sender. [`Port::dispatch`] keeps the message
//! in a spill queue for that target, in order, and [`Port::retry_spill`]
//! (called every turn of the drain loop) moves it on once the target has
//! room. While a target's spill queue holds anything, every later message to
//! it queues behind, so messages from one core to another arrive in the order
//! they were dispatched: the inbox's FIFO and the spill queue's FIFO, never
//! both out of order. [`Port::try_send`] is for work the sender would rather
//! refuse than queue (a publish): it fails while the target spills.
//!
//! The spill queues belong to this core alone (`RefCell`, `!Send`); the mesh
//! is shared by every core.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;

use super::Mesh;

pub struct Port<M> {
    core: usize,
    mesh: Arc<Mesh<M>>,
    /// Per target core: messages its full inbox did not take, in order.
    /// Written by `dispatch`, drained by `retry_spill`; dropped with the port.
    spill: RefCell<Vec<VecDeque<M>>>,
    /// Messages in all spill queues.
    spilled: Cell<usize>,
}

impl<M> Port<M> {
    /// Core `core`'s end of `mesh`.
    pub fn new(core: usize, mesh: Arc<Mesh<M>>) -> Self {
        let cores = mesh.cores();
        Self {
            core,
            mesh,
            spill: RefCell::new((0..cores).map(|_| VecDeque::new()).collect()),
            spilled: Cell::new(0),
        }
    }

    /// The core this port belongs to.
    pub fn core(&self) -> usize {
        self.core
    }

    pub fn cores(&self) -> usize {
        self.mesh.cores()
    }

    /// Sends `msg` to core `to`, in order behind everything sent to `to`
    /// before. To this core it goes to `local`, at once and synchronously
    /// (no borrow of the port is held: `local` may dispatch again).
    pub fn dispatch(&self, to: usize, msg: M, local: impl FnOnce(M)) {
        if to == self.core {
            local(msg);
            return;
        }
        let mut spill = self.spill.borrow_mut();
        let queue = &mut spill[to];
        let msg = if queue.is_empty() {
            match self.mesh.try_send(to, msg) {
                Ok(()) => return,
                Err(msg) => msg,
            }
        } else {
            msg
        };
        queue.push_back(msg);
        self.spilled.set(self.spilled.get() + 1);
    }

    /// Sends `msg` to another core only if it can go now without overtaking
    /// spilled messages; `Err(msg)` when `to`'s inbox is full or `to` spills.
    pub fn try_send(&self, to: usize, msg: M) -> Result<(), M> {
        if !self.spill.borrow()[to].is_empty() {
            return Err(msg);
        }
        self.mesh.try_send(to, msg)
    }

    /// Messages waiting in this core's spill queues.
    pub fn spilled(&self) -> usize {
        self.spilled.get()
    }

    /// Retries spilled messages in order; true when some are still waiting.
    pub fn retry_spill(&self) -> bool {
        if self.spilled.get() == 0 {
            return false;
        }
        let mut spill = self.spill.borrow_mut();
        for (to, queue) in spill.iter_mut().enumerate() {
            while let Some(msg) = queue.pop_front() {
                if let Err(msg) = self.mesh.try_send(to, msg) {
                    queue.push_front(msg);
                    break;
                }
                self.spilled.set(self.spilled.get() - 1);
            }
        }
        self.spilled.get() > 0
    }

    /// The next message for this core, if any.
    pub fn try_recv(&self) -> Option<M> {
        self.mesh.try_recv(self.core)
    }

    /// Messages waiting in this core's inbox (a snapshot).
    pub fn depth(&self) -> usize {
        self.mesh.depth(self.core)
    }

    /// Resolves once this core's inbox holds a message.
    pub async fn ready(&self) {
        self.mesh.ready(self.core).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_inbox_spills_in_order_and_later_sends_queue_behind() {
        let mesh = Arc::new(Mesh::new(2, 2));
        let sender = Port::new(0, mesh.clone());
        let receiver = Port::new(1, mesh);
        for n in 0..5 {
            sender.dispatch(1, n, |_| unreachable!("not local"));
        }
        assert_eq!(sender.spilled(), 3);
        assert_eq!(sender.try_send(1, 99), Err(99), "would overtake the spill");
        assert_eq!(receiver.depth(), 2);
        let mut got = Vec::new();
        while got.len() < 5 {
            while let Some(n) = receiver.try_recv() {
                got.push(n);
            }
            sender.retry_spill();
        }
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
        assert!(!sender.retry_spill());
        assert_eq!(sender.try_send(1, 5), Ok(()));
    }

    #[test]
    fn dispatch_to_the_own_core_is_handled_at_once() {
        let port = Port::new(0, Arc::new(Mesh::new(2, 2)));
        let mut handled = None;
        port.dispatch(0, 7, |n| handled = Some(n));
        assert_eq!(handled, Some(7));
        assert_eq!(port.depth(), 0, "nothing went through the inbox");
    }
}
