//! One worker: a pinned OS thread running one monoio event loop, with its own
//! listener, its connections (in its reactor), its pub/sub hub, and its share
//! of shutdown.
//!
//! Nothing in a [`Worker`] is shared with another core except what is behind
//! an `Arc` (configuration, gate, TLS store, drain latch, the buses). The
//! per-core scratch buffers live in its [`ConnContext`]: every read on this
//! core lands in one buffer and every reply is first encoded into another, so
//! a connection keeps only the bytes its socket did not take.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tracing::warn;

use super::context::{ConnContext, ConnLimits, Scratch};
use super::gate::Gate;
use super::metrics::Metrics;
use super::scrape::{self, Scraper};
use super::store::CoreStore;
use super::summary::LogSummary;
use super::tls::TlsStore;
use crate::admission::CommandPolicy;
use crate::bus::Mesh;
use crate::config::ServerConfig;
use crate::engine::disk::Log;
use crate::mailbox::Kicks;
use crate::pubsub::cluster::Cluster;
use crate::pubsub::hub::{Hub, Msg};
use crate::pubsub::Settings;

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
    /// What this core's connections may use of it; the worker owns its
    /// metrics, hub and scrape through it.
    pub ctx: ConnContext,
    /// Connections kicked since the reactor last looked (by the hub, the
    /// scrape, or shutdown); the reactor drains it every turn.
    pub kicks: Rc<Kicks>,
    /// Where every `wss://` connection gets its rustls configuration, read
    /// once per accepted connection (process-wide; swapped by a reload);
    /// `None` when TLS is off.
    pub tls: Option<Arc<TlsStore>>,
    /// Shared by all workers: when the whole process has drained.
    pub drain: Arc<DrainLatch>,
    /// `accept` is failing (fds exhausted): logged once until it works again.
    pub accept_failing: Cell<bool>,
}

/// The two cross-core buses every worker joins.
pub(crate) struct Meshes {
    pub pubsub: Arc<Mesh<Msg>>,
    pub scrape: Arc<Mesh<scrape::Msg>>,
}

/// The engine a worker's hub runs on beside its memory: the node's Redis
/// engine, or this core's share of the disk engine; neither for memory.
pub(crate) struct Engine {
    pub cluster: Option<Arc<Cluster>>,
    pub store: Option<CoreStore>,
}

impl Worker {
    pub fn new(
        id: usize,
        config: Arc<ServerConfig>,
        meshes: Meshes,
        tls: Option<Arc<TlsStore>>,
        gate: Arc<Gate>,
        drain: Arc<DrainLatch>,
        engine: Engine,
    ) -> Self {
        let Engine { cluster, store } = engine;
        let metrics = Rc::new(Metrics::default());
        let settings = Settings::from_config(&config);
        let mut hub = Hub::new(id, meshes.pubsub, settings, metrics.pubsub.clone());
        if let Some(cluster) = cluster {
            hub = hub.with_cluster(cluster);
        }
        if let Some(store) = store {
            let log = Log::new(
                store.settings,
                store.first,
                store.closed,
                store.stats.clone(),
            );
            hub = hub.with_store(Rc::new(log), store.recovered, store.stats);
        }
        let hub = Rc::new(hub);
        let scraper = Rc::new(Scraper::new(
            id,
            meshes.scrape,
            metrics.clone(),
            hub.clone(),
        ));
        let ctx = ConnContext {
            worker: id,
            limits: ConnLimits::from_config(&config),
            scratch: Scratch::new(config.limits.read_buffer_size, tls.is_some()),
            metrics,
            hub,
            scraper,
            gate,
            commands: CommandPolicy::from_config(&config, Instant::now()),
            draining: Cell::new(false),
            summary: RefCell::new(LogSummary::new(config.log.summary_interval)),
        };
        Self {
            id,
            config,
            ctx,
            kicks: Rc::new(Kicks::default()),
            tls,
            drain,
            accept_failing: Cell::new(false),
        }
    }
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
    crate::os::cpus::pin_current_thread(core.id)
        .ok()
        .map(|()| core.id)
}
