//! A small blocking WebSocket client over real sockets, for integration tests,
//! and the `ringcast serve` binary as a child process ([`Served`]).
//! Every read has a timeout, so a broken server fails a test instead of hanging it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringcast::config::ServerConfig;
use ringcast::proto::close::CloseCode;
use ringcast::proto::decoder::{Decoder, Event, Limits, Role};
use ringcast::proto::frame::{encode_masked_frame_into, OpCode};
use ringcast::server::{self, ServerHandle};

pub mod ws;

pub const MASK: [u8; 4] = [0x1f, 0x2e, 0x3d, 0x4c];
/// How long a read may wait for bytes the server owes, and how long a poll
/// waits for an event. Generous on purpose: it fails a test only when the
/// server really hangs, never because a shared box was slow; a passing test
/// never waits for it.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// How a test server moves its socket bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// io_uring runtime, readiness sockets (an epoll set it polls).
    Uring,
    /// monoio's epoll driver, readiness sockets.
    Epoll,
    /// io_uring runtime, sockets on the connection ring
    /// (`io_uring.socket_io = "completion"`).
    Completion,
}

/// `true`: epoll, as the suites wrote it before the completion path.
impl From<bool> for Driver {
    fn from(force_epoll: bool) -> Self {
        if force_epoll {
            Driver::Epoll
        } else {
            Driver::Uring
        }
    }
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Driver::Uring => "uring",
            Driver::Epoll => "epoll",
            Driver::Completion => "completion",
        })
    }
}

impl Driver {
    /// The `ringcast serve` flags that pick this driver.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Driver::Uring => &[],
            Driver::Epoll => &["--force-epoll"],
            Driver::Completion => &["--set", "io_uring.socket_io=completion"],
        }
    }
}

/// Every IO path, so every socket test runs under each.
pub const DRIVERS: [Driver; 3] = [Driver::Uring, Driver::Epoll, Driver::Completion];

pub fn start(driver: impl Into<Driver>, tweak: impl FnOnce(&mut ServerConfig)) -> ServerHandle {
    let driver = driver.into();
    let mut config = ServerConfig::default();
    config.server.listen = "127.0.0.1:0".parse().expect("addr");
    config.server.workers = 2;
    config.server.pin_workers = false;
    config.io_uring.force_epoll = driver == Driver::Epoll;
    if driver == Driver::Completion {
        config.io_uring.socket_io = ringcast::config::SocketIo::Completion;
    }
    tweak(&mut config);
    let handle = server::start(config).expect("server starts");
    let forced_epoll = std::env::var("MONOIO_FORCE_LEGACY_DRIVER").is_ok_and(|v| v == "1");
    let want_epoll = driver == Driver::Epoll || forced_epoll;
    for kind in handle.drivers() {
        let epoll = matches!(kind, server::DriverKind::Epoll { .. });
        if want_epoll {
            assert!(epoll, "asked for epoll, got {kind}");
        }
    }
    // The completion path is what the test is about: it must really be on
    // (this kernel has what it needs), TLS listeners included.
    let completion = driver == Driver::Completion && !forced_epoll;
    for (worker, on) in handle.completion_socket_io().iter().enumerate() {
        assert_eq!(*on, completion, "worker {worker}: completion socket IO");
    }
    handle
}

/// A owned message or control frame as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

pub struct Client {
    pub stream: TcpStream,
    decoder: Decoder,
    buf: Vec<u8>,
    start: usize,
}

pub fn raw(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Reads an HTTP response head (and nothing after it) byte by byte.
pub fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(e) => panic!(
                "reading response head: {e}; got so far {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    String::from_utf8(head).expect("utf-8 head")
}

/// Sends `request` and returns the whole response (the server closes after a refusal).
pub fn http(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = raw(addr);
    stream.write_all(request).expect("write");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

impl Client {
    pub fn connect(addr: SocketAddr, path: &str) -> Client {
        let mut stream = raw(addr);
        stream
            .write_all(upgrade_request(path).as_bytes())
            .expect("write");
        let head = read_head(&mut stream);
        assert!(head.starts_with("HTTP/1.1 101"), "not upgraded: {head}");
        assert!(
            head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "bad accept: {head}"
        );
        Client::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        let limits = Limits {
            max_frame_size: 1 << 30,
            max_message_size: 1 << 30,
        };
        Client {
            stream,
            decoder: Decoder::new(Role::Client, limits),
            buf: Vec::new(),
            start: 0,
        }
    }

    pub fn send(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) {
        let mut frame = Vec::new();
        encode_masked_frame_into(&mut frame, opcode, fin, MASK, payload);
        self.stream.write_all(&frame).expect("send frame");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send raw");
    }

    /// The next frame from the server; `None` on EOF (or reset).
    pub fn recv(&mut self) -> Option<Frame> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            while self.start < self.buf.len() {
                let decoded = self
                    .decoder
                    .decode(&mut self.buf[self.start..])
                    .expect("server sent a valid frame");
                self.start += decoded.consumed;
                if let Some(event) = decoded.event {
                    let frame = match event {
                        Event::Text(t) => Frame::Text(t.to_owned()),
                        Event::Binary(b) => Frame::Binary(b.to_vec()),
                        Event::Ping(p) => Frame::Ping(p.to_vec()),
                        Event::Pong(p) => Frame::Pong(p.to_vec()),
                        Event::Close(c) => Frame::Close(c.map(|c| (c.code.0, c.reason.to_owned()))),
                    };
                    return Some(frame);
                }
            }
            self.buf.clear();
            self.start = 0;
            assert!(Instant::now() < deadline, "no frame within {TIMEOUT:?}");
            let mut chunk = vec![0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Skips frames until a close frame; returns its code (None for an empty close).
    pub fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.recv() {
                Some(Frame::Close(c)) => return c.map(|(code, _)| code),
                Some(_) => continue,
                None => panic!("connection ended without a close frame"),
            }
        }
    }

    /// True when the server closes the TCP connection (EOF) within the timeout.
    pub fn expect_eof(&mut self) {
        match self.recv() {
            None => {}
            Some(frame) => panic!("expected EOF, got {frame:?}"),
        }
    }

    pub fn close(&mut self, code: CloseCode, reason: &str) {
        let mut payload = code.0.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.send(OpCode::Close, true, &payload);
    }
}

/// Starts the `ringcast serve` binary on a loopback port, one unpinned
/// worker, with the environment `vars` (RINGCAST_LOG and RINGCAST_LOG_FORMAT
/// cleared first) and `flags`; stderr goes to a file named after `name`.
/// Returns once it prints its listening line.
pub fn serve_binary(
    name: &str,
    vars: &[(&str, &str)],
    flags: &[&str],
) -> (Child, SocketAddr, PathBuf) {
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("logs-{name}.log"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_ringcast"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--no-pin",
        ])
        .args(flags)
        .env_remove("RINGCAST_LOG")
        .env_remove("RINGCAST_LOG_FORMAT")
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"));
    let mut server = command.spawn().expect("start ringcast");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let addr = line
        .trim()
        .strip_prefix("ringcast listening on ")
        .unwrap_or_else(|| {
            let _ = server.kill();
            let _ = server.wait();
            let stderr = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("unexpected first line {line:?}; stderr:\n{stderr}")
        })
        .parse()
        .expect("addr");
    (server, addr, log)
}

/// A `ringcast serve` child started by [`serve_binary`], configured only
/// through its command line (`--set table.key=value`). Dropping it kills the
/// child (by its pid) if it is still running, so a failed assertion leaves no
/// server behind.
pub struct Served {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Served {
    /// [`serve_binary`] with JSON log lines, so tests can wait for events.
    pub fn start(name: &str, flags: &[&str]) -> Served {
        let (child, addr, log) = serve_binary(name, &[("RINGCAST_LOG_FORMAT", "json")], flags);
        Served { child, addr, log }
    }

    /// The log lines written so far, parsed (a line still being written is skipped).
    pub fn events(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Polls the log until `done` holds for its events; panics with the log
    /// after [`TIMEOUT`].
    pub fn wait_for_log(&self, what: &str, done: impl Fn(&[serde_json::Value]) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while !done(&self.events()) {
            assert!(
                Instant::now() < deadline,
                "no {what} in the log within {TIMEOUT:?}:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM: the server starts its drain.
    pub fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: sends a signal to our own child process, by its pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    }

    /// `kill -9`: the process dies at once, without a drain.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit; panics (and kills it) after [`TIMEOUT`].
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "ringcast serve still running {TIMEOUT:?} after SIGTERM:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
