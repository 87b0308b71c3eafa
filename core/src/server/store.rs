//! The disk engine's start (`engine.kind = "disk"`), on the starting thread
//! before any worker: check `store.data_path`, recover every segment, create
//! each core's first segment of this run, and hand every recovered channel
//! to its owner under the current worker count.
//!
//! Each older segment goes to the retention of the core with its writer's
//! number (modulo the worker count), so with an unchanged count a segment
//! and the channels in it have one owner, which can tell when it may go.
//! After a change, a channel whose last record sits in a segment another
//! core now deletes gets a checkpoint in its owner's log before any worker
//! starts (segment 0 of the run, synced), so its epoch and offset never
//! depend on another core's retention.
//!
//! A missing or unwritable directory is a [`StoreError`] naming the path
//! (`ringcast serve` prints it as one line and exits 2); nothing is created
//! in its place, so a typo in the path cannot start an empty store.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::info;

use crate::config::ServerConfig;
use crate::engine::disk::log::create_segment;
use crate::engine::disk::record::encode_checkpoint_into;
use crate::engine::disk::recover::segment_name;
use crate::engine::disk::{
    recover, unix_ms, LogSettings, Mark, Marks, RecoveredChannel, SegmentFile, StoreError,
    StoreStats,
};
use crate::pubsub::hub::owner_of;

/// What one worker takes to build its log.
pub(crate) struct CoreStore {
    pub settings: LogSettings,
    /// The first segment this run writes, created and preallocated.
    pub first: std::fs::File,
    /// Its sequence number (1 when segment 0 holds start checkpoints).
    pub first_seq: u64,
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
    let now_ms = unix_ms();
    let mut checkpoints: Vec<(Vec<u8>, Marks)> = (0..workers).map(|_| Default::default()).collect();
    for ch in &recovery.channels {
        let owner = owner_of(&ch.name, workers);
        let held = recovery.segments.get(ch.segment).map(|s| s.core % workers);
        if held.is_some_and(|core| core != owner) {
            let (buf, marks) = &mut checkpoints[owner];
            encode_checkpoint_into(buf, ch.last_offset, now_ms, &ch.epoch, &ch.name);
            marks.insert(
                Arc::from(ch.name.as_str()),
                Mark::new(&ch.epoch, ch.last_offset, true),
            );
        }
    }
    let mut cores: Vec<(Vec<SegmentFile>, Vec<RecoveredChannel>)> =
        (0..workers).map(|_| Default::default()).collect();
    for seg in recovery.segments {
        cores[seg.core % workers].0.push(seg);
    }
    for ch in recovery.channels {
        cores[owner_of(&ch.name, workers)].1.push(ch);
    }
    let mut out = Vec::with_capacity(workers);
    for (core, ((mut closed, recovered), (buf, marks))) in
        cores.into_iter().zip(checkpoints).enumerate()
    {
        let settings = LogSettings::from_config(config, recovery.run, core);
        let mut first_seq = 0;
        if !buf.is_empty() {
            let path = dir.join(segment_name(recovery.run, core, 0));
            write_synced(dir, &path, &buf)?;
            StoreStats::add(&stats.disk_bytes, buf.len() as u64);
            StoreStats::add(&stats.segments, 1);
            StoreStats::add(&stats.checkpoints, marks.len() as u64);
            info!(core, channels = marks.len(), "start checkpoints written for channels whose last record another core's retention holds");
            closed.push(SegmentFile {
                path,
                bytes: buf.len() as u64,
                newest_ms: now_ms,
                core,
                marks,
            });
            first_seq = 1;
        }
        let path = dir.join(segment_name(recovery.run, core, first_seq));
        let (first, free) =
            create_segment(dir, &path, config.store.segment_size, config.store.min_free)?;
        StoreStats::add(&stats.disk_bytes, config.store.segment_size);
        StoreStats::add(&stats.segments, 1);
        stats.free_bytes.store(free, Ordering::Relaxed);
        out.push(CoreStore {
            settings,
            first,
            first_seq,
            closed,
            recovered,
            stats: stats.clone(),
        });
    }
    Ok(out)
}

/// Writes a whole small segment and syncs it and the directory.
fn write_synced(
    dir: &std::path::Path,
    path: &std::path::Path,
    buf: &[u8],
) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io)?;
    file.write_all(buf).map_err(io)?;
    file.sync_data().map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })
}
