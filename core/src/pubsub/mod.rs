//! Pub/sub: channels sharded by owner core, cross-core fan-out, history and resume.
//!
//! | file | what it owns |
//! | --- | --- |
//! | `channel.rs` | one owned channel: epoch, offsets, history, subscriber cores |
//! | `inbox.rs` | bounded lock-free per-core inboxes and their parked wake-up |
//! | `hub.rs` | one core's pub/sub: routing, ordering, fan-out, backpressure |

pub mod channel;
pub mod hub;
pub mod inbox;
