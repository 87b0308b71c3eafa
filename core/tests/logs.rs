//! The `ringcast` binary's logs: `--log-format json` (or `RINGCAST_LOG_FORMAT`,
//! or `--set log.format=json`) writes one JSON object per line; at
//! `RINGCAST_LOG=debug` every connection gets an `accepted`, an `upgraded`
//! (WebSockets) and a `closed` line with its reason; at the default level no
//! per-connection line appears, refusals are summarised per status (with
//! their most frequent peers and paths) in a few lines however many there
//! were, the exact counts in `/metrics`; `--set log.level=warn`
//! wins over `RINGCAST_LOG` and silences the info lines; a `?token=` query
//! never reaches a log; a bad `log.level` or `log.format`, from any source,
//! is refused like a bad key (exit 2, one line); a WebSocket still open when
//! the drain times out is dropped, counted and reported.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{http, Client, Frame};
use ringcast::proto::close::CloseCode;
use ringcast::proto::frame::OpCode;
use serde_json::Value;

const TOKEN: &str = "secret-token-4f2a";

/// Connections of every kind: a health check, a refusal, an echo closed
/// cleanly by the client. Each carries the token in its query.
fn traffic(addr: SocketAddr) {
    let ok = http(
        addr,
        format!("GET /healthz?token={TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let refused = http(
        addr,
        format!("GET /nowhere?token={TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    );
    assert!(refused.starts_with("HTTP/1.1 404"), "{refused}");
    let mut client = Client::connect(addr, &format!("/echo?token={TOKEN}"));
    client.send(OpCode::Text, true, b"hello");
    assert_eq!(client.recv(), Some(Frame::Text("hello".into())));
    client.close(CloseCode::NORMAL, "");
    assert_eq!(client.expect_close(), Some(1000));
    client.expect_eof();
}

/// SIGTERM, then the exit status and the log.
fn stop(mut server: Child, log: PathBuf) -> String {
    // SAFETY: sending a signal to our own child process, by its pid.
    assert_eq!(unsafe { libc::kill(server.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("server did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    std::fs::read_to_string(log).expect("log")
}

fn events(log: &str) -> Vec<Value> {
    log.lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{log}"));
            for key in ["timestamp", "level", "message", "target"] {
                assert!(event.get(key).is_some(), "no {key} in {line}");
            }
            event
        })
        .collect()
}

fn find<'a>(events: &'a [Value], message: &str, reason: Option<&str>) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["message"] == message)
        .filter(|e| match reason {
            Some(r) => e["reason"] == r,
            None => true,
        })
        .collect()
}

#[test]
fn json_lines_with_one_line_per_connection_event_at_debug_and_no_token() {
    for (name, vars, flags) in [
        (
            "flag",
            vec![("RINGCAST_LOG", "debug")],
            vec!["--log-format", "json"],
        ),
        (
            "env",
            vec![("RINGCAST_LOG", "debug"), ("RINGCAST_LOG_FORMAT", "json")],
            vec![],
        ),
    ] {
        let (server, addr, log) = common::serve_binary(name, &vars, &flags);
        traffic(addr);
        let log = stop(server, log);
        assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");
        let events = events(&log);
        assert_eq!(find(&events, "accepted", None).len(), 3, "{log}");
        let upgraded = find(&events, "upgraded", None);
        assert_eq!(upgraded.len(), 1, "{log}");
        for (reason, level) in [("http", "DEBUG"), ("refused", "DEBUG"), ("normal", "DEBUG")] {
            let closed = find(&events, "closed", Some(reason));
            assert_eq!(closed.len(), 1, "one closed/{reason} line:\n{log}");
            assert_eq!(closed[0]["level"], level, "{log}");
            assert_eq!(closed[0]["worker"], 0, "{log}");
            assert!(closed[0]["conn"].is_u64(), "{log}");
        }
        let normal = find(&events, "closed", Some("normal"))[0];
        assert_eq!(normal["conn"], upgraded[0]["conn"], "{log}");
        assert_eq!(normal["upgraded"], true, "{log}");
        let shutting = find(
            &events,
            "shutting down: closing connections with 1001",
            None,
        );
        assert_eq!(shutting.len(), 1, "{log}");
        assert_eq!(shutting[0]["drain_timeout"], "10s", "{log}");
    }
}

#[test]
fn the_default_level_has_no_per_connection_lines_but_a_summary_of_refusals() {
    let (server, addr, log) = common::serve_binary("default", &[], &[]);
    traffic(addr);
    let log = stop(server, log);
    assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");
    assert!(!log.contains('{'), "human format by default:\n{log}");
    assert!(log.contains(" INFO ") && !log.contains("DEBUG"), "{log}");
    assert!(
        !log.contains("reactor: accepted ") && !log.contains("reactor: upgraded "),
        "{log}"
    );
    let closed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reactor: closed "))
        .collect();
    assert!(closed.is_empty(), "no per-connection line:\n{log}");
    let summary: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("handshakes refused"))
        .collect();
    assert_eq!(summary.len(), 1, "the refusal is summarised:\n{log}");
    assert!(
        summary[0].contains("status=404") && summary[0].contains("count=1"),
        "{log}"
    );
}

#[test]
fn a_bad_log_format_is_refused_with_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RINGCAST_LOG_FORMAT", "xml")
        .output()
        .expect("run ringcast");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ringcast: env RINGCAST_LOG_FORMAT: log.format: \"xml\" is not one of human, json\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["serve", "--log-format", "xml"])
        .output()
        .expect("run ringcast");
    assert_eq!(out.status.code(), Some(2), "clap refuses a bad flag value");
}

#[test]
fn a_bad_log_level_is_refused_with_exit_2_and_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--set",
            "log.level=warning",
        ])
        .env_remove("RINGCAST_LOG")
        .output()
        .expect("run ringcast");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ringcast: --set log.level=warning: log.level: \"warning\" is not a level (error, \
         warn, info, debug, trace, off); a target needs one: warning=debug\n"
    );
    assert!(out.stdout.is_empty(), "started anyway");
}

/// A WebSocket that will never answer the server's close.
fn deaf_client(addr: SocketAddr) -> Client {
    let mut client = Client::connect(addr, "/echo");
    client.send(OpCode::Text, true, b"ping");
    assert_eq!(client.recv(), Some(Frame::Text("ping".into())));
    client
}

#[test]
fn set_log_format_json_wins_over_the_environment_and_drain_timeouts_are_counted() {
    let (server, addr, log) = common::serve_binary(
        "set-json",
        &[("RINGCAST_LOG_FORMAT", "human")],
        &["--set", "log.format=json", "--drain-timeout", "300ms"],
    );
    let deaf = deaf_client(addr);
    let log = stop(server, log);
    drop(deaf);
    let events = events(&log);
    assert_eq!(find(&events, "worker started", None).len(), 1, "{log}");
    let timeout = find(&events, "drain timeout: dropping connections", None);
    assert_eq!(timeout.len(), 1, "{log}");
    assert_eq!(timeout[0]["level"], "WARN", "{log}");
    assert_eq!(timeout[0]["left"], 1, "{log}");
    assert_eq!(timeout[0]["dropped"], 1, "{log}");
    // Counted in `ringcast_connections_closed_total{reason="drain_timeout"}`,
    // which the worker reads back for its last line.
    let stopped = find(&events, "worker stopped", None);
    assert_eq!(stopped.len(), 1, "{log}");
    assert_eq!(stopped[0]["drain_timeout_closes"], 1, "{log}");
}

#[test]
fn set_log_level_warn_wins_over_the_environment_and_silences_info() {
    let (server, addr, log) = common::serve_binary(
        "set-warn",
        &[("RINGCAST_LOG", "debug")],
        &["--set", "log.level=warn", "--drain-timeout", "300ms"],
    );
    traffic(addr);
    let deaf = deaf_client(addr);
    let log = stop(server, log);
    drop(deaf);
    assert!(!log.contains('{'), "human format by default:\n{log}");
    // The warning still gets through: logging is on, at warn.
    assert!(
        log.contains(" WARN ") && log.contains("drain timeout: dropping connections"),
        "{log}"
    );
    for quiet in [
        " INFO ",
        " DEBUG ",
        "worker started",
        "configuration loaded",
        "closed",
    ] {
        assert!(!log.contains(quiet), "{quiet:?} at warn:\n{log}");
    }
}

/// Floods `n` bad handshakes at `addr`: every fourth with an unsupported
/// `Sec-WebSocket-Version` (426), the others to a path that does not exist (404).
fn flood(addr: SocketAddr, n: usize) -> (u64, u64) {
    let (mut not_found, mut version) = (0, 0);
    for i in 0..n {
        if i % 4 == 0 {
            let response = http(
                addr,
                b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n",
            );
            assert!(response.starts_with("HTTP/1.1 426"), "{response}");
            version += 1;
        } else {
            let response = http(addr, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
            assert!(response.starts_with("HTTP/1.1 404"), "{response}");
            not_found += 1;
        }
    }
    (not_found, version)
}

/// The summed `count` of the `handshakes refused` summary lines for `status`.
fn summarised(events: &[Value], status: u64) -> u64 {
    find(events, "handshakes refused", Some("refused"))
        .iter()
        .filter(|e| e["status"] == status)
        .filter_map(|e| e["count"].as_u64())
        .sum()
}

#[test]
fn a_flood_of_refusals_is_summarised_at_info_with_exact_counts() {
    let mut server =
        common::Served::start("flood-info", &["--set", "log.summary_interval=\"200ms\""]);
    let (not_found, version) = flood(server.addr, 2000);
    server.wait_for_log("summaries adding up to the flood", |events| {
        summarised(events, 404) == not_found && summarised(events, 426) == version
    });
    let events = server.events();
    let summaries = find(&events, "handshakes refused", None);
    assert!(
        summaries.len() < 200,
        "{} summary lines for 2000 refusals",
        summaries.len()
    );
    assert!(summaries
        .iter()
        .all(|e| e["level"] == "INFO" && e["worker"] == 0));
    // Each line names where the refusals came from and went to: here one
    // peer and one path per status, so its count is the line's.
    for e in &summaries {
        let (count, status) = (&e["count"], &e["status"]);
        let path = if *status == 404 { "/nope" } else { "/echo" };
        assert_eq!(e["top_paths"], format!("{path}:{count}"), "{e}");
        assert_eq!(e["top_peers"], format!("127.0.0.1:{count}"), "{e}");
    }
    assert!(
        find(&events, "closed", None).is_empty(),
        "no per-connection line at info"
    );
    let metrics = http(server.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    for (status, n) in [(404, not_found), (426, version)] {
        let line =
            format!("ringcast_handshakes_refused_total{{worker=\"0\",status=\"{status}\"}} {n}\n");
        assert!(metrics.contains(&line), "no {line:?} in:\n{metrics}");
    }
    server.terminate();
    assert!(server.wait_exit().success());
}

#[test]
fn a_flood_of_refusals_is_logged_per_connection_at_debug() {
    let mut server = common::Served::start(
        "flood-debug",
        &[
            "--set",
            "log.level=\"debug\"",
            "--set",
            "log.summary_interval=\"200ms\"",
        ],
    );
    let (not_found, version) = flood(server.addr, 200);
    server.wait_for_log("a closed line per refusal", |events| {
        find(events, "closed", Some("refused")).len() as u64 == not_found + version
    });
    // And a line per refusal saying what was refused, to whom, and why.
    let events = server.events();
    let refused = find(&events, "refused", None);
    assert_eq!(refused.len() as u64, not_found + version);
    for (status, path, n) in [(404, "/nope", not_found), (426, "/echo", version)] {
        let lines = refused.iter().filter(|e| e["status"] == status);
        assert!(lines.clone().all(|e| e["level"] == "DEBUG"
            && e["path"] == path
            && e["peer"] == "127.0.0.1"
            && e["conn"].is_u64()));
        assert_eq!(lines.count() as u64, n);
    }
    server.wait_for_log("the summaries", |events| {
        summarised(events, 404) == not_found && summarised(events, 426) == version
    });
    server.terminate();
    assert!(server.wait_exit().success());
}
