//! What the peer servers in `src/bin/` share: the command line, the
//! listener, the ready line the peers script waits for, and the broadcast hub.
//!
//! Every peer server runs on **one thread** (a tokio current-thread runtime
//! with a `LocalSet`), so that pinned to one CPU it is compared fairly with
//! `ringcast serve --workers 1` pinned to the same CPU: no peer gets a second
//! core, and none pays for cross-thread synchronisation it does not need.

use std::cell::RefCell;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc::UnboundedSender;

/// Listen backlog, in connections. The kernel caps it at
/// `net.core.somaxconn`; a large one keeps connection storms (19,000 idle
/// connections opened at thousands per second) from being dropped at accept.
pub const BACKLOG: u32 = 4096;

/// Command line of a peer server: `--listen ADDR` (default `127.0.0.1:0`).
#[derive(Debug, Clone, Copy)]
pub struct Args {
    pub listen: SocketAddr,
}

impl Args {
    /// Parses `std::env::args()`; exits with a usage line on anything else.
    pub fn from_env(name: &str) -> Args {
        let usage = || -> ! {
            eprintln!("usage: {name} [--listen ADDR]   (default 127.0.0.1:0)\n  /echo echoes every message; /ws sends every message it receives to every client connected to /ws");
            std::process::exit(2)
        };
        let mut listen: SocketAddr = ([127, 0, 0, 1], 0).into();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--listen" => {
                    listen = match args.next().map(|a| a.parse()) {
                        Some(Ok(addr)) => addr,
                        _ => usage(),
                    }
                }
                _ => usage(),
            }
        }
        Args { listen }
    }
}

/// Binds `addr` with [`BACKLOG`] and `SO_REUSEADDR`. Call inside a runtime.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Prints the line the peers script waits for: `listening on ADDR`.
pub fn announce(listener: &TcpListener) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()
}

/// The clients of the broadcast endpoint, each as the sending end of its
/// writer task's queue.
///
/// Written by the connection tasks (join on upgrade, leave on close), read by
/// every reader task that broadcasts. All of them run on the one thread of the
/// server's `LocalSet`, so an `Rc<RefCell<..>>` is enough: no borrow is held
/// across an `.await`. The queues are unbounded, as in the libraries' own
/// examples: a client that reads slower than the publishers write grows its
/// queue (the load generator reads everything, so none does in a run).
pub struct Hub<T> {
    clients: RefCell<Vec<Option<UnboundedSender<T>>>>,
    free: RefCell<Vec<usize>>,
}

impl<T: Clone> Hub<T> {
    pub fn new() -> Rc<Self> {
        Rc::new(Hub {
            clients: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        })
    }

    /// Adds a client; the id is for [`Hub::leave`].
    pub fn join(&self, tx: UnboundedSender<T>) -> usize {
        let mut clients = self.clients.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(id) => {
                clients[id] = Some(tx);
                id
            }
            None => {
                clients.push(Some(tx));
                clients.len() - 1
            }
        }
    }

    pub fn leave(&self, id: usize) {
        let mut clients = self.clients.borrow_mut();
        if let Some(slot) = clients.get_mut(id) {
            if slot.take().is_some() {
                self.free.borrow_mut().push(id);
            }
        }
    }

    /// Queues `msg` to every client, the sender included. A client whose
    /// writer has already gone is skipped (it leaves on its own).
    pub fn broadcast(&self, msg: &T) {
        for tx in self.clients.borrow().iter().flatten() {
            let _ = tx.send(msg.clone());
        }
    }

    /// Connected clients.
    pub fn len(&self) -> usize {
        self.clients.borrow().iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::unbounded_channel;

    #[test]
    fn broadcast_reaches_every_client_and_leave_reuses_ids() {
        let hub = Hub::new();
        let (a_tx, mut a_rx) = unbounded_channel();
        let (b_tx, mut b_rx) = unbounded_channel();
        let a = hub.join(a_tx);
        let _b = hub.join(b_tx);
        hub.broadcast(&7u32);
        assert_eq!(a_rx.try_recv().ok(), Some(7));
        assert_eq!(b_rx.try_recv().ok(), Some(7));
        hub.leave(a);
        assert_eq!(hub.len(), 1);
        hub.broadcast(&8u32);
        assert_eq!(b_rx.try_recv().ok(), Some(8));
        let (c_tx, _c_rx) = unbounded_channel();
        assert_eq!(hub.join(c_tx), a);
    }
}
