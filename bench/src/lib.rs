//! Support code for ringcast's benchmarks and peer servers.
//!
//! | file | what it is for |
//! | --- | --- |
//! | `aligned.rs` | payload slices at a chosen offset from a 64-byte boundary (masking at odd alignments) |
//! | `mem_stream.rs` | an in-memory tokio stream, and polling an always-ready future, to drive async-only codecs (fastwebsockets) without sockets |
//! | `inputs.rs` | the inputs the criterion benches share: wire bytes of many small frames, UTF-8 texts, an upgrade request |
//! | `peer.rs` | what the peer servers in `src/bin/` share: `--listen ADDR`, the ready line, the broadcast hub |
//!
//! The benches live in `benches/`, the peer servers in `src/bin/`, the
//! side-by-side script in `peers/run.sh`; `README.md` says how to run them.

pub mod aligned;
pub mod inputs;
pub mod mem_stream;
pub mod peer;
