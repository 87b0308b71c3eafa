//! One connection as a synchronous state machine: handshake, WebSocket
//! session, then an orderly TCP close. Its core's reactor (`reactor.rs`) owns
//! it and calls [`Conn::drive`] whenever the socket, a kick or a deadline has
//! something for it; all it sees of its core is a [`ConnContext`].
//!
//! Idle connections must be cheap, so a connection is not a task and holds no
//! buffer while it waits: its socket sits in the core's epoll set, reads land
//! in the core's scratch buffer, replies are encoded into the core's write
//! scratch and sent at once. Only what the socket does not take is copied
//! into the slot's outbox, bounded by `max_outbound_bytes`: past it the
//! connection is closed with 1008 and nothing else is read from it. Control
//! frames are never dropped: they queue behind earlier output.
//!
//! Sockets are edge-triggered: `readable` / `writable` remember an edge until
//! a call returns `EAGAIN`. A connection that stops reading before that (its
//! per-turn read budget) asks to be driven again next turn.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;

use super::api::{ApiConn, ApiState};
use super::context::ConnContext;
use super::deflate_context::ContextSlot;
use super::metrics::{CloseReason, Metrics};
use super::tls::Tls;
use super::ws::{unix_now, WsConn};
use crate::admission::IpGuard;
use crate::auth::Identity;
use crate::mailbox::{ConnId, Slot, KICK_ANSWER, KICK_DISCONNECT, KICK_OVERFLOW, KICK_SHUTDOWN};
use crate::proto::close::CloseCode;
use crate::proto::deflate::{negotiate, DeflateParams};
use crate::proto::frame::OpCode;
use crate::proto::handshake::{
    encode_accept_response_into, encode_error_response_into, encode_plain_response_into,
    parse_request, select_subprotocol, validate_upgrade, HandshakeError, Method, RequestHead,
};
use crate::proto::session::{Ending, Message, Session};
use crate::sys::{shutdown_write, try_recv, try_send, Transfer};

/// Reads per turn before the connection yields to the others of its core.
const READS_PER_TURN: usize = 4;

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
}

/// What the reactor should do with a connection after driving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drive {
    /// Wait for the next edge, kick or deadline.
    Idle,
    /// Stopped with input left (read budget): drive again next turn.
    More,
    /// Finished or failed: drop it (closes the socket).
    Done,
}

pub(crate) struct Conn {
    fd: OwnedFd,
    pub slot: Rc<Slot>,
    /// When [`Conn::drive`] must run even without IO: handshake, ping,
    /// idle, flush or linger deadline.
    pub deadline: Option<Instant>,
    /// The tick of the core's deadline-heap entry that stands for this
    /// connection (0: none).
    pub armed: u32,
    /// An input edge not yet drained to `EAGAIN`.
    pub readable: bool,
    /// The connection got past the upgrade (counted until it is dropped).
    pub upgraded: bool,
    /// Why it ends, once known (the first reason wins); none means the peer vanished.
    reason: Option<CloseReason>,
    /// TLS state for `wss://` listeners.
    tls: Option<Box<Tls>>,
    phase: Phase,
}

impl Conn {
    pub fn new(
        fd: OwnedFd,
        slot: Rc<Slot>,
        tls: Option<Box<Tls>>,
        peer: IpAddr,
        api_port: bool,
        ctx: &ConnContext,
        now: Instant,
    ) -> Self {
        Self {
            fd,
            slot,
            deadline: Some(now + ctx.limits.handshake_timeout),
            armed: 0,
            readable: false,
            upgraded: false,
            reason: None,
            tls,
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

    /// Runs the connection as far as it goes without blocking.
    pub fn drive(&mut self, ctx: &ConnContext, now: Instant) -> Drive {
        let kicks = self.slot.take_kicks();
        let due = self.deadline.is_some_and(|deadline| now >= deadline);
        let more = match self.step(ctx, now, kicks, due) {
            Some(more) => more,
            None => return Drive::Done,
        };
        if !self.flush(ctx) {
            return Drive::Done;
        }
        if !self.settle(ctx, now) {
            return Drive::Done;
        }
        if more {
            Drive::More
        } else {
            Drive::Idle
        }
    }

    /// Applies kicks, deadlines and input. `None`: drop the connection;
    /// `Some(true)`: input left over for next turn.
    fn step(&mut self, ctx: &ConnContext, now: Instant, kicks: u8, due: bool) -> Option<bool> {
        let mut link = Link {
            fd: self.fd.as_raw_fd(),
            tls: self.tls.as_deref_mut(),
        };
        let link = &mut link;
        match &mut self.phase {
            Phase::Handshake {
                head,
                started,
                peer,
                api_port,
            } => {
                // A drain does not cut a request short: it is answered (503
                // for an upgrade or `/readyz`) while the process drains.
                if due {
                    // Slowloris: no answer is owed to a request never finished.
                    self.reason.get_or_insert(CloseReason::HandshakeTimeout);
                    return None;
                }
                if !self.readable {
                    return Some(false);
                }
                let (started, peer, id) = (*started, *peer, self.slot.id());
                let api_port = *api_port;
                let read = handshake_read(ctx, link, head, peer, id, api_port, &mut self.readable)?;
                let close_timeout = ctx.limits.close_timeout;
                match read {
                    HeadRead::Partial => Some(false),
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
                        let mut open =
                            Box::new(Open::new(ctx, &self.slot, endpoint, admitted, now));
                        if !leftover.is_empty() {
                            open.read(ctx, &self.slot, link, &mut leftover, now)?;
                        }
                        self.phase = Phase::Open(open);
                        // The client may have sent more than one read's worth already.
                        self.step(ctx, now, 0, false)
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
                        Some(false)
                    }
                    HeadRead::Api { buf } => {
                        let seat = ctx.gate.api.as_ref().and_then(|gate| gate.seat());
                        self.reason.get_or_insert(CloseReason::Http);
                        let Some(seat) = seat else {
                            let body = br#"{"error":{"code":"too_many_connections","message":"the server API holds api.max_connections connections"}}"#;
                            let mut out = Vec::new();
                            let retry = [("Retry-After", "1")];
                            encode_plain_response_into(
                                &mut out,
                                503,
                                "application/json",
                                body,
                                &retry,
                            );
                            self.slot.outbox.borrow_mut().push(Bytes::from(out));
                            self.phase = Phase::Flushing;
                            self.deadline = Some(now + close_timeout);
                            return Some(false);
                        };
                        ctx.hub.join_api(self.slot.clone());
                        self.phase = Phase::Api(Box::new(ApiConn::new(buf, peer, seat, now)));
                        self.step(ctx, now, 0, false)
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
                        Some(false)
                    }
                }
            }
            Phase::Api(api) => {
                let slot = &self.slot;
                let mut state = ApiState::Open;
                if kicks & KICK_SHUTDOWN != 0 {
                    state = api.on_shutdown();
                }
                if kicks & KICK_ANSWER != 0 && state == ApiState::Open {
                    let parts = ctx.hub.take_answers(slot.id());
                    if !parts.is_empty() {
                        state = api.on_answers(ctx, slot, parts, now);
                    }
                }
                if due && state == ApiState::Open {
                    state = api.on_deadline(ctx, slot, now);
                }
                let mut ended = false;
                if state == ApiState::Open && self.readable && api.wants_input() {
                    let max = ApiConn::max_request(ctx);
                    for _ in 0..READS_PER_TURN {
                        // One byte past a whole request: enough to see it is too large.
                        let room = (max + 1).saturating_sub(api.buf.len());
                        if room == 0 {
                            break;
                        }
                        let mut scratch = ctx.scratch.read.borrow_mut();
                        let room = room.min(scratch.len());
                        match link.recv(ctx, &mut scratch[..room]) {
                            Ok(Transfer::Done(0)) | Err(_) => {
                                ended = true;
                                self.readable = false;
                                break;
                            }
                            Ok(Transfer::Done(n)) => {
                                Metrics::add(&ctx.metrics.bytes_received, n as u64);
                                api.buf.extend_from_slice(&scratch[..n]);
                            }
                            Ok(Transfer::WouldBlock) => {
                                self.readable = false;
                                break;
                            }
                        }
                    }
                }
                if state == ApiState::Open {
                    state = api.on_input(ctx, slot, now);
                }
                if ended && state == ApiState::Open {
                    // The peer sent all it will: answer what it asked, then close.
                    state = api.on_shutdown();
                }
                match state {
                    ApiState::Close => {
                        self.phase = Phase::Flushing;
                        self.deadline = Some(now + ctx.limits.close_timeout);
                        Some(false)
                    }
                    ApiState::Open => {
                        self.deadline = Some(api.deadline(ctx));
                        Some(self.readable && api.wants_input())
                    }
                }
            }
            Phase::Awaiting => {
                if due {
                    return None;
                }
                if !self.slot.outbox.borrow().is_empty() {
                    self.phase = Phase::Flushing;
                }
                Some(false)
            }
            Phase::Open(open) => {
                let slot = &self.slot;
                if kicks & KICK_OVERFLOW != 0 {
                    self.reason.get_or_insert(CloseReason::SlowConsumer);
                }
                if kicks & KICK_SHUTDOWN != 0 {
                    self.reason.get_or_insert(CloseReason::Drained);
                }
                if kicks != 0 || due {
                    emit(ctx, slot, link, |out| {
                        if kicks & KICK_OVERFLOW != 0 {
                            open.session.abort(CloseCode::POLICY, SLOW_CONSUMER, out);
                        }
                        if kicks & KICK_SHUTDOWN != 0 {
                            open.session
                                .close(CloseCode::GOING_AWAY, GOING_AWAY, now, out);
                        }
                        if kicks & KICK_DISCONNECT != 0 {
                            if let Some((code, reason)) = ctx.hub.take_disconnect(slot.id()) {
                                open.session.close(CloseCode(code), &reason, now, out);
                            }
                        }
                        if due {
                            open.session.handle_timeout(now, out);
                            if let App::Ws(ws) = &mut open.app {
                                ws.check_expiry();
                                if let Some((code, reason)) = ws.take_close() {
                                    open.session.close(code, reason, now, out);
                                }
                            }
                        }
                    })?;
                }
                let mut more = false;
                if self.readable && !open.session.is_finished() {
                    more = true;
                    for _ in 0..READS_PER_TURN {
                        let mut scratch = ctx.scratch.read.borrow_mut();
                        let n = match link.recv(ctx, &mut scratch) {
                            Ok(Transfer::Done(0)) | Err(_) => return None,
                            Ok(Transfer::Done(n)) => n,
                            Ok(Transfer::WouldBlock) => {
                                self.readable = false;
                                more = false;
                                break;
                            }
                        };
                        // A plain socket that filled less than the buffer is
                        // empty: the next byte to arrive raises a new edge, so
                        // the `recv` that would only say EAGAIN is skipped.
                        // (Under TLS a short plaintext read says nothing.)
                        let drained = link.tls.is_none() && n < scratch.len();
                        Metrics::add(&ctx.metrics.bytes_received, n as u64);
                        open.read(ctx, slot, link, &mut scratch[..n], now)?;
                        let full = slot.outbox.borrow().len() > ctx.limits.max_outbound_bytes;
                        if drained {
                            self.readable = false;
                        }
                        if drained || open.session.is_finished() || full {
                            more = false;
                            break;
                        }
                    }
                }
                Some(more)
            }
            Phase::Flushing => {
                if due {
                    self.reason.get_or_insert(CloseReason::CloseTimeout);
                    return None;
                }
                Some(false)
            }
            Phase::Lingering => {
                if due {
                    return None;
                }
                if self.readable {
                    for _ in 0..READS_PER_TURN {
                        let mut scratch = ctx.scratch.read.borrow_mut();
                        match link.recv(ctx, &mut scratch) {
                            Ok(Transfer::Done(0)) | Err(_) => return None,
                            Ok(Transfer::Done(_)) => {}
                            Ok(Transfer::WouldBlock) => {
                                self.readable = false;
                                return Some(false);
                            }
                        }
                    }
                    return Some(true);
                }
                Some(false)
            }
        }
    }

    /// Sends what the outbox holds (under TLS: first the ciphertext rustls
    /// still holds); `false` on a socket error.
    fn flush(&mut self, ctx: &ConnContext) -> bool {
        let fd = self.fd.as_raw_fd();
        if let Some(tls) = &mut self.tls {
            match tls.flush(fd) {
                Ok(true) => {}
                Ok(false) => return true,
                Err(_) => return false,
            }
        }
        let mut outbox = self.slot.outbox.borrow_mut();
        if outbox.is_empty() {
            return true;
        }
        let flushed = match &mut self.tls {
            None => outbox.flush(fd),
            Some(tls) => outbox.flush_with(|slices| {
                let n = tls.send_vectored(fd, slices)?;
                Ok(if n == 0 {
                    Transfer::WouldBlock
                } else {
                    Transfer::Done(n)
                })
            }),
        };
        match flushed {
            Ok(flushed) => {
                let m = &ctx.metrics;
                Metrics::add(&m.flush_calls, flushed.calls);
                Metrics::add(&m.flushed_frames, flushed.frames);
                Metrics::add(&m.bytes_sent, flushed.bytes);
                true
            }
            Err(_) => false,
        }
    }

    /// Enforces the outbound limit, moves between phases, arms the deadline.
    /// `false`: drop the connection.
    fn settle(&mut self, ctx: &ConnContext, now: Instant) -> bool {
        let queued = self.slot.outbox.borrow().len();
        let close_timeout = ctx.limits.close_timeout;
        match &mut self.phase {
            Phase::Handshake { .. } | Phase::Awaiting | Phase::Api(_) => {}
            Phase::Open(open) => {
                if queued > ctx.limits.max_outbound_bytes && open.session.is_open() {
                    self.reason.get_or_insert(CloseReason::SlowConsumer);
                    tracing::debug!(worker = ctx.worker, queued, "slow consumer");
                    let session = &mut open.session;
                    let mut link = Link {
                        fd: self.fd.as_raw_fd(),
                        tls: self.tls.as_deref_mut(),
                    };
                    if emit(ctx, &self.slot, &mut link, |out| {
                        session.abort(CloseCode::POLICY, SLOW_CONSUMER, out)
                    })
                    .is_none()
                    {
                        return false;
                    }
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
                    return self.settle(ctx, now);
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
            Phase::Flushing => {
                if queued == 0 {
                    if let Some(tls) = &mut self.tls {
                        tls.close_notify();
                        if !matches!(tls.flush(self.fd.as_raw_fd()), Ok(true)) {
                            // The socket is full: FIN after the alert, on the next writable edge.
                            return true;
                        }
                    }
                    shutdown_write(self.fd.as_raw_fd());
                    self.phase = Phase::Lingering;
                    self.deadline = Some(now + close_timeout);
                    // Whatever was already readable must be drained now: no new edge will come.
                    self.readable = true;
                }
            }
            Phase::Lingering => {}
        }
        true
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

    /// Feeds bytes read from the peer; `None` when the socket failed.
    fn read(
        &mut self,
        ctx: &ConnContext,
        slot: &Slot,
        link: &mut Link<'_>,
        bytes: &mut [u8],
        now: Instant,
    ) -> Option<()> {
        let Open { session, app, .. } = self;
        emit(ctx, slot, link, |out| {
            session.handle_read(bytes, now, out, |m, out| {
                app.on_message(ctx, slot, m, now, out)
            });
            // A close the handler decided on (rate limit persisting).
            if let App::Ws(ws) = app {
                if let Some((code, reason)) = ws.take_close() {
                    session.close(code, reason, now, out);
                }
            }
        })
    }
}

/// The outcome of one read of the handshake.
enum HeadRead {
    /// The head is not complete yet.
    Partial,
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

/// Reads what the socket has of the request head. `None`: drop the connection.
fn handshake_read(
    ctx: &ConnContext,
    link: &mut Link<'_>,
    head: &mut Vec<u8>,
    peer: IpAddr,
    id: ConnId,
    api_port: bool,
    readable: &mut bool,
) -> Option<HeadRead> {
    let limits = ctx.limits.handshake;
    loop {
        {
            let mut scratch = ctx.scratch.read.borrow_mut();
            // Read at most one byte past the limit: enough to know it is exceeded.
            let room = (limits.max_head_bytes + 1)
                .saturating_sub(head.len())
                .min(scratch.len());
            match link.recv(ctx, &mut scratch[..room]) {
                Ok(Transfer::Done(0)) | Err(_) => return None,
                Ok(Transfer::Done(n)) => {
                    Metrics::add(&ctx.metrics.bytes_received, n as u64);
                    head.extend_from_slice(&scratch[..n]);
                }
                Ok(Transfer::WouldBlock) => {
                    *readable = false;
                    return Some(HeadRead::Partial);
                }
            }
        }
        let read = match parse_request(head, &limits) {
            Ok(None) => continue,
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
        return Some(read);
    }
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

/// Runs `produce` with the core's write scratch, then sends what it produced.
/// When the outbox already holds bytes (or `produce` queued some there), the
/// new bytes go behind them to keep the order; otherwise they go straight to
/// the socket and only the unsent rest is copied to the outbox. `None` on a
/// socket error.
fn emit(
    ctx: &ConnContext,
    slot: &Slot,
    link: &mut Link<'_>,
    produce: impl FnOnce(&mut Vec<u8>),
) -> Option<()> {
    let mut scratch = ctx.scratch.write.borrow_mut();
    produce(&mut scratch);
    if scratch.is_empty() {
        return Some(());
    }
    let mut outbox = slot.outbox.borrow_mut();
    let sent = if outbox.is_empty() {
        link.send_some(&scratch)
    } else {
        Some(0)
    };
    Metrics::add(&ctx.metrics.bytes_sent, sent.unwrap_or(0) as u64);
    if let Some(sent) = sent {
        if sent < scratch.len() {
            outbox.push(Bytes::copy_from_slice(&scratch[sent..]));
        }
    }
    scratch.clear();
    // A 16 MiB echo must not leave a 16 MiB scratch behind on this core.
    let keep = ctx.limits.read_buffer_size;
    if scratch.capacity() > 4 * keep {
        scratch.shrink_to(keep);
    }
    sent.map(|_| ())
}

/// The socket as the WebSocket layer sees it: plain, or through TLS.
struct Link<'a> {
    fd: RawFd,
    tls: Option<&'a mut Tls>,
}

impl Link<'_> {
    /// Reads what the socket has (plaintext under TLS) into `buf`.
    fn recv(&mut self, ctx: &ConnContext, buf: &mut [u8]) -> std::io::Result<Transfer> {
        match &mut self.tls {
            None => try_recv(self.fd, buf),
            Some(tls) => tls.recv(self.fd, &mut ctx.scratch.tls.borrow_mut(), buf),
        }
    }

    /// Sends as much of `bytes` as the socket (or TLS buffer) takes now.
    /// `None` on a socket error.
    fn send_some(&mut self, bytes: &[u8]) -> Option<usize> {
        match &mut self.tls {
            None => send_some(self.fd, bytes),
            Some(tls) => tls.send(self.fd, bytes).ok(),
        }
    }
}

/// Sends as much of `bytes` as the socket takes now. `None` on a socket error.
fn send_some(fd: RawFd, bytes: &[u8]) -> Option<usize> {
    let mut sent = 0;
    while sent < bytes.len() {
        match try_send(fd, &bytes[sent..]) {
            Ok(Transfer::Done(n)) => sent += n,
            Ok(Transfer::WouldBlock) => break,
            Err(_) => return None,
        }
    }
    Some(sent)
}

#[cfg(test)]
mod size_tests {
    /// Every open connection's boxed state sits in mimalloc's 384-byte
    /// class; one byte more moves it to the next (448) for every idle
    /// connection.
    #[test]
    fn open_fits_its_size_class() {
        assert!(std::mem::size_of::<super::Open>() <= 384);
    }
}
