//! The `[store]` table (the durable store's directory and fsync policy) and
//! the `[capacity]` table (the load a profile says it is sized for).
//!
//! Both are config-only for now: nothing reads `[store]` until the durable
//! store lands, and `[capacity]` is a statement `ringcast doctor` checks
//! against the machine, never a limit the server enforces.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// When the durable store makes an appended message durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fsync` before a publish is acknowledged.
    Always,
    /// `fsync` once per batch of appends (group commit).
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

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSection {
    /// Directory of the durable store. Empty = no durable store. Default empty.
    pub data_path: PathBuf,
    /// When the store calls `fsync`: `always`, `batch` or `never`. Default `batch`.
    pub fsync: FsyncPolicy,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            data_path: PathBuf::new(),
            fsync: FsyncPolicy::Batch,
        }
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
