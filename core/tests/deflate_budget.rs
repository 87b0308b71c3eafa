//! What context takeover may cost, over real sockets under both IO
//! drivers: `deflate.max_context_connections` (a worker's connections
//! keeping zlib state; past it the 101 says no context takeover, the
//! downgrade is counted, and a closed connection's place is given back)
//! and `deflate.max_memory_per_connection` (a budget that does not hold a
//! connection's own deflate stream makes the server insist on
//! `server_no_context_takeover`).

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use common::{raw, read_head, start, Client, DRIVERS, TIMEOUT};
use ringcast::config::ServerConfig;
use ringcast::proto::close::CloseCode;
use ringcast::proto::deflate::{deflate_state_bytes, INFLATE_STATE_BYTES};

const OFFER: &str = "permessage-deflate; client_max_window_bits";
const KEPT: &str = "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n";
const NONE_KEPT: &str = "\r\nSec-WebSocket-Extensions: permessage-deflate; \
                         server_no_context_takeover; client_no_context_takeover\r\n";

/// One worker, so the per-worker cap is the server's; context takeover
/// allowed both ways.
fn lax(c: &mut ServerConfig) {
    c.server.workers = 1;
    c.deflate.enabled = true;
    c.deflate.server_no_context_takeover = false;
    c.deflate.client_no_context_takeover = false;
}

/// Upgrades `/echo` offering permessage-deflate; the stream and the 101 head.
fn connect(addr: SocketAddr) -> (TcpStream, String) {
    let mut stream = raw(addr);
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {OFFER}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("write");
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "not upgraded: {head}");
    (stream, head)
}

fn metric(addr: SocketAddr, name: &str) -> u64 {
    let text = common::http(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let prefix = format!("{name}{{worker=\"0\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// Waits (bounded) until `name` reads `want`.
fn wait_for(addr: SocketAddr, name: &str, want: u64) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let got = metric(addr, name);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{name} stayed {got}, not {want}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn past_the_cap_connections_get_no_context_until_one_closes() {
    for epoll in DRIVERS {
        let server = start(epoll, |c| {
            lax(c);
            c.deflate.max_context_connections = 1;
        });
        let addr = server.local_addr();
        let (first, head) = connect(addr);
        assert!(head.contains(KEPT), "{head}");
        assert_eq!(metric(addr, "ringcast_deflate_context_connections"), 1);

        // The cap is reached: the second compresses each message on its own.
        let (_second, head) = connect(addr);
        assert!(head.contains(NONE_KEPT), "{head}");
        assert_eq!(metric(addr, "ringcast_deflate_context_downgrades_total"), 1);
        assert_eq!(metric(addr, "ringcast_deflate_context_connections"), 1);

        // The first closes: its place is given back, and the next
        // connection keeps context again.
        let mut first = Client::from_stream(first);
        first.close(CloseCode::NORMAL, "");
        assert_eq!(first.expect_close(), Some(1000));
        wait_for(addr, "ringcast_deflate_context_connections", 0);
        let (third, head) = connect(addr);
        assert!(head.contains(KEPT), "{head}");
        assert_eq!(metric(addr, "ringcast_deflate_context_connections"), 1);
        assert_eq!(metric(addr, "ringcast_deflate_context_downgrades_total"), 1);

        // A connection that just drops its socket gives its place back too.
        drop(third);
        wait_for(addr, "ringcast_deflate_context_connections", 0);
    }
}

#[test]
fn a_budget_without_room_for_a_deflate_stream_insists_on_no_server_context() {
    for epoll in DRIVERS {
        let own = deflate_state_bytes(15) + INFLATE_STATE_BYTES;
        let server = start(epoll, |c| {
            lax(c);
            c.deflate.max_memory_per_connection = own - 1;
        });
        let addr = server.local_addr();
        let (_stream, head) = connect(addr);
        // The client keeps its context (the inflater fits), the server not.
        assert!(
            head.contains(
                "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
            ),
            "{head}"
        );
        // Not a downgrade by the cap: none is set.
        assert_eq!(metric(addr, "ringcast_deflate_context_downgrades_total"), 0);
        assert_eq!(metric(addr, "ringcast_deflate_context_connections"), 1);
        drop(server);

        let server = start(epoll, |c| {
            lax(c);
            c.deflate.max_memory_per_connection = own;
        });
        let (_stream, head) = connect(server.local_addr());
        assert!(head.contains(KEPT), "{head}");
    }
}
