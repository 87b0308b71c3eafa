//! What a connection may use of its core: [`ConnContext`].
//!
//! A connection (`conn.rs`, `ws.rs`) gets this and nothing else of its
//! worker: the limits it is held to, the core's scratch buffers, its metrics,
//! its pub/sub hub and scrape, the handshake gate, and whether the worker
//! drains. The listener, the kick queue, the TLS store and the drain latch
//! stay with the worker and its reactor.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::gate::Gate;
use super::metrics::Metrics;
use super::scrape::Scraper;
use crate::admission::CommandPolicy;
use crate::config::ServerConfig;
use crate::proto::deflate::DeflatePolicy;
use crate::proto::handshake::HandshakeLimits;
use crate::proto::session::SessionConfig;
use crate::pubsub::hub::Hub;

/// The limits a connection is held to, taken once from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct ConnLimits {
    /// From accept to a complete request head (`timeouts.handshake`).
    pub handshake_timeout: Duration,
    /// For our last bytes, or the peer's close, to go through (`timeouts.close`).
    pub close_timeout: Duration,
    /// Bytes queued for the peer past which it is a slow consumer (1008).
    pub max_outbound_bytes: usize,
    /// Sockets this core holds before upgrades get 503.
    pub max_connections_per_worker: usize,
    /// Size of the per-core read scratch; the write scratch shrinks back to it.
    pub read_buffer_size: usize,
    pub handshake: HandshakeLimits,
    pub session: SessionConfig,
    /// Subprotocols we speak, in order of preference.
    pub subprotocols: Vec<String>,
    /// Longest channel name a `/ws` command may use.
    pub max_channel_name_len: usize,
    /// Largest `data` of one publish.
    pub max_publish_bytes: usize,
    /// The server API's bounds (`[api]`).
    pub api: ApiLimits,
    /// What permessage-deflate offers are accepted with (`[deflate]`);
    /// `None` when `deflate.enabled` is off (every offer declined).
    pub deflate: Option<DeflatePolicy>,
    /// Connections of this worker that may keep zlib state at once
    /// (`deflate.max_context_connections`); 0: no limit.
    pub deflate_context_cap: usize,
}

/// What bounds one server API connection (`[api]`).
#[derive(Debug, Clone)]
pub(crate) struct ApiLimits {
    pub max_body_bytes: usize,
    pub max_broadcast_channels: usize,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
}

impl ConnLimits {
    pub fn from_config(config: &ServerConfig) -> Self {
        Self {
            handshake_timeout: config.timeouts.handshake_timeout,
            close_timeout: config.timeouts.close_timeout,
            max_outbound_bytes: config.limits.max_outbound_bytes,
            max_connections_per_worker: config.limits.max_connections_per_worker,
            read_buffer_size: config.limits.read_buffer_size,
            handshake: config.handshake_limits(),
            session: config.session_config(),
            subprotocols: config.server.subprotocols.clone(),
            max_channel_name_len: config.pubsub.max_channel_name_len,
            max_publish_bytes: config.pubsub.max_publish_bytes,
            api: ApiLimits {
                max_body_bytes: config.api.max_body_bytes,
                max_broadcast_channels: config.api.max_broadcast_channels,
                request_timeout: config.api.request_timeout,
                idle_timeout: config.api.idle_timeout,
            },
            deflate: config.deflate.enabled.then(|| config.deflate_policy()),
            deflate_context_cap: config.deflate.max_context_connections,
        }
    }
}

/// The per-core buffers every connection of the core borrows, one
/// synchronous step at a time (never across an await: there is none).
pub(crate) struct Scratch {
    /// Where every read of this core lands.
    pub read: RefCell<Box<[u8]>>,
    /// Where TLS ciphertext is read before rustls decrypts it into `read`
    /// (empty when TLS is off).
    pub tls: RefCell<Box<[u8]>>,
    /// Where replies are encoded before the first send attempt; always left empty.
    pub write: RefCell<Vec<u8>>,
}

impl Scratch {
    pub fn new(read_buffer_size: usize, tls: bool) -> Self {
        // A TLS record is at most 16 KiB plus its overhead.
        let tls = vec![0; if tls { 17 * 1024 } else { 0 }].into_boxed_slice();
        Self {
            read: RefCell::new(vec![0; read_buffer_size].into_boxed_slice()),
            tls: RefCell::new(tls),
            write: RefCell::new(Vec::with_capacity(read_buffer_size)),
        }
    }
}

pub(crate) struct ConnContext {
    /// The worker's index, for logs.
    pub worker: usize,
    pub limits: ConnLimits,
    pub scratch: Scratch,
    /// This core's metrics (the worker owns them; connections count into them).
    pub metrics: Rc<Metrics>,
    /// This core's share of pub/sub (`/ws` connections join it).
    pub hub: Rc<Hub>,
    /// This core's part in `/metrics` scrapes.
    pub scraper: Rc<Scraper>,
    /// Who may connect, and to what (process-wide, shared by all workers).
    pub gate: Arc<Gate>,
    /// Command rates every `/ws` connection of this worker is held to.
    pub commands: CommandPolicy,
    /// Set by the reactor once shutdown begins; new handshakes are refused
    /// (503) and `/readyz` says 503 from then on.
    pub draining: Cell<bool>,
    /// Refusals and abnormal closes, written at info once per interval.
    pub summary: RefCell<super::summary::LogSummary>,
}
