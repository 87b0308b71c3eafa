//! One core's pub/sub figures: counters the hub writes as it works, and the
//! gauges read from its state when a scrape asks.
//!
//! The worker owns the [`Stats`] (in its metrics, next to the connection
//! counters) and lends the hub an `Rc` to write them; only this core writes
//! them. A scrape copies them, with the gauges, into a [`PubsubSnapshot`]
//! (`Hub::snapshot`), which may cross cores.

use std::cell::Cell;

use crate::stats::{Histogram, HistogramSnapshot};

/// Per-core pub/sub counters (plain cells: only this core writes them).
#[derive(Default)]
pub struct Stats {
    /// Publishes this core accepted as the channel's owner.
    pub publishes: Cell<u64>,
    /// Frames queued to local subscribers (one per subscriber per push).
    pub deliveries: Cell<u64>,
    /// Local subscribers closed for an outbox over `max_outbound_bytes`.
    pub slow_consumer_closes: Cell<u64>,
    /// Publishes refused as `overloaded` (by this core as sender or owner).
    pub overloaded: Cell<u64>,
    /// Idle channels this owner evicted after the history TTL.
    pub evicted_channels: Cell<u64>,
    /// `/ws` connections whose token's `info` claim was over
    /// `pubsub.max_presence_info_bytes` (presence shows them without it).
    pub presence_info_dropped: Cell<u64>,
    /// Owner side of one publish: offset, encode, history and dispatch.
    pub publish_fanout: Histogram,
}

/// The pub/sub part of a core's figures, as a scrape reports them.
#[derive(Debug, Clone, Default)]
pub struct PubsubSnapshot {
    pub publishes: u64,
    pub deliveries: u64,
    pub slow_consumer_closes: u64,
    pub publishes_refused: u64,
    pub evicted_channels: u64,
    pub presence_info_dropped: u64,
    /// Messages this core compressed (`pubsub::deflate::CoreDeflate`).
    pub deflate_compressions: u64,
    pub channels: u64,
    pub subscriptions: u64,
    pub history_bytes: u64,
    pub inbox_depth: u64,
    pub publish_fanout: HistogramSnapshot,
}
