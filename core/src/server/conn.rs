//! One connection as a sans-IO state machine: handshake, WebSocket session,
//! then an orderly TCP close. It does no IO and reads no clock, like
//! `proto/`: a driver moves the bytes and tells it what happened, and all it
//! sees of its core is a [`ConnContext`]. Two drivers: the core's epoll
//! reactor (`socket.rs`, readiness) and, with `io_uring.socket_io =
//! "completion"`, the connection ring's (`ring_reactor.rs`), which answers
//! every offer with `handle_sent(0)` (a send in flight or not: that call
//! consumes nothing queued, it only moves the reply into the outbox) and
//! sends from the outbox with one SQE at a time.
//!
//! # The interface (the quinn-proto shape)
//!
//! Inputs, `handle_*`:
//! - [`Conn::handle_read`]: bytes the driver received (from the core's read
//!   scratch today, from a provided buffer later); unmasked in place, so the
//!   slice is `&mut`. [`Conn::poll_read`] says how many the connection wants
//!   now (0: leave them in the socket).
//! - [`Conn::handle_eof`]: the peer ended its stream, or a read failed (the
//!   two have always been treated alike); [`Conn::handle_error`]: the socket
//!   failed (a send error).
//! - [`Conn::handle_kicks`]: the flags its [`Slot`] collected (pub/sub
//!   output, overflow, shutdown, API answers, a disconnect);
//!   [`Conn::handle_timeout`]: the driver's timer fired (acts only once
//!   [`Conn::deadline`] has passed, so virtual time may be coarse).
//! - [`Conn::handle_sent`]: how many of the bytes last offered the socket
//!   took; [`Conn::handle_shutdown`]: the write side was shut down (FIN).
//!
//! Outputs, `poll_*`:
//! - [`Conn::poll_transmit`]: the bytes to send now, as iovecs (the outbox's
//!   frames, then the reply just produced), or that the write side should be
//!   shut down, or that the connection is finished and its socket can go.
//! - [`Conn::deadline`]: when the driver must call `handle_timeout`.
//!
//! # Memory and copies
//!
//! Idle connections must be cheap, so a connection is not a task and holds no
//! buffer while it waits. Replies are encoded into the core's write scratch
//! (`ctx.scratch.write`) and offered from there, behind whatever the outbox
//! already holds; [`Conn::handle_sent`] copies only what the socket did not
//! take into the slot's outbox. So the scratch holds one connection's pending
//! reply between a `handle_*` call and the `handle_sent` that follows it, and
//! a driver must settle one connection (`poll_transmit` until it stops, each
//! offer answered by `handle_sent`, even `handle_sent(0)`) before it feeds
//! another. A completion-based driver that cannot send at once answers
//! `handle_sent(0)`: the reply moves to the outbox and its send SQE points at
//! the outbox's frames, which stay put until `handle_sent` consumes them.
//!
//! What a completion driver (io_uring: multishot recv into a provided-buffer
//! ring, sends as SQEs) must still do that the readiness driver gets for
//! free: keep at most one send in flight and call `poll_transmit` only when
//! none is (an offer is not consumed until `handle_sent`); hold back bytes a
//! multishot recv delivers while `poll_read` is 0 (a pipelined API request
//! while an answer is awaited would otherwise be lost; in `Flushing` and a
//! finished session they may be dropped); shut down, cancel the recv and
//! close as SQEs, dropping the connection only after its last completion.
//!
//! The outbox is bounded by `max_outbound_bytes`: past it the connection is
//! closed with 1008 and nothing else is read from it. Control frames are never
//! dropped: they queue behind earlier output.
//!
//! TLS stays in the driver (`socket.rs`): the connection sees plaintext both
//! ways. rustls is sans-IO too, but its buffer limit, the close_notify before
//! FIN and the handshake records it must answer on reads are all about when
//! the socket can take bytes, which only the driver knows; keeping them
//! there left this state machine byte-for-byte the plain one.

use std::io::IoSlice;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;

use super::api::{ApiConn, ApiState};
use super::context::ConnContext;
use super::deflate_context::ContextSlot;
use super::metrics::{CloseReason, Metrics};
use super::ws::{unix_now, WsConn};
use crate::admission::IpGuard;
use crate::auth::Identity;
use crate::mailbox::{
    ConnId, Outbox, Slot, KICK_ANSWER, KICK_DISCONNECT, KICK_OVERFLOW, KICK_SHUTDOWN, MAX_IOVECS,
};
use crate::proto::close::CloseCode;
use crate::proto::deflate::{negotiate, DeflateParams};
use crate::proto::frame::OpCode;
use crate::proto::handshake::{
    encode_accept_response_into, encode_error_response_into, encode_plain_response_into,
    parse_request, select_subprotocol, validate_upgrade, HandshakeError, Method, RequestHead,
};
use crate::proto::session::{Ending, Message, Session};

const SLOW_CONSUMER: &str = "slow consumer: outbound queue over limits.max_outbound_bytes";
/// The close reason on shutdown: tells clients to come back (elsewhere if
/// need be) and resume from history.
const GOING_AWAY: &str = "server shutting down: reconnect and resume";

/// What an upgraded connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `GET /echo`: every message back, verbatim.
    Echo,
    /// `GET /ws`: wire protocol v1 (pub/sub).
    Ws,
}

/// An upgraded connection's application state.
enum App {
    Echo,
    Ws(WsConn),
}

impl App {
    fn on_message(
        &mut self,
        ctx: &ConnContext,
        slot: &Slot,
        message: Message<'_>,
        now: Instant,
        out: &mut Vec<u8>,
    ) {
        Metrics::add(&ctx.metrics.messages_received, 1);
        let deflate = ctx.hub.deflate();
        match (self, message) {
            (App::Echo, Message::Text(text)) => {
                deflate.encode_into(slot, out, OpCode::Text, text.as_bytes())
            }
            (App::Echo, Message::Binary(data)) => {
                deflate.encode_into(slot, out, OpCode::Binary, data)
            }
            (App::Ws(ws), message) => ws.handle(ctx, slot, message, now),
        }
    }
}

/// The upgraded part of a connection; boxed so the common slab entry stays small.
struct Open {
    session: Session,
    app: App,
    /// This connection's place in the per-IP and total caps; released on drop.
    _admitted: IpGuard,
}

impl Drop for Open {
    fn drop(&mut self) {
        // Its place among the worker's context-keeping connections (no
        // field of its own: `Open` has no byte to spare, see
        // `deflate_context.rs`).
        if self.session.keeps_deflate_context() {
            super::deflate_context::release();
        }
    }
}

enum Phase {
    /// Reading the request head; `head` holds what arrived so far.
    Handshake {
        head: Vec<u8>,
        started: Instant,
        /// The TCP peer's address. Admission (per-IP caps and pacing) counts
        /// the client behind it when it is a trusted proxy (`route`).
        peer: IpAddr,
        /// Accepted on the server API's own listener: every request is an
        /// API request.
        api_port: bool,
    },
    /// A server API connection: keep-alive requests (`api.rs`).
    Api(Box<ApiConn>),
    /// A plain HTTP request whose response other cores help build
    /// (`/metrics`): waits for it to land in the outbox, until `deadline`.
    Awaiting,
    Open(Box<Open>),
    /// Nothing more to read: the outbox drains (a refusal, or the last
    /// frames), then FIN, until `deadline`.
    Flushing,
    /// FIN sent: read and discard until the peer closes too, so that our last
    /// bytes are not lost to a TCP reset, until `deadline`.
    Lingering,
    /// Finished or failed: the driver drops the connection (closing the socket).
    Closed,
}

/// What a connection wants of its socket's write side, from
/// [`Conn::poll_transmit`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Transmit<R> {
    /// Bytes were offered to the sender, which answered `R`; the driver
    /// reports what the socket took with [`Conn::handle_sent`].
    Send(R),
    /// Nothing is left to send and nothing more will be: shut the write side
    /// down (FIN; under TLS a close_notify first), then call
    /// [`Conn::handle_shutdown`].
    Shutdown,
    /// Nothing to send now.
    Idle,
    /// The connection is finished: drop it, closing its socket.
    Close,
}

pub(crate) struct Conn {
    pub slot: Rc<Slot>,
    /// When [`Conn::handle_timeout`] must run even without IO: handshake,
    /// ping, idle, flush or linger deadline.
    pub deadline: Option<Instant>,
    /// The tick of the core's deadline-heap entry that stands for this
    /// connection (0: none); the driver's, kept here where it packs free.
    pub armed: u32,
    /// The connection got past the upgrade (counted until it is dropped).
    pub upgraded: bool,
    /// Why it ends, once known (the first reason wins); none means the peer vanished.
    reason: Option<CloseReason>,
    phase: Phase,
}

impl Conn {
    pub fn new(
        slot: Rc<Slot>,
        peer: IpAddr,
        api_port: bool,
        ctx: &ConnContext,
        now: Instant,
    ) -> Self {
        Self {
            slot,
            deadline: Some(now + ctx.limits.handshake_timeout),
            armed: 0,
            upgraded: false,
            reason: None,
            phase: Phase::Handshake {
                head: Vec::new(),
                started: now,
                peer,
                api_port,
            },
        }
    }

    /// Why the connection ended, for `ringcast_connections_closed_total`.
    pub fn close_reason(&self) -> CloseReason {
        self.reason.unwrap_or(CloseReason::Reset)
    }

    /// The connection is finished: the driver drops it.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// How many bytes the connection takes now; 0: leave them in the socket
    /// (it waits for its output to drain, or for an answer). A driver that
    /// cannot choose (a multishot receive) may hand more: the handshake and
    /// the API buffer what they are given and refuse it past their limit.
    pub fn poll_read(&self, ctx: &ConnContext) -> usize {
        match &self.phase {
            // One byte past the limit: enough to know it is exceeded.
            Phase::Handshake { head, .. } => {
                (ctx.limits.handshake.max_head_bytes + 1).saturating_sub(head.len())
            }
            // One byte past a whole request: enough to see it is too large.
            Phase::Api(api) if api.wants_input() => {
                (ApiConn::max_request(ctx) + 1).saturating_sub(api.buf.len())
            }
            Phase::Open(open) if !open.session.is_finished() => usize::MAX,
            Phase::Lingering => usize::MAX,
            _ => 0,
        }
    }

    /// Bytes received from the peer; unmasked in place.
    pub fn handle_read(&mut self, ctx: &ConnContext, bytes: &mut [u8], now: Instant) {
        let received = &ctx.metrics.bytes_received;
        match &mut self.phase {
            Phase::Handshake { head, .. } => {
                Metrics::add(received, bytes.len() as u64);
                head.extend_from_slice(bytes);
                self.handle_head(ctx, now);
            }
            Phase::Api(api) => {
                Metrics::add(received, bytes.len() as u64);
                api.buf.extend_from_slice(bytes);
                let state = api.on_input(ctx, &self.slot, now);
                self.api_state(ctx, state, now);
            }
            Phase::Open(open) if !open.session.is_finished() => {
                Metrics::add(received, bytes.len() as u64);
                open.read(ctx, &self.slot, bytes, now);
            }
            // Lingering: discarded. Elsewhere nothing was asked for.
            _ => {}
        }
    }

    /// The peer ended its stream, or a read failed.
    pub fn handle_eof(&mut self, ctx: &ConnContext, now: Instant) {
        match &mut self.phase {
            Phase::Api(api) => {
                // The peer sent all it will: answer what it asked, then close.
                let state = api.on_shutdown();
                self.api_state(ctx, state, now);
            }
            // Not reading: what is queued still goes out, until the deadline.
            Phase::Awaiting | Phase::Flushing => {}
            _ => self.close(ctx),
        }
    }

    /// The socket failed (a send error): the connection ends at once.
    pub fn handle_error(&mut self, ctx: &ConnContext) {
        self.close(ctx);
    }

    /// Applies the kick flags the slot collected (`Slot::take_kicks`).
    pub fn handle_kicks(&mut self, ctx: &ConnContext, kicks: u8, now: Instant) {
        if kicks == 0 {
            return;
        }
        match &mut self.phase {
            Phase::Api(api) => {
                let mut state = ApiState::Open;
                if kicks & KICK_SHUTDOWN != 0 {
                    state = api.on_shutdown();
                }
                if kicks & KICK_ANSWER != 0 && state == ApiState::Open {
                    let parts = ctx.hub.take_answers(self.slot.id());
                    if !parts.is_empty() {
                        state = api.on_answers(ctx, &self.slot, parts, now);
                    }
                }
                self.api_state(ctx, state, now);
            }
            Phase::Open(open) => {
                if kicks & KICK_OVERFLOW != 0 {
                    self.reason.get_or_insert(CloseReason::SlowConsumer);
                }
                if kicks & KICK_SHUTDOWN != 0 {
                    self.reason.get_or_insert(CloseReason::Drained);
                }
                let out = &mut *ctx.scratch.write.borrow_mut();
                let session = &mut open.session;
                if kicks & KICK_OVERFLOW != 0 {
                    session.abort(CloseCode::POLICY, SLOW_CONSUMER, out);
                }
                if kicks & KICK_SHUTDOWN != 0 {
                    session.close(CloseCode::GOING_AWAY, GOING_AWAY, now, out);
                }
                if kicks & KICK_DISCONNECT != 0 {
                    if let Some((code, reason)) = ctx.hub.take_disconnect(self.slot.id()) {
                        session.close(CloseCode(code), &reason, now, out);
                    }
                }
            }
            // A drain does not cut a request short: it is answered (503 for an
            // upgrade or `/readyz`) while the process drains. The scrape's
            // answer (`Awaiting`) is seen when the output is polled.
            _ => {}
        }
    }

    /// The driver's timer fired: acts when [`Conn::deadline`] has passed.
    pub fn handle_timeout(&mut self, ctx: &ConnContext, now: Instant) {
        if self.deadline.is_none_or(|deadline| now < deadline) {
            return;
        }
        match &mut self.phase {
            Phase::Handshake { .. } => {
                // Slowloris: no answer is owed to a request never finished.
                self.reason.get_or_insert(CloseReason::HandshakeTimeout);
                self.close(ctx);
            }
            Phase::Api(api) => {
                let state = api.on_deadline(ctx, &self.slot, now);
                self.api_state(ctx, state, now);
            }
            Phase::Open(open) => {
                let out = &mut *ctx.scratch.write.borrow_mut();
                open.session.handle_timeout(now, out);
                if let App::Ws(ws) = &mut open.app {
                    ws.check_expiry();
                    if let Some((code, reason)) = ws.take_close() {
                        open.session.close(code, reason, now, out);
                    }
                }
            }
            Phase::Flushing => {
                self.reason.get_or_insert(CloseReason::CloseTimeout);
                self.close(ctx);
            }
            Phase::Awaiting | Phase::Lingering => self.close(ctx),
            Phase::Closed => {}
        }
    }

    /// Offers what should go out now to `send`: the outbox's frames, then
    /// the reply produced since the last [`Conn::handle_sent`], as at most
    /// [`MAX_IOVECS`] slices. With nothing to send, says whether to shut the
    /// write side down or drop the connection. Enforces the outbound limit,
    /// moves between phases and re-arms [`Conn::deadline`] first.
    pub fn poll_transmit<R>(
        &mut self,
        ctx: &ConnContext,
        now: Instant,
        send: impl FnOnce(&[IoSlice<'_>]) -> R,
    ) -> Transmit<R> {
        self.settle(ctx, now);
        if self.is_closed() {
            return Transmit::Close;
        }
        let outbox = self.slot.outbox.borrow();
        let pending = ctx.scratch.write.borrow();
        if outbox.is_empty() {
            // The common case, a reply and nothing queued (or nothing at
            // all), without filling the 1 KiB array below: that profiled
            // as the readiness path's top symbol of its own
            // (`Socket::transmit`, 1.7 % of the server's CPU in a 1 KiB echo).
            if !pending.is_empty() {
                return Transmit::Send(send(&[IoSlice::new(&pending)]));
            }
        } else {
            // On the stack: an offer allocates nothing.
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = outbox.slices_into(&mut slices);
            if !pending.is_empty() && count == outbox.frames() && count < MAX_IOVECS {
                slices[count] = IoSlice::new(&pending);
                count += 1;
            }
            if count > 0 {
                return Transmit::Send(send(&slices[..count]));
            }
        }
        match self.phase {
            Phase::Flushing => Transmit::Shutdown,
            _ => Transmit::Idle,
        }
    }

    /// The socket took the first `sent` bytes of the last offer (0 when it
    /// took none). What it did not take of the pending reply is copied to the
    /// outbox, behind what was queued, and the core's scratch is free again.
    pub fn handle_sent(&mut self, ctx: &ConnContext, sent: usize, now: Instant) {
        {
            let m = &ctx.metrics;
            let mut outbox = self.slot.outbox.borrow_mut();
            let mut pending = ctx.scratch.write.borrow_mut();
            Metrics::add(&m.bytes_sent, sent as u64);
            let queued = outbox.len();
            let from_outbox = sent.min(queued);
            if from_outbox > 0 {
                Metrics::add(&m.flush_calls, 1);
                Metrics::add(&m.flushed_frames, outbox.consume(from_outbox));
            }
            // The reply was offered only behind every queued frame: what was
            // sent past them is its head.
            commit_pending(ctx, &mut outbox, &mut pending, sent - from_outbox);
        }
        self.settle(ctx, now);
    }

    /// The driver shut the write side down: linger until the peer closes.
    pub fn handle_shutdown(&mut self, ctx: &ConnContext, now: Instant) {
        if matches!(self.phase, Phase::Flushing) {
            self.phase = Phase::Lingering;
            self.deadline = Some(now + ctx.limits.close_timeout);
        }
    }

    /// Ends the connection; a reply not sent yet dies with it.
    fn close(&mut self, ctx: &ConnContext) {
        self.phase = Phase::Closed;
        self.deadline = None;
        ctx.scratch.write.borrow_mut().clear();
    }

    /// Where an API connection goes after an input.
    fn api_state(&mut self, ctx: &ConnContext, state: ApiState, now: Instant) {
        match state {
            ApiState::Close => {
                self.phase = Phase::Flushing;
                self.deadline = Some(now + ctx.limits.close_timeout);
            }
            ApiState::Open => {
                if let Phase::Api(api) = &self.phase {
                    self.deadline = Some(api.deadline(ctx));
                }
            }
        }
    }

    /// A piece of the request head arrived: once it is whole, routes it.
    fn handle_head(&mut self, ctx: &ConnContext, now: Instant) {
        let Phase::Handshake {
            head,
            started,
            peer,
            api_port,
        } = &mut self.phase
        else {
            return;
        };
        let (started, peer, id) = (*started, *peer, self.slot.id());
        let Some(read) = parse_head(ctx, head, peer, id, *api_port) else {
            return;
        };
        let close_timeout = ctx.limits.close_timeout;
        match read {
            HeadRead::Upgrade {
                endpoint,
                mut leftover,
                response,
                admitted,
            } => {
                self.slot.outbox.borrow_mut().push(Bytes::from(response));
                ctx.metrics
                    .handshake
                    .record(now.saturating_duration_since(started));
                self.upgraded = true;
                Metrics::add(&ctx.metrics.upgraded_current, 1);
                let mut open = Box::new(Open::new(ctx, &self.slot, endpoint, admitted, now));
                if !leftover.is_empty() {
                    open.read(ctx, &self.slot, &mut leftover, now);
                }
                self.phase = Phase::Open(open);
            }
            HeadRead::Respond {
                response,
                status,
                path,
            } => {
                self.slot.outbox.borrow_mut().push(Bytes::from(response));
                let reason = if status >= 400 {
                    ctx.metrics.refused(status);
                    let path = path.as_deref();
                    ctx.summary.borrow_mut().refused(status, peer, path, now);
                    // The query is never logged: it may carry a token.
                    let (worker, conn) = (ctx.worker, id.raw());
                    let path = path.unwrap_or("");
                    tracing::debug!(worker, conn, %peer, status, path, "refused");
                    CloseReason::Refused
                } else {
                    CloseReason::Http
                };
                self.reason.get_or_insert(reason);
                self.phase = Phase::Flushing;
                self.deadline = Some(now + close_timeout);
            }
            HeadRead::Api { buf } => {
                let seat = ctx.gate.api.as_ref().and_then(|gate| gate.seat());
                self.reason.get_or_insert(CloseReason::Http);
                let Some(seat) = seat else {
                    let body = br#"{"error":{"code":"too_many_connections","message":"the server API holds api.max_connections connections"}}"#;
                    let mut out = Vec::new();
                    let retry = [("Retry-After", "1")];
                    encode_plain_response_into(&mut out, 503, "application/json", body, &retry);
                    self.slot.outbox.borrow_mut().push(Bytes::from(out));
                    self.phase = Phase::Flushing;
                    self.deadline = Some(now + close_timeout);
                    return;
                };
                ctx.hub.join_api(self.slot.clone());
                let mut api = Box::new(ApiConn::new(buf, peer, seat, now));
                let state = api.on_input(ctx, &self.slot, now);
                self.phase = Phase::Api(api);
                self.api_state(ctx, state, now);
            }
            HeadRead::Metrics => {
                ctx.scraper.start(self.slot.clone());
                self.reason.get_or_insert(CloseReason::Http);
                // With one worker the scrape completes right here.
                self.phase = match self.slot.outbox.borrow().is_empty() {
                    true => Phase::Awaiting,
                    false => Phase::Flushing,
                };
                self.deadline = Some(now + close_timeout);
            }
        }
    }

    /// Enforces the outbound limit, moves between phases, arms the deadline.
    /// Changes nothing when called again with nothing new.
    fn settle(&mut self, ctx: &ConnContext, now: Instant) {
        let close_timeout = ctx.limits.close_timeout;
        match &mut self.phase {
            // The scrape's answer landed.
            Phase::Awaiting if !self.slot.outbox.borrow().is_empty() => {
                self.phase = Phase::Flushing;
            }
            Phase::Open(open) => {
                let queued = self.slot.outbox.borrow().len();
                if queued > ctx.limits.max_outbound_bytes && open.session.is_open() {
                    self.reason.get_or_insert(CloseReason::SlowConsumer);
                    tracing::debug!(worker = ctx.worker, queued, "slow consumer");
                    let mut pending = ctx.scratch.write.borrow_mut();
                    open.session
                        .abort(CloseCode::POLICY, SLOW_CONSUMER, &mut pending);
                    // Behind everything queued: the peer is not reading it anyway.
                    let mut outbox = self.slot.outbox.borrow_mut();
                    commit_pending(ctx, &mut outbox, &mut pending, 0);
                }
                if open.session.is_finished() {
                    let reason = match open.session.ending() {
                        Some(Ending::ProtocolError(code)) => {
                            if self.reason.is_none() {
                                ctx.metrics.protocol_error(code.0);
                            }
                            CloseReason::ProtocolError
                        }
                        Some(Ending::IdleTimeout) => CloseReason::IdleTimeout,
                        Some(Ending::CloseTimeout) => CloseReason::CloseTimeout,
                        Some(Ending::Clean) | None => CloseReason::Normal,
                    };
                    self.reason.get_or_insert(reason);
                    self.phase = Phase::Flushing;
                    self.deadline = Some(now + close_timeout);
                    return;
                }
                let expiry = match &open.app {
                    App::Ws(ws) => ws.expires_at(now),
                    App::Echo => None,
                };
                self.deadline = [open.session.next_deadline(), expiry]
                    .into_iter()
                    .flatten()
                    .min();
            }
            _ => {}
        }
    }
}

/// Moves what the socket did not take of the pending reply (all of it past
/// its first `sent` bytes) into the outbox, and empties the core's write
/// scratch for the next connection.
fn commit_pending(ctx: &ConnContext, outbox: &mut Outbox, pending: &mut Vec<u8>, sent: usize) {
    if pending.is_empty() {
        return;
    }
    if sent < pending.len() {
        outbox.push(Bytes::copy_from_slice(&pending[sent..]));
    }
    pending.clear();
    // A 16 MiB echo must not leave a 16 MiB scratch behind on this core.
    let keep = ctx.limits.read_buffer_size;
    if pending.capacity() > 4 * keep {
        pending.shrink_to(keep);
    }
}

impl Open {
    fn new(
        ctx: &ConnContext,
        slot: &Rc<Slot>,
        endpoint: Endpoint,
        admitted: Admitted,
        now: Instant,
    ) -> Self {
        let app = match endpoint {
            Endpoint::Echo => App::Echo,
            Endpoint::Ws => {
                let mut identity = admitted.identity;
                let info = identity.take_info();
                ctx.hub.join_with_info(slot.clone(), &identity.user, info);
                App::Ws(WsConn::new(identity))
            }
        };
        let mut session = Session::new(&ctx.limits.session, now);
        if let Some(params) = admitted.deflate {
            session.enable_deflate(&params);
            slot.deflate.set_params(params);
        }
        if let Some(context) = admitted.context {
            context.into_session(&mut session);
        }
        Self {
            session,
            app,
            _admitted: admitted.guard,
        }
    }

    /// Feeds bytes read from the peer; replies go to the core's write
    /// scratch (the pending reply [`Conn::poll_transmit`] offers).
    fn read(&mut self, ctx: &ConnContext, slot: &Slot, bytes: &mut [u8], now: Instant) {
        let Open { session, app, .. } = self;
        let out = &mut *ctx.scratch.write.borrow_mut();
        session.handle_read(bytes, now, out, |m, out| {
            app.on_message(ctx, slot, m, now, out)
        });
        // A close the handler decided on (rate limit persisting).
        if let App::Ws(ws) = app {
            if let Some((code, reason)) = ws.take_close() {
                session.close(code, reason, now, out);
            }
        }
    }
}

/// A complete request head, and what it leads to.
enum HeadRead {
    /// 101 sent back; bytes after the head belong to the WebSocket session.
    /// `admitted` holds the connection's admission slot and identity.
    Upgrade {
        endpoint: Endpoint,
        leftover: Vec<u8>,
        response: Vec<u8>,
        admitted: Admitted,
    },
    /// A plain response (refusal, health), then close; `path` is the
    /// request's (no query), when it could be parsed.
    Respond {
        response: Vec<u8>,
        status: u16,
        path: Option<String>,
    },
    /// `GET /metrics`: the response comes from every core.
    Metrics,
    /// A server API request: `buf` holds it (and whatever followed), unparsed.
    Api { buf: Vec<u8> },
}

/// Parses what arrived of the request head; `None` while it is incomplete.
/// Once it is whole `head` is left empty (its allocation freed).
fn parse_head(
    ctx: &ConnContext,
    head: &mut Vec<u8>,
    peer: IpAddr,
    id: ConnId,
    api_port: bool,
) -> Option<HeadRead> {
    let read = match parse_request(head, &ctx.limits.handshake) {
        Ok(None) => return None,
        Ok(Some((len, request))) => match route(ctx, &request, peer, id, api_port) {
            Route::Upgrade(endpoint, response, admitted) => HeadRead::Upgrade {
                endpoint,
                leftover: head.split_off(len),
                response,
                admitted,
            },
            Route::Respond(response, status) => HeadRead::Respond {
                response,
                status,
                path: Some(request.path),
            },
            Route::Metrics => HeadRead::Metrics,
            Route::Api => {
                return Some(HeadRead::Api {
                    buf: std::mem::take(head),
                })
            }
        },
        Err(err) => HeadRead::Respond {
            response: error_response(&err),
            status: err.status(),
            path: None,
        },
    };
    *head = Vec::new();
    Some(read)
}

fn error_response(err: &HandshakeError) -> Vec<u8> {
    let mut out = Vec::new();
    encode_error_response_into(&mut out, err);
    out
}

/// What a connection got at the gate: its admission slot and its identity.
struct Admitted {
    guard: IpGuard,
    identity: Identity,
    /// permessage-deflate as accepted in the 101, if it was.
    deflate: Option<DeflateParams>,
    /// Its place among the worker's connections that keep zlib state,
    /// when the agreement keeps context.
    context: Option<ContextSlot>,
}

/// Where a request goes.
enum Route {
    /// The 101 response, and what the connection speaks from now on.
    Upgrade(Endpoint, Vec<u8>, Admitted),
    /// A complete plain response, and its status when it refuses the
    /// request (0 for an answer that is no refusal).
    Respond(Vec<u8>, u16),
    /// `GET /metrics`, answered once every core reported.
    Metrics,
    /// The server API (`api.rs`) takes the connection.
    Api,
}

fn plain(status: u16, body: &[u8], extra: &[(&str, &str)]) -> Route {
    let mut out = Vec::new();
    encode_plain_response_into(&mut out, status, "text/plain", body, extra);
    Route::Respond(out, status)
}

/// A probe's answer is not a refusal, whatever its status (a draining
/// `/readyz` says 503 on purpose): it is counted as plain HTTP.
fn probe(route: Route) -> Route {
    match route {
        Route::Respond(out, _) => Route::Respond(out, 0),
        other => other,
    }
}

fn refuse(err: &HandshakeError) -> Route {
    Route::Respond(error_response(err), err.status())
}

/// The demo chat (`GET /` and its files) when `server.demo_page` serves it
/// (by default: while auth is off); any other path, or the demo turned off,
/// is 404.
fn demo_page(ctx: &ConnContext, path: &str, get: bool) -> Route {
    match super::demo::asset(path) {
        Some(_) if !ctx.gate.demo_page => refuse(&HandshakeError::NotFound),
        Some(_) if !get => refuse(&HandshakeError::MethodNotAllowed),
        Some(asset) => {
            let mut out = Vec::new();
            let headers = super::demo::HEADERS;
            encode_plain_response_into(&mut out, 200, asset.content_type, asset.body, &headers);
            Route::Respond(out, 0)
        }
        None => refuse(&HandshakeError::NotFound),
    }
}

/// Maps a request to its response, and to an endpoint when it upgrades.
/// `peer` is the TCP peer; `id` names the connection in logs.
fn route(
    ctx: &ConnContext,
    request: &RequestHead,
    peer: IpAddr,
    id: ConnId,
    api_port: bool,
) -> Route {
    let get = matches!(request.method, Method::Get | Method::Head);
    let api_here = ctx.gate.api.as_ref().is_some_and(|api| !api.own_port);
    if api_port || (api_here && request.path.starts_with("/api/")) {
        return Route::Api;
    }
    let endpoint = match request.path.as_str() {
        "/healthz" | "/readyz" | "/metrics" if !get => {
            return refuse(&HandshakeError::MethodNotAllowed)
        }
        "/healthz" => return probe(plain(200, b"ok\n", &[])),
        "/readyz" if ctx.draining.get() => {
            return probe(plain(503, b"draining\n", &[("Retry-After", "1")]))
        }
        "/readyz" => {
            // The Redis engine without its command connection: publishes
            // answer `unavailable`, so say so (503, with the reason).
            if let Some(reason) = ctx.hub.cluster().and_then(|c| c.degraded()) {
                let body = format!("degraded: redis unavailable: {reason}\n");
                return probe(plain(503, body.as_bytes(), &[("Retry-After", "1")]));
            }
            return probe(plain(200, b"ready\n", &[]));
        }
        "/metrics" => return Route::Metrics,
        "/echo" => Endpoint::Echo,
        "/ws" => Endpoint::Ws,
        path => return demo_page(ctx, path, get),
    };
    let gate = &ctx.gate;
    // The address the per-IP limits count: the client behind a trusted
    // proxy, else the peer. Logged here, before any refusal, so that the
    // refusal's `closed` line can be tied to the real client.
    let client = gate
        .admission
        .client_ip(peer, request.x_forwarded_for.as_deref());
    if client != peer {
        tracing::debug!(worker = ctx.worker, conn = id.raw(), %peer, %client, "forwarded");
    }
    let held = ctx.metrics.connections_current.get() as usize;
    let full = held > ctx.limits.max_connections_per_worker;
    if ctx.draining.get() || full {
        let body = b"server at capacity or shutting down\n";
        return plain(503, body, &[("Retry-After", "1")]);
    }
    let accept = match validate_upgrade(request) {
        Ok(accept) => accept,
        Err(err) => return refuse(&err),
    };
    if !gate.origins.allows(request.origin.as_deref()) {
        return refuse(&HandshakeError::OriginNotAllowed);
    }
    // Authenticate before taking an admission slot: a bad token costs no slot.
    let identity = match endpoint {
        Endpoint::Echo => Identity::anonymous(),
        Endpoint::Ws => {
            let query = request.query.as_deref();
            match gate
                .auth
                .authenticate(query, request.authorization.as_deref(), unix_now())
            {
                Ok(identity) => identity,
                Err(e) => return refuse(&HandshakeError::Unauthorized(e.reason())),
            }
        }
    };
    let guard = match gate.admission.try_admit(client, Instant::now()) {
        Ok(guard) => guard,
        Err(refusal) => {
            let reason = refusal.reason.as_str();
            tracing::debug!(worker = ctx.worker, conn = id.raw(), %client, reason, "admission refused");
            let retry = refusal.retry_after.to_string();
            let body = format!("{}\n", refusal.body());
            return plain(503, body.as_bytes(), &[("Retry-After", &retry)]);
        }
    };
    let mut out = Vec::new();
    let protocol = select_subprotocol(&request.protocols, &ctx.limits.subprotocols);
    let mut deflate = ctx
        .limits
        .deflate
        .as_ref()
        .and_then(|policy| negotiate(&request.extensions, policy));
    let mut context = None;
    if let Some(params) = deflate.filter(DeflateParams::keeps_context) {
        context = ContextSlot::try_take(ctx.limits.deflate_context_cap);
        if context.is_none() {
            // The worker's cap on connections keeping zlib state is
            // reached: this one compresses each message on its own.
            deflate = Some(params.without_context());
            Metrics::add(&ctx.metrics.deflate_context_downgrades, 1);
        }
    }
    match deflate {
        Some(params) => {
            let answer = params.response_header();
            let extra = [("Sec-WebSocket-Extensions", answer.as_str())];
            encode_accept_response_into(&mut out, &accept, protocol, &extra);
        }
        None => encode_accept_response_into(&mut out, &accept, protocol, &[]),
    }
    let admitted = Admitted {
        guard,
        identity,
        deflate,
        context,
    };
    Route::Upgrade(endpoint, out, admitted)
}

#[cfg(test)]
mod tests;
