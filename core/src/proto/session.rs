//! One WebSocket connection's protocol state after the upgrade: the decoder,
//! the close handshake, and liveness (server pings, idle and close timeouts).
//!
//! Sans-IO like the rest of `proto`: bytes come in through [`Session::handle_read`],
//! time comes in as a `now` argument, and every byte to send is appended to an
//! `out` buffer the caller owns. The caller owns the output buffer (not the
//! session) so that the runtime can encode into a per-core scratch buffer and
//! copy only what the socket did not take: an idle connection then holds no
//! output buffer at all.
//!
//! Guarantees:
//! - A peer's protocol error never escapes as an `Err`: it becomes a close frame
//!   with the error's close code and reason, and the session is finished.
//! - Control frames (pong, close) are appended to `out` unconditionally; the
//!   runtime's outbound limit closes the connection, it never drops them.
//! - [`Session::next_deadline`] is the single time at which
//!   [`Session::handle_timeout`] has something to do; calling it earlier is
//!   harmless.

use std::time::{Duration, Instant};

use super::close::{CloseCode, CloseFrame};
use super::decoder::{Decoder, Event, Limits, Role};
use super::frame::{encode_close_frame_into, encode_frame_into, OpCode};

/// Timing and size settings of a session; the runtime fills it from the server config.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// Frame and message size limits of incoming data.
    pub limits: Limits,
    /// Silence from the peer after which the server sends a ping. Default 30 s.
    pub ping_interval: Duration,
    /// Silence from the peer (or a partial frame left hanging) after which the
    /// connection is closed. Must exceed `ping_interval`. Default 60 s.
    pub idle_timeout: Duration,
    /// How long to wait for the peer's close frame after sending ours. Default 5 s.
    pub close_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// An application message delivered to the endpoint handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// We sent a close frame and wait for the peer's, until the deadline.
    CloseSent {
        deadline: Instant,
    },
    /// Nothing more to read: flush `out`, then close the TCP connection.
    Finished,
}

/// Why a session finished, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The close handshake completed (either side started it).
    Clean,
    /// The peer broke the protocol; we sent this close code.
    ProtocolError(CloseCode),
    /// No answer from the peer within the idle timeout.
    IdleTimeout,
    /// Our close frame got no answer within the close timeout.
    CloseTimeout,
}

pub struct Session {
    decoder: Decoder,
    state: State,
    ending: Option<Ending>,
    /// Last time any byte arrived from the peer.
    last_rx: Instant,
    /// When the decoder started holding a partial frame or message; `None` when idle.
    partial_since: Option<Instant>,
    ping_sent: bool,
    /// The connection agreed to keep zlib state between messages (context
    /// takeover either way) and holds one of its worker's places for that
    /// (the IO layer's count, given back when the session is dropped).
    keeps_deflate_context: bool,
    ping_interval: Duration,
    idle_timeout: Duration,
    close_timeout: Duration,
}

impl Session {
    pub fn new(config: &SessionConfig, now: Instant) -> Self {
        Self {
            decoder: Decoder::new(Role::Server, config.limits),
            state: State::Open,
            ending: None,
            last_rx: now,
            partial_since: None,
            ping_sent: false,
            keeps_deflate_context: false,
            ping_interval: config.ping_interval,
            idle_timeout: config.idle_timeout,
            close_timeout: config.close_timeout,
        }
    }

    /// permessage-deflate was negotiated with `params`: compressed messages
    /// (RSV1) are accepted and inflated from now on.
    pub fn enable_deflate(&mut self, params: &super::deflate::DeflateParams) {
        self.decoder
            .enable_deflate(!params.client_no_context_takeover);
    }

    /// Marks the session as keeping zlib state between messages (see the
    /// field); the IO layer reads it back when the session ends.
    pub fn set_keeps_deflate_context(&mut self) {
        self.keeps_deflate_context = true;
    }

    pub fn keeps_deflate_context(&self) -> bool {
        self.keeps_deflate_context
    }

    /// Heap bytes the decoder holds (see `Decoder::buffered_bytes`).
    pub fn holds_inflater(&self) -> bool {
        self.decoder.holds_inflater()
    }

    /// Feeds bytes read from the peer (unmasked in place). Application messages
    /// go to `on_message`, which may append frames to the `out` it is given;
    /// pongs and close replies are appended to `out` here.
    pub fn handle_read<H>(
        &mut self,
        buf: &mut [u8],
        now: Instant,
        out: &mut Vec<u8>,
        mut on_message: H,
    ) where
        H: FnMut(Message<'_>, &mut Vec<u8>),
    {
        if buf.is_empty() || self.state == State::Finished {
            return;
        }
        self.last_rx = now;
        self.ping_sent = false;
        let mut pos = 0;
        while pos < buf.len() && self.state != State::Finished {
            let decoded = match self.decoder.decode(&mut buf[pos..]) {
                Ok(decoded) => decoded,
                Err(err) => {
                    let code = err.close_code();
                    // The close frame is the last frame we send (RFC 6455
                    // §5.5.1): after our own close, an error only ends the session.
                    if self.state == State::Open {
                        encode_close_frame_into(out, code, &err.to_string());
                    }
                    self.finish(Ending::ProtocolError(code));
                    return;
                }
            };
            pos += decoded.consumed;
            let Some(event) = decoded.event else { continue };
            let open = self.state == State::Open;
            match event {
                Event::Text(text) if open => on_message(Message::Text(text), out),
                Event::Binary(data) if open => on_message(Message::Binary(data), out),
                // Data after our close frame is read and dropped (RFC 6455 §5.5.1).
                Event::Text(_) | Event::Binary(_) => {}
                Event::Ping(payload) if open => encode_frame_into(out, OpCode::Pong, true, payload),
                Event::Ping(_) | Event::Pong(_) => {}
                Event::Close(frame) => {
                    if open {
                        reply_close_into(out, frame);
                    }
                    self.finish(Ending::Clean);
                }
            }
        }
        // Free the buffer the last event borrowed, so a quiet connection holds none.
        self.decoder.reclaim();
        self.partial_since = match (self.decoder.is_idle(), self.partial_since) {
            (true, _) => None,
            (false, Some(since)) => Some(since),
            (false, None) => Some(now),
        };
    }

    /// Acts on the deadlines that have passed: sends a ping, or closes.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<u8>) {
        match self.state {
            State::Finished => {}
            State::CloseSent { deadline } => {
                if now >= deadline {
                    self.finish(Ending::CloseTimeout);
                }
            }
            State::Open => {
                let silent_too_long = now >= self.last_rx + self.idle_timeout;
                let partial_too_long = self
                    .partial_since
                    .is_some_and(|since| now >= since + self.idle_timeout);
                if silent_too_long || partial_too_long {
                    let reason = if silent_too_long {
                        "idle timeout"
                    } else {
                        "incomplete frame timeout"
                    };
                    encode_close_frame_into(out, CloseCode::GOING_AWAY, reason);
                    self.finish(Ending::IdleTimeout);
                } else if !self.ping_sent && now >= self.last_rx + self.ping_interval {
                    encode_frame_into(out, OpCode::Ping, true, b"");
                    self.ping_sent = true;
                }
            }
        }
    }

    /// The next instant at which [`Session::handle_timeout`] has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Finished => None,
            State::CloseSent { deadline } => Some(deadline),
            State::Open => {
                let idle = self.last_rx + self.idle_timeout;
                let partial = self.partial_since.map(|since| since + self.idle_timeout);
                let ping = (!self.ping_sent).then(|| self.last_rx + self.ping_interval);
                [Some(idle), partial, ping].into_iter().flatten().min()
            }
        }
    }

    /// Starts a server-side close (shutdown, slow consumer, policy). Does nothing
    /// if a close is already under way.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant, out: &mut Vec<u8>) {
        if self.state == State::Open {
            encode_close_frame_into(out, code, reason);
            self.state = State::CloseSent {
                deadline: now + self.close_timeout,
            };
        }
    }

    /// Closes at once: the close frame is queued, but the session does not wait
    /// for the peer's reply (for a peer we no longer trust to read, e.g. one over
    /// its outbound limit).
    pub fn abort(&mut self, code: CloseCode, reason: &str, out: &mut Vec<u8>) {
        if self.state == State::Open {
            encode_close_frame_into(out, code, reason);
        }
        self.finish(Ending::ProtocolError(code));
    }

    /// True when nothing more will be read: flush the output, then close TCP.
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// True while the session accepts application messages.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    pub fn ending(&self) -> Option<Ending> {
        self.ending
    }

    /// Bytes held for partial frames and messages.
    pub fn buffered_bytes(&self) -> usize {
        self.decoder.buffered_bytes()
    }

    fn finish(&mut self, ending: Ending) {
        self.state = State::Finished;
        self.ending.get_or_insert(ending);
    }
}

/// The close reply of RFC 6455 §5.5.1: echo the peer's code, or send an empty
/// close when it sent none.
fn reply_close_into(out: &mut Vec<u8>, frame: Option<CloseFrame<'_>>) {
    match frame {
        Some(frame) => encode_close_frame_into(out, frame.code, ""),
        None => encode_frame_into(out, OpCode::Close, true, b""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::encode_masked_frame_into;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn masked(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_masked_frame_into(&mut v, opcode, fin, MASK, payload);
        v
    }

    fn config() -> SessionConfig {
        SessionConfig {
            limits: Limits::default(),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(5),
        }
    }

    fn echo(session: &mut Session, bytes: &[u8], now: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        let mut input = bytes.to_vec();
        session.handle_read(&mut input, now, &mut out, |msg, out| match msg {
            Message::Text(t) => encode_frame_into(out, OpCode::Text, true, t.as_bytes()),
            Message::Binary(b) => encode_frame_into(out, OpCode::Binary, true, b),
        });
        out
    }

    #[test]
    fn echoes_text_and_answers_ping_in_order() {
        let t0 = Instant::now();
        let mut s = Session::new(&config(), t0);
        let mut input = masked(OpCode::Text, true, b"Hello");
        input.extend(masked(OpCode::Ping, true, b"p"));
        let out = echo(&mut s, &input, t0);
        assert_eq!(out, b"\x81\x05Hello\x8a\x01p");
        assert!(s.is_open());
    }

    #[test]
    fn client_close_is_echoed_and_finishes() {
        let t0 = Instant::now();
        let mut s = Session::new(&config(), t0);
        let out = echo(&mut s, &masked(OpCode::Close, true, b"\x03\xe8bye"), t0);
        assert_eq!(out, b"\x88\x02\x03\xe8");
        assert!(s.is_finished());
        assert_eq!(s.ending(), Some(Ending::Clean));
    }

    #[test]
    fn empty_close_gets_empty_close() {
        let t0 = Instant::now();
        let mut s = Session::new(&config(), t0);
        let out = echo(&mut s, &masked(OpCode::Close, true, b""), t0);
        assert_eq!(out, b"\x88\x00");
    }

    #[test]
    fn protocol_error_sends_its_close_code() {
        let t0 = Instant::now();
        let mut s = Session::new(&config(), t0);
        // Unmasked text frame from a client: 1002.
        let out = echo(&mut s, b"\x81\x02hi", t0);
        assert_eq!(out[0], 0x88);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 1002);
        assert_eq!(
            s.ending(),
            Some(Ending::ProtocolError(CloseCode::PROTOCOL_ERROR))
        );
    }

    #[test]
    fn invalid_utf8_closes_with_1007_and_drops_later_frames() {
        let t0 = Instant::now();
        let mut s = Session::new(&config(), t0);
        let mut input = masked(OpCode::Text, true, b"\xff");
        input.extend(masked(OpCode::Text, true, b"after"));
        let out = echo(&mut s, &input, t0);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 1007);
        assert!(!out.windows(5).any(|w| w == b"after"));
    }

    #[test]
    fn ping_then_idle_close_in_virtual_time() {
        let t0 = Instant::now();
        let mut s = Session::new(&config(), t0);
        assert_eq!(s.next_deadline(), Some(t0 + Duration::from_secs(30)));
        let mut out = Vec::new();
        s.handle_timeout(t0 + Duration::from_secs(29), &mut out);
        assert!(out.is_empty());
        s.handle_timeout(t0 + Duration::from_secs(30), &mut out);
        assert_eq!(out, b"\x89\x00");
        assert_eq!(s.next_deadline(), Some(t0 + Duration::from_secs(60)));
        out.clear();
        s.handle_timeout(t0 + Duration::from_secs(60), &mut out);
        assert_eq!(out[0], 0x88);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 1001);
        assert!(s.is_finished());
        assert_eq!(s.ending(), Some(Ending::IdleTimeout));
    }

    #[test]
    fn pong_resets_liveness() {
        let t0 = Instant::now();
        let mut s = Session::new(&config(), t0);
        let mut out = Vec::new();
        s.handle_timeout(t0 + Duration::from_secs(30), &mut out);
        let t1 = t0 + Duration::from_secs(45);
        assert!(echo(&mut s, &masked(OpCode::Pong, true, b""), t1).is_empty());
        assert_eq!(s.next_deadline(), Some(t1 + Duration::from_secs(30)));
        out.clear();
        s.handle_timeout(t0 + Duration::from_secs(61), &mut out);
        assert!(s.is_open(), "a pong at 45 s keeps the connection past 60 s");
    }

    #[test]
    fn half_frame_left_hanging_is_closed_even_if_bytes_dribble() {
        let t0 = Instant::now();
        let mut s = Session::new(&config(), t0);
        let frame = masked(OpCode::Binary, true, &[7u8; 100]);
        // One byte every 20 s keeps `last_rx` fresh, but the frame never completes.
        for (i, byte) in frame.iter().take(3).enumerate() {
            let now = t0 + Duration::from_secs(20 * i as u64);
            assert!(echo(&mut s, &[*byte], now).is_empty());
            let mut out = Vec::new();
            s.handle_timeout(now, &mut out);
            assert!(out.is_empty() && s.is_open());
        }
        // Silence-based idle would be at 40 + 60 s; the partial frame started at 0.
        let mut out = Vec::new();
        s.handle_timeout(t0 + Duration::from_secs(60), &mut out);
        assert!(s.is_finished());
        assert_eq!(out[0], 0x88);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 1001);
    }

    #[test]
    fn server_close_waits_for_reply_then_times_out() {
        let t0 = Instant::now();
        let mut s = Session::new(&config(), t0);
        let mut out = Vec::new();
        s.close(CloseCode::GOING_AWAY, "shutdown", t0, &mut out);
        assert_eq!(&out[..4], b"\x88\x0a\x03\xe9");
        assert_eq!(&out[4..], b"shutdown");
        // Data after our close is dropped, not echoed.
        assert!(echo(&mut s, &masked(OpCode::Text, true, b"late"), t0).is_empty());
        assert_eq!(s.next_deadline(), Some(t0 + Duration::from_secs(5)));
        out.clear();
        s.handle_timeout(t0 + Duration::from_secs(5), &mut out);
        assert!(s.is_finished());
        assert_eq!(s.ending(), Some(Ending::CloseTimeout));
        assert!(out.is_empty());
    }

    /// Found by the `session` fuzz target (core/fuzz/regressions.md, R1).
    #[test]
    fn a_protocol_error_after_our_close_sends_no_second_close() {
        let t0 = Instant::now();
        let mut s = Session::new(&config(), t0);
        let mut out = Vec::new();
        s.close(CloseCode::POLICY, "", t0, &mut out);
        assert_eq!(out, b"\x88\x02\x03\xf0");
        // An empty masked continuation frame with no message: a protocol error.
        assert!(echo(&mut s, b"\x00\x80\x00\x00\x00\x00", t0).is_empty());
        assert!(s.is_finished());
        assert_eq!(
            s.ending(),
            Some(Ending::ProtocolError(CloseCode::PROTOCOL_ERROR))
        );
    }

    #[test]
    fn server_close_then_peer_reply_is_clean_and_not_answered() {
        let t0 = Instant::now();
        let mut s = Session::new(&config(), t0);
        let mut out = Vec::new();
        s.close(CloseCode::GOING_AWAY, "", t0, &mut out);
        let reply = echo(&mut s, &masked(OpCode::Close, true, b"\x03\xe9"), t0);
        assert!(reply.is_empty());
        assert_eq!(s.ending(), Some(Ending::Clean));
    }
}
