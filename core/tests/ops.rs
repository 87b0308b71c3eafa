//! Operations endpoints over real sockets: `/metrics` (parsed with a real
//! Prometheus text parser, merged from both workers), `/readyz`, and the
//! drain that answers 503 while connections close.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::Duration;

use common::{http, start, Client, Frame, Served};
use ringcast::proto::frame::OpCode;

fn scrape(addr: std::net::SocketAddr) -> prometheus_parse::Scrape {
    let response = http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text")
}

/// Sum of a sample over workers, filtered by one extra label.
fn total(scrape: &prometheus_parse::Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
            prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[test]
fn metrics_count_what_happened_on_every_worker() {
    let server = start(false, |c| c.server.workers = 2);
    let addr = server.local_addr();
    let mut clients: Vec<Client> = (0..6).map(|_| Client::connect(addr, "/echo")).collect();
    for client in &mut clients {
        client.send(OpCode::Text, true, b"hello");
        assert_eq!(client.recv(), Some(Frame::Text("hello".into())));
    }
    assert!(http(addr, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404"));
    clients[0].send_raw(b"\x81\x02hi"); // unmasked: protocol error 1002
    assert_eq!(clients[0].expect_close(), Some(1002));
    clients[0].expect_eof();
    // Closing our side ends the server's lingering close of that connection.
    drop(clients.remove(0));
    // The count drops when the server has finished that close; wait for it.
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    let scrape = loop {
        let scrape = scrape(addr);
        if total(&scrape, "ringcast_websockets", None) == 5.0
            || std::time::Instant::now() > deadline
        {
            break scrape;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let workers: std::collections::HashSet<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "ringcast_connections_opened_total")
        .filter_map(|s| s.labels.get("worker").map(str::to_owned))
        .collect();
    assert_eq!(workers.len(), 2, "one series per worker");
    assert_eq!(
        total(&scrape, "ringcast_messages_received_total", None),
        6.0,
        "the bad frame is no message"
    );
    assert_eq!(
        total(&scrape, "ringcast_websockets", None),
        5.0,
        "five echo clients still open"
    );
    assert_eq!(
        total(
            &scrape,
            "ringcast_handshakes_refused_total",
            Some(("status", "404"))
        ),
        1.0
    );
    assert_eq!(
        total(
            &scrape,
            "ringcast_protocol_errors_total",
            Some(("code", "1002"))
        ),
        1.0
    );
    assert_eq!(
        total(
            &scrape,
            "ringcast_connections_closed_total",
            Some(("reason", "protocol_error"))
        ),
        1.0
    );
    assert!(total(&scrape, "ringcast_received_bytes_total", None) > 0.0);
    let handshakes = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "ringcast_handshake_duration_seconds")
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            _ => 0.0,
        })
        .sum::<f64>();
    assert_eq!(
        handshakes, 6.0,
        "every upgrade is in the handshake histogram"
    );
    assert!(total(&scrape, "ringcast_process_resident_memory_bytes", None) > 0.0);
}

#[test]
fn readyz_turns_503_during_the_drain_while_websockets_close() {
    let server = start(false, |c| {
        c.server.workers = 1;
        c.timeouts.drain_timeout = Duration::from_secs(5);
    });
    let addr = server.local_addr();
    assert!(http(addr, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 200"));
    let mut client = Client::connect(addr, "/echo");
    server.shutdown();
    assert_eq!(client.expect_close(), Some(1001));
    // The client has not answered yet: the server is draining, not gone.
    let ready = http(addr, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains("Retry-After"), "{ready}");
    let upgrade = http(addr, common::upgrade_request("/echo").as_bytes());
    assert!(
        upgrade.starts_with("HTTP/1.1 503"),
        "new WebSockets are refused: {upgrade}"
    );
    assert!(http(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 200"));
    client.close(ringcast::proto::close::CloseCode::GOING_AWAY, "");
    drop(client);
    server.join();
}

#[test]
fn every_worker_answers_503_until_the_last_websocket_has_closed() {
    // One WebSocket on one of four workers: the three idle workers must keep
    // their reuseport listeners open too, or the probes hashed to them are
    // reset instead of answered. The drain timeout is far beyond the test:
    // only the WebSocket's close may end the drain.
    let mut server = Served::start(
        "ops-drain-four-workers",
        &[
            "--set",
            "server.workers=4",
            "--set",
            "timeouts.drain_timeout=1h",
        ],
    );
    let addr = server.addr;
    let mut client = Client::connect(addr, "/echo");
    // Probes connected before the drain, spread over the workers by the
    // kernel, that send their request only once the drain is under way.
    let mut probes: Vec<_> = (0..32).map(|_| common::raw(addr)).collect();
    server.terminate();
    assert_eq!(client.expect_close(), Some(1001));
    // A worker logs `draining` right after it starts refusing: once all four
    // have, every probe lands on a draining worker, whichever one it is on.
    server.wait_for_log("`draining` from each of the 4 workers", |events| {
        let draining: HashSet<u64> = events
            .iter()
            .filter(|e| e["message"] == "draining")
            .filter_map(|e| e["worker"].as_u64())
            .collect();
        draining.len() == 4
    });
    for (i, probe) in probes.iter_mut().enumerate() {
        let _ = probe.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut response = Vec::new();
        let _ = probe.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.starts_with("HTTP/1.1 503"),
            "probe {i}: {response:?}"
        );
    }
    client.close(ringcast::proto::close::CloseCode::GOING_AWAY, "");
    drop(client);
    let status = server.wait_exit();
    assert!(status.success(), "{status}");
}

#[test]
fn a_scrape_on_one_worker_ends_as_soon_as_it_is_answered() {
    // A close timeout far beyond the client's read timeout: reaching EOF at
    // all means the server closed right after the response, not at the
    // close timeout.
    let server = Served::start("ops-scrape-ends", &["--set", "timeouts.close_timeout=1h"]);
    let mut stream = common::raw(server.addr);
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut response = Vec::new();
    let read = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    assert!(read.is_ok(), "no EOF after the scrape: {read:?}\n{text}");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("ringcast_websockets"), "{text}");
}
