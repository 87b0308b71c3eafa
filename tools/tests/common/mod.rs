//! Test support for the `ringcast-load` end-to-end tests: a ringcast server
//! started in-process on `127.0.0.1:0`, a runner for the binary that bounds
//! its time and reads its `--json` report, and tiny blocking WebSocket
//! servers built on the ringcast codec in the server role: an echo server
//! that answers after a known delay (or stalls once), and a broadcast server
//! that sends every message to every client.
//!
//! Every socket has a read timeout and every accept loop a deadline, so a
//! test can hang no longer than its own bound.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use ringcast::config::ServerConfig;
use ringcast::proto::close::CloseCode;
use ringcast::proto::decoder::{Decoder, Event, Limits, Role};
use ringcast::proto::frame::{encode_close_frame_into, encode_frame_into, OpCode};
use ringcast::proto::handshake::accept_key;
use ringcast::server::ServerHandle;

/// Longest a `ringcast-load` run may take in a test.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Serializes the load runs of one test binary: they measure latency, and two
/// at once on a 2-core box would measure each other.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A ringcast server on `127.0.0.1:0` with 2 unpinned workers.
pub fn start_ringcast(tune: impl FnOnce(&mut ServerConfig)) -> ServerHandle {
    let mut config = ServerConfig::default();
    config.server.listen = "127.0.0.1:0".parse().expect("address");
    config.server.workers = 2;
    config.server.pin_workers = false;
    tune(&mut config);
    ringcast::server::start(config).expect("ringcast server starts")
}

/// What a `ringcast-load` run left.
pub struct LoadRun {
    pub status: ExitStatus,
    /// stdout then stderr, for assertion messages.
    pub text: String,
    /// The `--json` report (`Null` when none was written).
    pub report: serde_json::Value,
}

/// Runs `ringcast-load ARGS --json TMP --quiet` within [`RUN_LIMIT`] (killed
/// past it) and reads the report.
pub fn run_load(args: &[&str]) -> LoadRun {
    run_load_env(args, &[])
}

pub fn run_load_env(args: &[&str], env: &[(&str, &str)]) -> LoadRun {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let json = std::env::temp_dir().join(format!(
        "ringcast-load-test-{}-{}.json",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&json);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcast-load"));
    cmd.args(args)
        .arg("--json")
        .arg(&json)
        .arg("--quiet")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn ringcast-load");
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let out = thread::spawn(move || read_all(stdout));
    let err = thread::spawn(move || read_all(stderr));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ringcast-load {args:?} did not finish within {RUN_LIMIT:?}\n{}\n{}",
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let text = format!(
        "{}\n{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    let report = std::fs::read(&json)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    let _ = std::fs::remove_file(&json);
    LoadRun {
        status,
        text,
        report,
    }
}

fn read_all(r: Option<impl Read>) -> String {
    let mut s = String::new();
    if let Some(mut r) = r {
        let _ = r.read_to_string(&mut s);
    }
    s
}

/// `report["metrics"][metric]`'s percentiles in order, checked to be ordered.
pub fn assert_ordered_percentiles(run: &LoadRun, metric: &str) -> [u64; 6] {
    let m = &run.report["metrics"][metric];
    let keys = [
        "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us", "max_us",
    ];
    let values = keys.map(|k| {
        m[k].as_u64()
            .unwrap_or_else(|| panic!("{metric}.{k} missing\n{}", run.text))
    });
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "{metric} percentiles out of order: {values:?}\n{}",
        run.text
    );
    assert!(m["count"].as_u64().unwrap_or(0) > 0, "{}", run.text);
    values
}

pub fn count(run: &LoadRun, name: &str) -> u64 {
    run.report["counts"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("counts.{name} missing\n{}", run.text))
}

// ------------------------------------------------------------ test servers

/// Reads the opening handshake and answers 101.
pub fn accept_handshake(stream: &mut TcpStream) -> Result<(), String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || stream.read(&mut byte).map_err(|e| e.to_string())? == 0 {
            return Err("bad or missing handshake".into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).map_err(|e| e.to_string())?;
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_string())
        })
        .ok_or("no Sec-WebSocket-Key")?;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(&key)
    );
    stream
        .write_all(response.as_bytes())
        .map_err(|e| e.to_string())
}

/// A message or event read by [`read_messages`].
pub enum Incoming {
    Message(OpCode, Vec<u8>),
    Close,
}

/// Reads frames from `stream`, answering pings, and hands each message to
/// `on_message`; returns at the client's close (answered) or EOF.
pub fn read_messages(
    stream: &mut TcpStream,
    writer: &Mutex<TcpStream>,
    mut on_message: impl FnMut(OpCode, &[u8]),
) {
    let mut decoder = Decoder::new(Role::Server, Limits::default());
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut input = &mut buf[..n];
        while !input.is_empty() {
            let Ok(d) = decoder.decode(input) else { return };
            match d.event {
                Some(Event::Text(t)) => on_message(OpCode::Text, t.as_bytes()),
                Some(Event::Binary(b)) => on_message(OpCode::Binary, b),
                Some(Event::Ping(p)) => {
                    let mut out = Vec::new();
                    encode_frame_into(&mut out, OpCode::Pong, true, p);
                    let _ = writer.lock().map(|mut w| w.write_all(&out));
                }
                Some(Event::Close(_)) => {
                    let mut out = Vec::new();
                    encode_close_frame_into(&mut out, CloseCode::NORMAL, "");
                    let _ = writer.lock().map(|mut w| w.write_all(&out));
                    return;
                }
                Some(Event::Pong(_)) | None => {}
            }
            let consumed = d.consumed;
            input = &mut input[consumed..];
        }
    }
}

/// How the test echo server misbehaves.
#[derive(Debug, Clone, Copy)]
pub struct EchoBehaviour {
    /// Every echo leaves this long after its message arrived.
    pub delay: Duration,
    /// Once, this long after the first message: hold every echo for the
    /// given time (a server stall).
    pub stall: Option<(Duration, Duration)>,
}

/// A blocking echo server on `127.0.0.1:0`; accepts for `accept_for`.
pub fn start_echo_server(behaviour: EchoBehaviour, accept_for: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let first_message: Arc<Mutex<Option<Instant>>> = Arc::default();
    thread::spawn(move || {
        let deadline = Instant::now() + accept_for;
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    let first = Arc::clone(&first_message);
                    thread::spawn(move || serve_echo(stream, behaviour, &first));
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    addr
}

fn serve_echo(mut stream: TcpStream, b: EchoBehaviour, first: &Mutex<Option<Instant>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    if accept_handshake(&mut stream).is_err() {
        return;
    }
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let writer = Arc::new(Mutex::new(write_half));
    // Echoes leave in arrival order, each at arrival + delay (or after the stall).
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let w = Arc::clone(&writer);
    let sender = thread::spawn(move || {
        for (due, frame) in rx {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if w.lock().map(|mut s| s.write_all(&frame)).is_err() {
                return;
            }
        }
    });
    read_messages(&mut stream, &writer, |op, payload| {
        let now = Instant::now();
        let started = *first.lock().expect("lock").get_or_insert(now);
        let mut due = now + b.delay;
        if let Some((after, length)) = b.stall {
            let (from, to) = (started + after, started + after + length);
            if due >= from && due < to {
                due = to;
            }
        }
        let mut frame = Vec::new();
        encode_frame_into(&mut frame, op, true, payload);
        let _ = tx.send((due, frame));
    });
    drop(tx);
    let _ = sender.join();
}

/// A blocking broadcast server on `127.0.0.1:0`: every message any client
/// sends goes to every connected client. Accepts for `accept_for`.
pub fn start_broadcast_server(accept_for: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let clients: Arc<Mutex<Vec<Arc<Mutex<TcpStream>>>>> = Arc::default();
    thread::spawn(move || {
        let deadline = Instant::now() + accept_for;
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let clients = Arc::clone(&clients);
                    thread::spawn(move || {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_nodelay(true);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                        if accept_handshake(&mut stream).is_err() {
                            return;
                        }
                        let Ok(w) = stream.try_clone() else { return };
                        let me = Arc::new(Mutex::new(w));
                        clients.lock().expect("lock").push(Arc::clone(&me));
                        read_messages(&mut stream, &me, |op, payload| {
                            let mut frame = Vec::new();
                            encode_frame_into(&mut frame, op, true, payload);
                            let all = clients.lock().expect("lock").clone();
                            for c in all {
                                let _ = c.lock().map(|mut s| s.write_all(&frame));
                            }
                        });
                        clients
                            .lock()
                            .expect("lock")
                            .retain(|c| !Arc::ptr_eq(c, &me));
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    addr
}
