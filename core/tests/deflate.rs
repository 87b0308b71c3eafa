//! permessage-deflate over real sockets under both IO drivers: the
//! negotiation in the 101, compressed echo both ways, the size limit on the
//! inflated bytes, the RSV1 rules and bad data with their close codes, and
//! `/ws` pushes compressed for subscribers that negotiated it while others
//! get the same push uncompressed, and compressed once per message whatever
//! the workers its subscribers are on (`ringcast_deflate_compressions_total`),
//! on the memory, disk and Redis engines (on Redis, once per node).
//!
//! The client here is its own: it reads frame headers itself to see RSV1,
//! and inflates with the server's own inflater (the interop tests check the
//! same against independent clients).

mod common;
#[path = "support/redis.rs"]
mod redis_server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use common::{raw, read_head, start, DRIVERS, TIMEOUT};
use redis_server::RedisServer;
use ringcast::config::ServerConfig;
use ringcast::proto::deflate::{MessageDeflater, MessageInflater};
use ringcast::proto::frame::{encode_masked_frame_into, FrameHeader, OpCode, RSV1};
use serde_json::{json, Value};

const MASK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];
const OFFER: &str = "permessage-deflate; client_max_window_bits";

fn enabled(c: &mut ServerConfig) {
    c.deflate.enabled = true;
}

/// One frame as it came: RSV1, opcode, payload (inflated when RSV1 was set).
#[derive(Debug)]
struct Got {
    compressed: bool,
    opcode: OpCode,
    wire_len: usize,
    payload: Vec<u8>,
}

struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    inflater: MessageInflater,
    deflater: MessageDeflater,
}

impl Peer {
    /// Upgrades on `path` offering `offer` (none when `None`); returns the
    /// peer and the 101 head.
    fn connect(addr: SocketAddr, path: &str, offer: Option<&str>) -> (Peer, String) {
        let mut stream = raw(addr);
        let ext = offer.map_or(String::new(), |o| {
            format!("Sec-WebSocket-Extensions: {o}\r\n")
        });
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
        );
        stream.write_all(request.as_bytes()).expect("write");
        let head = read_head(&mut stream);
        assert!(head.starts_with("HTTP/1.1 101"), "not upgraded: {head}");
        let peer = Peer {
            stream,
            buf: Vec::new(),
            inflater: MessageInflater::new(),
            deflater: MessageDeflater::new(6),
        };
        (peer, head)
    }

    fn send_frame(&mut self, opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) {
        let mut frame = Vec::new();
        encode_masked_frame_into(&mut frame, opcode, fin, MASK, payload);
        if rsv1 {
            frame[0] |= 0x40;
        }
        self.stream.write_all(&frame).expect("send");
    }

    /// Sends `payload` as one compressed message (the deflater's output).
    fn send_compressed(&mut self, opcode: OpCode, payload: &[u8]) {
        let mut frame = Vec::new();
        assert!(self
            .deflater
            .encode_frame_into(&mut frame, opcode, payload, true));
        let (_, at) = FrameHeader::parse(&frame).expect("ok").expect("whole");
        self.send_frame(opcode, true, true, &frame[at..]);
    }

    fn recv(&mut self) -> Option<Got> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some((header, at)) = FrameHeader::parse(&self.buf).expect("valid header") {
                let end = at + header.payload_len as usize;
                if self.buf.len() >= end {
                    assert!(header.fin, "the server sends whole messages");
                    assert!(header.mask.is_none());
                    let payload = self.buf[at..end].to_vec();
                    self.buf.drain(..end);
                    let compressed = header.rsv & RSV1 != 0;
                    let payload = if compressed {
                        self.inflater.reset();
                        self.inflater
                            .inflate_message(&payload, 1 << 30)
                            .expect("server sent valid deflate data");
                        self.inflater.out.clone()
                    } else {
                        payload
                    };
                    return Some(Got {
                        compressed,
                        opcode: header.opcode,
                        wire_len: end - at,
                        payload,
                    });
                }
            }
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

    fn expect_close(&mut self) -> u16 {
        loop {
            match self.recv() {
                Some(got) if got.opcode == OpCode::Close => {
                    return u16::from_be_bytes([got.payload[0], got.payload[1]])
                }
                Some(_) => continue,
                None => panic!("connection ended without a close frame"),
            }
        }
    }

    fn json(&mut self) -> (bool, Value) {
        loop {
            let got = self.recv().expect("a frame");
            if got.opcode == OpCode::Ping {
                self.send_frame(OpCode::Pong, true, false, &got.payload);
                continue;
            }
            assert_eq!(got.opcode, OpCode::Text);
            return (
                got.compressed,
                serde_json::from_slice(&got.payload).expect("JSON"),
            );
        }
    }
}

fn chat(i: usize) -> Value {
    json!({"user": format!("user-{}", i % 7), "name": "Alice Martin",
           "text": "on my way, see you at the station in ten minutes", "ts": 1_733_000_000 + i})
}

#[test]
fn negotiation_in_the_handshake() {
    for epoll in DRIVERS {
        let server = start(epoll, enabled);
        let addr = server.local_addr();
        let (_, head) = Peer::connect(addr, "/echo", Some(OFFER));
        assert!(
            head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"),
            "{head}"
        );
        let (_, head) = Peer::connect(
            addr,
            "/ws",
            Some("permessage-deflate; server_max_window_bits=10"),
        );
        assert!(
            head.contains("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10\r\n"),
            "{head}"
        );
        // A malformed offer is declined, and the upgrade goes on without it.
        let (_, head) = Peer::connect(
            addr,
            "/echo",
            Some("permessage-deflate; server_max_window_bits=99"),
        );
        assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
        let (_, head) = Peer::connect(addr, "/echo", None);
        assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
        drop(server);

        // Off (the default): every offer declined.
        let server = start(epoll, |_| {});
        let (_, head) = Peer::connect(server.local_addr(), "/echo", Some(OFFER));
        assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
    }
}

#[test]
fn echo_is_compressed_both_ways() {
    for epoll in DRIVERS {
        let server = start(epoll, enabled);
        let (mut peer, _) = Peer::connect(server.local_addr(), "/echo", Some(OFFER));
        let page: Vec<Value> = (0..300).map(chat).collect();
        let text = serde_json::to_string(&page).expect("json");
        assert!(text.len() > 30_000);
        peer.send_compressed(OpCode::Text, text.as_bytes());
        let got = peer.recv().expect("echo");
        assert!(got.compressed, "echo of compressible JSON not compressed");
        assert!(
            got.wire_len * 5 < text.len(),
            "{} bytes on the wire",
            got.wire_len
        );
        assert_eq!(
            (got.opcode, got.payload),
            (OpCode::Text, text.clone().into_bytes())
        );
        // Fragmented compressed message, RSV1 on the first frame only.
        let mut frame = Vec::new();
        assert!(MessageDeflater::new(1).encode_frame_into(
            &mut frame,
            OpCode::Binary,
            text.as_bytes(),
            true
        ));
        let (_, at) = FrameHeader::parse(&frame).expect("ok").expect("whole");
        let packed = &frame[at..];
        let third = packed.len() / 3;
        peer.send_frame(OpCode::Binary, false, true, &packed[..third]);
        peer.send_frame(
            OpCode::Continuation,
            false,
            false,
            &packed[third..2 * third],
        );
        peer.send_frame(OpCode::Ping, true, false, b"between");
        peer.send_frame(OpCode::Continuation, true, false, &packed[2 * third..]);
        let pong = peer.recv().expect("pong");
        assert_eq!((pong.opcode, pong.compressed), (OpCode::Pong, false));
        let got = peer.recv().expect("echo");
        assert!(got.compressed);
        assert_eq!(
            (got.opcode, got.payload),
            (OpCode::Binary, text.clone().into_bytes())
        );
        // Small and uncompressed messages: sent as they are.
        peer.send_frame(OpCode::Text, true, false, b"hi");
        let got = peer.recv().expect("echo");
        assert_eq!((got.compressed, got.payload), (false, b"hi".to_vec()));
        peer.send_compressed(
            OpCode::Text,
            "short but compressed by the peer, short but compressed".as_bytes(),
        );
        let got = peer.recv().expect("echo");
        assert_eq!(got.opcode, OpCode::Text);
    }
}

#[test]
fn limits_and_protocol_errors_close_with_their_codes() {
    for epoll in DRIVERS {
        let server = start(epoll, |c| {
            enabled(c);
            c.limits.max_message_size = 64 * 1024;
            c.limits.max_frame_size = 64 * 1024;
        });
        let addr = server.local_addr();
        // A bomb: 16 MiB of zeros in a few KiB: 1009 from the inflated size.
        let (mut peer, _) = Peer::connect(addr, "/echo", Some(OFFER));
        peer.send_compressed(OpCode::Binary, &vec![0u8; 16 << 20]);
        assert_eq!(peer.expect_close(), 1009);
        // Exactly at the limit echoes.
        let (mut peer, _) = Peer::connect(addr, "/echo", Some(OFFER));
        peer.send_compressed(OpCode::Binary, &vec![1u8; 64 * 1024]);
        assert_eq!(peer.recv().expect("echo").payload.len(), 64 * 1024);
        // RSV1 on a continuation, on a control frame: 1002.
        let (mut peer, _) = Peer::connect(addr, "/echo", Some(OFFER));
        peer.send_frame(OpCode::Text, false, false, b"a");
        peer.send_frame(OpCode::Continuation, true, true, b"b");
        assert_eq!(peer.expect_close(), 1002);
        let (mut peer, _) = Peer::connect(addr, "/echo", Some(OFFER));
        peer.send_frame(OpCode::Ping, true, true, b"p");
        assert_eq!(peer.expect_close(), 1002);
        // RSV1 without the extension: 1002.
        let (mut peer, _) = Peer::connect(addr, "/echo", None);
        peer.send_frame(
            OpCode::Text,
            true,
            true,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        );
        assert_eq!(peer.expect_close(), 1002);
        // Not deflate data: 1007; invalid UTF-8 once inflated: 1007.
        let (mut peer, _) = Peer::connect(addr, "/echo", Some(OFFER));
        peer.send_frame(OpCode::Binary, true, true, &[0xff, 0xff, 0xff]);
        assert_eq!(peer.expect_close(), 1007);
        let (mut peer, _) = Peer::connect(addr, "/echo", Some(OFFER));
        let mut bad = b"valid start ".repeat(20);
        bad.extend_from_slice(&[0xc3, 0x28]);
        peer.send_compressed(OpCode::Text, &bad);
        assert_eq!(peer.expect_close(), 1007);
    }
}

#[test]
fn pushes_are_compressed_for_subscribers_that_negotiated_it() {
    for epoll in DRIVERS {
        let server = start(epoll, enabled);
        let addr = server.local_addr();
        let subscribe = json!({"op": "subscribe", "channel": "room:deflate", "id": 1}).to_string();
        let (mut packed, _) = Peer::connect(addr, "/ws", Some(OFFER));
        let (mut small_window, head) = Peer::connect(
            addr,
            "/ws",
            Some("permessage-deflate; server_max_window_bits=8"),
        );
        assert!(head.contains("server_max_window_bits=8"), "{head}");
        let (mut plain, _) = Peer::connect(addr, "/ws", None);
        for peer in [&mut packed, &mut small_window, &mut plain] {
            peer.send_frame(OpCode::Text, true, false, subscribe.as_bytes());
            let (_, reply) = peer.json();
            assert_eq!(reply["id"], json!(1), "{reply}");
        }
        let (mut publisher, _) = Peer::connect(addr, "/ws", None);
        let data: Vec<Value> = (0..20).map(chat).collect();
        let publish = json!({"op": "publish", "channel": "room:deflate", "data": data, "id": 2});
        publisher.send_frame(OpCode::Text, true, false, publish.to_string().as_bytes());
        let (_, reply) = publisher.json();
        assert_eq!(reply["id"], json!(2), "{reply}");

        let (compressed, push) = packed.json();
        assert!(compressed, "push to a deflate subscriber not compressed");
        assert_eq!(push["data"], json!(data));
        // Over 256 bytes: too large for a 2^8 window, sent as it is.
        let (compressed, push_small) = small_window.json();
        assert!(!compressed);
        assert_eq!(push_small, push);
        let (compressed, push_plain) = plain.json();
        assert!(!compressed);
        assert_eq!(push_plain, push);
    }
}

/// The worker-labelled samples of `metric` in a `/metrics` scrape.
fn per_worker(addr: SocketAddr, metric: &str) -> Vec<f64> {
    let response = common::http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let prefix = format!("{metric}{{worker=");
    response
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

/// Subscribes eight deflate connections to `room:once` on `addr` (two
/// workers: SO_REUSEPORT spreads them, all on one has a chance of 1 in 128
/// and the count holds either way), publishes three chat messages and
/// checks every push arrives compressed, the same size for all, and that
/// the workers compressed three messages in all. Replies must stay under
/// `deflate.min_size`.
fn three_pushes_three_compressions(addr: SocketAddr) {
    let subscribe = json!({"op": "subscribe", "channel": "room:once", "id": 1}).to_string();
    let mut subscribers: Vec<Peer> = (0..8)
        .map(|_| Peer::connect(addr, "/ws", Some(OFFER)).0)
        .collect();
    for peer in &mut subscribers {
        peer.send_frame(OpCode::Text, true, false, subscribe.as_bytes());
        let (compressed, reply) = peer.json();
        assert!(!compressed, "{reply}");
        assert_eq!(reply["id"], json!(1), "{reply}");
    }
    let (mut publisher, _) = Peer::connect(addr, "/ws", None);
    const MESSAGES: usize = 3;
    for i in 0..MESSAGES {
        let data: Vec<Value> = (i..i + 20).map(chat).collect();
        let publish = json!({"op": "publish", "channel": "room:once", "data": data, "id": 2});
        publisher.send_frame(OpCode::Text, true, false, publish.to_string().as_bytes());
        let (_, reply) = publisher.json();
        assert_eq!(reply["id"], json!(2), "{reply}");
        let mut sizes = Vec::new();
        for peer in &mut subscribers {
            let got = peer.recv().expect("a push");
            assert!(got.compressed, "push {i} not compressed");
            let push: Value = serde_json::from_slice(&got.payload).expect("JSON");
            assert_eq!(push["data"], json!(data));
            sizes.push(got.wire_len);
        }
        assert!(sizes.windows(2).all(|w| w[0] == w[1]), "{sizes:?}");
    }
    let subscriptions = per_worker(addr, "ringcast_subscriptions");
    let compressions = per_worker(addr, "ringcast_deflate_compressions_total");
    assert_eq!(compressions.len(), 2, "two workers");
    assert_eq!(
        compressions.iter().sum::<f64>(),
        MESSAGES as f64,
        "one compression per message, subscribers per worker {subscriptions:?}, \
         compressions per worker {compressions:?}"
    );
}

#[test]
fn a_push_is_compressed_once_whatever_the_workers_its_subscribers_are_on() {
    for epoll in DRIVERS {
        let server = start(epoll, |c| {
            enabled(c);
            c.deflate.min_size = 300;
        });
        three_pushes_three_compressions(server.local_addr());
    }
}

/// The Redis engine: a push enters the node once, from Redis pub/sub, on
/// the core that owns the channel there, and is compressed once there.
#[test]
fn on_the_redis_engine_a_push_is_compressed_once_per_node() {
    let redis = RedisServer::start();
    let url = format!("engine.redis_url={}", redis.url());
    on_an_engine(
        "deflate-redis",
        &["--set", "engine.kind=redis", "--set", &url],
    );
}

/// The disk engine: the memory engine's owner path plus the log; the
/// deliveries held until the log has the record carry the compressed frame.
#[test]
fn on_the_disk_engine_a_push_is_compressed_once() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-deflate-once");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("store dir");
    let path = format!("store.data_path={}", dir.display());
    let engine = [
        "--set",
        "engine.kind=disk",
        "--set",
        &path,
        "--set",
        "store.fsync=always",
        "--set",
        "store.min_free=0",
    ];
    on_an_engine("deflate-disk", &engine);
}

/// [`three_pushes_three_compressions`] on a `ringcast` process with
/// `engine` flags: two workers, rates off, deflate on for 300-byte frames.
fn on_an_engine(name: &str, engine: &[&str]) {
    let shared = [
        "--set",
        "server.workers=2",
        "--set",
        "limits.command_rate=0",
        "--set",
        "deflate.enabled=true",
        "--set",
        "deflate.min_size=300",
    ];
    let flags: Vec<&str> = engine.iter().chain(&shared).copied().collect();
    let node = common::Served::start(name, &flags);
    three_pushes_three_compressions(node.addr);
}
