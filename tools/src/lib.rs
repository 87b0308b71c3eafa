//! ringcast-tools: the `ringcast-load` load generator and its reports.
//!
//! `ringcast-load` drives any RFC 6455 server over plain `ws://`; it is how
//! ringcast's headline figures are measured. Each scenario is a subcommand of
//! the binary (`src/bin/ringcast-load.rs`), with its logic in a module here.
//!
//! # Layout
//!
//! | module | what it owns |
//! | --- | --- |
//! | [`connect`] | the `connect` scenario: open N connections at a rate, hold them idle, sample the server's RSS |
//! | [`client`] | one client connection: source-bound TCP connect, opening handshake, ping/pong and close |
//! | [`report`] | latency percentiles (HDR histograms, µs), failure counts by cause, the server-memory line |
//! | [`source`] | source-address sets (`127.0.0.2-127.0.0.9`) used round-robin |
//! | [`url`] | `ws://` URL parsing and resolution |
//! | [`cpus`] | CPU lists and thread pinning |
//! | [`rlimit`] | raising `RLIMIT_NOFILE` |
//! | [`rss`] | another process's RSS and the kernel's TCP memory, from `/proc` |
//!
//! # Threads
//!
//! A scenario runs `--threads` OS threads, each with its own monoio runtime
//! (io_uring, or epoll where io_uring is unavailable), optionally pinned with
//! `--cpus`. Connections never move between threads; threads share only a few
//! atomic counters, and hand their histograms back when they end. Frames are
//! encoded and decoded with the server's own sans-IO codec
//! (`ringcast::proto`) in the client role.
//!
//! # Bounds
//!
//! Every loop has a count and a deadline: connects and handshakes time out,
//! the open phase has a hard deadline, the hold ends on time, and the closing
//! handshakes are bounded; a run always ends by itself.

pub mod client;
pub mod connect;
pub mod cpus;
pub mod report;
pub mod rlimit;
pub mod rss;
pub mod source;
pub mod url;
