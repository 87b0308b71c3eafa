//! Interop with independent WebSocket clients from the registries: Python
//! `websockets` and Node `ws` against `ringcast serve`'s `GET /echo`.
//!
//! Each test installs its client itself, idempotently, under
//! `target/tmp/interop/` (`venv/` from `interop/requirements.txt`, `node/` from
//! `interop/package.json`), starts `ringcast serve --listen 127.0.0.1:0
//! --workers 2`, learns the port from its one stdout line, and runs the client
//! script (`interop/client.py`, `interop/client.mjs`), which prints one line per
//! check: text (ASCII, multibyte UTF-8), binary (0..255, empty), 60 KiB
//! messages, a message at the 64 KiB default limit, a text message in 3
//! fragments echoed whole, ping -> pong, a client-initiated close 1000 answered
//! with 1000, a message over the limit answered with close 1009, and close 1001
//! on every connection when the server gets SIGTERM (after which it must exit 0).
//!
//! Each client runs twice: against the default server (which declines the
//! permessage-deflate both clients offer), and with `deflate.enabled=true`,
//! where the client also checks that the extension was negotiated and echoes
//! compressible JSON (both libraries compress what they send; the server
//! compresses its echo), and the 1009 check becomes a compressed message that
//! only inflates past the limit. A third run turns context takeover on in
//! both directions (the server insists on neither `no_context_takeover`).
//!
//! A missing client toolchain (python3, node, npm) or a failed install is a
//! test failure with the reason, never a skip. Every step is bounded: installs
//! 120 s, server start 20 s, a client run 30 s, server exit 10 s.
//!
//! Manual runs against another server: `RINGCAST_INTEROP_URL=ws://host:port/path
//! cargo test -p ringcast --test interop` skips starting ringcast and the two
//! ringcast-specific checks (the 64 KiB limit and the SIGTERM close).

#[path = "support/install.rs"]
mod install;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use install::{install_node, install_python, kill_and_reap, spawn_reader, wait_timeout};

const SERVER_START_TIMEOUT: Duration = Duration::from_secs(20);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const SERVER_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's default `--max-message-size` (64 KiB): the clients check that a
/// message of exactly this size echoes and one byte more draws close 1009.
const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;

/// The line a client prints once its last connection is open; the harness
/// answers it by sending SIGTERM to the server.
const READY_FOR_SHUTDOWN: &str = "READY shutdown-check";

/// `--set deflate.enabled=true`: the server accepts permessage-deflate,
/// and the clients (which offer it by default) are told to expect it.
const DEFLATE_ON: Mode = Mode {
    server_args: &["--set", "deflate.enabled=true"],
    client_args: &["--deflate"],
};

/// permessage-deflate with context takeover both ways: the server insists
/// on neither `no_context_takeover`, so both libraries (which ask for
/// neither) keep their LZ77 window across messages, and so does the server,
/// with a deflate and an inflate stream of the connection's own.
const DEFLATE_CONTEXT: Mode = Mode {
    server_args: &[
        "--set",
        "deflate.enabled=true",
        "--set",
        "deflate.server_no_context_takeover=false",
        "--set",
        "deflate.client_no_context_takeover=false",
    ],
    client_args: &["--deflate"],
};

/// The server as it starts by default (permessage-deflate declined).
const DEFAULT: Mode = Mode {
    server_args: &[],
    client_args: &[],
};

/// Extra arguments for the server and the client of one interop run.
struct Mode {
    server_args: &'static [&'static str],
    client_args: &'static [&'static str],
}

#[test]
fn python_websockets_client() {
    python_run(&DEFAULT);
}

#[test]
fn python_websockets_client_with_deflate() {
    python_run(&DEFLATE_ON);
}

#[test]
fn python_websockets_client_with_deflate_context_takeover() {
    python_run(&DEFLATE_CONTEXT);
}

#[test]
fn node_ws_client_with_deflate_context_takeover() {
    node_run(&DEFLATE_CONTEXT);
}

#[test]
fn node_ws_client() {
    node_run(&DEFAULT);
}

#[test]
fn node_ws_client_with_deflate() {
    node_run(&DEFLATE_ON);
}

fn python_run(mode: &Mode) {
    let python = install_python(&interop_dir(), &install_root());
    let script = interop_dir().join("client.py");
    run_interop("python websockets", mode, |url, extra| {
        let mut cmd = Command::new(&python);
        cmd.arg(&script).arg(url).args(extra);
        cmd
    });
}

fn node_run(mode: &Mode) {
    let node_modules = install_node(&interop_dir(), &install_root());
    let script = interop_dir().join("client.mjs");
    run_interop("node ws", mode, |url, extra| {
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .arg(url)
            .args(extra)
            .env("NODE_PATH", &node_modules);
        cmd
    });
}

/// Starts the server (unless `RINGCAST_INTEROP_URL` is set), runs the client
/// built by `client_cmd(url, extra_args)`, and asserts that every check passed
/// and that the server exited 0 after SIGTERM.
fn run_interop(client_name: &str, mode: &Mode, client_cmd: impl Fn(&str, &[String]) -> Command) {
    if let Ok(url) = std::env::var("RINGCAST_INTEROP_URL") {
        let outcome = run_client(client_cmd(&url, &[]), None);
        assert!(
            outcome.status.map(|s| s.success()).unwrap_or(false),
            "{client_name} client against {url}: {}\n{}",
            outcome.describe_status(),
            outcome.output
        );
        return;
    }

    let mut server = Server::start(mode.server_args);
    let url = format!("ws://{}/echo", server.addr);
    let mut extra = vec![
        "--max-message".to_string(),
        DEFAULT_MAX_MESSAGE.to_string(),
        "--shutdown-check".to_string(),
    ];
    extra.extend(mode.client_args.iter().map(|a| a.to_string()));
    let outcome = run_client(client_cmd(&url, &extra), Some(&mut server));
    let client_ok = outcome.status.map(|s| s.success()).unwrap_or(false);

    // The client asked for SIGTERM when it was ready; if it never got that far,
    // send it now so the server's exit is still checked (and bounded).
    if !outcome.sent_sigterm {
        server.terminate();
    }
    let server_exit = server.wait_exit(SERVER_EXIT_TIMEOUT);

    assert!(
        client_ok,
        "{client_name} client against ringcast at {url}: {}\n--- client output ---\n{}\n--- server stderr (tail) ---\n{}",
        outcome.describe_status(),
        outcome.output,
        server.stderr_tail()
    );
    match server_exit {
        Some(status) if status.success() => {}
        Some(status) => panic!(
            "ringcast serve exited with {status} after SIGTERM (expected 0)\n--- server stderr (tail) ---\n{}",
            server.stderr_tail()
        ),
        None => panic!(
            "ringcast serve still running {SERVER_EXIT_TIMEOUT:?} after SIGTERM (killed it)\n--- server stderr (tail) ---\n{}",
            server.stderr_tail()
        ),
    }
}

struct ClientOutcome {
    /// `None` when the client was killed at `CLIENT_TIMEOUT`.
    status: Option<ExitStatus>,
    /// stdout then stderr, as captured.
    output: String,
    sent_sigterm: bool,
}

impl ClientOutcome {
    fn describe_status(&self) -> String {
        match self.status {
            Some(s) => format!("client exited with {s}"),
            None => format!("client killed after {CLIENT_TIMEOUT:?} (timeout)"),
        }
    }
}

/// Runs one client to completion (or `CLIENT_TIMEOUT`), relaying its
/// `READY shutdown-check` line to the server as SIGTERM.
fn run_client(mut cmd: Command, mut server: Option<&mut Server>) -> ClientOutcome {
    let described = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start client {described}: {e}"));
    let stdout_lines = spawn_line_reader(child.stdout.take().expect("piped stdout"));
    let stderr = spawn_reader(child.stderr.take().expect("piped stderr"));

    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut output = format!("$ {described}\n");
    let mut sent_sigterm = false;
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        match stdout_lines.recv_timeout(deadline - now) {
            Ok(line) => {
                if line.trim() == READY_FOR_SHUTDOWN {
                    if let Some(server) = server.as_deref_mut() {
                        server.terminate();
                        sent_sigterm = true;
                    }
                }
                output.push_str(&line);
                output.push('\n');
            }
            Err(RecvTimeoutError::Disconnected) => break, // stdout closed: client is exiting
            Err(RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
        }
    }
    let status = if timed_out {
        kill_and_reap(&mut child);
        None
    } else {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let status = wait_timeout(&mut child, left);
        if status.is_none() {
            kill_and_reap(&mut child);
        }
        status
    };
    let stderr = stderr.join().unwrap_or_default();
    if !stderr.is_empty() {
        output.push_str("--- client stderr ---\n");
        output.push_str(&stderr);
    }
    ClientOutcome {
        status,
        output,
        sent_sigterm,
    }
}

/// A running `ringcast serve`; killed (SIGKILL) on drop if still alive, so a
/// failing test leaves no server behind.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(extra_args: &[&str]) -> Server {
        let bin = env!("CARGO_BIN_EXE_ringcast");
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--workers", "2"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        spawn_collector(
            child.stderr.take().expect("piped stderr"),
            Arc::clone(&stderr),
        );
        let lines = spawn_line_reader(child.stdout.take().expect("piped stdout"));
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };

        let first = match lines.recv_timeout(SERVER_START_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let state = match server.child.try_wait() {
                    Ok(Some(status)) => format!("exited with {status}"),
                    _ => "still running".to_string(),
                };
                // Give the stderr collector a moment to catch the last lines.
                thread::sleep(Duration::from_millis(200));
                panic!(
                    "{bin} serve printed no listening line within {SERVER_START_TIMEOUT:?} ({e:?}; server {state})\n--- server stderr (tail) ---\n{}",
                    server.stderr_tail()
                );
            }
        };
        server.addr = parse_listening_line(&first).unwrap_or_else(|| {
            panic!(
                "unexpected first stdout line from {bin} serve: {first:?} (expected `ringcast listening on 127.0.0.1:PORT`)\n--- server stderr (tail) ---\n{}",
                server.stderr_tail()
            )
        });
        // Anything else on stdout breaks the one-line contract; keep draining so
        // the server never blocks on a full pipe, and record it in stderr's tail.
        let extra = Arc::clone(&server.stderr);
        thread::spawn(move || {
            for line in lines {
                if let Ok(mut s) = extra.lock() {
                    s.push_str(&format!("[unexpected stdout] {line}\n"));
                }
            }
        });
        server
    }

    fn terminate(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            send_sigterm(self.child.id());
        }
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = wait_timeout(&mut self.child, timeout);
        if status.is_none() {
            kill_and_reap(&mut self.child);
        }
        status
    }

    fn stderr_tail(&self) -> String {
        let s = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        let tail_start = s.len().saturating_sub(4096);
        let mut start = tail_start;
        while !s.is_char_boundary(start) {
            start += 1;
        }
        s[start..].to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill_and_reap(&mut self.child);
        }
    }
}

/// `ringcast listening on 127.0.0.1:PORT` -> the address.
fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    let addr: SocketAddr = line
        .trim_end()
        .strip_prefix("ringcast listening on ")?
        .parse()
        .ok()?;
    (addr.port() != 0).then_some(addr)
}

// ---------------------------------------------------------------- installs

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
}

/// `target/tmp/interop/`: `venv/` and `node/` for this crate's clients.
fn install_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop")
}

// ---------------------------------------------------------------- processes

fn send_sigterm(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill takes plain integers; `pid` is our own child, not yet reaped
    // (so the pid cannot have been reused).
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

fn spawn_line_reader(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn spawn_collector(pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Ok(mut s) = into.lock() {
                        s.push_str(&String::from_utf8_lossy(&line));
                        // Keep memory bounded if the server logs a lot.
                        if s.len() > 1 << 20 {
                            let cut = s.len() - (64 << 10);
                            let mut at = cut;
                            while !s.is_char_boundary(at) {
                                at += 1;
                            }
                            s.drain(..at);
                        }
                    }
                }
            }
        }
    });
}

#[test]
fn listening_line_parses() {
    assert_eq!(
        parse_listening_line("ringcast listening on 127.0.0.1:40123"),
        Some(SocketAddr::from(([127, 0, 0, 1], 40123)))
    );
    assert_eq!(
        parse_listening_line("ringcast listening on 127.0.0.1:0"),
        None
    );
    assert_eq!(parse_listening_line("listening on 127.0.0.1:1"), None);
}
