//! One connection as a synchronous state machine: handshake, WebSocket
//! session, then an orderly TCP close. Its core's reactor (`reactor.rs`) owns
//! it and calls [`Conn::drive`] whenever the socket, a kick or a deadline has
//! something for it.
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

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;

use super::slot::{Slot, KICK_OVERFLOW, KICK_SHUTDOWN};
use super::sys::{shutdown_write, try_recv, try_send, Transfer};
use super::worker::Worker;
use super::ws::WsConn;
use crate::proto::close::CloseCode;
use crate::proto::frame::{encode_frame_into, OpCode};
use crate::proto::handshake::{
    encode_accept_response_into, encode_error_response_into, encode_plain_response_into,
    parse_request, select_subprotocol, validate_upgrade, HandshakeError, Method, RequestHead,
};
use crate::proto::session::{Message, Session};

/// Reads per turn before the connection yields to the others of its core.
const READS_PER_TURN: usize = 4;

const SLOW_CONSUMER: &str = "slow consumer: outbound queue over limit";

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
        worker: &Worker,
        slot: &Slot,
        message: Message<'_>,
        now: Instant,
        out: &mut Vec<u8>,
    ) {
        match (self, message) {
            (App::Echo, Message::Text(text)) => {
                encode_frame_into(out, OpCode::Text, true, text.as_bytes())
            }
            (App::Echo, Message::Binary(data)) => {
                encode_frame_into(out, OpCode::Binary, true, data)
            }
            (App::Ws(ws), message) => ws.handle(worker, slot, message, now),
        }
    }
}

/// The upgraded part of a connection; boxed so the common slab entry stays small.
struct Open {
    session: Session,
    app: App,
}

enum Phase {
    /// Reading the request head; `head` holds what arrived so far.
    Handshake {
        head: Vec<u8>,
    },
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
    /// An input edge not yet drained to `EAGAIN`.
    pub readable: bool,
    phase: Phase,
}

impl Conn {
    pub fn new(fd: OwnedFd, slot: Rc<Slot>, worker: &Worker, now: Instant) -> Self {
        Self {
            fd,
            slot,
            deadline: Some(now + worker.config.handshake_timeout),
            readable: false,
            phase: Phase::Handshake { head: Vec::new() },
        }
    }

    /// Runs the connection as far as it goes without blocking.
    pub fn drive(&mut self, worker: &Worker, now: Instant) -> Drive {
        let kicks = self.slot.take_kicks();
        let due = self.deadline.is_some_and(|deadline| now >= deadline);
        let more = match self.step(worker, now, kicks, due) {
            Some(more) => more,
            None => return Drive::Done,
        };
        if !self.flush(worker) {
            return Drive::Done;
        }
        if !self.settle(worker, now) {
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
    fn step(&mut self, worker: &Worker, now: Instant, kicks: u8, due: bool) -> Option<bool> {
        let fd = self.fd.as_raw_fd();
        match &mut self.phase {
            Phase::Handshake { head } => {
                if due || kicks & KICK_SHUTDOWN != 0 {
                    // Slowloris or shutdown: no answer is owed to a request never finished.
                    return None;
                }
                if !self.readable {
                    return Some(false);
                }
                let (upgraded, response) = handshake_read(worker, fd, head, &mut self.readable)?;
                let Some(response) = response else {
                    return Some(false);
                };
                self.slot.outbox.borrow_mut().push(Bytes::from(response));
                match upgraded {
                    Some((endpoint, mut leftover)) => {
                        let mut open = Box::new(Open::new(worker, &self.slot, endpoint, now));
                        // From here on `head` is gone; the phase changes below.
                        if !leftover.is_empty() {
                            open.read(worker, &self.slot, fd, &mut leftover, now)?;
                        }
                        self.phase = Phase::Open(open);
                        // The client may have sent more than one read's worth already.
                        self.step(worker, now, 0, false)
                    }
                    None => {
                        self.phase = Phase::Flushing;
                        self.deadline = Some(now + worker.config.close_timeout);
                        Some(false)
                    }
                }
            }
            Phase::Open(open) => {
                let slot = &self.slot;
                if kicks != 0 || due {
                    emit(worker, slot, fd, |out| {
                        if kicks & KICK_OVERFLOW != 0 {
                            open.session.abort(CloseCode::POLICY, SLOW_CONSUMER, out);
                        }
                        if kicks & KICK_SHUTDOWN != 0 {
                            open.session.close(
                                CloseCode::GOING_AWAY,
                                "server shutting down",
                                now,
                                out,
                            );
                        }
                        if due {
                            open.session.handle_timeout(now, out);
                        }
                    })?;
                }
                let mut more = false;
                if self.readable && !open.session.is_finished() {
                    more = true;
                    for _ in 0..READS_PER_TURN {
                        let mut scratch = worker.read_scratch.borrow_mut();
                        let n = match try_recv(fd, &mut scratch) {
                            Ok(Transfer::Done(0)) | Err(_) => return None,
                            Ok(Transfer::Done(n)) => n,
                            Ok(Transfer::WouldBlock) => {
                                self.readable = false;
                                more = false;
                                break;
                            }
                        };
                        open.read(worker, slot, fd, &mut scratch[..n], now)?;
                        let full = slot.outbox.borrow().len() > worker.config.max_outbound_bytes;
                        if open.session.is_finished() || full {
                            more = false;
                            break;
                        }
                    }
                }
                Some(more)
            }
            Phase::Flushing => {
                if due {
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
                        let mut scratch = worker.read_scratch.borrow_mut();
                        match try_recv(fd, &mut scratch) {
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

    /// Sends what the outbox holds; `false` on a socket error.
    fn flush(&mut self, worker: &Worker) -> bool {
        let mut outbox = self.slot.outbox.borrow_mut();
        if outbox.is_empty() {
            return true;
        }
        match outbox.flush(self.fd.as_raw_fd()) {
            Ok(flushed) => {
                worker.stats.record_flush(flushed);
                true
            }
            Err(_) => false,
        }
    }

    /// Enforces the outbound limit, moves between phases, arms the deadline.
    /// `false`: drop the connection.
    fn settle(&mut self, worker: &Worker, now: Instant) -> bool {
        let queued = self.slot.outbox.borrow().len();
        let close_timeout = worker.config.close_timeout;
        match &mut self.phase {
            Phase::Handshake { .. } => {}
            Phase::Open(open) => {
                if queued > worker.config.max_outbound_bytes && open.session.is_open() {
                    tracing::debug!(worker = worker.id, queued, "slow consumer");
                    let session = &mut open.session;
                    if emit(worker, &self.slot, self.fd.as_raw_fd(), |out| {
                        session.abort(CloseCode::POLICY, SLOW_CONSUMER, out)
                    })
                    .is_none()
                    {
                        return false;
                    }
                }
                if open.session.is_finished() {
                    self.phase = Phase::Flushing;
                    self.deadline = Some(now + close_timeout);
                    return self.settle(worker, now);
                }
                self.deadline = open.session.next_deadline();
            }
            Phase::Flushing => {
                if queued == 0 {
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
    fn new(worker: &Worker, slot: &Rc<Slot>, endpoint: Endpoint, now: Instant) -> Self {
        let app = match endpoint {
            Endpoint::Echo => App::Echo,
            Endpoint::Ws => {
                worker.hub.join(slot.clone());
                App::Ws(WsConn::new(worker, now))
            }
        };
        Self {
            session: Session::new(&worker.session_config, now),
            app,
        }
    }

    /// Feeds bytes read from the peer; `None` when the socket failed.
    fn read(
        &mut self,
        worker: &Worker,
        slot: &Slot,
        fd: RawFd,
        bytes: &mut [u8],
        now: Instant,
    ) -> Option<()> {
        let Open { session, app } = self;
        emit(worker, slot, fd, |out| {
            session.handle_read(bytes, now, out, |m, out| {
                app.on_message(worker, slot, m, now, out)
            })
        })
    }
}

/// One read of the handshake. Returns `None` to drop the connection, else
/// the upgrade (endpoint + pipelined bytes) if any, and the response once the
/// head is complete.
#[allow(clippy::type_complexity)]
fn handshake_read(
    worker: &Worker,
    fd: RawFd,
    head: &mut Vec<u8>,
    readable: &mut bool,
) -> Option<(Option<(Endpoint, Vec<u8>)>, Option<Vec<u8>>)> {
    let limits = worker.config.handshake_limits();
    loop {
        {
            let mut scratch = worker.read_scratch.borrow_mut();
            // Read at most one byte past the limit: enough to know it is exceeded.
            let room = (limits.max_head_bytes + 1)
                .saturating_sub(head.len())
                .min(scratch.len());
            match try_recv(fd, &mut scratch[..room]) {
                Ok(Transfer::Done(0)) | Err(_) => return None,
                Ok(Transfer::Done(n)) => head.extend_from_slice(&scratch[..n]),
                Ok(Transfer::WouldBlock) => {
                    *readable = false;
                    return Some((None, None));
                }
            }
        }
        match parse_request(head, &limits) {
            Ok(None) => continue,
            Ok(Some((len, request))) => {
                let (response, endpoint) = route(worker, &request);
                let upgraded = endpoint.map(|endpoint| (endpoint, head.split_off(len)));
                *head = Vec::new();
                return Some((upgraded, Some(response)));
            }
            Err(err) => return Some((None, Some(error_response(&err)))),
        }
    }
}

fn error_response(err: &HandshakeError) -> Vec<u8> {
    let mut out = Vec::new();
    encode_error_response_into(&mut out, err);
    out
}

/// Maps a request to its response, and to an endpoint when it upgrades.
fn route(worker: &Worker, request: &RequestHead) -> (Vec<u8>, Option<Endpoint>) {
    let mut out = Vec::new();
    let endpoint = match request.path.as_str() {
        "/healthz" => {
            if matches!(request.method, Method::Get | Method::Head) {
                encode_plain_response_into(&mut out, 200, "text/plain", b"ok\n", &[]);
            } else {
                encode_error_response_into(&mut out, &HandshakeError::MethodNotAllowed);
            }
            return (out, None);
        }
        "/echo" => Endpoint::Echo,
        "/ws" => Endpoint::Ws,
        _ => return (error_response(&HandshakeError::NotFound), None),
    };
    if worker.draining.get()
        || worker.open_connections.get() > worker.config.max_connections_per_worker
    {
        encode_plain_response_into(
            &mut out,
            503,
            "text/plain",
            b"server at capacity or shutting down\n",
            &[("Retry-After", "1")],
        );
        return (out, None);
    }
    match validate_upgrade(request) {
        Ok(accept) => {
            let protocol = select_subprotocol(&request.protocols, &worker.config.subprotocols);
            encode_accept_response_into(&mut out, &accept, protocol, &[]);
            (out, Some(endpoint))
        }
        Err(err) => (error_response(&err), None),
    }
}

/// Runs `produce` with the core's write scratch, then sends what it produced.
/// When the outbox already holds bytes (or `produce` queued some there), the
/// new bytes go behind them to keep the order; otherwise they go straight to
/// the socket and only the unsent rest is copied to the outbox. `None` on a
/// socket error.
fn emit(worker: &Worker, slot: &Slot, fd: RawFd, produce: impl FnOnce(&mut Vec<u8>)) -> Option<()> {
    let mut scratch = worker.write_scratch.borrow_mut();
    produce(&mut scratch);
    if scratch.is_empty() {
        return Some(());
    }
    let mut outbox = slot.outbox.borrow_mut();
    let sent = if outbox.is_empty() {
        send_some(fd, &scratch)
    } else {
        Some(0)
    };
    if let Some(sent) = sent {
        if sent < scratch.len() {
            outbox.push(Bytes::copy_from_slice(&scratch[sent..]));
        }
    }
    scratch.clear();
    // A 16 MiB echo must not leave a 16 MiB scratch behind on this core.
    let keep = worker.config.read_buffer_size;
    if scratch.capacity() > 4 * keep {
        scratch.shrink_to(keep);
    }
    sent.map(|_| ())
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
