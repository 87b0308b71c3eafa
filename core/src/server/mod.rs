//! The IO layer: worker threads, listeners, connection tasks, timers.
//!
//! [`start`] binds one `SO_REUSEPORT` listener per worker on the calling
//! thread (so a bad address fails before any thread starts), then starts the
//! workers, each pinned to a core with its own monoio runtime, and returns once
//! every worker runs. The [`ServerHandle`] stops them: [`ServerHandle::shutdown`]
//! (or dropping the handle) makes every worker refuse new WebSockets (503),
//! send close 1001 to its connections and wait up to `drain_timeout` for the
//! close handshakes. Every listener stays open, answering `/readyz` with 503,
//! until the last worker is done. [`ServerHandle::reload_tls`] re-reads the
//! TLS certificate and key for connections accepted from then on.
//!
//! | file | what it owns |
//! | --- | --- |
//! | `driver.rs` | io_uring → plainer flags → epoll fallback |
//! | `listener.rs` | reuseport listeners, port-clash detection |
//! | `gate.rs` | the handshake's checks shared by every worker: origins, admission, auth |
//! | `worker.rs` | one core's state: its connection context, kicks, TLS store, drain |
//! | `context.rs` | what a connection may use of its core: limits, scratch, hub, metrics |
//! | `reactor.rs` | one core's event loop: epoll set of sockets, kicks, timers, drain |
//! | `epoll.rs` | the epoll set the reactor's monoio loop waits on |
//! | `ring_reactor.rs` | the same loop on io_uring completions (`io_uring.socket_io = "completion"`): the connection ring drives each `Conn` |
//! | `drain.rs` | what both loops share: the drain on shutdown, close accounting, the last log line |
//! | `conn.rs` | one connection as a sans-IO state machine: handshake, session, close |
//! | `ring_tls.rs` | `wss://` on the completion path: rustls between the ring and the connection |
//! | `socket.rs` | the epoll driver of one connection: reads, sends, TLS, edges |
//! | `deflate_context.rs` | this worker's count of connections keeping zlib state, against its cap |
//! | `demo.rs` | the demo chat page at `GET /` (auth off only), embedded |
//! | `metrics.rs` | per-core counters, Prometheus rendering |
//! | `scrape.rs` | `GET /metrics`: every core's figures over the bus, the HTTP response |
//! | `store.rs` | the disk engine's start: recovery, first segments, channels handed to their owners |
//! | `tls.rs` | `wss://`: rustls between the socket and the WebSocket layer (in the driver) |
//! | `ws.rs` | the `/ws` endpoint: v1 commands onto the pub/sub hub |
//! | `api.rs` | the server API (`POST /api/*`): keep-alive requests onto the pub/sub hub |
//! | `apikey.rs` | who may call the server API: keys (constant-time), allow-list, connection seats |
//!
//! A connection's mailbox (slot, outbox, kicks) is `crate::mailbox`, the
//! cross-core bus `crate::bus`, the non-blocking socket calls `crate::sys`.
//!
//! Two socket paths, one per `io_uring.socket_io`. Readiness (the default):
//! sockets in an edge-triggered epoll set that the core's monoio loop waits
//! on, bytes moved by plain `recv`/`sendmsg`. Completion: a second ring per
//! core, the worker's own (`crate::uring`, on the io-uring crate), carrying
//! multishot accept and recv into provided buffers and `sendmsg` SQEs; monoio
//! stays the runtime (timers, signals, the inbox wake-ups, the tools) and
//! waits on that ring's eventfd. Not monoio's own ring, because monoio 0.2.4
//! has no multishot ops, no provided-buffer rings and no way to push an SQE
//! of ours, and its ops own their buffer: a read pending on every idle
//! connection pins one buffer each (one monoio task per connection measured
//! 2.37 KiB per idle connection, 1.29 trimmed, against 0.67 KiB for
//! readiness). The worker's own ring measured (2026-12-04, README
//! "Socket IO on io_uring"): 0.036 system calls per echoed message against
//! 1.85, 0.70-0.72 KiB per idle connection, and, because nine tenths of a
//! message's CPU is the kernel's TCP, about the same CPU per message (3.7
//! against 4.0 us).

mod api;
mod apikey;
mod conn;
mod context;
mod deadlines;
mod deflate_context;
mod demo;
mod drain;
mod driver;
mod epoll;
mod gate;
mod listener;
pub mod metrics;
mod reactor;
mod ring_reactor;
mod ring_tls;
mod scrape;
mod socket;
mod store;
mod summary;
pub mod tls;
mod worker;
mod ws;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use driver::{DriverKind, UringFlags};
pub use listener::{BindError, SocketBuffers};
pub use tls::ReloadError;
use tracing::info;

use crate::bus::Mesh;
use crate::config::EngineKind;
use crate::config::{ConfigError, ServerConfig};
use crate::engine::redis::RedisSettings;
use crate::pubsub::cluster::Cluster;
use crate::pubsub::hub;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthSetupError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    ApiKeys(#[from] crate::config::api::ApiKeyError),
    #[error("cannot start worker thread {worker}: {source}")]
    Thread {
        worker: usize,
        source: std::io::Error,
    },
    #[error("worker {worker} has no usable IO driver: {source}")]
    Driver {
        worker: usize,
        source: std::io::Error,
    },
    #[error("worker {worker} did not start its event loop within 10 s of building its state")]
    StartTimeout { worker: usize },
    #[error("worker {worker} stopped before it started (see the error above)")]
    WorkerDied { worker: usize },
    /// `engine.kind = "redis"` and Redis refused or did not answer at
    /// start (the message has the URL, password redacted, and the reason).
    #[error("engine.redis_url: {0} (set engine.start_degraded = true to start anyway)")]
    Engine(crate::engine::redis::EngineError),
    /// `engine.kind = "disk"`: the store directory is missing, unreadable or
    /// not writable, or a segment could not be read (the message names it).
    #[error("{0}")]
    Store(#[from] crate::engine::disk::StoreError),
}

/// What a worker thread tells [`start`] on its way up.
enum Started {
    /// Its state is built: with the disk engine that includes its channels'
    /// recovered history, which takes as long as the history is big.
    Built,
    /// Its runtime's driver, and whether its sockets got the completion path.
    Running(DriverKind, bool),
    Failed(std::io::Error),
}

/// Waits until every worker runs its event loop. Building a worker's state
/// has no time limit (it is work, not waiting: a recovered history of
/// gigabytes takes seconds), but a worker thread that ends before it
/// reports is an error at once, and starting the loop once built must take
/// less than 10 s.
fn wait_for_workers(
    ready: &mpsc::Receiver<(usize, Started)>,
    threads: &[JoinHandle<()>],
) -> Result<Vec<(DriverKind, bool)>, StartError> {
    const POLL: Duration = Duration::from_millis(100);
    const LOOP_START: Duration = Duration::from_secs(10);
    let workers = threads.len();
    let mut built = vec![false; workers];
    let mut drivers = vec![None; workers];
    let mut all_built_at = None;
    while drivers.iter().any(Option::is_none) {
        match ready.recv_timeout(POLL) {
            Ok((id, Started::Built)) => {
                built[id] = true;
                if built.iter().all(|b| *b) {
                    all_built_at = Some(Instant::now());
                }
            }
            Ok((id, Started::Running(kind, completion))) => drivers[id] = Some((kind, completion)),
            Ok((worker, Started::Failed(source))) => {
                return Err(StartError::Driver { worker, source })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let worker = (0..workers).find(|&w| drivers[w].is_none()).unwrap_or(0);
                return Err(StartError::WorkerDied { worker });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let waiting = (0..workers).find(|&w| drivers[w].is_none()).unwrap_or(0);
                if let Some(worker) = (0..workers).find(|&w| !built[w] && threads[w].is_finished())
                {
                    return Err(StartError::WorkerDied { worker });
                }
                if all_built_at.is_some_and(|at| at.elapsed() > LOOP_START) {
                    return Err(StartError::StartTimeout { worker: waiting });
                }
            }
        }
    }
    Ok(drivers.into_iter().flatten().collect())
}

/// A running server. Dropping it shuts the server down without waiting.
pub struct ServerHandle {
    local_addr: SocketAddr,
    /// The server API's own listener (`api.listen`), when it has one.
    api_addr: Option<SocketAddr>,
    drivers: Vec<DriverKind>,
    /// Per worker: its sockets are on the completion path (`io_uring.socket_io`).
    completion: Vec<bool>,
    /// One per worker; a message or the sender's drop starts that worker's drain.
    shutdown: Vec<flume::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    /// The TLS configuration every worker reads on accept (`None`: TLS off);
    /// [`ServerHandle::reload_tls`] swaps what it holds.
    tls: Option<Arc<tls::TlsStore>>,
    /// The Redis engine's threads (`engine.kind = "redis"`); stopped after
    /// the workers.
    cluster: Option<Arc<Cluster>>,
}

impl ServerHandle {
    /// The address the workers accept on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the server API listens when `api.listen` gives it a port of
    /// its own (the real port when 0 was asked).
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// The IO driver each worker runs on, by worker index.
    pub fn drivers(&self) -> &[DriverKind] {
        &self.drivers
    }

    /// Per worker, by index: whether its sockets got the completion path
    /// (`io_uring.socket_io = "completion"` and everything it needs).
    pub fn completion_socket_io(&self) -> &[bool] {
        &self.completion
    }

    /// Re-reads `server.tls_cert` and `server.tls_key` (the paths given at
    /// start) and serves them to every connection accepted from now on;
    /// connections already open keep the certificate they started with.
    ///
    /// A missing or unparsable file, or a key that is not the certificate's,
    /// is refused with [`ReloadError::Load`] naming the file and the reason,
    /// and the previous certificate stays in service. With TLS off this is
    /// [`ReloadError::TlsOff`] (a reload cannot turn TLS on).
    pub fn reload_tls(&self) -> Result<(), ReloadError> {
        let store = self.tls.as_ref().ok_or(ReloadError::TlsOff)?;
        store.reload()?;
        Ok(())
    }

    /// The certificate chain file [`ServerHandle::reload_tls`] reads, or
    /// `None` when TLS is off.
    pub fn tls_cert_path(&self) -> Option<&std::path::Path> {
        self.tls.as_deref().map(tls::TlsStore::cert_path)
    }

    /// Starts the drain on every worker; returns at once.
    pub fn shutdown(&self) {
        for tx in &self.shutdown {
            let _ = tx.try_send(());
        }
    }

    /// Shuts down and waits for every worker thread to finish.
    pub fn join(mut self) {
        self.shutdown();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        if let Some(cluster) = self.cluster.take() {
            cluster.close();
        }
    }
}

/// Binds, starts every worker, and returns once all of them are running.
pub fn start(config: ServerConfig) -> Result<ServerHandle, StartError> {
    config.validate()?;
    let workers = config.server.effective_workers();
    let buffers = SocketBuffers {
        recv: config.server.so_rcvbuf,
        send: config.server.so_sndbuf,
    };
    let listeners = listener::bind_reuseport(
        config.server.listen,
        workers,
        config.server.backlog,
        buffers,
    )?;
    let local_addr = listeners[0].local_addr().map_err(|e| BindError::Io {
        addr: config.server.listen,
        source: e,
    })?;
    let tls_store = match config.server.tls_cert.as_os_str().is_empty() {
        true => None,
        false => Some(Arc::new(tls::TlsStore::load(
            &config.server.tls_cert,
            &config.server.tls_key,
        )?)),
    };
    let auth = crate::auth::Authenticator::from_config(&config.auth)?;
    if let Some(warning) = auth.startup_warning() {
        tracing::warn!("{warning}");
    }
    let origins = config.admission.allowed_origins.clone();
    let admission = crate::admission::Admission::new(
        crate::admission::AdmissionConfig::from_config(&config),
        std::time::Instant::now(),
    );
    let demo_page = config.server.demo_page.served(auth.is_enabled());
    let api = apikey::ApiGate::from_config(&config)?;
    // The API's own listener (`api.listen`): one reuseport socket per worker.
    let mut api_listeners: Vec<Option<std::net::TcpListener>> = match config.api.listen {
        Some(addr) if api.is_some() => listener::bind_reuseport(
            addr,
            workers,
            config.server.backlog,
            SocketBuffers::default(),
        )?
        .into_iter()
        .map(Some)
        .collect(),
        _ => (0..workers).map(|_| None).collect(),
    };
    let api_addr = api_listeners
        .first()
        .and_then(|l| l.as_ref())
        .and_then(|l| l.local_addr().ok());
    if let Some(addr) = api_addr {
        info!(%addr, "server API listening");
    }
    let gate = Arc::new(gate::Gate {
        origins,
        admission,
        auth,
        demo_page,
        api,
    });
    let config = Arc::new(config);
    let mesh = Arc::new(Mesh::new(workers, config.pubsub.inbox_capacity));
    let cluster = match config.engine.kind {
        EngineKind::Memory | EngineKind::Disk => None,
        EngineKind::Redis => {
            let settings = RedisSettings::from_config(&config);
            let degraded = config.engine.start_degraded;
            let cluster = Cluster::start(settings, mesh.clone(), degraded, local_addr.to_string())
                .map_err(StartError::Engine)?;
            info!(url = %config.engine.url, "redis engine connected");
            Some(Arc::new(cluster))
        }
    };
    let mut stores = match config.engine.kind {
        EngineKind::Disk => store::open(&config, workers)?
            .into_iter()
            .map(Some)
            .collect(),
        _ => (0..workers).map(|_| None).collect::<Vec<_>>(),
    };
    let scrape_mesh = Arc::new(scrape::mesh(workers));
    let drain = Arc::new(worker::DrainLatch::new(workers));
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut shutdown = Vec::with_capacity(workers);
    let mut threads = Vec::with_capacity(workers);
    for (id, listener) in listeners.into_iter().enumerate() {
        let (tx, rx) = flume::bounded(1);
        shutdown.push(tx);
        let config = config.clone();
        let meshes = worker::Meshes {
            pubsub: mesh.clone(),
            scrape: scrape_mesh.clone(),
        };
        let tls_store = tls_store.clone();
        let gate = gate.clone();
        let drain = drain.clone();
        let ready = ready_tx.clone();
        let cluster = cluster.clone();
        let api_listener = api_listeners.get_mut(id).and_then(Option::take);
        let store = stores[id].take();
        let thread = std::thread::Builder::new()
            .name(format!("ringcast-w{id}"))
            .spawn(move || {
                let cpu = if config.server.pin_workers {
                    worker::pin_current_thread(id, config.server.cpu_for_worker(id))
                } else {
                    None
                };
                let entries = config.io_uring.entries;
                let flags = config.io_uring.flags();
                let force_epoll = config.io_uring.force_epoll;
                let worker = Rc::new(worker::Worker::new(
                    id,
                    config,
                    meshes,
                    tls_store,
                    gate,
                    drain,
                    worker::Engine { cluster, store },
                ));
                let _ = ready.send((id, Started::Built));
                let started = driver::block_on_best(entries, flags, force_epoll, |kind| {
                    let (ring, socket_io) = socket_io(&worker, &kind);
                    info!(worker = id, cpu = ?cpu, driver = %kind, socket_io = %socket_io, "worker started");
                    let _ = ready.send((id, Started::Running(kind, ring.is_some())));
                    run_worker(worker, ring, listener, api_listener, rx)
                });
                if let Err(e) = started {
                    let _ = ready.send((id, Started::Failed(e)));
                }
            })
            .map_err(|source| StartError::Thread { worker: id, source })?;
        threads.push(thread);
    }
    drop(ready_tx);
    let (drivers, completion) = wait_for_workers(&ready_rx, &threads)?.into_iter().unzip();
    Ok(ServerHandle {
        local_addr,
        api_addr,
        drivers,
        completion,
        shutdown,
        threads,
        tls: tls_store,
        cluster,
    })
}

/// The socket IO a worker gets (`io_uring.socket_io`), with its connection
/// ring on the completion path, and how to say so in its start line: the
/// completion path needs an io_uring runtime and a kernel with multishot
/// receive and buffer rings (TLS listeners included); else readiness, and
/// why.
fn socket_io(
    worker: &worker::Worker,
    kind: &driver::DriverKind,
) -> (Option<crate::uring::Ring>, String) {
    let section = &worker.config.io_uring;
    if section.socket_io == crate::config::SocketIo::Readiness {
        return (None, "readiness".into());
    }
    let refused = if matches!(kind, driver::DriverKind::Epoll { .. }) {
        "the runtime is epoll".to_owned()
    } else {
        match ring_reactor::build_ring(section) {
            Ok(ring) => {
                let features = ring.features();
                return (Some(ring), format!("completion ({features})"));
            }
            Err(why) => why,
        }
    };
    (None, format!("readiness (completion refused: {refused})"))
}

/// A worker's life on its thread: its hub's and its scrape's bus tasks, and
/// its reactor, which serves until `shutdown` fires (a message or the sender
/// dropping), then drains its connections for at most `drain_timeout`; on
/// the disk engine, the hub then syncs every segment it wrote.
async fn run_worker(
    worker: Rc<worker::Worker>,
    ring: Option<crate::uring::Ring>,
    listener: std::net::TcpListener,
    api_listener: Option<std::net::TcpListener>,
    shutdown: flume::Receiver<()>,
) {
    monoio::spawn(hub::run(worker.ctx.hub.clone()));
    monoio::spawn(scrape::run(worker.ctx.scraper.clone()));
    let hub = worker.ctx.hub.clone();
    match ring {
        Some(ring) => ring_reactor::run(worker, ring, listener, api_listener, shutdown).await,
        None => reactor::run(worker, listener, api_listener, shutdown).await,
    }
    // Drained: the disk engine syncs what it wrote before the thread ends.
    hub.close_store().await;
}
