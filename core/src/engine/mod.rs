//! Engines: where a channel's sequence, history and cross-node delivery live.
//!
//! With `engine.kind = "memory"` (the default) every channel lives in the
//! memory of its owner core (`pubsub::channel`). [`redis`] is the second
//! engine (the cluster engine): offsets, epochs and history in Redis, live
//! pushes over Redis pub/sub, so several ringcast nodes serve one set of
//! channels. The cores reach it through `pubsub::cluster` and
//! `pubsub::mirror`; `redis/mod.rs` ends with how it is wired in.
//! [`disk`] is the third (`engine.kind = "disk"`): the memory engine's
//! channels plus a segmented log per owner core, recovered at start; the
//! owner cores drive it from `pubsub::hub`.

pub mod disk;
pub mod redis;
