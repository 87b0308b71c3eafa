//! The `[store]` table (the durable store's directory and fsync policy) and
//! the `[capacity]` table (the load a profile says it is sized for).
//!
//! `[store]` is read by the disk engine (`engine.kind = "disk"`,
//! `engine/disk/mod.rs`); with another engine its keys are checked and
//! otherwise ignored. `[capacity]` is a statement `ringcast doctor` checks
//! against the machine, never a limit the server enforces.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::{refuse, refuse_pair, ConfigError};

/// When the durable store makes an appended message durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` before a publish is acknowledged, one per loop turn of
    /// the owner core for every publish of that turn (group commit).
    Always,
    /// `fdatasync` every `store.fsync_interval`; a publish is acknowledged
    /// when written, before that sync.
    Batch,
    /// Leave it to the kernel's writeback.
    Never,
}

impl FsyncPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Batch => "batch",
            FsyncPolicy::Never => "never",
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "batch" => Ok(FsyncPolicy::Batch),
            "never" => Ok(FsyncPolicy::Never),
            other => Err(format!("{other:?} is not one of always, batch, never")),
        }
    }
}

/// `[store]`: read with `engine.kind = "disk"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSection {
    /// `store.data_path`: directory of the durable store; must exist and be
    /// writable at start with the disk engine. Default empty.
    pub data_path: PathBuf,
    /// `store.fsync`: `always`, `batch` or `never`. Default `batch`.
    pub fsync: FsyncPolicy,
    /// `store.fsync_interval`: with `fsync = "batch"`, how often written
    /// records are synced. Default 10 ms.
    pub fsync_interval: Duration,
    /// `store.segment_size`: bytes of one log segment file (preallocated
    /// when created, so a full disk is met when a segment is created, not
    /// in the middle of a write). Between 64 KiB and 1 GiB. Default 64 MiB.
    pub segment_size: u64,
    /// `store.max_disk`: bytes all segments together may take; past it the
    /// oldest segments are deleted, history with them. `0` = no budget
    /// (history size and age alone bound the log). Default 8 GiB.
    pub max_disk: u64,
    /// `store.min_free`: free bytes the filesystem must keep after a new
    /// segment is created; below it publishes answer `unavailable` (nothing
    /// is acknowledged unwritten). Default 256 MiB.
    pub min_free: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            data_path: PathBuf::new(),
            fsync: FsyncPolicy::Batch,
            fsync_interval: Duration::from_millis(10),
            segment_size: 64 << 20,
            max_disk: 8 << 30,
            min_free: 256 << 20,
        }
    }
}

impl StoreSection {
    /// The table's rules; `data_path` is required only by the disk engine
    /// (`disk` true).
    pub(super) fn validate(&self, disk: bool) -> Result<(), ConfigError> {
        if disk && self.data_path.as_os_str().is_empty() {
            return refuse_pair(
                "store.data_path",
                "engine.kind",
                "must be set with engine.kind = \"disk\"",
            );
        }
        if self.fsync_interval.is_zero() {
            return refuse("store.fsync_interval", "must be positive");
        }
        if !(64 << 10..=1 << 30).contains(&self.segment_size) {
            return refuse("store.segment_size", "must be between 64 KiB and 1 GiB");
        }
        if self.max_disk != 0 && self.max_disk < 4 * self.segment_size {
            return refuse_pair(
                "store.max_disk",
                "store.segment_size",
                "must be 0 (no budget) or at least 4 × store.segment_size",
            );
        }
        Ok(())
    }
}

/// `[capacity]`: the profile's capacity statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapacitySection {
    /// Connections the profile is sized for. `0` = no statement. Default 0.
    pub planned_connections: u64,
    /// Delivered messages per second the profile is sized for. `0` = no
    /// statement. Default 0.
    pub planned_messages_per_sec: u64,
    /// Memory, in bytes, the profile needs at its planned load. `0` = no
    /// statement. Default 0.
    pub planned_memory: u64,
}
