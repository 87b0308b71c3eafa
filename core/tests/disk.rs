//! The disk engine in real `ringcast serve` processes, on loopback, with the
//! store in the test's temporary directory: a client resumes across a
//! restart (with another worker count) with `recovered: true`, no gap and
//! no duplicate; a torn or corrupted tail is cut and everything before it
//! comes back; `kill -9` while publishers run at full speed with
//! `fsync = always` loses no acknowledged offset (a few trials here, 20
//! with `RINGCAST_DISK_CRASH_TRIALS=20`, which `bench/disk/crash.sh` sets);
//! the epoll fallback writes a log that recovers; a missing store directory
//! stops the start with one line naming it.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Client, Frame, Served};
use ringcast::engine::disk::record::{self, Parsed};
use ringcast::proto::frame::OpCode;
use serde_json::{json, Value};

/// A `/ws` client that keeps pushes arriving while it waits for a reply.
struct Ws {
    client: Client,
    next_id: u64,
    pushes: VecDeque<Value>,
}

impl Ws {
    fn connect(addr: SocketAddr) -> Ws {
        Ws {
            client: Client::connect(addr, "/ws"),
            next_id: 1,
            pushes: VecDeque::new(),
        }
    }

    fn recv(&mut self) -> Option<Value> {
        loop {
            match self.client.recv()? {
                Frame::Text(text) => return Some(serde_json::from_str(&text).expect("JSON")),
                Frame::Ping(p) => self.client.send(OpCode::Pong, true, &p),
                Frame::Close(_) => return None,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Sends `command` with a fresh id; its reply, or `None` when the server
    /// went away first.
    fn try_call(&mut self, mut command: Value) -> Option<Value> {
        let id = self.next_id;
        self.next_id += 1;
        command["id"] = json!(id);
        let mut frame = Vec::new();
        ringcast::proto::frame::encode_masked_frame_into(
            &mut frame,
            OpCode::Text,
            true,
            common::MASK,
            command.to_string().as_bytes(),
        );
        self.client.stream.write_all(&frame).ok()?;
        loop {
            let msg = self.recv()?;
            if msg.get("id").is_none() && msg.get("offset").is_some() {
                self.pushes.push_back(msg);
            } else {
                assert_eq!(msg["id"], json!(id), "reply out of order: {msg}");
                return Some(msg);
            }
        }
    }

    fn call(&mut self, command: Value) -> Value {
        self.try_call(command).expect("the server answered")
    }

    fn next_push(&mut self) -> Value {
        if let Some(push) = self.pushes.pop_front() {
            return push;
        }
        let msg = self.recv().expect("a push");
        assert!(msg.get("id").is_none(), "not a push: {msg}");
        msg
    }

    /// Subscribes with `since`; the reply and the replayed pushes.
    fn resume(&mut self, channel: &str, epoch: &str, offset: u64) -> (Value, Vec<Value>) {
        let since = json!({"epoch": epoch, "offset": offset});
        let reply = self.call(json!({"op":"subscribe","channel":channel,"since":since}));
        let top = reply["result"]["offset"].as_u64().unwrap_or(0);
        let mut replay = Vec::new();
        if reply["result"]["recovered"] == json!(true) {
            for _ in offset..top {
                replay.push(self.next_push());
            }
        }
        (reply, replay)
    }
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
    let mut sub = Ws::connect(second.addr);
    let (reply, replay) = sub.resume("room:0", &epoch, 25);
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
        let (reply, replay) = ws.resume(channel, epoch, 0);
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
    let (reply, replay) = ws.resume("torn:a", &epoch, 0);
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
    let (reply, replay) = ws.resume("torn:a", &epoch, 0);
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
        let (reply, replay) = ws.resume(channel, &epoch, 0);
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
    let (reply, replay) = ws.resume("epoll:a", &epoch, 4);
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
