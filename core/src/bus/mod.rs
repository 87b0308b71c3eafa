//! The cross-core bus: how the cores of one process hand each other messages.
//!
//! It knows nothing of what the messages say; each client picks its own
//! message type and gets its own [`Mesh`] (pub/sub uses one, the `/metrics`
//! scrape another). A client's task on each core runs [`drain::run`] over
//! its [`Port`], which hands every message to the client's handler.
//!
//! | file | what it owns |
//! | --- | --- |
//! | `mesh.rs` | bounded lock-free per-core inboxes and their parked wake-up |
//! | `port.rs` | one core's end: per-target spill queue, in-order dispatch |
//! | `drain.rs` | the loop a client runs on each core: drain, retry, sleep |

pub mod drain;
mod mesh;
mod port;

pub use mesh::Mesh;
pub use port::Port;
