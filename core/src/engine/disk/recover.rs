//! Start-up: read every segment under `store.data_path`, check each
//! record's CRC, cut torn tails, and rebuild every channel's epoch, last
//! offset and history.
//!
//! This runs once, on the starting thread, before any worker exists, with
//! plain blocking reads (there is no runtime yet and nothing else to do).
//!
//! # What is trusted
//!
//! Records of one segment are read in order until the first one that is not
//! whole and valid ([`super::record::Parsed::Bad`]):
//!
//! - in the **last segment of a run and core** (the one that was being
//!   written; segments with nothing written, made ahead of a roll, are
//!   deleted first), that is a torn tail: a crash in the middle of a write.
//!   The file is cut there. Nothing cut was acknowledged with
//!   `fsync = always`: a batch is acknowledged after its `fdatasync`, and the
//!   next batch is written only after that.
//! - in **any other segment**, it is a corrupt record in the middle (bit
//!   rot, a bad sector, a hand edit). The rest of that segment is skipped
//!   with a warning naming the file and byte, and counted
//!   (`ringcast_store_corrupt_segments` in the log line and the recovery
//!   summary); the server still starts. Later segments are read as usual.
//!
//! # Rebuilding a channel
//!
//! Segments are applied in (run, core, sequence) order. Within one run a
//! channel has one owner core, so its records are in one stream, in offset
//! order; a later run's records come after an earlier run's. A record with
//! another epoch than the channel's starts the channel over (it was evicted
//! and re-created); a record whose offset does not follow the last one (a
//! skipped corrupt stretch) drops the history before it, so a resume from
//! before the gap answers `recovered: false` instead of skipping messages.
//! History keeps the newest `pubsub.history_size` records younger than
//! `pubsub.history_ttl`, as in memory; the epoch and last offset are kept
//! even when no record is young enough.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::record::{self, Parsed};
use super::StoreError;

/// `RUN-CORE-SEQ.log`: the run (one per start), the core that wrote it, its
/// sequence within that run and core.
pub fn segment_name(run: u64, core: usize, seq: u64) -> String {
    format!("{run:010}-{core:04}-{seq:010}.log")
}

/// The (run, core, seq) of a segment file name, `None` for other files.
pub fn parse_segment_name(name: &str) -> Option<(u64, usize, u64)> {
    let stem = name.strip_suffix(".log")?;
    let mut parts = stem.split('-');
    let run = parts.next()?.parse().ok()?;
    let core = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((run, core, seq))
}

/// One segment found on disk, for retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub path: PathBuf,
    /// Its size on disk after recovery.
    pub bytes: u64,
    /// The newest record's timestamp (Unix ms); 0 when it holds none.
    pub newest_ms: u64,
}

/// One recovered record kept in history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredEntry {
    pub offset: u64,
    pub timestamp_ms: u64,
    pub payload: Bytes,
}

/// One channel as the log left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredChannel {
    pub name: String,
    pub epoch: String,
    pub last_offset: u64,
    /// Oldest first, contiguous, ending at `last_offset` when not empty.
    pub history: Vec<RecoveredEntry>,
}

/// What recovery found and did.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    pub channels: Vec<RecoveredChannel>,
    /// Every segment left, oldest first.
    pub segments: Vec<SegmentFile>,
    /// The run number this start writes under.
    pub run: u64,
    pub records: u64,
    pub bytes_read: u64,
    /// Segments cut at a torn tail.
    pub torn_tails: u64,
    /// Segments whose rest was skipped after a corrupt record.
    pub corrupt_segments: u64,
    pub elapsed: Duration,
}

struct Building {
    epoch: String,
    last_offset: u64,
    history: std::collections::VecDeque<RecoveredEntry>,
}

/// Recovers `dir`: the directory must exist and be writable (torn tails
/// are cut in place).
pub fn recover(
    dir: &Path,
    history_size: usize,
    history_ttl: Duration,
    now_ms: u64,
) -> Result<Recovery, StoreError> {
    let started = Instant::now();
    let entries = fs::read_dir(dir).map_err(|source| StoreError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut found: Vec<((u64, usize, u64), PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        if let Some(key) = name.to_str().and_then(parse_segment_name) {
            found.push((key, entry.path()));
        }
    }
    found.sort();
    // Segments with nothing written (a spare made ahead of a roll) carry no
    // records: delete them, so "the last segment of a run and core" is the
    // one that was being written.
    let mut kept = Vec::with_capacity(found.len());
    for (key, path) in found {
        if starts_empty(&path)? {
            fs::remove_file(&path).map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        } else {
            kept.push((key, path));
        }
    }
    let found = kept;
    let mut out = Recovery {
        run: found
            .iter()
            .map(|((run, _, _), _)| run + 1)
            .max()
            .unwrap_or(1),
        ..Recovery::default()
    };
    let mut channels: HashMap<String, Building> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for (i, ((run, core, _), path)) in found.iter().enumerate() {
        let is_tail = found
            .get(i + 1)
            .is_none_or(|((r, c, _), _)| (*r, *c) != (*run, *core));
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let buf = Bytes::from(fs::read(path).map_err(io)?);
        out.bytes_read += buf.len() as u64;
        let mut pos = 0;
        let mut newest_ms = 0;
        let end = loop {
            match record::parse(&buf, pos) {
                Parsed::Record(rec, used) => {
                    newest_ms = newest_ms.max(rec.timestamp_ms);
                    out.records += 1;
                    apply(&mut channels, &mut order, rec, history_size);
                    pos += used;
                }
                Parsed::End => break pos,
                Parsed::Bad(why) if is_tail => {
                    tracing::warn!(segment = %path.display(), at = pos, "torn tail cut ({why})");
                    out.torn_tails += 1;
                    break pos;
                }
                Parsed::Bad(why) => {
                    tracing::warn!(
                        segment = %path.display(),
                        at = pos,
                        "corrupt record: the rest of this segment is skipped ({why})"
                    );
                    out.corrupt_segments += 1;
                    break buf.len();
                }
            }
        };
        let mut bytes = buf.len() as u64;
        if is_tail && (end as u64) < bytes {
            // Cut the tear and the preallocated zeros: this run writes new
            // segments, so the space goes back to the filesystem.
            let file = fs::OpenOptions::new().write(true).open(path).map_err(io)?;
            file.set_len(end as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
            bytes = end as u64;
        }
        out.segments.push(SegmentFile {
            path: path.clone(),
            bytes,
            newest_ms,
        });
    }
    let ttl_ms = history_ttl.as_millis() as u64;
    for name in order {
        let Some(b) = channels.remove(&name) else {
            continue;
        };
        let history = b
            .history
            .into_iter()
            .filter(|e| now_ms.saturating_sub(e.timestamp_ms) < ttl_ms)
            .collect();
        out.channels.push(RecoveredChannel {
            name,
            epoch: b.epoch,
            last_offset: b.last_offset,
            history,
        });
    }
    out.elapsed = started.elapsed();
    Ok(out)
}

/// True when the segment's first record header is zeros (or it is shorter).
fn starts_empty(path: &Path) -> Result<bool, StoreError> {
    use std::io::Read;
    let mut head = [0u8; record::HEADER];
    let mut file = fs::File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(source) => {
                return Err(StoreError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
    Ok(head.iter().all(|b| *b == 0))
}

fn apply(
    channels: &mut HashMap<String, Building>,
    order: &mut Vec<String>,
    rec: record::Record,
    history_size: usize,
) {
    let entry = RecoveredEntry {
        offset: rec.offset,
        timestamp_ms: rec.timestamp_ms,
        payload: rec.payload,
    };
    let b = match channels.get_mut(&rec.channel) {
        Some(b) => b,
        None => {
            order.push(rec.channel.clone());
            channels.entry(rec.channel).or_insert(Building {
                epoch: rec.epoch.clone(),
                last_offset: entry.offset.saturating_sub(1),
                history: Default::default(),
            })
        }
    };
    if b.epoch != rec.epoch || entry.offset != b.last_offset + 1 {
        // A new epoch, or a gap: what came before cannot be replayed
        // without a hole.
        b.epoch = rec.epoch;
        b.history.clear();
    }
    b.last_offset = entry.offset;
    if history_size > 0 {
        b.history.push_back(entry);
        while b.history.len() > history_size {
            b.history.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ringcast-recover-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    fn write(dir: &Path, run: u64, core: usize, seq: u64, recs: &[(&str, &str, u64)], pad: usize) {
        let mut out = Vec::new();
        for (channel, epoch, offset) in recs {
            let payload = format!("{offset}");
            record::encode_into(&mut out, *offset, 1_000, epoch, channel, payload.as_bytes());
        }
        out.resize(out.len() + pad, 0);
        fs::write(dir.join(segment_name(run, core, seq)), out).expect("write");
    }

    fn offsets(c: &RecoveredChannel) -> Vec<u64> {
        c.history.iter().map(|e| e.offset).collect()
    }

    #[test]
    fn names_round_trip_and_others_are_ignored() {
        assert_eq!(
            parse_segment_name(&segment_name(3, 2, 17)),
            Some((3, 2, 17))
        );
        assert_eq!(parse_segment_name("notes.txt"), None);
        assert_eq!(parse_segment_name("1-2-3-4.log"), None);
    }

    #[test]
    fn channels_come_back_from_every_core_and_run_whatever_the_worker_count() {
        let dir = tempdir("runs");
        // Run 1 had two cores; run 2 had one, which took both channels.
        write(&dir, 1, 0, 0, &[("a", "e1", 1), ("a", "e1", 2)], 64);
        write(&dir, 1, 1, 0, &[("b", "f1", 1)], 0);
        write(&dir, 1, 1, 1, &[], 64);
        write(&dir, 2, 0, 0, &[("a", "e1", 3), ("b", "f1", 2)], 16);
        let r = recover(&dir, 10, Duration::from_secs(3600), 2_000).expect("recover");
        assert_eq!(r.run, 3);
        assert_eq!(r.records, 5);
        let a = r.channels.iter().find(|c| c.name == "a").expect("a");
        let b = r.channels.iter().find(|c| c.name == "b").expect("b");
        assert_eq!(
            (a.epoch.as_str(), a.last_offset, offsets(a)),
            ("e1", 3, vec![1, 2, 3])
        );
        assert_eq!(
            (b.epoch.as_str(), b.last_offset, offsets(b)),
            ("f1", 2, vec![1, 2])
        );
        assert_eq!(&b.history[1].payload[..], b"2");
        assert_eq!(r.torn_tails, 0);
        assert_eq!(r.segments.len(), 3, "the empty spare is deleted");
        assert!(!dir.join(segment_name(1, 1, 1)).exists());
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_torn_tail_is_cut_and_a_corrupt_middle_is_skipped_with_its_gap() {
        let dir = tempdir("torn");
        write(
            &dir,
            1,
            0,
            0,
            &[("a", "e", 1), ("a", "e", 2), ("a", "e", 3)],
            0,
        );
        write(&dir, 1, 0, 1, &[("a", "e", 4), ("a", "e", 5)], 100);
        // Corrupt record 2 in the first (middle) segment; tear record 5.
        let first = dir.join(segment_name(1, 0, 0));
        let mut bytes = fs::read(&first).expect("read");
        let one = bytes.len() / 3;
        bytes[one + 12] ^= 1;
        fs::write(&first, bytes).expect("write");
        let last = dir.join(segment_name(1, 0, 1));
        let mut bytes = fs::read(&last).expect("read");
        let whole = (bytes.len() - 100) / 2;
        bytes[whole + 10] ^= 1;
        fs::write(&last, &bytes).expect("write");
        let r = recover(&dir, 10, Duration::from_secs(3600), 2_000).expect("recover");
        assert_eq!((r.torn_tails, r.corrupt_segments), (1, 1));
        let a = &r.channels[0];
        // 1 read, 2..3 skipped, 4 after the gap, 5 torn: history starts at 4.
        assert_eq!((a.last_offset, offsets(a)), (4, vec![4]));
        assert_eq!(
            fs::metadata(&last).expect("meta").len(),
            whole as u64,
            "cut"
        );
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn history_is_bounded_by_count_and_age_and_epochs_restart_channels() {
        let dir = tempdir("limits");
        write(
            &dir,
            1,
            0,
            0,
            &[
                ("a", "old", 1),
                ("a", "new", 1),
                ("a", "new", 2),
                ("a", "new", 3),
            ],
            0,
        );
        let r = recover(&dir, 2, Duration::from_secs(3600), 2_000).expect("recover");
        let a = &r.channels[0];
        assert_eq!(
            (a.epoch.as_str(), a.last_offset, offsets(a)),
            ("new", 3, vec![2, 3])
        );
        // Every record is older than the TTL: position kept, history empty.
        let r = recover(&dir, 2, Duration::from_millis(500), 2_000).expect("recover");
        let a = &r.channels[0];
        assert_eq!((a.last_offset, a.history.len()), (3, 0));
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join("ringcast-recover-no-such-dir-0");
        let err = recover(&dir, 1, Duration::from_secs(1), 0).expect_err("missing");
        assert!(
            err.to_string().contains("ringcast-recover-no-such-dir-0"),
            "{err}"
        );
    }
}
