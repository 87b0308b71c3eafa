//! The disk engine in real `ringcast serve` processes, on loopback, with the
//! store in the test's temporary directory: a client resumes across a
//! restart (with another worker count) with `recovered: true`, no gap and
//! no duplicate; a torn or corrupted tail is cut and everything before it
//! comes back; a corrupt record in the middle is skipped with a warning and
//! a metric, history starting after the gap; `kill -9` while publishers run at full speed with
//! `fsync = always` loses no acknowledged offset (a few trials here, 20
//! with `RINGCAST_DISK_CRASH_TRIALS=20`, which `bench/disk/crash.sh` sets);
//! the epoll fallback writes a log that recovers; segments no channel's
//! history reaches are deleted (and the oldest by the budget, after a
//! checkpoint) while a restart still continues every channel's offsets in
//! its epoch; on a real full filesystem (a 1 MiB tmpfs, mounted when the
//! test runs as root, else skipped with the reason printed) publishes
//! answer `unavailable`, only acknowledged ones are delivered and come back
//! after a restart, and freeing space lets publishes in again; SIGTERM
//! syncs every core's segments with `batch` and `never`; `kill -9` while
//! retention deletes segments leaves every channel in its epoch at its
//! offset with its newest history; a missing
//! store directory stops the start with one line naming it.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::ws::Ws;
use common::Served;
use ringcast::engine::disk::record::{self, Parsed};
use serde_json::{json, Value};

/// Subscribes with `since`; the reply and the replayed pushes.
fn resume(ws: &mut Ws, channel: &str, epoch: &str, offset: u64) -> (Value, Vec<Value>) {
    let since = json!({"epoch": epoch, "offset": offset});
    let reply = ws.call(json!({"op":"subscribe","channel":channel,"since":since}));
    let top = reply["result"]["offset"].as_u64().unwrap_or(0);
    let mut replay = Vec::new();
    if reply["result"]["recovered"] == json!(true) {
        for _ in offset..top {
            replay.push(ws.next_push());
        }
    }
    (reply, replay)
}

fn offset(msg: &Value) -> u64 {
    msg["offset"]
        .as_u64()
        .unwrap_or_else(|| panic!("no offset: {msg}"))
}

/// An empty store directory for test `name`.
fn store_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("store-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("store dir");
    dir
}

/// A server on the disk engine over `dir`.
fn node(name: &str, dir: &Path, workers: usize, fsync: &str) -> Served {
    node_with(name, dir, workers, fsync, &[])
}

/// [`node`] with more flags.
fn node_with(name: &str, dir: &Path, workers: usize, fsync: &str, extra: &[&str]) -> Served {
    let path = format!("store.data_path={}", dir.display());
    let workers = format!("server.workers={workers}");
    let fsync = format!("store.fsync={fsync}");
    let mut flags = vec![
        "--set",
        "engine.kind=disk",
        "--set",
        &path,
        "--set",
        &fsync,
        "--set",
        &workers,
        "--set",
        "store.segment_size=1MiB",
        "--set",
        "store.min_free=0",
        "--set",
        "limits.command_rate=0",
        "--set",
        "pubsub.history_size=100000",
    ];
    flags.extend_from_slice(extra);
    Served::start(name, &flags)
}

fn metric(addr: SocketAddr, name: &str) -> f64 {
    let text = common::http(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

fn publish(ws: &mut Ws, channel: &str, data: Value) -> u64 {
    let reply = ws.call(json!({"op":"publish","channel":channel,"data":data}));
    reply["result"]["offset"]
        .as_u64()
        .unwrap_or_else(|| panic!("publish refused: {reply}"))
}

fn epoch_of(ws: &mut Ws, channel: &str) -> String {
    let reply = ws.call(json!({"op":"subscribe","channel":channel}));
    let epoch = reply["result"]["epoch"].as_str().expect("epoch").to_owned();
    ws.call(json!({"op":"unsubscribe","channel":channel}));
    epoch
}

#[test]
fn a_client_resumes_across_a_restart_with_another_worker_count() {
    let dir = store_dir("restart");
    let channels: Vec<String> = (0..6).map(|i| format!("room:{i}")).collect();
    let mut first = node("disk-restart-1", &dir, 2, "always");
    let mut sub = Ws::connect(first.addr);
    let reply = sub.call(json!({"op":"subscribe","channel":"room:0"}));
    let epoch = reply["result"]["epoch"].as_str().expect("epoch").to_owned();
    let mut publisher = Ws::connect(first.addr);
    for n in 1..=40u64 {
        for channel in &channels {
            assert_eq!(publish(&mut publisher, channel, json!({"n": n})), n);
        }
    }
    // The subscriber saw 25 of room:0's 40 before the restart.
    for n in 1..=25 {
        assert_eq!(offset(&sub.next_push()), n);
    }
    let epochs: Vec<String> = channels
        .iter()
        .map(|c| epoch_of(&mut publisher, c))
        .collect();
    assert_eq!(epochs[0], epoch);
    // Every publish was written and synced, by fewer (or as many) syncs.
    let records = metric(first.addr, "ringcast_store_records_total");
    let fsyncs = metric(first.addr, "ringcast_store_fsyncs_total");
    assert_eq!(records, 240.0);
    assert!((1.0..=records).contains(&fsyncs), "{fsyncs} fsyncs");
    first.terminate();
    assert!(first.wait_exit().success());
    drop(first);

    let second = node("disk-restart-2", &dir, 3, "always");
    // Channels whose owner changed got a checkpoint in their new owner's
    // log (their records sit in segments another core's retention holds).
    let moved = channels
        .iter()
        .filter(|c| ringcast::pubsub::hub::owner_of(c, 2) != ringcast::pubsub::hub::owner_of(c, 3))
        .count();
    assert!(moved > 0, "the test needs a channel that changes owner");
    assert_eq!(
        metric(second.addr, "ringcast_store_checkpoints_total"),
        moved as f64
    );
    let mut sub = Ws::connect(second.addr);
    let (reply, replay) = resume(&mut sub, "room:0", &epoch, 25);
    assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
    assert_eq!(reply["result"]["epoch"], json!(epoch));
    let got: Vec<u64> = replay.iter().map(offset).collect();
    assert_eq!(got, (26..=40).collect::<Vec<_>>(), "no gap, no duplicate");
    assert_eq!(replay[0]["data"], json!({"n": 26}));
    // Publishing goes on after the last recovered offset, in the same epoch.
    let mut publisher = Ws::connect(second.addr);
    assert_eq!(publish(&mut publisher, "room:0", json!({"n": 41})), 41);
    let live = sub.next_push();
    assert_eq!((offset(&live), &live["epoch"]), (41, &json!(epoch)));
    // Every other channel came back too, on whichever core owns it now.
    for (channel, epoch) in channels.iter().zip(&epochs).skip(1) {
        let mut ws = Ws::connect(second.addr);
        let (reply, replay) = resume(&mut ws, channel, epoch, 0);
        assert_eq!(
            reply["result"]["recovered"],
            json!(true),
            "{channel}: {reply}"
        );
        assert_eq!(replay.len(), 40, "{channel}");
    }
}

/// Every record of a segment: (start, record).
fn records(path: &Path) -> Vec<(usize, record::Record)> {
    let buf = Bytes::from(std::fs::read(path).expect("segment"));
    let mut out = Vec::new();
    let mut pos = 0;
    while let Parsed::Record(r, used) = record::parse(&buf, pos) {
        out.push((pos, r));
        pos += used;
    }
    out
}

/// The segments holding a record of `channel`.
fn segments_of(dir: &Path, channel: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| records(p).iter().any(|(_, r)| r.channel == channel))
        .collect();
    out.sort();
    out
}

#[test]
fn a_torn_or_corrupted_tail_is_cut_and_everything_before_it_recovered() {
    let dir = store_dir("torn");
    let mut served = node("disk-torn-1", &dir, 1, "always");
    let mut ws = Ws::connect(served.addr);
    for n in 1..=20u64 {
        assert_eq!(publish(&mut ws, "torn:a", json!(n)), n);
    }
    let epoch = epoch_of(&mut ws, "torn:a");
    served.kill();
    drop(served);
    // Tear the last record in the middle (a crash mid-write).
    let segment = segments_of(&dir, "torn:a").pop().expect("a segment");
    let recs = records(&segment);
    let (at, last) = recs.last().expect("records");
    assert_eq!(last.offset, 20);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open");
    file.set_len(*at as u64 + 9).expect("truncate");
    drop(file);

    let mut served = node("disk-torn-2", &dir, 1, "always");
    let mut ws = Ws::connect(served.addr);
    let (reply, replay) = resume(&mut ws, "torn:a", &epoch, 0);
    assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
    assert_eq!(
        replay.iter().map(offset).collect::<Vec<_>>(),
        (1..=19).collect::<Vec<_>>()
    );
    assert_eq!(
        publish(&mut ws, "torn:a", json!(20)),
        20,
        "the torn offset is free again"
    );
    for n in 21..=30u64 {
        assert_eq!(publish(&mut ws, "torn:a", json!(n)), n);
    }
    served.kill();
    drop(served);
    // Flip a byte in the payload of the last record (bit rot at the tail).
    let segment = segments_of(&dir, "torn:a").pop().expect("a segment");
    let (at, last) = records(&segment).pop().expect("records");
    assert_eq!(last.offset, 30);
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes[at + record::HEADER + 20] ^= 0x55;
    std::fs::write(&segment, bytes).expect("write");

    let served = node("disk-torn-3", &dir, 1, "always");
    let mut ws = Ws::connect(served.addr);
    let (reply, replay) = resume(&mut ws, "torn:a", &epoch, 0);
    assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
    let got: Vec<u64> = replay.iter().map(offset).collect();
    assert_eq!(got, (1..=29).collect::<Vec<_>>());
    assert_eq!(replay[19]["data"], json!(20));
    served.wait_for_log("the torn tail warning", |events| {
        events.iter().any(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("torn tail"))
        })
    });
}

/// One crash trial: `publishers` connections publish to `channels` as fast
/// as they are answered (`fsync = always`); `kill -9` after a random
/// 150–600 ms; restart; every acknowledged offset of every channel must be
/// in the replay of a resume from 0, with the data that was acknowledged,
/// and the replay must have no gap.
fn crash_trial(dir: &Path, trial: usize) {
    const CHANNELS: usize = 4;
    const PUBLISHERS: usize = 8;
    let served = Arc::new(Mutex::new(node(
        &format!("disk-crash-{trial}"),
        dir,
        2,
        "always",
    )));
    let addr = served.lock().expect("served").addr;
    let mut threads = Vec::new();
    for p in 0..PUBLISHERS {
        threads.push(std::thread::spawn(move || {
            let channel = format!("crash:{}", p % CHANNELS);
            let mut ws = Ws::connect(addr);
            let mut acked: Vec<(u64, u64)> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            for seq in 0..200_000u64 {
                if Instant::now() > deadline {
                    break;
                }
                let data = json!({"p": p, "seq": seq});
                match ws.try_call(json!({"op":"publish","channel":channel,"data":data})) {
                    Some(reply) => match reply["result"]["offset"].as_u64() {
                        Some(offset) => acked.push((offset, seq)),
                        None => panic!("publish refused: {reply}"),
                    },
                    None => break,
                }
            }
            (channel, p, acked)
        }));
    }
    std::thread::sleep(Duration::from_millis(fastrand::u64(150..600)));
    served.lock().expect("served").kill();
    let mut acked: BTreeMap<String, BTreeMap<u64, (usize, u64)>> = BTreeMap::new();
    for t in threads {
        let (channel, p, offsets) = t.join().expect("publisher");
        for (offset, seq) in offsets {
            let previous = acked
                .entry(channel.clone())
                .or_default()
                .insert(offset, (p, seq));
            assert!(
                previous.is_none(),
                "offset {offset} of {channel} acknowledged twice"
            );
        }
    }
    drop(served);
    let served = node(&format!("disk-crash-{trial}-after"), dir, 2, "always");
    let mut ws = Ws::connect(served.addr);
    let mut total = 0;
    for (channel, offsets) in &acked {
        // The epoch from a plain subscribe: the restart kept it (a new one
        // would make every resume `recovered: false`).
        let epoch = epoch_of(&mut ws, channel);
        let (reply, replay) = resume(&mut ws, channel, &epoch, 0);
        assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
        let got: Vec<u64> = replay.iter().map(offset).collect();
        let top = *offsets.keys().last().expect("acks");
        assert!(
            got.len() as u64 >= top,
            "trial {trial} {channel}: {} < {top}",
            got.len()
        );
        assert!(
            got.iter().copied().eq(1..=got.len() as u64),
            "a gap in {channel}"
        );
        for (offset, (p, seq)) in offsets {
            let push = &replay[*offset as usize - 1];
            assert_eq!(
                push["data"],
                json!({"p": p, "seq": seq}),
                "{channel} {offset}"
            );
        }
        total += offsets.len();
    }
    assert!(
        total > 0,
        "trial {trial}: nothing was acknowledged before the kill"
    );
    eprintln!("crash trial {trial}: {total} acknowledged publishes, all recovered");
}

#[test]
fn kill_9_under_full_speed_publishing_loses_no_acknowledged_offset() {
    let trials: usize = std::env::var("RINGCAST_DISK_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for trial in 0..trials {
        let dir = store_dir(&format!("crash-{trial}"));
        crash_trial(&dir, trial);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The epoll fallback (monoio's legacy driver) runs the same file
/// operations as plain syscalls: what it wrote, io_uring reads back.
#[test]
fn the_epoll_fallback_writes_a_log_that_recovers() {
    let dir = store_dir("epoll");
    let mut served = node_with(
        "disk-epoll-1",
        &dir,
        1,
        "always",
        &["--set", "io_uring.force_epoll=true"],
    );
    let mut ws = Ws::connect(served.addr);
    for n in 1..=10u64 {
        assert_eq!(publish(&mut ws, "epoll:a", json!(n)), n);
    }
    let epoch = epoch_of(&mut ws, "epoll:a");
    served.kill();
    drop(served);
    let served = node("disk-epoll-2", &dir, 1, "batch");
    let mut ws = Ws::connect(served.addr);
    let (reply, replay) = resume(&mut ws, "epoll:a", &epoch, 4);
    assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
    assert_eq!(
        replay.iter().map(offset).collect::<Vec<_>>(),
        (5..=10).collect::<Vec<_>>()
    );
}

#[test]
fn a_missing_store_directory_stops_the_start_with_one_line_naming_it() {
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-store-dir");
    let _ = std::fs::remove_dir_all(&missing);
    let out = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--no-pin",
        ])
        .args(["--set", "engine.kind=disk", "--set"])
        .arg(format!("store.data_path={}", missing.display()))
        .env("RINGCAST_LOG", "error")
        .output()
        .expect("run ringcast");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("no-such-store-dir"), "{stderr}");
}

/// The run-1 segment files left in `dir`, by sequence.
fn run_segments(dir: &Path, run: u64) -> Vec<u64> {
    let mut out: Vec<u64> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".log")?;
            let mut parts = stem.split('-');
            let r: u64 = parts.next()?.parse().ok()?;
            let _core = parts.next()?;
            let seq: u64 = parts.next()?.parse().ok()?;
            (r == run).then_some(seq)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn segments_no_history_reaches_are_deleted_and_a_restart_keeps_every_channel_s_offset_and_epoch() {
    let dir = store_dir("retention");
    // 64 KiB segments of ~2 KiB records (about 30 each), 5 messages of
    // history, a budget of 4 segments, `batch` (retention syncs the
    // checkpoints itself).
    let extra = [
        "--set",
        "store.segment_size=64KiB",
        "--set",
        "store.max_disk=256KiB",
        "--set",
        "pubsub.history_size=5",
    ];
    let mut served = node_with("disk-retention-1", &dir, 1, "batch", &extra);
    let addr = served.addr;
    let mut ws = Ws::connect(addr);
    let big = "x".repeat(2000);
    // quiet:1 in segment 0, quiet:2 a few segments on: each stays in its
    // channel's history, so only the budget can take their segments.
    assert_eq!(publish(&mut ws, "quiet:1", json!("q1")), 1);
    assert_eq!(publish(&mut ws, "quiet:1", json!("q2")), 2);
    for n in 1..=100u64 {
        assert_eq!(publish(&mut ws, "busy", json!({"n": n, "pad": big})), n);
    }
    assert_eq!(publish(&mut ws, "quiet:2", json!("only")), 1);
    for n in 101..=300u64 {
        assert_eq!(publish(&mut ws, "busy", json!({"n": n, "pad": big})), n);
    }
    let epochs: Vec<String> = ["busy", "quiet:1", "quiet:2"]
        .iter()
        .map(|c| epoch_of(&mut ws, c))
        .collect();
    // Retention runs on the core's upkeep (at most a second apart).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let history = metric(
            addr,
            "ringcast_store_segments_deleted_total{reason=\"history\"}",
        );
        let budget = metric(
            addr,
            "ringcast_store_segments_deleted_total{reason=\"budget\"}",
        );
        if history >= 5.0 && budget >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "segments not deleted: history {history}, budget {budget}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(metric(addr, "ringcast_store_checkpoints_total") >= 1.0);
    let left = run_segments(&dir, 1);
    let rolled = *left.last().expect("segments");
    assert!(rolled >= 8, "about 10 segments were written: {left:?}");
    assert!(!left.contains(&0), "the budget took segment 0: {left:?}");
    assert!(left.len() <= 4, "only what history needs is left: {left:?}");
    served.kill();
    drop(served);

    let served = node_with("disk-retention-2", &dir, 1, "batch", &extra);
    // A fresh connection per resume (one subscription per channel each).
    let resume_fresh = |channel: &str, epoch: &str, offset: u64| {
        resume(&mut Ws::connect(served.addr), channel, epoch, offset)
    };
    // busy: a recent offset resumes, a deleted one does not.
    let (reply, replay) = resume_fresh("busy", &epochs[0], 297);
    assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
    assert_eq!(
        replay.iter().map(offset).collect::<Vec<_>>(),
        vec![298, 299, 300]
    );
    let (reply, _) = resume_fresh("busy", &epochs[0], 10);
    assert_eq!(reply["result"]["recovered"], json!(false), "{reply}");
    // quiet:1's records went with segment 0; its checkpoint kept where it
    // stood: nothing missed after 2, history before it gone.
    let (reply, replay) = resume_fresh("quiet:1", &epochs[1], 2);
    assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
    assert!(replay.is_empty());
    let (reply, _) = resume_fresh("quiet:1", &epochs[1], 1);
    assert_eq!(reply["result"]["recovered"], json!(false), "{reply}");
    // quiet:2's segment was kept for its history.
    let (reply, replay) = resume_fresh("quiet:2", &epochs[2], 0);
    assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
    assert_eq!(replay[0]["data"], json!("only"));
    // Every channel goes on from its offset, in its epoch.
    let mut publisher = Ws::connect(served.addr);
    for ((channel, epoch), next) in ["busy", "quiet:1", "quiet:2"]
        .iter()
        .zip(&epochs)
        .zip([301, 3, 2])
    {
        assert_eq!(publish(&mut publisher, channel, json!("after")), next);
        assert_eq!(&epoch_of(&mut publisher, channel), epoch, "{channel}");
    }
}

/// A small tmpfs mounted for one test, unmounted when dropped (declare it
/// before the server, so the server is gone first).
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// `None` (with the reason printed) when this process may not mount.
    fn mount(name: &str, size: &str) -> Option<SmallDisk> {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mnt-{name}"));
        let _ = Command::new("umount").arg(&path).output();
        std::fs::create_dir_all(&path).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(SmallDisk { path }),
            Ok(out) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: no mount command: {e}");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

#[test]
fn a_full_disk_refuses_publishes_acknowledges_only_what_was_written_and_recovers_when_freed() {
    // 1 MiB of tmpfs, half of it taken by a file the test deletes later.
    let Some(disk) = SmallDisk::mount("full", "1m") else {
        return;
    };
    let ballast = disk.path.join("ballast");
    std::fs::write(&ballast, vec![1u8; 512 << 10]).expect("ballast");
    let dir = disk.path.join("store");
    std::fs::create_dir(&dir).expect("store dir");
    let extra = [
        "--set",
        "store.segment_size=64KiB",
        "--set",
        "store.max_disk=0",
    ];
    let mut served = node_with("disk-full-1", &dir, 1, "always", &extra);
    let addr = served.addr;
    let mut sub = Ws::connect(addr);
    let reply = sub.call(json!({"op":"subscribe","channel":"full"}));
    let epoch = reply["result"]["epoch"].as_str().expect("epoch").to_owned();
    let mut ws = Ws::connect(addr);
    let pad = "y".repeat(2000);
    // Publish until refused (the store holds 8 segments of ~30 records at
    // most), then a few more: every one refused, `unavailable`.
    let mut acked: Vec<u64> = Vec::new();
    let mut refused = 0;
    for n in 0..2_000u64 {
        let reply = ws.call(json!({"op":"publish","channel":"full","data":{"n": n, "pad": pad}}));
        match reply["result"]["offset"].as_u64() {
            Some(offset) => {
                assert_eq!(refused, 0, "accepted after a refusal: {reply}");
                assert_eq!(offset, acked.len() as u64 + 1);
                acked.push(n);
            }
            None => {
                assert_eq!(reply["error"]["code"], json!("unavailable"), "{reply}");
                refused += 1;
                if refused == 5 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused, 5, "the disk never filled");
    assert!(acked.len() > 30, "at least one segment was filled");
    assert_eq!(metric(addr, "ringcast_store_refused_total"), 5.0);
    // The subscriber got exactly the acknowledged ones, in order.
    for (i, n) in acked.iter().enumerate() {
        let push = sub.next_push();
        assert_eq!(
            (offset(&push), &push["data"]["n"]),
            (i as u64 + 1, &json!(n))
        );
    }
    // Resumes go on while the disk is full.
    let (reply, replay) = resume(&mut Ws::connect(addr), "full", &epoch, 0);
    assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
    assert_eq!(replay.len(), acked.len());
    // Free the space: publishes are accepted again (the store retries
    // the next segment every 100 ms).
    std::fs::remove_file(&ballast).expect("free the disk");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = 0u64;
    while after < 40 {
        let n = 10_000 + after;
        let reply = ws.call(json!({"op":"publish","channel":"full","data":{"n": n, "pad": pad}}));
        match reply["result"]["offset"].as_u64() {
            Some(offset) => {
                assert_eq!(offset, acked.len() as u64 + 1);
                acked.push(n);
                after += 1;
            }
            None => {
                assert_eq!(reply["error"]["code"], json!("unavailable"), "{reply}");
                assert!(Instant::now() < deadline, "still refused after freeing");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    served.kill();
    drop(served);

    // Everything acknowledged is on the disk, in order, and nothing else.
    let served = node_with("disk-full-2", &dir, 1, "always", &extra);
    let mut ws = Ws::connect(served.addr);
    let (reply, replay) = resume(&mut ws, "full", &epoch, 0);
    assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
    let got: Vec<&Value> = replay.iter().map(|p| &p["data"]["n"]).collect();
    let want: Vec<Value> = acked.iter().map(|n| json!(n)).collect();
    assert_eq!(got, want.iter().collect::<Vec<_>>());
    drop(ws);
    drop(served);
    drop(disk);
}

/// With `batch` (an interval longer than the test) and `never`, nothing is
/// synced while serving; SIGTERM drains and every core syncs what it wrote
/// before the process exits (the `store synced at shutdown` line counts
/// the `fdatasync`s), and the records are there after a restart.
#[test]
fn a_graceful_shutdown_syncs_every_core_s_segments_with_batch_and_never() {
    for fsync in ["batch", "never"] {
        let dir = store_dir(&format!("shutdown-{fsync}"));
        // 64 KiB segments: the 2 KiB publishes roll a few of them, which
        // `never` syncs by path at shutdown.
        let extra = [
            "--set",
            "store.fsync_interval=1h",
            "--set",
            "store.segment_size=64KiB",
        ];
        let name = format!("disk-shutdown-{fsync}");
        let mut served = node_with(&name, &dir, 2, fsync, &extra);
        let mut ws = Ws::connect(served.addr);
        let pad = "z".repeat(2000);
        for n in 1..=100u64 {
            let channel = format!("down:{}", n % 4);
            publish(&mut ws, &channel, json!({"n": n, "pad": pad}));
        }
        let epoch = epoch_of(&mut ws, "down:0");
        assert_eq!(
            metric(served.addr, "ringcast_store_fsyncs_total"),
            0.0,
            "{fsync}: nothing synced while serving"
        );
        drop(ws);
        served.terminate();
        assert!(served.wait_exit().success());
        let synced: Vec<u64> = served
            .events()
            .iter()
            .filter(|e| e["message"] == json!("store synced at shutdown"))
            .map(|e| e["fsyncs"].as_u64().expect("fsyncs"))
            .collect();
        assert_eq!(synced.len(), 2, "{fsync}: one line per core");
        assert!(synced.iter().all(|n| *n >= 1), "{fsync}: {synced:?}");
        if fsync == "never" {
            // 100 × 2 KiB on two cores rolled segments: those are synced too.
            assert!(synced.iter().sum::<u64>() > 2, "{synced:?}");
        }
        drop(served);
        let served = node(&format!("{name}-after"), &dir, 2, fsync);
        let (reply, replay) = resume(&mut Ws::connect(served.addr), "down:0", &epoch, 0);
        assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
        assert_eq!(replay.len(), 25, "{fsync}");
    }
}

/// A bad record in a segment that is not the tail is corruption, not a
/// torn write: the server starts, skips the rest of that segment with a
/// warning and `ringcast_store_corrupt_segments`, keeps the history after
/// the gap (a resume from before it is `recovered: false`, never a silent
/// hole), and the channel goes on in its epoch.
#[test]
fn a_corrupt_record_in_the_middle_is_skipped_with_a_warning_and_a_metric() {
    let dir = store_dir("middle");
    let extra = ["--set", "store.segment_size=64KiB"];
    let mut served = node_with("disk-middle-1", &dir, 1, "always", &extra);
    let mut ws = Ws::connect(served.addr);
    let pad = "m".repeat(2000);
    for n in 1..=80u64 {
        assert_eq!(publish(&mut ws, "mid", json!({"n": n, "pad": pad})), n);
    }
    let epoch = epoch_of(&mut ws, "mid");
    served.kill();
    drop(served);
    let segments = segments_of(&dir, "mid");
    assert!(segments.len() >= 3, "{segments:?}");
    // Flip a payload byte of the 5th record of the first segment.
    let first = &segments[0];
    let (at, bad) = records(first).swap_remove(4);
    assert_eq!(bad.offset, 5);
    let mut bytes = std::fs::read(first).expect("read");
    bytes[at + record::HEADER + 40] ^= 0x20;
    std::fs::write(first, bytes).expect("write");
    // History resumes with the first record of the next segment.
    let resumable = records(&segments[1])[0].1.offset;

    let served = node_with("disk-middle-2", &dir, 1, "always", &extra);
    assert_eq!(metric(served.addr, "ringcast_store_corrupt_segments"), 1.0);
    served.wait_for_log("the corrupt record warning", |events| {
        events.iter().any(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("corrupt record"))
        })
    });
    let (reply, _) = resume(&mut Ws::connect(served.addr), "mid", &epoch, 0);
    assert_eq!(reply["result"]["recovered"], json!(false), "{reply}");
    let (reply, replay) = resume(&mut Ws::connect(served.addr), "mid", &epoch, resumable - 1);
    assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
    assert_eq!(
        replay.iter().map(offset).collect::<Vec<_>>(),
        (resumable..=80).collect::<Vec<_>>()
    );
    let mut ws = Ws::connect(served.addr);
    assert_eq!(publish(&mut ws, "mid", json!("next")), 81);
    assert_eq!(epoch_of(&mut ws, "mid"), epoch);
}

/// One crash trial with retention at work: 64 KiB segments, 20 messages of
/// history, publishers at full speed (`fsync = always`) rolling segments
/// that retention deletes (after checkpoints) while `kill -9` lands at a
/// random moment. After the restart every channel is in its epoch, the
/// newest 10 acknowledged offsets resume with their data and no gap, and
/// the next publish continues the offsets.
fn retention_crash_trial(dir: &Path, trial: usize) {
    const CHANNELS: usize = 4;
    let extra = [
        "--set",
        "store.segment_size=64KiB",
        "--set",
        "pubsub.history_size=20",
    ];
    let name = format!("disk-retention-crash-{trial}");
    let served = Arc::new(Mutex::new(node_with(&name, dir, 2, "always", &extra)));
    let addr = served.lock().expect("served").addr;
    let mut threads = Vec::new();
    for p in 0..CHANNELS {
        threads.push(std::thread::spawn(move || {
            let channel = format!("rc:{p}");
            let mut ws = Ws::connect(addr);
            let epoch = epoch_of(&mut ws, &channel);
            let pad = "r".repeat(500);
            let mut acked: Vec<(u64, u64)> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            for seq in 0..200_000u64 {
                if Instant::now() > deadline {
                    break;
                }
                let data = json!({"seq": seq, "pad": pad});
                match ws.try_call(json!({"op":"publish","channel":channel,"data":data})) {
                    Some(reply) => match reply["result"]["offset"].as_u64() {
                        Some(offset) => acked.push((offset, seq)),
                        None => panic!("publish refused: {reply}"),
                    },
                    None => break,
                }
            }
            (channel, epoch, acked)
        }));
    }
    // Once retention has deleted segments, kill at a random moment.
    let deadline = Instant::now() + Duration::from_secs(8);
    let deleted = "ringcast_store_segments_deleted_total{reason=\"history\"}";
    while metric(addr, deleted) < 2.0 {
        assert!(
            Instant::now() < deadline,
            "trial {trial}: no segment deleted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(fastrand::u64(0..400)));
    served.lock().expect("served").kill();
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("publisher"))
        .collect();
    drop(served);
    let lowest = run_segments(dir, 1);
    let served = node_with(&format!("{name}-after"), dir, 2, "always", &extra);
    for (channel, epoch, acked) in &results {
        let top = acked.last().map_or(0, |(offset, _)| *offset);
        let from = top.saturating_sub(10);
        let (reply, replay) = resume(&mut Ws::connect(served.addr), channel, epoch, from);
        assert_eq!(
            reply["result"]["recovered"],
            json!(true),
            "trial {trial} {channel}: {reply}"
        );
        let got: Vec<u64> = replay.iter().map(offset).collect();
        assert!(
            got.iter().copied().eq(from + 1..=from + got.len() as u64)
                && got.len() as u64 >= top - from,
            "trial {trial} {channel}: {got:?} after {from}"
        );
        for (offset, seq) in acked.iter().filter(|(o, _)| *o > from) {
            let push = &replay[(offset - from - 1) as usize];
            assert_eq!(push["data"]["seq"], json!(seq), "{channel} {offset}");
        }
        let mut ws = Ws::connect(served.addr);
        let next = publish(&mut ws, channel, json!("after"));
        assert_eq!(next, from + got.len() as u64 + 1, "{channel}");
        assert_eq!(&epoch_of(&mut ws, channel), epoch, "{channel}");
    }
    eprintln!(
        "retention crash trial {trial}: tops {:?}, run-1 segments left {lowest:?}",
        results
            .iter()
            .map(|(_, _, a)| a.last().map_or(0, |(o, _)| *o))
            .collect::<Vec<_>>()
    );
}

#[test]
fn kill_9_while_retention_deletes_segments_keeps_every_channel_s_position() {
    let trials: usize = std::env::var("RINGCAST_DISK_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for trial in 0..trials {
        let dir = store_dir(&format!("retention-crash-{trial}"));
        retention_crash_trial(&dir, trial);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
