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

use tracing::{debug, info, warn};

use super::conn;
use super::outbox::Flushed;
use super::registry::{Registry, KICK_SHUTDOWN};
use crate::config::ServerConfig;
use crate::proto::session::SessionConfig;
use crate::pubsub::hub::{self, Hub, Msg};
use crate::pubsub::inbox::Mesh;

/// This core's IO counters (plain cells: only this core writes them).
#[derive(Default)]
pub(crate) struct WorkerStats {
    /// `sendmsg` calls that flushed an outbox.
    pub flush_calls: Cell<u64>,
    /// Whole frames those calls completed: frames / calls is the write batch size.
    pub flushed_frames: Cell<u64>,
}

impl WorkerStats {
    pub fn record_flush(&self, flushed: Flushed) {
        self.flush_calls.set(self.flush_calls.get() + flushed.calls);
        self.flushed_frames
            .set(self.flushed_frames.get() + flushed.frames);
    }
}

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
    /// This core's share of pub/sub.
    pub hub: Rc<Hub>,
    pub stats: WorkerStats,
}

impl Worker {
    pub fn new(id: usize, config: Arc<ServerConfig>, mesh: Arc<Mesh<Msg>>) -> Self {
        let registry = Rc::new(Registry::default());
        Self {
            id,
            session_config: config.session_config(),
            hub: Rc::new(Hub::new(id, mesh, registry.clone(), &config)),
            stats: WorkerStats::default(),
            registry,
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
    monoio::spawn(hub::run(worker.hub.clone()));
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
                debug!(worker = worker.id, %peer, "accepted");
                monoio::spawn(conn::run(worker.clone(), stream));
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
    let (hub, io) = (&worker.hub.stats, &worker.stats);
    let (calls, frames) = (io.flush_calls.get(), io.flushed_frames.get());
    info!(
        worker = worker.id,
        publishes = hub.publishes.get(),
        deliveries = hub.deliveries.get(),
        slow_consumer_closes = hub.slow_consumer_closes.get(),
        overloaded = hub.overloaded.get(),
        flush_calls = calls,
        frames_per_flush = format!("{:.2}", frames as f64 / calls.max(1) as f64),
        "worker stopped"
    );
}

/// Pins the current thread to CPU `cpu` when the configuration lists one
/// (`server.cpus`), else to the `index`-th CPU this process may use. Returns
/// the CPU, or `None` (with a warning for a listed CPU) when pinning failed.
pub(crate) fn pin_current_thread(index: usize, cpu: Option<usize>) -> Option<usize> {
    let cores = core_affinity::get_core_ids()?;
    let core = match cpu {
        Some(id) => match cores.iter().find(|c| c.id == id) {
            Some(core) => *core,
            None => {
                warn!(worker = index, cpu = id, "CPU not available to this process: not pinned");
                return None;
            }
        },
        None => *cores.get(index % cores.len())?,
    };
    core_affinity::set_for_current(core).then_some(core.id)
}
