//! One worker: a pinned OS thread running one monoio event loop, its own
//! listener, its connections, its timer sweep and its share of shutdown.
//!
//! Nothing in a [`Worker`] is shared with another core. The per-core scratch
//! buffers live here: every read on this core lands in `read_scratch` and
//! every reply is first encoded into `write_scratch`, so a connection keeps
//! only the bytes its socket did not take.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::conn;
use super::registry::{Registry, KICK_SHUTDOWN};
use crate::config::ServerConfig;
use crate::proto::session::SessionConfig;

pub(crate) struct Worker {
    pub id: usize,
    pub config: Arc<ServerConfig>,
    pub session_config: SessionConfig,
    pub registry: Rc<Registry>,
    /// Where every read of this core lands; borrowed only between two awaits.
    pub read_scratch: RefCell<Box<[u8]>>,
    /// Where replies are encoded before the first send attempt; borrowed only
    /// between two awaits, always left empty.
    pub write_scratch: RefCell<Vec<u8>>,
    /// Set once shutdown begins; new handshakes are refused from then on.
    pub draining: Cell<bool>,
}

impl Worker {
    pub fn new(id: usize, config: Arc<ServerConfig>) -> Self {
        Self {
            id,
            session_config: config.session_config(),
            registry: Rc::new(Registry::default()),
            read_scratch: RefCell::new(vec![0; config.read_buffer_size].into_boxed_slice()),
            write_scratch: RefCell::new(Vec::with_capacity(config.read_buffer_size)),
            draining: Cell::new(false),
            config,
        }
    }
}

/// The worker's life: accept until `shutdown` fires (a message or the sender
/// dropping), then drain its connections for at most `drain_timeout`.
pub(crate) async fn run(
    worker: Rc<Worker>,
    listener: std::net::TcpListener,
    shutdown: flume::Receiver<()>,
) {
    let listener = match monoio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            warn!(worker = worker.id, "cannot register listener: {e}");
            return;
        }
    };
    monoio::spawn(sweep_timers(worker.clone()));
    monoio::select! {
        _ = accept_loop(&worker, listener) => {}
        _ = shutdown.recv_async() => {}
    }
    drain(&worker).await;
}

async fn accept_loop(worker: &Rc<Worker>, listener: monoio::net::TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                monoio::spawn(conn::run(worker.clone(), stream, peer));
            }
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS: back off instead of spinning; the
                // connection stays in the backlog until fds free up.
                warn!(worker = worker.id, "accept failed: {e}");
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Fires connection deadlines every `timer_tick` (see `registry`).
async fn sweep_timers(worker: Rc<Worker>) {
    loop {
        monoio::time::sleep(worker.config.timer_tick).await;
        worker.registry.kick_expired(Instant::now());
    }
}

async fn drain(worker: &Worker) {
    worker.draining.set(true);
    let open = worker.registry.len();
    debug!(worker = worker.id, open, "draining");
    worker.registry.kick_all(KICK_SHUTDOWN);
    let deadline = Instant::now() + worker.config.drain_timeout;
    while !worker.registry.is_empty() && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = worker.registry.len();
    if left > 0 {
        warn!(
            worker = worker.id,
            left, "drain timeout: dropping connections"
        );
    }
}

/// Pins the current thread to the `index`-th CPU this process may use.
pub(crate) fn pin_current_thread(index: usize) -> Option<usize> {
    let cores = core_affinity::get_core_ids()?;
    let core = *cores.get(index % cores.len())?;
    core_affinity::set_for_current(core).then_some(core.id)
}
