//! [`Conn`] driven in memory, with virtual time: no socket, no clock. The
//! "socket" is a byte vector plus how much of each offer it takes, so a full
//! send buffer is one number.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::admission::{Admission, AdmissionConfig};
use crate::auth::Authenticator;
use crate::bus::Mesh;
use crate::config::ServerConfig;
use crate::mailbox::Kicks;
use crate::server::gate::Gate;
use crate::server::scrape;
use crate::server::worker::{DrainLatch, Engine, Meshes, Worker};

const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";
/// RFC 6455 section 1.3's answer to the key above.
const ACCEPT: &str = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// One core's context, as a worker builds it, from `config`.
fn context(config: ServerConfig) -> ConnContext {
    let auth = Authenticator::from_config(&config.auth).expect("auth off");
    let admission = Admission::new(AdmissionConfig::from_config(&config), Instant::now());
    let gate = Arc::new(Gate {
        origins: config.admission.allowed_origins.clone(),
        admission,
        auth,
        demo_page: false,
        api: None,
    });
    let meshes = Meshes {
        pubsub: Arc::new(Mesh::new(1, 64)),
        scrape: Arc::new(scrape::mesh(1)),
    };
    let engine = Engine {
        cluster: None,
        store: None,
    };
    let drain = Arc::new(DrainLatch::new(1));
    Worker::new(0, Arc::new(config), meshes, None, gate, drain, engine).ctx
}

/// A client frame: FIN, `opcode`, masked with a fixed key.
fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126, "short frames only");
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// A connection and the memory it talks to.
struct Pair {
    ctx: ConnContext,
    conn: Conn,
    now: Instant,
    /// Everything the "socket" took, in order.
    wire: Vec<u8>,
    /// Room left in the socket's send buffer (0: full).
    window: usize,
    /// The write side was shut down (FIN).
    shut: bool,
    /// `poll_transmit` said the connection is finished.
    closed: bool,
    _kicks: Rc<Kicks>,
}

impl Pair {
    fn new(config: ServerConfig) -> Self {
        let ctx = context(config);
        let kicks = Rc::new(Kicks::default());
        let slot = Rc::new(Slot::new(ConnId::new(1, 0), kicks.clone()));
        let now = Instant::now();
        let peer = IpAddr::from([127, 0, 0, 1]);
        let conn = Conn::new(slot, peer, false, &ctx, now);
        Self {
            ctx,
            conn,
            now,
            wire: Vec::new(),
            window: usize::MAX,
            shut: false,
            closed: false,
            _kicks: kicks,
        }
    }

    fn echo() -> Self {
        Self::new(ServerConfig::default())
    }

    /// The driver's loop after any input: offer, take what the window
    /// allows, report, until the socket stops taking bytes.
    fn pump(&mut self) {
        let Pair {
            ctx,
            conn,
            now,
            wire,
            window,
            ..
        } = self;
        loop {
            let step = conn.poll_transmit(ctx, *now, |slices| {
                let mut took = 0;
                for slice in slices {
                    let n = slice.len().min(*window - took);
                    wire.extend_from_slice(&slice[..n]);
                    took += n;
                }
                *window -= took;
                took
            });
            match step {
                Transmit::Send(sent) => {
                    conn.handle_sent(ctx, sent, *now);
                    if sent == 0 {
                        break;
                    }
                }
                Transmit::Shutdown => {
                    self.shut = true;
                    conn.handle_shutdown(ctx, *now);
                }
                Transmit::Idle => break,
                Transmit::Close => {
                    self.closed = true;
                    break;
                }
            }
        }
        assert!(
            self.ctx.scratch.write.borrow().is_empty(),
            "reply left pending"
        );
    }

    /// Bytes arrive, in one read.
    fn feed(&mut self, bytes: &[u8]) {
        assert!(self.conn.poll_read(&self.ctx) > 0, "not reading");
        let mut bytes = bytes.to_vec();
        self.conn.handle_read(&self.ctx, &mut bytes, self.now);
        self.pump();
    }

    /// Virtual time passes; the driver's timer fires.
    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.conn.handle_timeout(&self.ctx, self.now);
        self.pump();
    }

    /// Takes what the socket took so far.
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.wire)
    }

    fn upgraded(&mut self) {
        self.feed(UPGRADE);
        let head = String::from_utf8(self.take()).expect("ascii head");
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert!(head.contains(ACCEPT), "{head}");
        assert!(self.conn.upgraded);
    }
}

#[test]
fn a_handshake_in_pieces_upgrades_once_whole() {
    for split in [1, 2, 7, 64, UPGRADE.len() - 1] {
        let mut pair = Pair::echo();
        for piece in UPGRADE.chunks(split) {
            assert!(pair.wire.is_empty(), "answered before the head was whole");
            pair.feed(piece);
        }
        let head = String::from_utf8(pair.take()).expect("ascii");
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{split}: {head}"
        );
        assert!(head.contains(ACCEPT));
        assert!(pair.conn.upgraded && !pair.closed && !pair.shut);
        let received = pair.ctx.metrics.bytes_received.get();
        assert_eq!(received, UPGRADE.len() as u64);
    }
}

#[test]
fn a_masked_text_frame_is_echoed_straight_from_the_scratch() {
    let mut pair = Pair::echo();
    pair.upgraded();
    let flushes = pair.ctx.metrics.flush_calls.get();
    pair.feed(&masked(0x1, b"hello"));
    assert_eq!(pair.take(), b"\x81\x05hello");
    // Taken at once: never copied into the outbox, no outbox flush.
    assert!(pair.conn.slot.outbox.borrow().is_empty());
    assert_eq!(pair.ctx.metrics.flush_calls.get(), flushes);

    // Head and frame in one read: the frame is the handshake's leftover.
    let mut pair = Pair::echo();
    let mut both = UPGRADE.to_vec();
    both.extend(masked(0x1, b"hi"));
    pair.feed(&both);
    let wire = pair.take();
    assert!(wire.starts_with(b"HTTP/1.1 101 "));
    assert!(wire.ends_with(b"\r\n\r\n\x81\x02hi"), "{wire:?}");
}

#[test]
fn a_reply_the_socket_takes_in_part_waits_in_order() {
    let mut pair = Pair::echo();
    pair.upgraded();
    pair.window = 3;
    pair.feed(&masked(0x1, b"abcdef"));
    // Three bytes went; the driver stopped once the socket took none.
    assert_eq!(pair.window, 0);
    assert_eq!(pair.take(), b"\x81\x06a");
    assert_eq!(pair.conn.slot.outbox.borrow().len(), 5);
    pair.feed(&masked(0x2, b"xy"));
    pair.window = usize::MAX;
    pair.pump();
    assert_eq!(pair.take(), b"bcdef\x82\x02xy");
    assert!(pair.conn.slot.outbox.borrow().is_empty());
}

#[test]
fn a_ping_is_answered_with_its_pong() {
    let mut pair = Pair::echo();
    pair.upgraded();
    pair.feed(&masked(0x9, b"abc"));
    assert_eq!(pair.take(), b"\x8a\x03abc");
    assert!(!pair.closed && !pair.shut);
}

#[test]
fn a_handshake_that_never_finishes_times_out() {
    let mut pair = Pair::echo();
    let timeout = pair.ctx.limits.handshake_timeout;
    pair.feed(&UPGRADE[..20]);
    pair.advance(timeout - Duration::from_millis(1));
    assert!(!pair.closed, "closed before its deadline");
    pair.advance(Duration::from_millis(1));
    assert!(pair.closed);
    assert!(pair.wire.is_empty(), "a slowloris is owed no answer");
    assert_eq!(pair.conn.close_reason(), CloseReason::HandshakeTimeout);
}

#[test]
fn a_close_is_answered_flushed_then_lingers_until_its_deadline() {
    let mut pair = Pair::echo();
    pair.upgraded();
    // Our reply to the close waits for a socket that takes nothing.
    pair.window = 0;
    pair.feed(&masked(0x8, b"\x03\xe8"));
    assert!(!pair.shut, "FIN before the close frame went out");
    assert_eq!(pair.conn.poll_read(&pair.ctx), 0, "reads after the close");
    pair.window = usize::MAX;
    pair.pump();
    assert_eq!(pair.take(), b"\x88\x02\x03\xe8");
    assert!(pair.shut, "no FIN once flushed");
    assert_eq!(pair.conn.close_reason(), CloseReason::Normal);
    // Lingering: what the peer still sends is read and dropped.
    assert!(pair.conn.poll_read(&pair.ctx) > 0);
    pair.feed(b"late bytes");
    assert!(pair.wire.is_empty() && !pair.closed);
    let close = pair.ctx.limits.close_timeout;
    pair.advance(close - Duration::from_millis(1));
    assert!(!pair.closed);
    pair.advance(Duration::from_millis(1));
    assert!(pair.closed);
    assert_eq!(pair.conn.close_reason(), CloseReason::Normal);
}

#[test]
fn a_peer_that_closes_while_lingering_ends_it_at_once() {
    let mut pair = Pair::echo();
    pair.upgraded();
    pair.feed(&masked(0x8, b"\x03\xe8"));
    assert!(pair.shut);
    pair.conn.handle_eof(&pair.ctx, pair.now);
    pair.pump();
    assert!(pair.closed);
}

#[test]
fn a_socket_that_takes_nothing_gets_1008_past_the_outbound_limit() {
    let mut config = ServerConfig::default();
    config.limits.max_outbound_bytes = 1000;
    let mut pair = Pair::new(config);
    pair.upgraded();
    pair.window = 0;
    let message = masked(0x2, &[7; 100]);
    let mut fed = 0;
    while pair.conn.poll_read(&pair.ctx) > 0 {
        fed += 1;
        assert!(fed <= 10, "still reading past the limit");
        pair.feed(&message);
    }
    // 102 bytes a reply: the tenth passed 1,000.
    assert_eq!(fed, 10);
    assert_eq!(pair.conn.close_reason(), CloseReason::SlowConsumer);
    let queued = pair.conn.slot.outbox.borrow().len();
    assert_eq!(queued, 10 * 102 + 4 + SLOW_CONSUMER.len());
    assert!(!pair.shut && !pair.closed);
    // The socket drains: every reply, the 1008 last, then FIN.
    pair.window = usize::MAX;
    pair.pump();
    let wire = pair.take();
    assert_eq!(wire.len(), queued);
    let close = &wire[10 * 102..];
    assert_eq!(close[0], 0x88);
    assert_eq!(&close[2..4], &1008u16.to_be_bytes());
    assert_eq!(&close[4..], SLOW_CONSUMER.as_bytes());
    assert!(pair.shut);
}

#[test]
fn a_bad_handshake_gets_its_http_status_then_fin() {
    let cases: [(&[u8], &str); 3] = [
        (b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 426 "),
        (b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 "),
        (b"GET /echo HTTP/1.1\r\nHost x\r\n\r\n", "HTTP/1.1 400 "),
    ];
    for (request, status) in cases {
        let mut pair = Pair::echo();
        pair.feed(request);
        let answer = String::from_utf8(pair.take()).expect("ascii");
        assert!(answer.starts_with(status), "{answer}");
        assert!(pair.shut, "no FIN after the refusal");
        assert_eq!(pair.conn.close_reason(), CloseReason::Refused);
        assert!(!pair.conn.upgraded);
    }
}

#[test]
fn a_health_probe_is_answered_while_the_socket_is_full() {
    let mut pair = Pair::echo();
    pair.window = 0;
    pair.feed(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!pair.shut && pair.wire.is_empty());
    assert_eq!(pair.conn.poll_read(&pair.ctx), 0, "reads while flushing");
    pair.window = usize::MAX;
    pair.pump();
    let answer = String::from_utf8(pair.take()).expect("ascii");
    assert!(answer.starts_with("HTTP/1.1 200 ") && answer.ends_with("ok\n"));
    assert!(pair.shut);
    assert_eq!(pair.conn.close_reason(), CloseReason::Http);
}

#[test]
fn a_shutdown_kick_closes_with_1001() {
    let mut pair = Pair::echo();
    pair.upgraded();
    let now = pair.now;
    pair.conn.handle_kicks(&pair.ctx, KICK_SHUTDOWN, now);
    pair.pump();
    let wire = pair.take();
    assert_eq!(wire[..2], [0x88, 2 + GOING_AWAY.len() as u8]);
    assert_eq!(wire[2..4], 1001u16.to_be_bytes());
    assert_eq!(&wire[4..], GOING_AWAY.as_bytes());
    // Still open for the peer's close reply.
    assert!(!pair.shut);
    pair.feed(&masked(0x8, b"\x03\xe9"));
    assert!(pair.shut);
    assert_eq!(pair.conn.close_reason(), CloseReason::Drained);
}

#[test]
fn a_connection_and_its_session_stay_within_their_size_classes() {
    // The reactor's slab entry (connection and socket) was 112 bytes before
    // the connection lost its IO; the boxed session is in mimalloc's
    // 384-byte class and must stay there.
    let entry = std::mem::size_of::<crate::server::socket::Socket>();
    assert!(entry <= 112, "slab entry {entry} B");
    assert!(std::mem::size_of::<Open>() <= 384);
}
