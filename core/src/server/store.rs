//! The disk engine's start (`engine.kind = "disk"`), on the starting thread
//! before any worker: check `store.data_path`, recover every segment, create
//! each core's first segment of this run, and hand every recovered channel
//! to its owner under the current worker count.
//!
//! A missing or unwritable directory is a [`StoreError`] naming the path
//! (`ringcast serve` prints it as one line and exits 2); nothing is created
//! in its place, so a typo in the path cannot start an empty store.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::info;

use crate::config::ServerConfig;
use crate::engine::disk::log::create_segment;
use crate::engine::disk::recover::segment_name;
use crate::engine::disk::{
    recover, unix_ms, LogSettings, RecoveredChannel, SegmentFile, StoreError, StoreStats,
};
use crate::pubsub::hub::owner_of;

/// What one worker takes to build its log.
pub(crate) struct CoreStore {
    pub settings: LogSettings,
    /// Segment 0 of this run, created and preallocated.
    pub first: std::fs::File,
    /// Older segments this core deletes by retention.
    pub closed: Vec<SegmentFile>,
    /// The channels this core owns now, as the logs left them.
    pub recovered: Vec<RecoveredChannel>,
    pub stats: Arc<StoreStats>,
}

/// Recovers the store and prepares one [`CoreStore`] per worker.
pub(crate) fn open(config: &ServerConfig, workers: usize) -> Result<Vec<CoreStore>, StoreError> {
    let dir = &config.store.data_path;
    let meta = std::fs::metadata(dir).map_err(|source| StoreError::Dir {
        path: dir.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(StoreError::Dir {
            path: dir.clone(),
            source: std::io::Error::other("not a directory"),
        });
    }
    let recovery = recover(
        dir,
        config.pubsub.history_size,
        config.pubsub.history_ttl,
        unix_ms(),
    )?;
    let stats = Arc::new(StoreStats::default());
    let disk: u64 = recovery.segments.iter().map(|s| s.bytes).sum();
    stats.disk_bytes.store(disk, Ordering::Relaxed);
    stats
        .segments
        .store(recovery.segments.len() as u64, Ordering::Relaxed);
    stats
        .torn_tails
        .store(recovery.torn_tails, Ordering::Relaxed);
    stats
        .corrupt_segments
        .store(recovery.corrupt_segments, Ordering::Relaxed);
    stats
        .recovered_records
        .store(recovery.records, Ordering::Relaxed);
    stats
        .recovery_ms
        .store(recovery.elapsed.as_millis() as u64, Ordering::Relaxed);
    info!(
        path = %dir.display(),
        run = recovery.run,
        channels = recovery.channels.len(),
        records = recovery.records,
        bytes = recovery.bytes_read,
        segments = recovery.segments.len(),
        torn_tails = recovery.torn_tails,
        corrupt_segments = recovery.corrupt_segments,
        ms = recovery.elapsed.as_millis() as u64,
        "disk engine recovered"
    );
    let mut cores: Vec<(Vec<SegmentFile>, Vec<RecoveredChannel>)> =
        (0..workers).map(|_| Default::default()).collect();
    for (i, seg) in recovery.segments.into_iter().enumerate() {
        cores[i % workers].0.push(seg);
    }
    for ch in recovery.channels {
        cores[owner_of(&ch.name, workers)].1.push(ch);
    }
    let mut out = Vec::with_capacity(workers);
    for (core, (closed, recovered)) in cores.into_iter().enumerate() {
        let settings = LogSettings::from_config(config, recovery.run, core);
        let path = dir.join(segment_name(recovery.run, core, 0));
        let (first, free) =
            create_segment(dir, &path, config.store.segment_size, config.store.min_free)?;
        StoreStats::add(&stats.disk_bytes, config.store.segment_size);
        StoreStats::add(&stats.segments, 1);
        stats.free_bytes.store(free, Ordering::Relaxed);
        out.push(CoreStore {
            settings,
            first,
            closed,
            recovered,
            stats: stats.clone(),
        });
    }
    Ok(out)
}
