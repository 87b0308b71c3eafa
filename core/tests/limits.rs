//! Refusals under pressure over real sockets, against the `ringcast serve`
//! binary configured only with `--set` flags: the 503 with `Retry-After` at
//! `limits.max_connections_per_worker`, the `overloaded` reply when an owner
//! core's inbox is full (`pubsub.inbox_capacity`), and the 1008 close of a
//! connection that keeps publishing past `limits.publish_rate`
//! (`limits.rate_limit_close_after`, `limits.rate_limit_window`).
//!
//! Each runs on every IO driver (`common::DRIVERS`). Each test is bounded in count (a fixed number of connections and
//! commands) and in time (every read has the client's timeout, every poll
//! the same deadline); none asserts how fast anything was.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use common::{raw, read_head, upgrade_request, Client, Frame, Served, MASK, TIMEOUT};
use ringcast::proto::close::CloseCode;
use ringcast::proto::frame::{encode_masked_frame_into, OpCode};
use serde_json::{json, Value};

/// Rates so high that only the limit under test can refuse a command.
const NO_COMMAND_LIMIT: [&str; 4] = [
    "--set",
    "limits.command_rate=1000000",
    "--set",
    "limits.command_burst=1000000",
];

/// The next JSON text frame (pings are answered on the way).
fn recv_json(client: &mut Client) -> Value {
    loop {
        match client.recv() {
            Some(Frame::Text(text)) => {
                return serde_json::from_str(&text).expect("server sent JSON")
            }
            Some(Frame::Ping(p)) => client.send(OpCode::Pong, true, &p),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Sends `command` and returns the next reply (no subscription is open, so
/// nothing else can arrive first).
fn call(client: &mut Client, command: Value) -> Value {
    client.send(OpCode::Text, true, command.to_string().as_bytes());
    recv_json(client)
}

/// Every command of `commands` as masked text frames, in one buffer: written
/// at once, they reach the server's read together.
fn burst(commands: impl Iterator<Item = Value>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for command in commands {
        encode_masked_frame_into(
            &mut bytes,
            OpCode::Text,
            true,
            MASK,
            command.to_string().as_bytes(),
        );
    }
    bytes
}

fn error_code(reply: &Value) -> Option<&str> {
    reply["error"]["code"].as_str()
}

#[test]
fn a_full_worker_answers_503_with_retry_after_until_a_websocket_closes() {
    for driver in common::DRIVERS {
        a_full_worker_answers_503_with_retry_after_until_a_websocket_closes_on(driver);
    }
}

fn a_full_worker_answers_503_with_retry_after_until_a_websocket_closes_on(driver: common::Driver) {
    let mut flags = vec!["--set", "limits.max_connections_per_worker=2"];
    flags.extend(driver.flags());
    let server = Served::start(&format!("limits-per-worker-cap-{driver}"), &flags);
    let addr = server.addr;
    let mut first = Client::connect(addr, "/echo");
    let mut second = Client::connect(addr, "/echo");
    for client in [&mut first, &mut second] {
        client.send(OpCode::Text, true, b"here");
        assert_eq!(client.recv(), Some(Frame::Text("here".into())));
    }

    let refused = common::http(addr, upgrade_request("/echo").as_bytes());
    let (head, body) = refused.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(head.contains("\r\nRetry-After: 1"), "{refused}");
    assert!(!head.contains("Upgrade"), "{refused}");
    assert_eq!(body, "server at capacity or shutting down\n");
    // The refusal took no place: both WebSockets still work.
    second.send(OpCode::Text, true, b"still");
    assert_eq!(second.recv(), Some(Frame::Text("still".into())));

    first.close(CloseCode::NORMAL, "");
    assert_eq!(first.expect_close(), Some(1000));
    first.expect_eof();
    drop(first);
    // The worker frees the place once it has finished that close: retry
    // (each attempt is answered and closed by the server) until it has.
    let deadline = Instant::now() + TIMEOUT;
    let mut third = loop {
        let mut stream = raw(addr);
        stream
            .write_all(upgrade_request("/echo").as_bytes())
            .expect("write");
        let head = read_head(&mut stream);
        if head.starts_with("HTTP/1.1 101") {
            break Client::from_stream(stream);
        }
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        assert!(
            Instant::now() < deadline,
            "still 503 {TIMEOUT:?} after a WebSocket closed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    third.send(OpCode::Text, true, b"in");
    assert_eq!(third.recv(), Some(Frame::Text("in".into())));
}

#[test]
fn a_full_owner_inbox_refuses_publishes_with_overloaded_and_numbers_only_those_taken() {
    for driver in common::DRIVERS {
        a_full_owner_inbox_refuses_publishes_with_overloaded_and_numbers_only_those_taken_on(
            driver,
        );
    }
}

fn a_full_owner_inbox_refuses_publishes_with_overloaded_and_numbers_only_those_taken_on(
    driver: common::Driver,
) {
    // Two workers, the smallest inbox per core pair (16 messages): a burst
    // of publishes read at once by one worker, for a channel the other
    // worker owns, outruns the owner. Even an owner that drains as fast as
    // the publishes come cannot take them all: its acknowledgements go back
    // to a worker busy with the burst, which does not drain its own inbox
    // meanwhile, so they spill, and past 16 spilled the owner refuses too.
    const BURST: u64 = 500;
    let mut flags = vec![
        "--set",
        "server.workers=2",
        "--set",
        "pubsub.inbox_capacity=16",
        // Validated against the capacity (at most it) while it exists.
        "--set",
        "pubsub.inbox_batch=16",
    ];
    flags.extend(NO_COMMAND_LIMIT);
    flags.extend(driver.flags());
    let server = Served::start(&format!("limits-overloaded-{driver}"), &flags);
    let mut ws = Client::connect(server.addr, "/ws");
    let here = call(&mut ws, json!({"id":0,"op":"info"}))["result"]["worker"].clone();
    assert!(here.is_u64(), "{here}");
    let channel = (0..1000)
        .map(|i| format!("elsewhere:{i}"))
        .find(|c| {
            let owner = &call(&mut ws, json!({"id":0,"op":"info","channel":c}))["result"]["owner"];
            owner.is_u64() && *owner != here
        })
        .expect("some channel is owned by the other worker");

    ws.send_raw(&burst((1..=BURST).map(
        |id| json!({"id":id,"op":"publish","channel":channel,"data":id}),
    )));
    // Every publish is answered exactly once: an offset or `overloaded`.
    let mut replies: BTreeMap<u64, Value> = BTreeMap::new();
    while replies.len() < BURST as usize {
        let reply = recv_json(&mut ws);
        let id = reply["id"].as_u64().expect("a reply with an id");
        assert!((1..=BURST).contains(&id), "{reply}");
        assert!(replies.insert(id, reply).is_none(), "two replies to {id}");
    }
    let mut offsets = Vec::new();
    let mut overloaded = 0;
    for (id, reply) in &replies {
        match (reply["result"]["offset"].as_u64(), error_code(reply)) {
            (Some(offset), None) => offsets.push(offset),
            (None, Some("overloaded")) => overloaded += 1,
            _ => panic!("publish {id}: {reply}"),
        }
    }
    assert!(
        overloaded > 0,
        "a burst of {BURST} into an inbox of 16 was all taken"
    );
    assert!(
        !offsets.is_empty(),
        "the first publish fits the empty inbox"
    );
    // Taken publishes are numbered in the order sent, with no hole: a
    // refused one was not numbered (nor stored).
    let expected: Vec<u64> = (1..=offsets.len() as u64).collect();
    assert_eq!(offsets, expected, "offsets by id");

    // Once the burst has passed, the owner drains and takes publishes again,
    // numbered right after the taken ones.
    let deadline = Instant::now() + TIMEOUT;
    let mut id = BURST;
    let offset = loop {
        id += 1;
        let reply = call(
            &mut ws,
            json!({"id":id,"op":"publish","channel":channel,"data":"after"}),
        );
        if let Some(offset) = reply["result"]["offset"].as_u64() {
            break offset;
        }
        assert_eq!(error_code(&reply), Some("overloaded"), "{reply}");
        assert!(
            Instant::now() < deadline,
            "still overloaded {TIMEOUT:?} after the burst"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(offset, offsets.len() as u64 + 1);
}

#[test]
fn publishing_on_past_the_rate_limit_is_closed_with_1008() {
    for driver in common::DRIVERS {
        publishing_on_past_the_rate_limit_is_closed_with_1008_on(driver);
    }
}

fn publishing_on_past_the_rate_limit_is_closed_with_1008_on(driver: common::Driver) {
    // One publish a second after a burst of 3; the fifth refusal in a row
    // closes. The window is far longer than the test, so a slow box cannot
    // break the streak up; only a refilled token could (one a second), and
    // then a later streak closes instead.
    const SENT: u64 = 50;
    let mut flags = vec![
        "--set",
        "limits.publish_rate=1",
        "--set",
        "limits.publish_burst=3",
        "--set",
        "limits.rate_limit_close_after=5",
        "--set",
        "limits.rate_limit_window=1h",
    ];
    flags.extend(NO_COMMAND_LIMIT);
    flags.extend(driver.flags());
    let server = Served::start(&format!("limits-rate-close-{driver}"), &flags);
    let mut ws = Client::connect(server.addr, "/ws");
    ws.send_raw(&burst((1..=SENT).map(
        |id| json!({"id":id,"op":"publish","channel":"limited","data":id}),
    )));
    let mut replies = Vec::new();
    let close = loop {
        match ws.recv() {
            Some(Frame::Text(text)) => {
                replies.push(serde_json::from_str::<Value>(&text).expect("server sent JSON"));
            }
            Some(Frame::Close(close)) => break close,
            Some(Frame::Ping(p)) => ws.send(OpCode::Pong, true, &p),
            other => panic!("expected replies then a close, got {other:?} after {replies:?}"),
        }
    };
    assert_eq!(
        close,
        Some((
            1008,
            "rate limit exceeded: limits.rate_limit_close_after refusals in a row".into()
        ))
    );
    ws.close(CloseCode::POLICY, "");
    ws.expect_eof();

    // Commands are answered in order until the close, and the rest never run.
    let ids: Vec<u64> = replies.iter().filter_map(|r| r["id"].as_u64()).collect();
    let expected: Vec<u64> = (1..=replies.len() as u64).collect();
    assert_eq!(ids, expected, "{replies:?}");
    assert!(replies.len() < SENT as usize, "never closed: {replies:?}");
    // The burst ran; the four refusals before the closing one were replied.
    let taken = replies
        .iter()
        .filter(|r| r["result"]["offset"].is_u64())
        .count();
    assert!(taken >= 3, "{replies:?}");
    let streak = &replies[replies.len().saturating_sub(4)..];
    assert_eq!(streak.len(), 4, "{replies:?}");
    for reply in streak {
        assert_eq!(error_code(reply), Some("rate_limited"), "{replies:?}");
    }
    for reply in &replies {
        assert!(
            reply["result"]["offset"].is_u64() || error_code(reply) == Some("rate_limited"),
            "{reply}"
        );
    }

    // Only that connection was closed, and what it was refused was not
    // published: a new one publishes right after the taken ones.
    let mut other = Client::connect(server.addr, "/ws");
    let reply = call(
        &mut other,
        json!({"id":1,"op":"publish","channel":"limited","data":"next"}),
    );
    assert_eq!(
        reply["result"]["offset"],
        json!(taken as u64 + 1),
        "{reply}"
    );
}
