//! ringcast-tools: the `ringcast-load` load generator and its reports.
//!
//! `ringcast-load` drives any RFC 6455 server over plain `ws://`; it is how
//! ringcast's headline figures are measured. Each scenario is a subcommand of
//! the binary (`src/bin/ringcast-load.rs`), with its logic in a module here.
//! Its promise: latency percentiles, not averages; no coordinated omission
//! (open-loop latency runs from the *intended* send time); and a report that
//! says when the generator itself was the bottleneck.
//!
//! # Layout
//!
//! | module | what it owns |
//! | --- | --- |
//! | [`echo`] | the `echo` scenario: open loop (`--rate`) or closed loop (`--inflight`) round trips |
//! | [`fanout`] | the `fanout` scenario (and `storm`'s run): publishers, subscribers, deliveries checked by offset |
//! | [`storm`] | who a storm drops and when, and the storm's verdict |
//! | [`api`] | the `api` scenario: ringcast's server API, publishes/s on keep-alive connections (closed loop, blocking threads) and request → delivery |
//! | [`connect`] | the `connect` scenario: open N connections at a rate, hold them idle, sample the server's RSS |
//! | [`engine`] | the thread-per-core runner: setup, one window for all threads, drain, close, Ctrl-C, hard stop |
//! | [`link`] | a running connection: outbound buffer + writer task, read loop + handler |
//! | [`client`] | opening one connection: source-bound TCP connect, handshake, ping/pong and close |
//! | [`schedule`] | the open-loop schedule of intended send times |
//! | [`dispatch`] | the open-loop dispatch step of every pacing loop, and send counting |
//! | [`pace`] | precise waits: timer, then a fair spin (monoio's timer ticks in ms) |
//! | [`stamp`] | send-time stamps and sequence numbers inside payloads |
//! | [`v1`] | the client side of ringcast's wire protocol v1 |
//! | [`gaps`] | gap and duplicate detection over numbered streams |
//! | [`stats`] | what a thread measures (histograms, counters, errors) and publishes |
//! | [`summary`] | the report of echo/fanout/storm: text, JSON, `.hgrm`, client-bound verdict |
//! | [`report`] | report building blocks: latency summaries, µs formatting, causes, server RSS |
//! | [`hgrm`] | HdrHistogram's percentile-distribution text format |
//! | [`plot`] | latency-by-percentile plots (SVG, or HTML with the table) |
//! | [`progress`] | live progress on a terminal (indicatif), silent otherwise |
//! | [`rusage`] | the generator's own CPU time |
//! | [`source`] | source-address sets (`127.0.0.2-127.0.0.9`) used round-robin |
//! | [`url`] | `ws://` URL parsing and resolution |
//! | [`rlimit`] | the descriptor budget of a run (raising the limit is `ringcast::os`) |
//! | [`rss`] | another process's RSS and the kernel's TCP memory, from `/proc` |
//!
//! # Threads
//!
//! A scenario runs `--threads` OS threads, each with its own monoio runtime
//! (io_uring, or epoll where io_uring is unavailable), optionally pinned with
//! `--cpus`. Connections never move between threads; threads share only a few
//! atomics and one mutex-guarded slot each where they publish their figures
//! every 100 ms. Frames are encoded and decoded with the server's own sans-IO
//! codec (`ringcast::proto`) in the client role: every client frame masked
//! with a fresh key, payloads built once per thread and restamped per message.
//!
//! # Bounds
//!
//! Every loop has a count and a deadline: connects and handshakes time out,
//! the setup phase has a deadline, the window ends on time, the drain and the
//! closing handshakes are bounded, and a hard stop reports without a thread
//! that does not return; a run always ends by itself.

pub mod api;
pub mod client;
pub mod connect;
pub mod dispatch;
pub mod echo;
pub mod engine;
pub mod fanout;
pub mod gaps;
pub mod hgrm;
pub mod link;
pub mod pace;
pub mod plot;
pub mod progress;
pub mod report;
pub mod rlimit;
pub mod rss;
pub mod rusage;
pub mod schedule;
pub mod source;
pub mod stamp;
pub mod stats;
pub mod storm;
pub mod summary;
pub mod url;
pub mod v1;
