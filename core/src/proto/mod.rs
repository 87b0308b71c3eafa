//! The sans-IO WebSocket protocol core: RFC 6455 over byte slices.
//!
//! Nothing in here touches a socket, a runtime or a clock. The IO layer
//! (`crate::server`) reads bytes into a per-core scratch buffer, hands them to
//! these state machines, and writes out the bytes they produce. That split is
//! what lets the codec be unit-tested with literal wire bytes, fuzzed and
//! benchmarked without sockets.
//!
//! | file | what it owns |
//! | --- | --- |
//! | `handshake/` | HTTP/1.1 upgrade request parsing and validation (RFC 6455 §4.2.1); `response.rs`: the response bytes |
//! | `frame.rs` | frame header parse/encode, opcodes, frame encoders |
//! | `mask.rs` | the XOR masking kernel |
//! | `utf8.rs` | incremental UTF-8 validation across fragments |
//! | `close.rs` | close codes and close-frame payloads |
//! | `decoder/` | the incoming-frame state machine: limits, fragmentation, control frames; `tests/cases.rs`: the wire streams it is tested on |
//! | `deflate/` | permessage-deflate (RFC 7692): negotiation, compress, inflate within the size limit |
//! | `error.rs` | protocol errors, each knowing its close code |

pub mod close;
pub mod decoder;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod session;
pub mod utf8;
pub mod v1;
