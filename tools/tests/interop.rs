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
#[path = "../../core/tests/support/install.rs"]
mod install;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{assert_ordered_percentiles, count, run_load, serial};

const SERVER_START_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn echo_against_python_websockets() {
    let python = install::install_python(&interop_dir(), &install_root());
    let server = PeerServer::start(
        Command::new(python)
            .arg(interop_dir().join("echo_server.py"))
            .arg("60"),
    );
    check_echo(&server, "python websockets");
}

#[test]
fn echo_against_node_ws() {
    let node_modules = install::install_node(&interop_dir(), &install_root());
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
    let python = install::install_python(&interop_dir(), &install_root());
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

/// `target/tmp/interop-load/`: `venv/` and `node/` for this crate's peer
/// servers, apart from ringcast's own `interop/` so the crates never share one.
fn install_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-load")
}
