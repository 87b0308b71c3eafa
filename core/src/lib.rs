//! ringcast: a WebSocket messaging server, one io_uring event loop per core.
//!
//! # Layout
//!
//! - [`os`] — CPU lists, thread pinning and the open-file limit, below
//!   everything else (the load tools use it too).
//! - [`proto`] — the sans-IO protocol core: handshake, frames, masking, UTF-8,
//!   close codes, and the per-connection [`proto::session::Session`]. No IO, no
//!   clock: bytes in, bytes out, time passed in as `now`.
//! - [`config`] — the typed configuration every limit and timeout comes from.
//! - [`auth`] — JWT verification at the handshake and channel permissions
//!   (sans-IO: `now_unix` is an argument).
//! - [`admission`] — connection caps per address and in total, handshake and
//!   command rate limits, the `Origin` allow-list (sans-IO: `now` is an
//!   argument).
//! - [`engine`] — where channel state lives beyond one process: the Redis
//!   engine's bridge and subscriber threads (not wired in yet).
//! - [`server`] — the IO layer on monoio: one pinned worker thread per core,
//!   each with its own `SO_REUSEPORT` listener, connection tasks, timer sweep
//!   and drain. Connections never move between cores.
//!
//! # Data path of one message on `/echo`
//!
//! socket readable → `recv` into the core's scratch buffer → `Session` decodes
//! and unmasks in place → the handler encodes the reply into the core's write
//! scratch → `send` at once → only unsent bytes are kept by the connection.

pub mod admission;
pub mod auth;
pub mod config;
pub mod engine;
pub mod os;
pub mod proto;
pub mod pubsub;
pub mod server;
