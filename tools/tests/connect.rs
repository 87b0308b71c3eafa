//! `ringcast-load connect` end to end, over real loopback sockets, under both
//! monoio drivers (io_uring, and epoll via `MONOIO_FORCE_LEGACY_DRIVER=1`;
//! the driver is chosen once per process, hence one binary run per driver).
//!
//! The server is a small blocking WebSocket server in this file, built on the
//! ringcast codec in the server role. For each connection it checks the
//! handshake, sends one ping and expects the masked pong with the same
//! payload, then expects the client's close 1000 and answers it. It also
//! records the peer address, so the test sees `--source` being used. Every
//! socket has a read timeout, and the accept loop a deadline.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringcast::proto::decoder::{Decoder, Event, Limits, Role};
use ringcast::proto::frame::{encode_frame_into, OpCode};
use ringcast::proto::handshake::accept_key;

const CONNECTIONS: usize = 24;
const DEADLINE: Duration = Duration::from_secs(30);

/// What the test server saw, per connection.
#[derive(Debug, Default)]
struct Seen {
    peers: Vec<SocketAddr>,
    pongs_ok: usize,
    closes_1000: usize,
    errors: Vec<String>,
}

fn start_server() -> (SocketAddr, Arc<Mutex<Seen>>, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen2 = Arc::clone(&seen);
    let handle = thread::spawn(move || {
        let deadline = Instant::now() + DEADLINE;
        let mut workers = Vec::new();
        while workers.len() < CONNECTIONS && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, peer)) => {
                    let seen = Arc::clone(&seen2);
                    let n = workers.len();
                    workers.push(thread::spawn(move || {
                        let result = serve_one(stream, n);
                        let mut s = seen.lock().expect("lock");
                        s.peers.push(peer);
                        match result {
                            Ok(()) => {
                                s.pongs_ok += 1;
                                s.closes_1000 += 1;
                            }
                            Err(e) => s.errors.push(format!("{peer}: {e}")),
                        }
                    }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(2))
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
        for w in workers {
            let _ = w.join();
        }
    });
    (addr, seen, handle)
}

/// Handshake, ping/pong, close for one connection; `Err` says what went wrong.
fn serve_one(mut stream: TcpStream, n: usize) -> Result<(), String> {
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 4096 || stream.read(&mut byte).map_err(|e| e.to_string())? == 0 {
            return Err("bad or missing handshake".into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).map_err(|e| e.to_string())?;
    if !head.starts_with("GET /load HTTP/1.1\r\n") {
        return Err(format!("unexpected request line in {head:?}"));
    }
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .ok_or("no Sec-WebSocket-Key")?;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    );
    let ping = format!("ping-{n}");
    let mut out = response.into_bytes();
    encode_frame_into(&mut out, OpCode::Ping, true, ping.as_bytes());
    stream.write_all(&out).map_err(|e| e.to_string())?;

    let mut decoder = Decoder::new(Role::Server, Limits::default());
    let mut got_pong = false;
    let mut buf = [0u8; 512];
    loop {
        let len = stream.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if len == 0 {
            return Err("EOF before close".into());
        }
        let mut input = &mut buf[..len];
        while !input.is_empty() {
            let d = decoder
                .decode(input)
                .map_err(|e| format!("protocol: {e}"))?;
            match d.event {
                Some(Event::Pong(p)) if p == ping.as_bytes() => got_pong = true,
                Some(Event::Close(Some(c))) if c.code.0 == 1000 && got_pong => {
                    let mut close = Vec::new();
                    encode_frame_into(&mut close, OpCode::Close, true, &1000u16.to_be_bytes());
                    stream.write_all(&close).map_err(|e| e.to_string())?;
                    return Ok(());
                }
                Some(other) => return Err(format!("unexpected {other:?} (pong seen: {got_pong})")),
                None => {}
            }
            let consumed = d.consumed;
            input = &mut input[consumed..];
        }
    }
}

fn run_load(force_epoll: bool) {
    let (addr, seen, server) = start_server();
    let json = std::env::temp_dir().join(format!(
        "ringcast-load-test-{}-{}.json",
        std::process::id(),
        if force_epoll { "epoll" } else { "uring" }
    ));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcast-load"));
    cmd.args(["connect", "--url", &format!("ws://{addr}/load")])
        .args(["--connections", &CONNECTIONS.to_string(), "--rate", "2000"])
        .args([
            "--hold",
            "1s",
            "--settle",
            "200ms",
            "--source",
            "127.0.0.2-127.0.0.3",
        ])
        .args([
            "--server-pid",
            &std::process::id().to_string(),
            "--threads",
            "2",
        ])
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if force_epoll {
        cmd.env("MONOIO_FORCE_LEGACY_DRIVER", "1");
    } else {
        cmd.env_remove("MONOIO_FORCE_LEGACY_DRIVER");
    }
    let mut child = cmd.spawn().expect("spawn ringcast-load");
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ringcast-load did not finish within {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("output");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        status.success(),
        "ringcast-load exited with {status}:\n{text}"
    );
    server.join().expect("server thread");

    let seen = seen.lock().expect("lock");
    assert!(
        seen.errors.is_empty(),
        "server saw errors: {:?}\n{text}",
        seen.errors
    );
    assert_eq!(seen.pongs_ok, CONNECTIONS, "{text}");
    let sources: BTreeSet<IpAddr> = seen.peers.iter().map(SocketAddr::ip).collect();
    let expected: BTreeSet<IpAddr> = ["127.0.0.2", "127.0.0.3"]
        .iter()
        .map(|s| s.parse().expect("ip"))
        .collect();
    assert_eq!(
        sources, expected,
        "connections came from the --source addresses"
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json report")).expect("valid json");
    let _ = std::fs::remove_file(&json);
    let n = CONNECTIONS as u64;
    assert_eq!(report["opened"], n, "{text}");
    assert_eq!(report["failed"], 0, "{text}");
    assert_eq!(report["pings_answered"], n, "{text}");
    assert_eq!(report["closes"]["answered 1000"], n, "{text}");
    assert_eq!(report["handshake_latency"]["count"], n, "{text}");
    assert_eq!(report["server_rss"]["open"], n, "{text}");
    if force_epoll {
        assert_eq!(report["driver"], "epoll", "{text}");
    }
    assert!(text.contains("server RSS: before "), "{text}");
    assert!(text.contains(&format!("({n} open)")), "{text}");
}

#[test]
fn connect_holds_and_closes_under_io_uring() {
    run_load(false);
}

#[test]
fn connect_holds_and_closes_under_epoll() {
    run_load(true);
}

#[test]
fn refuses_more_connections_than_the_fd_limit_allows() {
    let output = Command::new(env!("CARGO_BIN_EXE_ringcast-load"))
        .args([
            "connect",
            "--url",
            "ws://127.0.0.1:9/x",
            "--connections",
            "100000000",
        ])
        .output()
        .expect("run ringcast-load");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("exceeds the"), "{stderr}");
}
