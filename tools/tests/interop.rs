//! Interop: `ringcast-load` against independent servers from the registries —
//! a Python `websockets` echo server and a Node `ws` echo server (both echo
//! every message as a fragmented message and ping every 50 ms), and a Python
//! `websockets` broadcast server for `fanout --protocol broadcast`.
//!
//! Each test installs its server's library itself, idempotently, under
//! `target/tmp/interop-load/` (`venv/` from `interop/requirements.txt`,
//! `node/` from `interop/package.json`), starts the script, reads its port
//! from its `listening PORT` line, and runs the generator against it. A
//! missing toolchain (python3, node, npm) or a failed install is a failure
//! with the reason, never a skip. Bounds: installs 120 s, server start 20 s,
//! each load run 60 s; the scripts exit by themselves after 60 s.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_ordered_percentiles, count, run_load, serial};

const INSTALL_TIMEOUT: Duration = Duration::from_secs(120);
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn echo_against_python_websockets() {
    let python = install_python();
    let server = PeerServer::start(
        Command::new(python)
            .arg(interop_dir().join("echo_server.py"))
            .arg("60"),
    );
    check_echo(&server, "python websockets");
}

#[test]
fn echo_against_node_ws() {
    let node_modules = install_node();
    let server = PeerServer::start(
        Command::new("node")
            .arg(interop_dir().join("echo_server.mjs"))
            .arg("60")
            .env("NODE_PATH", node_modules),
    );
    check_echo(&server, "node ws");
}

#[test]
fn broadcast_fanout_against_python_websockets() {
    let python = install_python();
    let server = PeerServer::start(
        Command::new(python)
            .arg(interop_dir().join("broadcast_server.py"))
            .arg("60"),
    );
    let _serial = serial();
    let run = run_load(&[
        "fanout",
        "--url",
        &server.url(),
        "--protocol",
        "broadcast",
        "--subscribers",
        "20",
        "--publishers",
        "2",
        "--rate",
        "100",
        "--warmup",
        "200ms",
        "--duration",
        "1s",
    ]);
    assert!(run.status.success(), "{}", run.text);
    for zero in ["gaps", "duplicates", "lost_at_end", "bad_messages"] {
        assert_eq!(count(&run, zero), 0, "{zero}\n{}", run.text);
    }
    let sent = count(&run, "sent");
    assert_eq!(count(&run, "received"), sent * 20, "{}", run.text);
    assert_ordered_percentiles(&run, "latency");
}

/// Text and binary, open and closed loop: every echo (reassembled from two
/// fragments) comes back and parses, pings are answered, the close
/// handshake completes.
fn check_echo(server: &PeerServer, name: &str) {
    let _serial = serial();
    let url = server.url();
    for args in [
        &["--rate", "1000", "--size", "100"][..],
        &["--inflight", "2", "--size", "3000", "--binary"][..],
    ] {
        let mut all = vec![
            "echo",
            "--url",
            &url,
            "--connections",
            "5",
            "--warmup",
            "200ms",
            "--duration",
            "1s",
        ];
        all.extend_from_slice(args);
        let run = run_load(&all);
        assert!(run.status.success(), "{name} {args:?}: {}", run.text);
        assert_eq!(
            run.report["errors"],
            serde_json::json!({}),
            "{name} {args:?}: {}",
            run.text
        );
        assert_eq!(count(&run, "bad_messages"), 0, "{name}: {}", run.text);
        assert_eq!(count(&run, "unanswered"), 0, "{name}: {}", run.text);
        assert!(count(&run, "received") > 100, "{name}: {}", run.text);
        assert!(
            count(&run, "pings") > 0,
            "{name}: no ping answered\n{}",
            run.text
        );
        assert_ordered_percentiles(&run, "latency");
    }
}

/// A peer server script, killed when dropped.
struct PeerServer {
    child: Child,
    port: u16,
}

impl PeerServer {
    fn start(cmd: &mut Command) -> PeerServer {
        let described = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {described}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("listening ") {
                    let _ = tx.send(port.trim().parse::<u16>().ok());
                    return;
                }
            }
            let _ = tx.send(None);
        });
        match rx.recv_timeout(SERVER_START_TIMEOUT) {
            Ok(Some(port)) => PeerServer { child, port },
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{described} did not print `listening PORT` ({other:?})");
            }
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
}

fn install_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-load")
}

/// `target/tmp/interop-load/venv` with the pinned `websockets`; returns its
/// python. Rebuilt when requirements.txt changes (a stamp file holds the
/// requirements it was built from).
fn install_python() -> PathBuf {
    let root = install_root();
    let venv = root.join("venv");
    let python = venv.join("bin").join("python");
    let requirements = interop_dir().join("requirements.txt");
    let wanted = fs::read_to_string(&requirements).expect("requirements.txt");
    let _lock = InstallLock::acquire(&root.join("venv.lock"));
    let stamp = root.join("venv.stamp");
    if python.exists() && fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return python;
    }
    let python3 = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let _ = fs::remove_dir_all(&venv);
    run_install(
        Command::new(&python3).args(["-m", "venv"]).arg(&venv),
        "creating a venv (needs Python 3.9+ with the venv module)",
    );
    run_install(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                "-r",
            ])
            .arg(&requirements),
        "pip install -r tools/tests/interop/requirements.txt",
    );
    fs::write(&stamp, &wanted).expect("write stamp");
    python
}

/// `target/tmp/interop-load/node/node_modules` with the pinned `ws`.
fn install_node() -> PathBuf {
    let root = install_root();
    let prefix = root.join("node");
    let node_modules = prefix.join("node_modules");
    let package_json = interop_dir().join("package.json");
    let wanted = fs::read_to_string(&package_json).expect("package.json");
    run_install(
        Command::new("node").arg("--version"),
        "node --version (Node.js 18+ must be on PATH)",
    );
    let _lock = InstallLock::acquire(&root.join("node.lock"));
    let stamp = root.join("node.stamp");
    if node_modules.join("ws").join("package.json").exists()
        && fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
    {
        return node_modules;
    }
    let _ = fs::remove_dir_all(&prefix);
    fs::create_dir_all(&prefix).expect("node prefix");
    fs::copy(&package_json, prefix.join("package.json")).expect("copy package.json");
    run_install(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix),
        "npm install of tools/tests/interop/package.json (npm must be on PATH)",
    );
    fs::write(&stamp, &wanted).expect("write stamp");
    node_modules
}

/// Runs an install step within [`INSTALL_TIMEOUT`]; a failure panics with `what`.
fn run_install(cmd: &mut Command, what: &str) {
    let described = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("interop setup failed: {what}: cannot run {described}: {e}"));
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            if status.success() {
                return;
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("interop setup failed: {what}\n$ {described}\nexited with {status}\n{err}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("interop setup failed: {what}: killed after {INSTALL_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// An exclusive `flock` beside an install directory, so two test processes
/// never install into it at once. Released when dropped.
struct InstallLock {
    _file: File,
}

impl InstallLock {
    fn acquire(path: &Path) -> InstallLock {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).expect("install root");
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .expect("lock file");
        let deadline = Instant::now() + INSTALL_TIMEOUT * 3;
        // SAFETY: flock only reads the descriptor number; `file` keeps it open.
        while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {}",
                path.display()
            );
            thread::sleep(Duration::from_millis(100));
        }
        InstallLock { _file: file }
    }
}
