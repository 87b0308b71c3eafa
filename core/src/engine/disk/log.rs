//! One core's log writer: appends records to a pending buffer as the hub
//! handles publishes, writes them with io_uring (monoio's file IO on the
//! core's own runtime), syncs by `store.fsync`, rolls and deletes segments.
//!
//! # Who calls what
//!
//! Only the owning core touches its [`Log`] (`Rc`, `Cell`s). The hub calls
//! [`Log::append`] synchronously while it handles a publish — it never
//! waits there — and its loop task calls [`Log::commit`] (write the
//! pending bytes, sync with `always`) and [`Log::maintain`] (create the
//! next segment, interval syncs, retention, retry after a failure). Those
//! two are awaited one after the other by that one task, never at the same
//! time, so a file is never written and truncated at once.
//!
//! # Rolling without waiting
//!
//! The next segment (the *spare*) is created and preallocated ahead, in
//! `maintain`. When a record does not fit in the active segment, `append`
//! switches to the spare at once; with no spare (the disk is full, or below
//! `store.min_free`) the publish is refused, never queued. A record is
//! never split across segments.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::fs::File;

use super::recover::{segment_name, SegmentFile};
use super::{free_bytes, record, StoreError, StoreStats};
use crate::config::{FsyncPolicy, ServerConfig};
use crate::rt::Notify;

/// What one core's log works under.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub dir: PathBuf,
    /// This start's run number (from recovery).
    pub run: u64,
    pub core: usize,
    pub segment_size: u64,
    pub fsync: FsyncPolicy,
    pub fsync_interval: Duration,
    /// `0` = no budget.
    pub max_disk: u64,
    pub min_free: u64,
    /// Closed segments older than this go (`pubsub.history_ttl`).
    pub history_ttl: Duration,
}

impl LogSettings {
    pub fn from_config(config: &ServerConfig, run: u64, core: usize) -> Self {
        let store = &config.store;
        Self {
            dir: store.data_path.clone(),
            run,
            core,
            segment_size: store.segment_size,
            fsync: store.fsync,
            fsync_interval: store.fsync_interval,
            max_disk: store.max_disk,
            min_free: store.min_free,
            history_ttl: config.pubsub.history_ttl,
        }
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(segment_name(self.run, self.core, seq))
    }
}

/// Creates segment `path` with `size` bytes preallocated, refusing when
/// less than `min_free` would be left; syncs the directory so the file
/// survives a crash. Blocking (start-up, and one call per segment).
pub fn create_segment(
    dir: &Path,
    path: &Path,
    size: u64,
    min_free: u64,
) -> Result<(std::fs::File, u64), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let free = free_bytes(dir).map_err(|source| StoreError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    if free < size.saturating_add(min_free) {
        return Err(StoreError::Full {
            path: path.to_path_buf(),
            free,
            segment: size,
            min_free,
        });
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io)?;
    // SAFETY: `file` is an open descriptor owned by this function; fallocate
    // only changes the file's allocation.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, size as libc::off_t) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
            let _ = std::fs::remove_file(path);
            return Err(io(err));
        }
        // A filesystem without fallocate (tmpfs before 3.5, some FUSE):
        // zeros by length, allocated on write.
        file.set_len(size).map_err(io)?;
    }
    sync_dir(dir)?;
    Ok((file, free.saturating_sub(size)))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

struct Segment {
    file: Rc<File>,
    path: PathBuf,
    /// Bytes reserved by appended records (written or pending).
    end: u64,
    /// Bytes known written (and synced with `always`).
    good: u64,
    newest_ms: u64,
}

/// Bytes for one write: a stretch of one segment.
struct Job {
    file: Rc<File>,
    pos: u64,
    buf: Vec<u8>,
    records: u64,
}

/// One core's log.
pub struct Log {
    s: LogSettings,
    /// Segment 0 until the first append takes it onto the runtime.
    first: RefCell<Option<std::fs::File>>,
    stats: Arc<StoreStats>,
    next_seq: Cell<u64>,
    active: RefCell<Option<Segment>>,
    spare: RefCell<Option<Segment>>,
    /// Appended, not yet handed to a write, in order.
    jobs: RefCell<Vec<Job>>,
    /// Files written since their last `fdatasync` (`batch`).
    unsynced: RefCell<Vec<Rc<File>>>,
    last_sync: Cell<Instant>,
    /// Closed segments this core deletes by retention, oldest first.
    closed: RefCell<VecDeque<SegmentFile>>,
    /// Why writing stopped; publishes are refused until `maintain` recovers.
    failed: RefCell<Option<String>>,
    /// Whether the last spare creation failed (warn once per change).
    spare_failing: Cell<bool>,
    /// Woken by `append`, so the loop commits what a local publish added.
    pub wake: Notify,
}

impl Log {
    /// A core's log writing into `first` (created at start by
    /// [`create_segment`] as sequence 0), deleting `closed` by retention.
    pub fn new(
        s: LogSettings,
        first: std::fs::File,
        closed: Vec<SegmentFile>,
        stats: Arc<StoreStats>,
    ) -> Self {
        Self {
            first: RefCell::new(Some(first)),
            active: RefCell::default(),
            s,
            stats,
            next_seq: Cell::new(1),
            spare: RefCell::default(),
            jobs: RefCell::default(),
            unsynced: RefCell::default(),
            last_sync: Cell::new(Instant::now()),
            closed: RefCell::new(closed.into()),
            failed: RefCell::default(),
            spare_failing: Cell::new(false),
            wake: Notify::default(),
        }
    }

    /// Makes segment 0 the active segment, on the core's runtime (monoio
    /// files belong to the runtime that registers them, so the log is built
    /// before it and its first file taken in here, at the first append).
    fn take_first(&self, active: &mut Option<Segment>) -> Result<(), String> {
        let Some(std_file) = self.first.borrow_mut().take() else {
            return Ok(());
        };
        let path = self.s.path(0);
        let file = File::from_std(std_file).map_err(|e| format!("{}: {e}", path.display()))?;
        *active = Some(Segment {
            file: Rc::new(file),
            path,
            end: 0,
            good: 0,
            newest_ms: 0,
        });
        Ok(())
    }

    pub fn settings(&self) -> &LogSettings {
        &self.s
    }

    /// True while appended records wait for [`Log::commit`].
    pub fn has_pending(&self) -> bool {
        !self.jobs.borrow().is_empty()
    }

    /// Adds one record to the pending buffer. `Err` (the reason, for an
    /// `unavailable` reply) when the store failed or no segment has room:
    /// nothing was added.
    pub fn append(
        &self,
        offset: u64,
        timestamp_ms: u64,
        epoch: &str,
        channel: &str,
        payload: &[u8],
    ) -> Result<(), String> {
        if let Some(why) = &*self.failed.borrow() {
            StoreStats::add(&self.stats.refused, 1);
            return Err(why.clone());
        }
        let len = record::encoded_len(epoch, channel, payload) as u64;
        if len > self.s.segment_size {
            return Err(format!(
                "a record of {len} bytes does not fit in store.segment_size {}",
                self.s.segment_size
            ));
        }
        let mut active = self.active.borrow_mut();
        self.take_first(&mut active)?;
        let fits = active
            .as_ref()
            .is_some_and(|a| a.end + len <= self.s.segment_size);
        if !fits {
            let Some(next) = self.spare.borrow_mut().take() else {
                StoreStats::add(&self.stats.refused, 1);
                return Err(format!(
                    "no log segment ready under store.data_path {} (disk full or below \
                     store.min_free)",
                    self.s.dir.display()
                ));
            };
            if let Some(old) = active.replace(next) {
                self.seal(old);
            }
        }
        let Some(a) = active.as_mut() else {
            return Err("no active log segment".into());
        };
        let mut jobs = self.jobs.borrow_mut();
        let same = jobs.last().is_some_and(|j| Rc::ptr_eq(&j.file, &a.file));
        if !same {
            jobs.push(Job {
                file: a.file.clone(),
                pos: a.end,
                buf: Vec::with_capacity(4096),
                records: 0,
            });
        }
        if let Some(job) = jobs.last_mut() {
            record::encode_into(&mut job.buf, offset, timestamp_ms, epoch, channel, payload);
            job.records += 1;
        }
        a.end += len;
        a.newest_ms = a.newest_ms.max(timestamp_ms);
        drop(jobs);
        self.wake.notify();
        Ok(())
    }

    fn seal(&self, old: Segment) {
        self.unsynced.borrow_mut().push(old.file.clone());
        self.closed.borrow_mut().push_back(SegmentFile {
            path: old.path,
            bytes: self.s.segment_size,
            newest_ms: old.newest_ms,
        });
    }

    /// Writes every pending record (one io_uring write per segment touched,
    /// usually one) and, with `fsync = always`, `fdatasync`s what it wrote.
    /// `Err` when the store failed: every record pending at the call is lost
    /// and must be answered as not stored.
    pub async fn commit(&self) -> Result<(), String> {
        let jobs = std::mem::take(&mut *self.jobs.borrow_mut());
        if jobs.is_empty() {
            return Ok(());
        }
        if let Some(why) = &*self.failed.borrow() {
            return Err(why.clone());
        }
        let mut files: Vec<Rc<File>> = Vec::with_capacity(1);
        let (mut records, mut bytes) = (0, 0);
        let mut written: Vec<(Rc<File>, u64)> = Vec::with_capacity(jobs.len());
        for job in jobs {
            let end = job.pos + job.buf.len() as u64;
            bytes += job.buf.len() as u64;
            records += job.records;
            let (result, _) = job.file.write_all_at(job.buf, job.pos).await;
            if let Err(e) = result {
                return Err(self.fail(format!("write: {e}")));
            }
            if !files.iter().any(|f| Rc::ptr_eq(f, &job.file)) {
                files.push(job.file.clone());
            }
            written.push((job.file, end));
        }
        match self.s.fsync {
            FsyncPolicy::Always => {
                for file in &files {
                    if let Err(e) = file.sync_data().await {
                        return Err(self.fail(format!("fdatasync: {e}")));
                    }
                    StoreStats::add(&self.stats.fsyncs, 1);
                }
            }
            FsyncPolicy::Batch => {
                let mut unsynced = self.unsynced.borrow_mut();
                for file in files {
                    if !unsynced.iter().any(|f| Rc::ptr_eq(f, &file)) {
                        unsynced.push(file);
                    }
                }
            }
            FsyncPolicy::Never => {}
        }
        if let Some(a) = self.active.borrow_mut().as_mut() {
            for (file, end) in written {
                if Rc::ptr_eq(&file, &a.file) {
                    a.good = a.good.max(end);
                }
            }
        }
        StoreStats::add(&self.stats.commits, 1);
        StoreStats::add(&self.stats.records, records);
        StoreStats::add(&self.stats.bytes_written, bytes);
        Ok(())
    }

    fn fail(&self, why: String) -> String {
        let why = format!("store.data_path {}: {why}", self.s.dir.display());
        tracing::error!("{why}; publishes answer unavailable until a new segment is written");
        StoreStats::add(&self.stats.write_errors, 1);
        self.jobs.borrow_mut().clear();
        *self.failed.borrow_mut() = Some(why.clone());
        why
    }

    /// The loop's periodic work: the next segment, `batch` syncs, retention,
    /// and, after a failure, a fresh segment.
    pub async fn maintain(&self, now: Instant) {
        if self.failed.borrow().is_some() && !self.has_pending() {
            self.recover_from_failure();
        }
        if self.spare.borrow().is_none() && self.failed.borrow().is_none() {
            if let Some(seg) = self.new_segment() {
                *self.spare.borrow_mut() = Some(seg);
            }
        }
        if self.s.fsync == FsyncPolicy::Batch
            && now.duration_since(self.last_sync.get()) >= self.s.fsync_interval
        {
            self.last_sync.set(now);
            let files = std::mem::take(&mut *self.unsynced.borrow_mut());
            for file in files {
                match file.sync_data().await {
                    Ok(()) => StoreStats::add(&self.stats.fsyncs, 1),
                    Err(e) => {
                        self.fail(format!("fdatasync: {e}"));
                        break;
                    }
                }
            }
        }
        self.retain();
    }

    /// When `maintain` should run next at the latest.
    pub fn next_due(&self) -> Duration {
        let missing = self.spare.borrow().is_none() || self.failed.borrow().is_some();
        match (missing, self.spare_failing.get()) {
            // Just rolled: make the next segment now.
            (true, false) => Duration::ZERO,
            // The disk is full: look again shortly, not every turn.
            (true, true) => Duration::from_millis(100),
            // `batch` with writes waiting for their sync.
            _ if self.s.fsync == FsyncPolicy::Batch && !self.unsynced.borrow().is_empty() => {
                self.s.fsync_interval
            }
            _ => Duration::from_secs(1),
        }
    }

    fn new_segment(&self) -> Option<Segment> {
        let seq = self.next_seq.get();
        let path = self.s.path(seq);
        match create_segment(&self.s.dir, &path, self.s.segment_size, self.s.min_free) {
            Ok((std_file, free)) => {
                self.next_seq.set(seq + 1);
                self.stats
                    .free_bytes
                    .store(free, std::sync::atomic::Ordering::Relaxed);
                StoreStats::add(&self.stats.disk_bytes, self.s.segment_size);
                StoreStats::add(&self.stats.segments, 1);
                if self.spare_failing.replace(false) {
                    tracing::info!(segment = %path.display(), "log segments can be created again");
                }
                let file = File::from_std(std_file).ok()?;
                Some(Segment {
                    file: Rc::new(file),
                    path,
                    end: 0,
                    good: 0,
                    newest_ms: 0,
                })
            }
            Err(e) => {
                if let StoreError::Full { free, .. } = &e {
                    self.stats
                        .free_bytes
                        .store(*free, std::sync::atomic::Ordering::Relaxed);
                }
                if !self.spare_failing.replace(true) {
                    tracing::warn!("cannot create the next log segment: {e}");
                }
                None
            }
        }
    }

    /// After a failed write: cut the active segment back to what was
    /// written, close it, and go on in a new one.
    fn recover_from_failure(&self) {
        let Some(seg) = self
            .spare
            .borrow_mut()
            .take()
            .or_else(|| self.new_segment())
        else {
            return;
        };
        if let Some(old) = self.active.borrow_mut().replace(seg) {
            let cut = std::fs::OpenOptions::new()
                .write(true)
                .open(&old.path)
                .and_then(|f| f.set_len(old.good).and_then(|()| f.sync_all()));
            if let Err(e) = cut {
                tracing::warn!(segment = %old.path.display(), "cannot cut a failed segment: {e}");
            }
            let (path, newest_ms) = (old.path.clone(), old.newest_ms);
            drop(old);
            self.closed.borrow_mut().push_back(SegmentFile {
                path,
                bytes: self.s.segment_size,
                newest_ms,
            });
        }
        *self.failed.borrow_mut() = None;
        tracing::info!("log writing resumed in a new segment");
    }

    /// Deletes closed segments past the history TTL, then oldest first while
    /// over `store.max_disk`.
    fn retain(&self) {
        let now_ms = super::unix_ms();
        let ttl_ms = self.s.history_ttl.as_millis() as u64;
        let mut closed = self.closed.borrow_mut();
        loop {
            let over_budget =
                self.s.max_disk > 0 && StoreStats::get(&self.stats.disk_bytes) > self.s.max_disk;
            let expired = closed
                .front()
                .is_some_and(|s| now_ms.saturating_sub(s.newest_ms) >= ttl_ms);
            if !(over_budget || expired) {
                break;
            }
            let Some(seg) = closed.pop_front() else {
                break;
            };
            match std::fs::remove_file(&seg.path) {
                Ok(()) => {
                    StoreStats::sub(&self.stats.disk_bytes, seg.bytes);
                    StoreStats::sub(&self.stats.segments, 1);
                    StoreStats::add(&self.stats.segments_deleted, 1);
                }
                Err(e) => {
                    tracing::warn!(segment = %seg.path.display(), "cannot delete: {e}");
                    break;
                }
            }
        }
    }
}
