//! Pub/sub: channels sharded by owner core, cross-core fan-out, history and resume.
//!
//! It reaches connections only through their mailbox (`crate::mailbox`) and
//! other cores only through the bus (`crate::bus`); it knows nothing of
//! sockets, HTTP or the `/metrics` text.
//!
//! | file | what it owns |
//! | --- | --- |
//! | `channel.rs` | one owned channel: epoch, offsets, history, subscriber cores |
//! | `hub.rs` | one core's pub/sub: routing, ordering, fan-out, backpressure |
//! | `refusal.rs` | a refused command's error code and the message naming the key and value that refused it |
//! | `settings.rs` | the limits a hub works under, taken from the configuration |
//! | `stats.rs` | one core's pub/sub counters and their scrape snapshot |

pub mod channel;
pub mod hub;
pub mod refusal;
mod settings;
mod stats;

pub use refusal::Refusal;
pub use settings::Settings;
pub use stats::{PubsubSnapshot, Stats};
