//! One connection's task: the HTTP handshake, then the WebSocket session, then
//! an orderly TCP close.
//!
//! The task never holds a buffer while it waits. It parks on socket readiness
//! (and on its registry slot, for timers and shutdown), reads into the core's
//! scratch buffer, lets the sans-IO [`Session`] turn the bytes into replies in
//! the core's write scratch, and sends them at once. Only what the socket does
//! not take is copied into the connection's outbox (in its registry slot,
//! where the pub/sub hub queues pushes too), which is bounded by
//! `max_outbound_bytes`: past it, the connection is closed with 1008 and
//! nothing else is read from it. Control frames are never dropped: they queue
//! behind earlier output like everything else.
//!
//! Idle connections must be cheap, and the task future's size is paid by
//! every connection for its whole life: it is the largest state the task can
//! be in. So only the idle wait (readable or kicked) is inline; the
//! handshake, the waits with output queued and the lingering close run in
//! boxed futures of their own, and the connection's state lives in one box.

use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use monoio::net::TcpStream;
use tracing::debug;

use super::registry::{ConnId, Slot, KICK_OVERFLOW, KICK_SHUTDOWN, KICK_TIMER};
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

/// Reads per wake-up before going back to the loop, so one busy connection
/// cannot starve the others on its core.
const READS_PER_WAKE: usize = 4;

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

pub(crate) async fn run(worker: Rc<Worker>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let slot = worker.registry.register();
    let Some(mut conn) = Box::pin(handshake(&worker, &stream, &slot)).await else {
        return;
    };
    debug!(worker = worker.id, conn = slot.id(), "upgraded");
    let fd = stream.as_raw_fd();
    loop {
        // Only the idle wait is inline; the rarer ones are boxed so that they
        // do not set the size of every connection's task.
        let wake = match conn.prepare(&worker, &slot, fd) {
            Next::Read => WaitRead { readable: stream.readable(false), slot: &slot }.await,
            Next::ReadWrite => Box::pin(wait(&stream, &slot, true, true)).await,
            Next::Write => Box::pin(wait(&stream, &slot, false, true)).await,
            Next::Close => break,
            Next::Drop => return,
        };
        let alive = match wake {
            Wake::Kicked(flags) => conn.on_kick(&worker, &slot, fd, flags),
            Wake::Io => conn.on_readable(&worker, &slot, fd),
        };
        if !alive {
            return;
        }
    }
    drop(conn);
    Box::pin(linger(&worker, &stream, &slot)).await;
    debug!(worker = worker.id, conn = slot.id(), "closed");
}

enum Wake {
    /// The socket may be readable or writable (or has an error to report).
    Io,
    /// The registry slot was kicked with these flags.
    Kicked(u8),
}

/// The idle wait: readable, or kicked. Hand-written rather than a `select!`
/// so that it holds nothing but the readiness op and a reference: every idle
/// connection pays for this future's size.
struct WaitRead<'a, F> {
    readable: F,
    slot: &'a Slot,
}

impl<F: Future<Output = std::io::Result<()>>> Future for WaitRead<'_, F> {
    type Output = Wake;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Wake> {
        // SAFETY: `readable` is structurally pinned: it is never moved out of
        // `self`, and `WaitRead` has no `Drop` or `Unpin` impl of its own.
        let this = unsafe { self.get_unchecked_mut() };
        if let Poll::Ready(flags) = this.slot.poll_kicked(cx) {
            return Poll::Ready(Wake::Kicked(flags));
        }
        // SAFETY: see above; `this.readable` stays where it is.
        let readable = unsafe { Pin::new_unchecked(&mut this.readable) };
        readable.poll(cx).map(|_| Wake::Io)
    }
}

async fn wait(stream: &TcpStream, slot: &Slot, read: bool, write: bool) -> Wake {
    monoio::select! {
        _ = stream.readable(false), if read => Wake::Io,
        _ = stream.writable(false), if write => Wake::Io,
        flags = slot.kicked() => Wake::Kicked(flags),
    }
}

/// Reads the request head and answers it. On an upgrade, returns the new
/// connection's state, which has already consumed any bytes the client
/// pipelined after the head.
async fn handshake(worker: &Rc<Worker>, stream: &TcpStream, slot: &Slot) -> Option<Box<Conn>> {
    let config = &worker.config;
    let deadline = Instant::now() + config.handshake_timeout;
    slot.set_deadline(Some(deadline));
    let limits = config.handshake_limits();
    let fd = stream.as_raw_fd();
    let mut head = Vec::new();
    loop {
        if let Wake::Kicked(flags) = wait(stream, slot, true, false).await {
            if flags & KICK_SHUTDOWN != 0 || Instant::now() >= deadline {
                // Slowloris or shutdown: no answer is owed to a request never finished.
                return None;
            }
            continue;
        }
        {
            let mut scratch = worker.read_scratch.borrow_mut();
            // Read at most one byte past the limit: enough to know it is exceeded.
            let room = (limits.max_head_bytes + 1)
                .saturating_sub(head.len())
                .min(scratch.len());
            match try_recv(fd, &mut scratch[..room]) {
                Ok(Transfer::Done(0)) | Err(_) => return None,
                Ok(Transfer::Done(n)) => head.extend_from_slice(&scratch[..n]),
                Ok(Transfer::WouldBlock) => continue,
            }
        }
        let (response, upgraded) = match parse_request(&head, &limits) {
            Ok(None) => continue,
            Ok(Some((len, request))) => {
                let (response, endpoint) = route(worker, &request);
                (
                    response,
                    endpoint.map(|endpoint| (endpoint, head.split_off(len))),
                )
            }
            Err(err) => (error_response(&err), None),
        };
        drop(head);
        if !write_all(stream, slot, fd, &response, deadline).await {
            return None;
        }
        let Some((endpoint, mut leftover)) = upgraded else {
            linger(worker, stream, slot).await;
            return None;
        };
        let mut conn = Box::new(Conn::new(worker, slot, endpoint, Instant::now()));
        if !leftover.is_empty() && !conn.on_bytes(worker, slot, fd, &mut leftover) {
            return None;
        }
        return Some(conn);
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
    if worker.draining.get() || worker.registry.len() > worker.config.max_connections_per_worker {
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

/// Sends all of `bytes`, waiting for writability, until `deadline`.
async fn write_all(
    stream: &TcpStream,
    slot: &Slot,
    fd: RawFd,
    mut bytes: &[u8],
    deadline: Instant,
) -> bool {
    slot.set_deadline(Some(deadline));
    while !bytes.is_empty() {
        match try_send(fd, bytes) {
            Ok(Transfer::Done(n)) => bytes = &bytes[n..],
            Ok(Transfer::WouldBlock) => {
                if let Wake::Kicked(_) = wait(stream, slot, false, true).await {
                    if Instant::now() >= deadline {
                        return false;
                    }
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// Sends FIN, then reads and discards until the peer closes too (or the close
/// timeout passes), so that our last bytes are not lost to a TCP reset.
async fn linger(worker: &Worker, stream: &TcpStream, slot: &Slot) {
    let fd = stream.as_raw_fd();
    shutdown_write(fd);
    let deadline = Instant::now() + worker.config.close_timeout;
    slot.set_deadline(Some(deadline));
    loop {
        if let Wake::Kicked(_) = wait(stream, slot, true, false).await {
            if Instant::now() >= deadline {
                return;
            }
            continue;
        }
        let mut scratch = worker.read_scratch.borrow_mut();
        match try_recv(fd, &mut scratch) {
            Ok(Transfer::WouldBlock) => {}
            Ok(Transfer::Done(0)) | Err(_) => return,
            Ok(Transfer::Done(_)) => {}
        }
    }
}

/// Runs `produce` with the core's write scratch, then sends what it produced.
/// When the outbox already holds bytes (or `produce` queued some there), the
/// new bytes go behind them to keep the order; otherwise they go straight to
/// the socket and only the unsent rest is copied to the outbox.
fn emit(worker: &Worker, slot: &Slot, fd: RawFd, produce: impl FnOnce(&mut Vec<u8>)) -> bool {
    let mut scratch = worker.write_scratch.borrow_mut();
    produce(&mut scratch);
    if scratch.is_empty() {
        return true;
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
    sent.is_some()
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

/// An upgraded connection's state between wake-ups. It lives in a `Box`, and
/// all its work is synchronous, so that the task future itself stays small:
/// an idle connection's task holds its refs, this box and one readiness wait.
struct Conn {
    session: Session,
    app: App,
    /// Once the session is finished, how long we still try to flush the outbox.
    flush_deadline: Option<Instant>,
    /// For `/ws`: the hub forgets this connection's subscriptions on drop,
    /// however the connection ends.
    member_of: Option<(Rc<Worker>, ConnId)>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some((worker, conn)) = &self.member_of {
            worker.hub.leave(*conn);
        }
    }
}

/// What the connection waits for next.
enum Next {
    /// Readable or kicked: the idle state, and the one that must stay cheap.
    Read,
    /// Readable, writable or kicked: output is queued.
    ReadWrite,
    /// Writable or kicked: the session is over, the outbox still drains.
    Write,
    /// Done: close TCP politely.
    Close,
    /// The socket failed: drop it.
    Drop,
}

impl Conn {
    fn new(worker: &Rc<Worker>, slot: &Slot, endpoint: Endpoint, now: Instant) -> Self {
        let (app, member_of) = match endpoint {
            Endpoint::Echo => (App::Echo, None),
            Endpoint::Ws => {
                worker.hub.join(slot.id());
                (App::Ws(WsConn::new(worker, now)), Some((worker.clone(), slot.id())))
            }
        };
        let session = Session::new(&worker.session_config, now);
        Self { session, app, flush_deadline: None, member_of }
    }

    /// Feeds bytes read from the peer; `false` when the socket failed.
    fn on_bytes(&mut self, worker: &Worker, slot: &Slot, fd: RawFd, bytes: &mut [u8]) -> bool {
        let now = Instant::now();
        let Conn { session, app, .. } = self;
        emit(worker, slot, fd, |out| {
            session.handle_read(bytes, now, out, |m, out| app.on_message(worker, slot, m, now, out))
        })
    }

    /// Flushes, enforces the outbound limit, arms the slot's deadline, and
    /// says what to wait for.
    fn prepare(&mut self, worker: &Worker, slot: &Slot, fd: RawFd) -> Next {
        let queued = {
            let mut outbox = slot.outbox.borrow_mut();
            if !outbox.is_empty() {
                match outbox.flush(fd) {
                    Ok(flushed) => worker.stats.record_flush(flushed),
                    Err(_) => return Next::Drop,
                }
            }
            outbox.len()
        };
        if queued > worker.config.max_outbound_bytes && self.session.is_open() {
            debug!(worker = worker.id, queued, "slow consumer");
            let session = &mut self.session;
            if !emit(worker, slot, fd, |out| session.abort(CloseCode::POLICY, SLOW_CONSUMER, out)) {
                return Next::Drop;
            }
        }
        let writing = !slot.outbox.borrow().is_empty();
        if self.session.is_finished() {
            if !writing {
                return Next::Close;
            }
            let close_timeout = worker.config.close_timeout;
            let deadline = *self.flush_deadline.get_or_insert_with(|| Instant::now() + close_timeout);
            slot.set_deadline(Some(deadline));
            return Next::Write;
        }
        slot.set_deadline(self.session.next_deadline());
        if writing {
            Next::ReadWrite
        } else {
            Next::Read
        }
    }

    /// Acts on kicks (timers, shutdown, outbound overflow); `false` to drop.
    fn on_kick(&mut self, worker: &Worker, slot: &Slot, fd: RawFd, flags: u8) -> bool {
        let now = Instant::now();
        if self.flush_deadline.is_some_and(|deadline| now >= deadline) {
            return false;
        }
        let session = &mut self.session;
        emit(worker, slot, fd, |out| {
            if flags & KICK_OVERFLOW != 0 {
                session.abort(CloseCode::POLICY, SLOW_CONSUMER, out);
            }
            if flags & KICK_SHUTDOWN != 0 {
                session.close(CloseCode::GOING_AWAY, "server shutting down", now, out);
            }
            if flags & KICK_TIMER != 0 {
                session.handle_timeout(now, out);
            }
        })
    }

    /// Reads what the socket has (a few reads at most, for fairness); `false`
    /// when the peer is gone or the socket failed.
    fn on_readable(&mut self, worker: &Worker, slot: &Slot, fd: RawFd) -> bool {
        if self.session.is_finished() {
            return true;
        }
        for _ in 0..READS_PER_WAKE {
            let mut scratch = worker.read_scratch.borrow_mut();
            let n = match try_recv(fd, &mut scratch) {
                Ok(Transfer::Done(0)) | Err(_) => return false,
                Ok(Transfer::Done(n)) => n,
                Ok(Transfer::WouldBlock) => return true,
            };
            if !self.on_bytes(worker, slot, fd, &mut scratch[..n]) {
                return false;
            }
            let full = slot.outbox.borrow().len() > worker.config.max_outbound_bytes;
            if n < scratch.len() || self.session.is_finished() || full {
                return true;
            }
        }
        true
    }
}

const SLOW_CONSUMER: &str = "slow consumer: outbound queue over limit";
