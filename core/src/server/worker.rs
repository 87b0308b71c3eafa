//! One worker: a pinned OS thread running one monoio event loop, with its own
//! listener, its connections (in its reactor), its pub/sub hub, and its share
//! of shutdown.
//!
//! Nothing in a [`Worker`] is shared with another core. The per-core scratch
//! buffers live here: every read on this core lands in `read_scratch` and
//! every reply is first encoded into `write_scratch`, so a connection keeps
//! only the bytes its socket did not take.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tracing::warn;

use super::metrics::Metrics;
use super::reactor;
use super::scrape::{self, Scraper};
use super::tls::TlsStore;
use crate::admission::{Admission, CommandPolicy, OriginPolicy};
use crate::auth::Authenticator;
use crate::bus::Mesh;
use crate::config::ServerConfig;
use crate::mailbox::Kicks;
use crate::proto::session::SessionConfig;
use crate::pubsub::hub::{self, Hub, Msg};
use crate::pubsub::Settings;

/// The checks a handshake passes before the upgrade, shared by every worker:
/// the `Origin` allow-list, admission (connection caps and pacing per IP and
/// in total), and authentication.
pub(crate) struct Gate {
    pub origins: OriginPolicy,
    pub admission: Arc<Admission>,
    pub auth: Authenticator,
}

/// The process-wide end of a drain. A worker whose WebSockets have all closed
/// keeps its listener open (answering `/readyz` with 503) until every other
/// worker is done too: closing one reuseport listener resets the connections
/// queued on it, so the listeners close together, at the end.
pub(crate) struct DrainLatch {
    busy: AtomicUsize,
}

impl DrainLatch {
    pub fn new(workers: usize) -> Self {
        Self {
            busy: AtomicUsize::new(workers),
        }
    }

    /// This worker has nothing left to wait for; each worker calls it once.
    pub fn release(&self) {
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }

    /// Every worker has released.
    pub fn done(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }
}

pub(crate) struct Worker {
    pub id: usize,
    pub config: Arc<ServerConfig>,
    pub session_config: SessionConfig,
    /// Connections kicked since the reactor last looked (by the hub, or by
    /// shutdown); the reactor drains it every turn.
    pub kicks: Rc<Kicks>,
    /// Where every read of this core lands; borrowed only inside one
    /// synchronous step of one connection.
    pub read_scratch: RefCell<Box<[u8]>>,
    /// Where TLS ciphertext is read before rustls decrypts it into
    /// `read_scratch` (empty when TLS is off).
    pub tls_scratch: RefCell<Box<[u8]>>,
    /// Where every `wss://` connection gets its rustls configuration, read
    /// once per accepted connection (process-wide; swapped by a reload);
    /// `None` when TLS is off.
    pub tls: Option<Arc<TlsStore>>,
    /// Who may connect, and to what (process-wide, shared by all workers).
    pub gate: Arc<Gate>,
    /// Command rates every `/ws` connection of this worker is held to.
    pub commands: CommandPolicy,
    /// Where replies are encoded before the first send attempt; always left empty.
    pub write_scratch: RefCell<Vec<u8>>,
    /// Set once shutdown begins; new handshakes are refused from then on.
    pub draining: Cell<bool>,
    /// Shared by all workers: when the whole process has drained.
    pub drain: Arc<DrainLatch>,
    /// `accept` is failing (fds exhausted): logged once until it works again.
    pub accept_failing: Cell<bool>,
    /// This core's share of pub/sub.
    pub hub: Rc<Hub>,
    /// This core's metrics, the hub's counters among them (it writes those).
    pub metrics: Rc<Metrics>,
    /// This core's part in `/metrics` scrapes.
    pub scraper: Rc<Scraper>,
}

/// The two cross-core buses every worker joins.
pub(crate) struct Meshes {
    pub pubsub: Arc<Mesh<Msg>>,
    pub scrape: Arc<Mesh<scrape::Msg>>,
}

impl Worker {
    pub fn new(
        id: usize,
        config: Arc<ServerConfig>,
        meshes: Meshes,
        tls: Option<Arc<TlsStore>>,
        gate: Arc<Gate>,
        drain: Arc<DrainLatch>,
    ) -> Self {
        // A TLS record is at most 16 KiB plus its overhead.
        let tls_scratch = vec![0; if tls.is_some() { 17 * 1024 } else { 0 }].into_boxed_slice();
        let metrics = Rc::new(Metrics::default());
        let settings = Settings::from_config(&config);
        let hub = Rc::new(Hub::new(
            id,
            meshes.pubsub,
            settings,
            metrics.pubsub.clone(),
        ));
        let scraper = Rc::new(Scraper::new(
            id,
            meshes.scrape,
            metrics.clone(),
            hub.clone(),
        ));
        Self {
            id,
            session_config: config.session_config(),
            hub,
            metrics,
            scraper,
            kicks: Rc::new(Kicks::default()),
            read_scratch: RefCell::new(vec![0; config.read_buffer_size].into_boxed_slice()),
            write_scratch: RefCell::new(Vec::with_capacity(config.read_buffer_size)),
            draining: Cell::new(false),
            drain,
            accept_failing: Cell::new(false),
            tls_scratch: RefCell::new(tls_scratch),
            tls,
            commands: CommandPolicy::from_config(&config, Instant::now()),
            gate,
            config,
        }
    }
}

/// The worker's life: serve until `shutdown` fires (a message or the sender
/// dropping), then drain its connections for at most `drain_timeout`.
pub(crate) async fn run(
    worker: Rc<Worker>,
    listener: std::net::TcpListener,
    shutdown: flume::Receiver<()>,
) {
    monoio::spawn(hub::run(worker.hub.clone()));
    monoio::spawn(scrape::run(worker.scraper.clone()));
    reactor::run(worker, listener, shutdown).await;
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
                warn!(
                    worker = index,
                    cpu = id,
                    "CPU not available to this process: not pinned"
                );
                return None;
            }
        },
        None => *cores.get(index % cores.len())?,
    };
    core_affinity::set_for_current(core).then_some(core.id)
}
