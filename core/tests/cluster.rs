//! The Redis engine in real `ringcast serve` processes ("nodes") sharing one
//! `redis-server`, everything on loopback: publishes on both nodes reach
//! subscribers on both, once and in offset order; a resume on the other
//! node recovers with no gap and no duplicate under concurrent publishing;
//! a node killed with `kill -9` loses no acknowledged message for clients
//! that resume on the other node; Redis down means `unavailable` (never a
//! false acknowledgement) and `/readyz` degraded, until Redis is back; a
//! Redis that does not answer at start is exit 2 with the URL redacted.

mod common;
#[path = "support/redis.rs"]
mod redis_server;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ws::Ws;
use common::{http, Served};
use redis_server::{free_port, RedisServer, WAIT};
use serde_json::{json, Value};

fn offset(msg: &Value) -> u64 {
    msg["offset"]
        .as_u64()
        .unwrap_or_else(|| panic!("no offset: {msg}"))
}

/// A node on `redis`: two workers, rates off, Redis timeouts short so the
/// fault tests run in seconds.
fn node(name: &str, redis_url: &str, extra: &[&str]) -> Served {
    let url = format!("engine.redis_url={redis_url}");
    let mut flags = vec![
        "--set",
        "engine.kind=redis",
        "--set",
        &url,
        "--set",
        "server.workers=2",
        "--set",
        "limits.command_rate=0",
        "--set",
        "pubsub.history_size=5000",
        "--set",
        "engine.redis_command_timeout=1s",
        "--set",
        "engine.redis_ping_interval=200ms",
        "--set",
        "engine.redis_backoff_max=200ms",
    ];
    flags.extend_from_slice(extra);
    Served::start(name, &flags)
}

/// Publishes `count` messages to `channel` through `addr` (or until the
/// node goes away); the acknowledged offsets, in order.
fn publisher(addr: SocketAddr, channel: String, count: u64, tag: u64) -> Vec<u64> {
    let mut ws = Ws::connect(addr);
    let mut acked = Vec::new();
    for seq in 0..count {
        let command = json!({"op":"publish","channel":channel,"data":{"p":tag,"seq":seq}});
        match ws.try_call(command) {
            Some(reply) => {
                let offset = reply["result"]["offset"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("publish refused: {reply}"));
                acked.push(offset);
            }
            None => break,
        }
    }
    acked
}

#[test]
fn two_nodes_every_subscriber_gets_every_message_once_in_order() {
    const EACH: u64 = 100;
    let redis = RedisServer::start();
    let nodes = [
        node("cluster-order-a", &redis.url(), &[]),
        node("cluster-order-b", &redis.url(), &[]),
    ];
    let channels = ["order:x", "order:y"];
    let mut subs = Vec::new();
    for served in &nodes {
        for channel in channels {
            for _ in 0..2 {
                let mut ws = Ws::connect(served.addr);
                let reply = ws.call(json!({"op":"subscribe","channel":channel}));
                assert_eq!(reply["result"]["offset"], json!(0), "{reply}");
                subs.push((ws, channel));
            }
        }
    }
    // Two publishers per node per channel, all at once.
    let mut threads = Vec::new();
    for (n, served) in nodes.iter().enumerate() {
        for (c, channel) in channels.iter().enumerate() {
            for p in 0..2u64 {
                let (addr, channel) = (served.addr, channel.to_string());
                let tag = (n as u64) * 10 + (c as u64) * 2 + p;
                threads.push((
                    *channel == *"order:x",
                    std::thread::spawn(move || publisher(addr, channel, EACH, tag)),
                ));
            }
        }
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (is_x, t) in threads {
        let acked = t.join().expect("publisher");
        assert_eq!(acked.len() as u64, EACH);
        assert!(
            acked.windows(2).all(|w| w[0] < w[1]),
            "one publisher's order"
        );
        if is_x {
            x.extend(acked)
        } else {
            y.extend(acked)
        }
    }
    let per_channel = EACH * 4;
    for acked in [&mut x, &mut y] {
        acked.sort_unstable();
        assert_eq!(
            *acked,
            (1..=per_channel).collect::<Vec<_>>(),
            "gapless, unique"
        );
    }
    let mut epochs = std::collections::HashMap::new();
    for (ws, channel) in &mut subs {
        let mut last_seq = std::collections::HashMap::new();
        for want in 1..=per_channel {
            let push = ws.next_push();
            assert_eq!(push["channel"], json!(channel));
            assert_eq!(offset(&push), want, "gap or duplicate on {channel}");
            let epoch = push["epoch"].as_str().expect("epoch").to_owned();
            assert_eq!(epochs.entry(*channel).or_insert(epoch.clone()), &epoch);
            let (p, seq) = (push["data"]["p"].as_u64(), push["data"]["seq"].as_u64());
            if let Some(prev) = last_seq.insert(p, seq) {
                assert!(seq > prev, "publisher {p:?} reordered");
            }
        }
    }
}

#[test]
fn a_resume_on_the_other_node_recovers_without_gap_or_duplicate() {
    const TOTAL: u64 = 400;
    let redis = RedisServer::start();
    let a = node("cluster-resume-a", &redis.url(), &[]);
    let b = node("cluster-resume-b", &redis.url(), &[]);
    let channel = "resume:z";
    let mut sub = Ws::connect(a.addr);
    let reply = sub.call(json!({"op":"subscribe","channel":channel}));
    let epoch = reply["result"]["epoch"].as_str().expect("epoch").to_owned();
    let addr = a.addr;
    let publishing = std::thread::spawn(move || publisher(addr, channel.into(), TOTAL, 0));
    let mut last = 0;
    while last < 50 {
        let push = sub.next_push();
        assert_eq!(offset(&push), last + 1);
        last += 1;
    }
    drop(sub);
    // On node B, which has never seen this channel, while A's publisher goes on.
    let mut sub = Ws::connect(b.addr);
    let reply =
        sub.call(json!({"op":"subscribe","channel":channel,"since":{"epoch":epoch,"offset":last}}));
    assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
    assert_eq!(reply["result"]["epoch"], json!(epoch));
    while last < TOTAL {
        let push = sub.next_push();
        assert_eq!(offset(&push), last + 1, "gap or duplicate after the resume");
        assert_eq!(push["epoch"], json!(epoch));
        last += 1;
    }
    assert_eq!(publishing.join().expect("publisher").len() as u64, TOTAL);
}

/// `kill -9` of the node a subscriber and a publisher are on, while both
/// nodes publish as fast as they are answered: the subscriber resumes on
/// the other node and gets every acknowledged offset, once, in order.
#[test]
fn a_node_killed_loses_no_acknowledged_message() {
    const TRIALS: usize = 3;
    const FROM_B: u64 = 300;
    let redis = RedisServer::start();
    let b = node("cluster-kill-b", &redis.url(), &[]);
    for trial in 0..TRIALS {
        let a = Arc::new(Mutex::new(node(
            &format!("cluster-kill-a{trial}"),
            &redis.url(),
            &[],
        )));
        let a_addr = a.lock().expect("node a").addr;
        let channel = format!("kill:{trial}");
        let mut sub = Ws::connect(a_addr);
        let reply = sub.call(json!({"op":"subscribe","channel":channel}));
        let epoch = reply["result"]["epoch"].as_str().expect("epoch").to_owned();
        let on_a = {
            let channel = channel.clone();
            std::thread::spawn(move || publisher(a_addr, channel, u64::MAX, 1))
        };
        let on_b = {
            let (addr, channel) = (b.addr, channel.clone());
            std::thread::spawn(move || publisher(addr, channel, FROM_B, 2))
        };
        let mut seen = Vec::new();
        while seen.len() < 30 {
            seen.push(offset(&sub.next_push()));
        }
        a.lock().expect("node a").kill();
        while let Some(push) = sub.try_next_push() {
            seen.push(offset(&push));
        }
        let last = *seen.last().expect("pushes before the kill");
        let mut sub = Ws::connect(b.addr);
        let reply = sub.call(
            json!({"op":"subscribe","channel":channel,"since":{"epoch":epoch,"offset":last}}),
        );
        assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
        let acked_a = on_a.join().expect("publisher on a");
        let acked_b = on_b.join().expect("publisher on b");
        assert_eq!(acked_b.len() as u64, FROM_B);
        let top = acked_a.iter().chain(&acked_b).copied().max().expect("acks");
        while *seen.last().expect("seen") < top {
            seen.push(offset(&sub.next_push()));
        }
        assert!(
            seen.iter().copied().eq(1..=top),
            "trial {trial}: not every offset once in order up to {top}"
        );
        // Every acknowledgement is an offset the subscriber got.
        assert!(acked_a.iter().chain(&acked_b).all(|o| *o <= top));
    }
}

fn readyz(addr: SocketAddr) -> String {
    http(
        addr,
        b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
}

fn metric(addr: SocketAddr, name: &str) -> f64 {
    let text = http(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Polls `f` until it holds, for at most [`WAIT`].
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn redis_down_means_unavailable_and_degraded_until_it_is_back() {
    let mut redis = RedisServer::start();
    let a = node("cluster-down", &redis.url(), &[]);
    assert!(readyz(a.addr).starts_with("HTTP/1.1 200"));
    let mut sub = Ws::connect(a.addr);
    let reply = sub.call(json!({"op":"subscribe","channel":"down:c"}));
    let epoch = reply["result"]["epoch"].as_str().expect("epoch").to_owned();
    let mut publisher = Ws::connect(a.addr);
    let reply = publisher.call(json!({"op":"publish","channel":"down:c","data":1}));
    assert_eq!(reply["result"]["offset"], json!(1), "{reply}");
    assert_eq!(offset(&sub.next_push()), 1);

    redis.kill();
    let reply = publisher.call(json!({"op":"publish","channel":"down:c","data":2}));
    assert_eq!(reply["error"]["code"], json!("unavailable"), "{reply}");
    let message = reply["error"]["message"].as_str().expect("message");
    assert!(message.contains(&redis.url()), "{message}");
    let ready = readyz(a.addr);
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains("degraded: redis unavailable"), "{ready}");
    assert!(metric(a.addr, "ringcast_redis_unavailable_total") >= 1.0);
    assert_eq!(metric(a.addr, "ringcast_redis_connected"), 0.0);
    // A channel new to the node cannot be served: `unavailable`, in time.
    let mut late = Ws::connect(a.addr);
    let reply = late.call(json!({"op":"subscribe","channel":"down:new"}));
    assert_eq!(reply["error"]["code"], json!("unavailable"), "{reply}");

    // Back, empty: a new epoch; the subscriber, still connected, follows it.
    redis.spawn();
    eventually("/readyz ready again", || {
        readyz(a.addr).starts_with("HTTP/1.1 200")
    });
    let reply = publisher.call(json!({"op":"publish","channel":"down:c","data":3}));
    assert_eq!(reply["result"]["offset"], json!(1), "{reply}");
    let push = sub.next_push();
    assert_eq!((offset(&push), &push["data"]), (1, &json!(3)));
    assert_ne!(
        push["epoch"],
        json!(epoch),
        "Redis restarted empty: new epoch"
    );
    // A resume from before the restart is not recovered.
    let mut resumer = Ws::connect(a.addr);
    let reply = resumer
        .call(json!({"op":"subscribe","channel":"down:c","since":{"epoch":epoch,"offset":1}}));
    assert_eq!(reply["result"]["recovered"], json!(false), "{reply}");
    assert!(metric(a.addr, "ringcast_redis_reconnects_total") >= 1.0);
}

#[test]
fn an_unreachable_redis_is_refused_at_start_with_the_url_redacted() {
    let url = format!("redis://ops:sekret-pw@127.0.0.1:{}/0", free_port());
    let output = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--no-pin",
        ])
        .args(["--set", "engine.kind=redis", "--set"])
        .arg(format!("engine.redis_url={url}"))
        .output()
        .expect("run ringcast");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("sekret-pw"), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("ringcast: engine.redis_url: "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("redis://ops:***@127.0.0.1:"), "{line}");
    assert!(line.contains("Connection refused"), "{line}");

    // Asked to start degraded, it does, and says so.
    let degraded = node(
        "cluster-degraded",
        &url,
        &["--set", "engine.start_degraded=true"],
    );
    let ready = readyz(degraded.addr);
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(!ready.contains("sekret-pw"), "{ready}");

    // Doctor names the server's version and persistence.
    let redis = RedisServer::start();
    let output = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["doctor", "--set", "engine.kind=redis", "--set"])
        .arg(format!("engine.redis_url={}", redis.url()))
        .output()
        .expect("run doctor");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("answers: Redis "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("AOF off"), "{line}");
}
