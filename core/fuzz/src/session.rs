//! The per-connection session (decoder + close handshake + liveness) driven by
//! a fuzzer-chosen sequence of reads, clock jumps, timeouts and server closes,
//! on virtual time.
//!
//! Input layout: `[cfg, ping, idle, close, op...]`. `cfg` picks the limits as
//! in the `decoder` target; `ping`, `idle` and `close` set the intervals (in
//! units of 100 ms; idle is ping plus at least 100 ms). Each op is a byte,
//! see [`check`]. Asserted, besides everything `decode::run` checks on the
//! bytes the server sends (decoded as a client would):
//! - the server sends at most one close frame and nothing after it;
//! - `is_finished()` iff `ending()` is set iff `next_deadline()` is `None`;
//!   a finished session sends nothing more;
//! - `handle_timeout` before `next_deadline()` does nothing;
//! - a session whose peer goes silent finishes within idle + close timeout;
//! - the session's buffers stay within the decoder's limits.

use std::time::{Duration, Instant};

use ringcast::proto::close::CloseCode;
use ringcast::proto::decoder::{Limits, Role};
use ringcast::proto::frame::{encode_frame_into, OpCode};
use ringcast::proto::session::{Message, Session, SessionConfig};

use crate::decode::{config, run, Ev};
use crate::frames::Spec;
use crate::input::Reader;

/// Most ops in one case.
const MAX_OPS: usize = 256;

/// Codes the server itself closes with.
const SERVER_CODES: [CloseCode; 4] = [
    CloseCode::NORMAL,
    CloseCode::GOING_AWAY,
    CloseCode::POLICY,
    CloseCode::TRY_AGAIN_LATER,
];

fn tenths(n: u8) -> Duration {
    Duration::from_millis(100 * u64::from(n))
}

/// The observable state, to check that an early timeout changes nothing.
fn snapshot(s: &Session) -> impl PartialEq + std::fmt::Debug {
    (
        s.is_finished(),
        s.is_open(),
        format!("{:?}", s.ending()),
        s.next_deadline(),
        s.buffered_bytes(),
    )
}

struct Driver {
    session: Session,
    limits: Limits,
    now: Instant,
    /// Everything the server sent, in order.
    sent: Vec<u8>,
    /// Scratch output of one call.
    out: Vec<u8>,
}

impl Driver {
    fn read(&mut self, bytes: &[u8]) {
        let mut input = bytes.to_vec();
        let finished = self.session.is_finished();
        self.out.clear();
        self.session.handle_read(
            &mut input,
            self.now,
            &mut self.out,
            |message, out| match message {
                Message::Text(t) => encode_frame_into(out, OpCode::Text, true, t.as_bytes()),
                Message::Binary(b) => encode_frame_into(out, OpCode::Binary, true, b),
            },
        );
        self.after(finished);
    }

    fn timeout(&mut self) {
        let finished = self.session.is_finished();
        self.out.clear();
        self.session.handle_timeout(self.now, &mut self.out);
        self.after(finished);
    }

    /// Checks after every call; `was_finished` is the state before it.
    fn after(&mut self, was_finished: bool) {
        let s = &self.session;
        if was_finished {
            assert!(
                self.out.is_empty(),
                "a finished session sent {:?}",
                self.out
            );
            assert!(s.is_finished(), "a finished session came back");
        }
        assert_eq!(s.is_finished(), s.ending().is_some(), "finished vs ending");
        assert_eq!(
            s.is_finished(),
            s.next_deadline().is_none(),
            "finished vs deadline"
        );
        assert!(!(s.is_open() && s.is_finished()));
        let max_message = usize::try_from(self.limits.max_message_size).unwrap_or(usize::MAX);
        assert!(
            s.buffered_bytes() <= max_message.saturating_add(125),
            "session buffers"
        );
        self.sent.extend_from_slice(&self.out);
    }
}

/// The `session` target. Ops (one byte, then its arguments):
/// - 0, 1: a read of raw bytes (a length byte, then the bytes);
/// - 2, 3: a read of one frame built as in `decoder_frames`;
/// - 4: the clock moves on by a 16-bit number of milliseconds, then `handle_timeout`;
/// - 5: the clock jumps to `next_deadline()` (after checking that a timeout just
///   before it does nothing), then `handle_timeout`;
/// - 6, 7: the server closes: an argument byte picks `close` (bit 0 clear) or
///   `abort` (set) and the code (bits 1-2), then a reason of a length byte.
pub fn check(data: &[u8]) {
    let mut r = Reader::new(data);
    let (_, limits) = config(r.u8());
    let ping_interval = tenths(r.u8().max(1));
    let idle_timeout = ping_interval + tenths(r.u8().max(1));
    let close_timeout = tenths(r.u8().max(1));
    let cfg = SessionConfig {
        limits,
        ping_interval,
        idle_timeout,
        close_timeout,
    };
    let t0 = Instant::now();
    let mut d = Driver {
        session: Session::new(&cfg, t0),
        limits,
        now: t0,
        sent: Vec::new(),
        out: Vec::new(),
    };
    let mut budget = 1 << 20;
    for _ in 0..MAX_OPS {
        if r.is_empty() {
            break;
        }
        match r.u8() & 7 {
            0 | 1 => {
                let n = usize::from(r.u8());
                let bytes = r.bytes(n);
                d.read(bytes);
            }
            2 | 3 => {
                let mut wire = Vec::new();
                Spec::read(&mut r, &mut budget).encode_into(&mut wire);
                d.read(&wire);
            }
            4 => {
                d.now += Duration::from_millis(u64::from(r.u16()));
                d.timeout();
            }
            5 => {
                if let Some(deadline) = d.session.next_deadline() {
                    if deadline > d.now {
                        let before = snapshot(&d.session);
                        let early = deadline - Duration::from_nanos(1);
                        let mut out = Vec::new();
                        d.session.handle_timeout(early.max(d.now), &mut out);
                        assert!(out.is_empty(), "a timeout before the deadline sent {out:?}");
                        assert_eq!(
                            snapshot(&d.session),
                            before,
                            "a timeout before the deadline acted"
                        );
                        d.now = deadline;
                    }
                }
                d.timeout();
            }
            6 | 7 => {
                let op = r.u8();
                let code = SERVER_CODES[usize::from(op >> 1) & 3];
                let n = usize::from(r.u8());
                let reason = String::from_utf8_lossy(r.bytes(n)).into_owned();
                let finished = d.session.is_finished();
                d.out.clear();
                if op & 1 == 0 {
                    d.session.close(code, &reason, d.now, &mut d.out);
                } else {
                    d.session.abort(code, &reason, &mut d.out);
                    assert!(d.session.is_finished(), "abort did not finish the session");
                }
                d.after(finished);
            }
            _ => unreachable!(),
        }
    }

    // The peer goes silent: the session must end within idle + close timeout.
    d.now += idle_timeout + close_timeout;
    d.timeout();
    d.now += close_timeout;
    d.timeout();
    assert!(
        d.session.is_finished(),
        "a silent peer kept the session open"
    );

    // What the server sent, read as a client with no limits would.
    let unlimited = Limits {
        max_frame_size: u64::MAX,
        max_message_size: u64::MAX,
    };
    let outcome = run(Role::Client, unlimited, &d.sent, || usize::MAX);
    assert_eq!(outcome.error, None, "the server sent an invalid stream");
    if let Some(at) = outcome
        .events
        .iter()
        .position(|e| matches!(e, Ev::Close(_)))
    {
        // R1 (regressions.md): a second close after our own close.
        assert_eq!(
            at + 1,
            outcome.events.len(),
            "the server sent frames after its close"
        );
    }
}
