//! A connection's mailbox: what the pub/sub hub (and the metrics scrape) may
//! reach of a connection without owning it.
//!
//! It sits below both `pubsub` and `server`: the hub queues frames and raises
//! kicks here, the reactor takes the kicks and the connection flushes the
//! queue. Neither side imports the other for it.
//!
//! | file | what it owns |
//! | --- | --- |
//! | `slot.rs` | a connection's name ([`ConnId`]), its kick flags, the core's kick queue |
//! | `outbox.rs` | a connection's queued output (its own frames and pushes shared within the core), flushed with vectored sends |

mod outbox;
mod slot;

pub use outbox::{Flushed, Outbox, Queued, MAX_IOVECS};
pub use slot::{
    ConnId, Kicks, Slot, SlotDeflate, KICK_ANSWER, KICK_DISCONNECT, KICK_OUTBOUND, KICK_OVERFLOW,
    KICK_SHUTDOWN,
};
