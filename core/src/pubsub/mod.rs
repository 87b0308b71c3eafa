//! Pub/sub: channels sharded by owner core, cross-core fan-out, history and resume.
//!
//! It reaches connections only through their mailbox (`crate::mailbox`) and
//! other cores only through the bus (`crate::bus`); it knows nothing of
//! sockets, HTTP or the `/metrics` text.
//!
//! | file | what it owns |
//! | --- | --- |
//! | `answer.rs` | where a command's answer goes (a `/ws` frame or a server API part), queries to owners and to every core |
//! | `presence.rs` | who is subscribed to a channel, kept by its owner; join/leave pushes |
//! | `channel.rs` | one owned channel: epoch, offsets, history, subscriber cores |
//! | `hub.rs` | one core's pub/sub: routing, ordering, fan-out, backpressure |
//! | `hub/queries.rs` | the hub's answers to `history`, `presence` and server API questions, presence upkeep and join/leave pushes, messages between nodes |
//! | `hub/durable.rs` | the disk engine on the owner core: records appended to its log, effects held until written |
//! | `cluster.rs` | the Redis engine as the cores see it: publish, history reads, pushes onto the bus |
//! | `mirror.rs` | a Redis-engine channel on its owner core: delivered offset, gaps, answers to subscribes |
//! | `deflate.rs` | compression of outgoing frames: a push compressed once, on its owner core, while some subscriber takes it; streams of connections that keep context |
//! | `refusal.rs` | a refused command's error code and the message naming the key and value that refused it |
//! | `settings.rs` | the limits a hub works under, taken from the configuration |
//! | `stats.rs` | one core's pub/sub counters and their scrape snapshot |

pub mod answer;
pub mod channel;
pub mod cluster;
pub mod deflate;
pub mod hub;
pub mod mirror;
pub mod presence;
pub mod refusal;
mod settings;
mod stats;

pub use refusal::Refusal;
pub use settings::Settings;
pub use stats::{PubsubSnapshot, Stats};
