//! The disk engine (`engine.kind = "disk"`): every owner core appends its
//! channels' publishes to its own segmented log under `store.data_path`,
//! and a restart (or a crash) recovers every channel's epoch, offsets and
//! history from those logs.
//!
//! # Layout on disk
//!
//! One flat directory. A segment is `RUN-CORE-SEQ.log`: `RUN` counts
//! starts (recovery picks the next one), `CORE` is the worker that wrote
//! it, `SEQ` its segments in order. Each start writes new segments; older
//! ones are only read (once, at start) and deleted by retention. A segment
//! is created with `store.segment_size` bytes preallocated (zeros), records
//! follow one another from byte 0 ([`record`] has the format: length, CRC,
//! offset, timestamp, epoch, channel, payload), and the first zero length
//! is its end.
//!
//! # Channels and logs: a changed worker count
//!
//! A channel's records are in the log of the core that owned it when they
//! were written (`owner_of(name, workers)`), and every record names its
//! channel. Recovery reads **every** segment of every run and core,
//! whatever the worker count is now, rebuilds each channel by name
//! ([`recover`]), and hands it to its owner under the current count. So a
//! restart with more or fewer workers recovers every channel; its records
//! simply sit in another core's older segments until retention deletes them.
//!
//! # Durability (`store.fsync`)
//!
//! The owner core encodes each publish into its log's pending buffer as it
//! handles it, and holds the publish's effects — the publisher's reply,
//! the deliveries, and any subscribe reply given after it — in order. Its
//! hub loop then writes the whole buffer with one io_uring write on its own
//! monoio runtime and releases the effects:
//!
//! - `always`: after the write *and* one `fdatasync` (group commit: every
//!   publish handled since the last commit shares that one sync).
//!   Subscribers never see a message a crash could take back.
//! - `batch`: after the write; an `fdatasync` runs every
//!   `store.fsync_interval`. A crash of the machine (not of the process)
//!   can lose what was acknowledged in the last interval.
//! - `never`: after the write; the kernel writes back when it wants.
//!
//! # Bad state
//!
//! - A missing or unwritable `store.data_path` stops the start with one
//!   line naming the path ([`StoreError`]).
//! - A segment is created (and preallocated) before the current one is
//!   full; when it cannot be (no space, or less than `store.min_free` would
//!   be left), publishes that do not fit answer `unavailable` and are not
//!   applied. A failed write or sync answers every publish of its commit
//!   `unavailable`, takes them back from the channels, and the store
//!   retries on a fresh segment on the next tick. Nothing is acknowledged
//!   that was not written (and, with `always`, synced).
//! - A corrupt record in the middle of the log is skipped with a warning
//!   and counted; see [`recover`] for the rule and for torn tails.
//!
//! # Retention
//!
//! Closed segments are deleted when their newest record is older than
//! `pubsub.history_ttl`, and, oldest first, while the store holds more than
//! `store.max_disk` bytes. History in memory is bounded as with the memory
//! engine (`pubsub.history_size`, `pubsub.history_ttl`); recovery applies
//! the same bounds. A channel's epoch and last offset come back while any
//! record of it is on disk. Segments are not deleted by history size: a
//! segment whose records all left the channels' history stays until the
//! TTL or the budget takes it (deleting it earlier would also drop the
//! epoch of a channel whose newest record it holds; that needs a
//! checkpoint record per channel first).

pub mod log;
pub mod record;
pub mod recover;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::os::fsinfo::free_bytes;
pub use log::{Log, LogSettings};
pub use recover::{recover, RecoveredChannel, RecoveredEntry, Recovery, SegmentFile};

/// Why the store cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `store.data_path` is missing, not a directory or not readable.
    #[error("store.data_path {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Reading, writing or syncing one file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Creating a segment would leave less than `store.min_free`.
    #[error("{path}: {free} bytes free, a segment of {segment} needs more than store.min_free {min_free}")]
    Full {
        path: PathBuf,
        free: u64,
        segment: u64,
        min_free: u64,
    },
}

/// The store's figures, shared by every core (each core adds; the scrape
/// reads). Relaxed atomics: each is a count on its own.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Records appended and written.
    pub records: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Writes of a core's pending buffer (one per loop turn with publishes).
    pub commits: AtomicU64,
    /// `fdatasync` calls.
    pub fsyncs: AtomicU64,
    /// Failed writes or syncs (each answered its publishes `unavailable`).
    pub write_errors: AtomicU64,
    /// Publishes refused because no segment had room.
    pub refused: AtomicU64,
    /// Bytes of every segment on disk (gauge).
    pub disk_bytes: AtomicU64,
    /// Segments on disk (gauge).
    pub segments: AtomicU64,
    /// Free bytes of the filesystem, at the last segment created (gauge).
    pub free_bytes: AtomicU64,
    /// Segments deleted by retention.
    pub segments_deleted: AtomicU64,
    /// Recovery: segments whose rest was skipped after a corrupt record.
    pub corrupt_segments: AtomicU64,
    /// Recovery: torn tails cut.
    pub torn_tails: AtomicU64,
    /// Recovery: records read, and how long it took.
    pub recovered_records: AtomicU64,
    pub recovery_ms: AtomicU64,
}

impl StoreStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Wall-clock now, Unix milliseconds (record timestamps).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
