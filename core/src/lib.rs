//! ringcast: a WebSocket messaging server, one io_uring event loop per core.
//!
//! # Layout
//!
//! Dependencies flow one way: **a module imports only from modules above it
//! in this list** (the binary, `main.rs`, sits below them all).
//!
//! - [`os`] — CPU lists, thread pinning and the open-file limit, below
//!   everything else (the load tools use it too).
//! - [`proto`] — the sans-IO protocol core: handshake, frames, masking, UTF-8,
//!   close codes, the `/ws` wire protocol v1, and the per-connection
//!   [`proto::session::Session`]. No IO, no clock: bytes in, bytes out, time
//!   passed in as `now`.
//! - [`config`] — the typed configuration every limit and timeout comes from,
//!   one section per TOML table, every value parsed once at load (including
//!   the value types `auth`, `admission` and `server` consume: the `Origin`
//!   allow-list, trusted proxies, JWT key source, io_uring flags).
//! - [`auth`] — JWT verification at the handshake and channel permissions
//!   (sans-IO: `now_unix` is an argument).
//! - [`admission`] — connection caps per address and in total, handshake and
//!   command rate limits, the `Origin` allow-list (sans-IO: `now` is an
//!   argument).
//! - [`sys`] — non-blocking `recv`/`send` on raw sockets into borrowed buffers.
//! - [`uring`] — a core's connection ring: multishot accept and recv into a
//!   provided-buffer ring, sendmsg, shutdown, close and cancel as
//!   completions, one `io_uring_enter` per loop turn.
//! - [`rt`] — small helpers for the tasks of one core's monoio runtime.
//! - [`stats`] — per-core counters and latency histograms (the primitives).
//! - [`mailbox`] — a connection's mailbox: its id, outbox and kick flags, the
//!   only way the hub and the scrape reach a connection.
//! - [`bus`] — the cross-core bus: per-core lock-free inboxes with parked
//!   wake-ups, in-order spill, and the drain loop, for any message type.
//! - [`engine`] — where channel state lives beyond one process: the Redis
//!   engine's bridge and subscriber threads, which the owner cores of
//!   `pubsub` drive with `engine.kind = "redis"`, and the disk engine's
//!   per-core logs and start-up recovery (`engine.kind = "disk"`).
//! - [`pubsub`] — channels sharded by owner core, fan-out over the bus into
//!   mailboxes, history and resume.
//! - [`server`] — the IO layer on monoio: one pinned worker thread per core,
//!   each with its own `SO_REUSEPORT` listener, connections, timer sweep,
//!   drain, and the `/metrics` scrape. Connections never move between cores.
//!   A connection itself (`server/conn.rs`) is a sans-IO state machine like
//!   `proto`'s session; its driver (`server/socket.rs`) moves the bytes.
//!
//! # Data path of one message on `/echo`
//!
//! socket readable → `recv` into the core's scratch buffer →
//! `Conn::handle_read` → `Session` decodes and unmasks in place → the handler
//! encodes the reply into the core's write scratch → `Conn::poll_transmit`
//! offers it (behind anything queued) → `send` at once → `Conn::handle_sent`
//! keeps only the bytes the socket did not take.

pub mod admission;
pub mod auth;
pub mod bus;
pub mod config;
pub mod engine;
pub mod mailbox;
pub mod os;
pub mod proto;
pub mod pubsub;
pub mod rt;
pub mod server;
pub mod stats;
pub mod sys;
pub mod uring;
