//! Engines: where a channel's sequence, history and cross-node delivery live.
//!
//! Today every channel lives in the memory of its owner core
//! (`pubsub::channel`). [`redis`] is the foundation of the second engine
//! (the cluster engine): offsets, epochs and history in Redis, live pushes over Redis
//! pub/sub, so several ringcast nodes serve one set of channels. It is
//! self-contained and tested against a real `redis-server`, and not yet wired
//! into the server: `redis/mod.rs` ends with the plan for that.

pub mod redis;
