//! One core's event loop for its sockets on io_uring completions
//! (`io_uring.socket_io = "completion"`): the same [`Conn`]s as the
//! readiness loop (`reactor.rs`), driven through the core's connection ring
//! ([`Ring`], `uring/`) instead of an epoll set and non-blocking calls.
//!
//! - Accept: multishot on the worker's listener(s), re-armed after a
//!   completion without `more`.
//! - Receive: multishot per connection into the core's provided buffers.
//!   Each completion's bytes go to [`Conn::handle_read`] (as much as
//!   [`Conn::poll_read`] wants; the rest waits, in order, in the
//!   connection's small `carry`) and the buffer is recycled at once. A
//!   carry past [`CARRY_PAUSE`] cancels the receive until it drains.
//!   The worker hands the kernel `recv_buffers_initial` buffers at start
//!   and twice as many, up to `recv_buffers`, after each turn in which a
//!   receive found none (`ringcast_recv_buffers`): a worker holds resident
//!   what its bursts needed, not the whole ring (`uring/bufring.rs`).
//!   `ENOBUFS` (every buffer taken) is counted
//!   (`ringcast_recv_buffer_exhausted_total`) and the receive re-armed at
//!   the end of the turn, once that turn's buffers are back.
//! - Send: a connection's replies go to its outbox (answering
//!   `handle_sent(0)` to every offer, as `conn.rs` describes), and one
//!   `sendmsg` SQE at a time points at the outbox's frames, which stay put
//!   until its completion answers `handle_sent(n)`. The msghdr and iovecs
//!   live in a box held only while that send is in flight (reused from a
//!   per-core spare list), so an idle connection holds none.
//! - Cancel and close are SQEs too; shutdown (FIN, once per connection) is
//!   a plain call (see [`transmit`]). A connection that goes
//!   with a send in flight leaves its box and slot (which owns the outbox
//!   the iovecs point into) in `orphans` until that send's completion.
//!
//! Everything queued during a turn goes to the kernel in the next
//! [`Ring::submit_and_reap`], the turn's one `io_uring_enter`. monoio stays
//! the runtime: the ring signals an eventfd on completions, and the loop
//! waits on it together with the kick queue, the timer and shutdown, like
//! the readiness loop. Deadlines, drain and close accounting are shared
//! with that loop (`deadlines.rs`, `drain.rs`).
//!
//! TLS (`wss://`) runs here too, as a byte transform between the ring and
//! the connection (`ring_tls.rs`): received ciphertext goes through rustls
//! a read at a time (what the connection does not want yet waits in the
//! carry as ciphertext), and a send carries a buffer of ciphertext that its
//! box owns, so the one-send-in-flight rule, the idle connection holding no
//! send memory, and the close_notify before FIN hold as for plain sockets.
//!
//! Past 800 lines because the receive, send and close paths all work on the
//! same slab entry and [`Io`], and split across files they would need most
//! of each other's private state; the TLS transform, which needs none of
//! it, is in its own file.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::conn::{Conn, Transmit};
use super::deadlines::{self, Deadlines, Driven};
use super::drain::{closed, stopped, Drain, DrainStep};
use super::metrics::{CloseReason, Metrics};
use super::ring_tls::RingTls;
use super::summary;
use super::worker::Worker;
use crate::config::IoUringSection;
use crate::mailbox::{ConnId, Slot, MAX_IOVECS};
use crate::rt::yield_now;
use crate::sys::shutdown_write;
use crate::uring::{Completion, Op, Ring, RingConfig, TOKEN_MAX};

/// Tokens of the listeners; a connection's token is its [`ConnId`], whose
/// generation here stays below 2²⁴ − 1 (so the id fits a 56-bit token and
/// never equals these).
const LISTENER: u64 = TOKEN_MAX;
const API_LISTENER: u64 = TOKEN_MAX - 1;
const GENERATIONS: u32 = (1 << 24) - 1;
/// Bytes a connection may hold received but not yet wanted before its
/// receive is cancelled (re-armed once they are consumed).
const CARRY_PAUSE: usize = 64 * 1024;
/// Bytes handed to a connection per `handle_read`.
const FEED_SLICE: usize = 16 * 1024;

/// What a connection's receive is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recv {
    /// A multishot receive is armed.
    Armed,
    /// Cancelled (carry full) or ended by `ENOBUFS`: to be re-armed.
    Paused,
    /// A cancel is on its way; its last completion turns this to `Paused`.
    Cancelling,
    /// The stream ended (EOF or an error): never re-armed.
    Ended,
}

/// One `sendmsg` in flight: its header and iovecs, which must not move
/// until its completion (so boxed).
struct InFlight {
    msg: libc::msghdr,
    iov: [libc::iovec; MAX_IOVECS],
    /// Bytes offered, to tell a short send (the socket is full).
    offered: usize,
    started: Instant,
    /// A TLS send's ciphertext (the one iovec points into it; empty for a
    /// plain send), and how much of it the socket has taken so far.
    cipher: Vec<u8>,
    cipher_sent: usize,
}

impl InFlight {
    fn new() -> Box<Self> {
        Box::new(Self {
            // SAFETY: msghdr is plain data; all-zero is a valid empty header.
            msg: unsafe { std::mem::zeroed() },
            iov: [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MAX_IOVECS],
            offered: 0,
            started: Instant::now(),
            cipher: Vec::new(),
            cipher_sent: 0,
        })
    }
}

/// A connection with its socket: the completion loop's slab entry.
struct RingSocket {
    conn: Conn,
    fd: OwnedFd,
    recv: Recv,
    /// EOF (or a read error) seen, to hand over once `carry` is consumed.
    eof: bool,
    /// Received bytes the connection did not want yet, oldest first.
    carry: Vec<u8>,
    send: Option<Box<InFlight>>,
    /// The last send completed short: the socket is full, as a readiness
    /// driver's `EAGAIN` says.
    full: bool,
    /// rustls's session for a `wss://` connection (then `carry` holds
    /// ciphertext).
    tls: Option<Box<RingTls>>,
}

type Table = deadlines::Table<RingSocket>;

impl Driven for RingSocket {
    fn conn(&self) -> &Conn {
        &self.conn
    }
    fn conn_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// The loop's state besides the table.
struct Io {
    ring: Ring,
    /// Boxes of finished sends, for the next ones (kept boxed: each moves
    /// whole into a connection, and its address is what the kernel holds).
    #[allow(clippy::vec_box)]
    spare: Vec<Box<InFlight>>,
    /// Sends still in flight for connections that have gone.
    orphans: HashMap<u64, (Box<InFlight>, Rc<Slot>)>,
    /// Connections holding input back behind a send in flight: driven
    /// again at the next sweep (a send completion drives them sooner).
    held: Vec<ConnId>,
    /// How long a send may stay in flight before the socket counts as full.
    tick: std::time::Duration,
    /// A receive found no buffer this turn: hand out more before re-arming.
    starved: bool,
}

/// Spare send boxes kept for reuse; past these a finished send's box is
/// freed (a fan-out burst to every connection must not leave one box per
/// connection behind).
const SPARES: usize = 64;
/// A spare box keeps at most this much ciphertext capacity (a burst of
/// large TLS replies must not leave 64 large buffers behind).
const SPARE_CIPHER: usize = 16 * 1024;

impl Io {
    fn give_back(&mut self, mut send: Box<InFlight>) {
        if self.spare.len() < SPARES {
            send.cipher.clear();
            send.cipher_sent = 0;
            if send.cipher.capacity() > SPARE_CIPHER {
                send.cipher = Vec::new();
            }
            self.spare.push(send);
        }
    }
}

/// The ring's sizes from `[io_uring]`.
pub(crate) fn ring_config(section: &IoUringSection) -> RingConfig {
    RingConfig {
        entries: section.entries,
        cq_entries: section.cq_entries,
        buffers: u16::try_from(section.recv_buffers).unwrap_or(1 << 15),
        initial_buffers: u16::try_from(section.recv_buffers_initial.min(section.recv_buffers))
            .unwrap_or(1 << 15),
        buffer_size: section.recv_buffer_size,
    }
}

/// Builds the connection ring, or says why the completion path cannot be had.
pub(crate) fn build_ring(section: &IoUringSection) -> Result<Ring, String> {
    let ring = Ring::new(ring_config(section)).map_err(|e| format!("connection ring: {e}"))?;
    let features = ring.features();
    if !features.complete() {
        return Err(format!("the kernel lacks what it needs ({features})"));
    }
    Ok(ring)
}

pub(crate) async fn run(
    worker: Rc<Worker>,
    ring: Ring,
    listener: TcpListener,
    api_listener: Option<TcpListener>,
    shutdown: flume::Receiver<()>,
) {
    if let Err(e) = serve(&worker, ring, listener, api_listener, shutdown).await {
        warn!(worker = worker.id, "event loop failed: {e}");
    }
}

async fn serve(
    worker: &Rc<Worker>,
    ring: Ring,
    listener: TcpListener,
    api_listener: Option<TcpListener>,
    shutdown: flume::Receiver<()>,
) -> io::Result<()> {
    // SAFETY: eventfd takes no pointers; the result is checked.
    let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if efd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `efd` is a fresh fd owned by nobody else.
    let efd = unsafe { OwnedFd::from_raw_fd(efd) };
    ring.register_eventfd(efd.as_raw_fd())?;
    // monoio waits on a duplicate (it owns and closes its copy).
    let watch =
        monoio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(efd.try_clone()?))?;

    let mut io = Io {
        ring,
        spare: Vec::new(),
        orphans: HashMap::new(),
        held: Vec::new(),
        tick: worker.config.timeouts.timer_tick,
        starved: false,
    };
    let provided = u64::from(io.ring.buffers().provided());
    worker.ctx.metrics.recv_buffers.set(provided);
    io.ring.accept_multishot(listener.as_raw_fd(), LISTENER)?;
    if let Some(api) = &api_listener {
        io.ring.accept_multishot(api.as_raw_fd(), API_LISTENER)?;
    }

    let mut table = Table::with_capacity(worker.config.limits.max_connections_per_worker);
    let mut cqes: Vec<Completion> = Vec::with_capacity(1024);
    let mut work: Vec<ConnId> = Vec::new();
    let mut kicked: Vec<ConnId> = Vec::new();
    // Listeners whose multishot accept ended on an error: re-armed at the
    // next sweep, not at once (EMFILE would spin).
    let mut rearm_accept: Vec<(RawFd, u64)> = Vec::new();
    let tick = worker.config.timeouts.timer_tick;
    let mut next_sweep = Instant::now() + tick;
    let mut deadlines = Deadlines::new(Instant::now(), tick);
    let mut drain = Drain::default();
    let mut stop = false;

    loop {
        io.ring.submit_and_reap(0, &mut cqes)?;
        let now = Instant::now();
        for cqe in cqes.drain(..) {
            match cqe.op {
                Op::Accept => {
                    let (fd, api) = if cqe.token == LISTENER {
                        (listener.as_raw_fd(), false)
                    } else {
                        let Some(api) = &api_listener else { continue };
                        (api.as_raw_fd(), true)
                    };
                    if cqe.result >= 0 {
                        // SAFETY: a completed accept's result is a new fd, ours.
                        let stream = unsafe { OwnedFd::from_raw_fd(cqe.result) };
                        if worker.accept_failing.replace(false) {
                            info!(worker = worker.id, "accepting again");
                        }
                        if let Some(id) = accepted(worker, &mut io, &mut table, stream, api, now) {
                            work.push(id);
                        }
                        if !cqe.more {
                            io.ring.accept_multishot(fd, cqe.token)?;
                        }
                    } else {
                        let e = io::Error::from_raw_os_error(-cqe.result);
                        if !worker.accept_failing.replace(true) {
                            warn!(
                                worker = worker.id,
                                "accept failed (retrying quietly until it works): {e}"
                            );
                        }
                        if !cqe.more {
                            rearm_accept.push((fd, cqe.token));
                        }
                    }
                }
                Op::Recv => on_recv(worker, &mut io, &mut table, &cqe, now, &mut work),
                Op::Send => on_sent(worker, &mut io, &mut table, &cqe, now, &mut work),
                Op::Shutdown | Op::Close | Op::Cancel => {}
            }
        }
        if std::mem::take(&mut io.starved) {
            // Once per turn however many receives ran dry: they re-arm in
            // `drive` below, after this turn's buffers came back.
            if let Some(provided) = io.ring.grow_buffers() {
                debug!(worker = worker.id, provided, "receive buffers handed out");
                worker.ctx.metrics.recv_buffers.set(u64::from(provided));
            }
        }
        worker.kicks.drain_into(&mut kicked);
        work.append(&mut kicked);
        if now >= next_sweep {
            next_sweep = now + tick;
            let lines = worker.ctx.summary.borrow_mut().flush(now);
            summary::emit(worker.id, worker.config.log.summary_interval, &lines);
            deadlines.expire(now, &mut table, &mut work);
            work.append(&mut io.held);
            for (fd, token) in rearm_accept.drain(..) {
                io.ring.accept_multishot(fd, token)?;
            }
        }
        work.sort_unstable();
        work.dedup();
        for id in work.drain(..) {
            let Some(socket) = table.get_mut(id) else {
                continue;
            };
            let was_upgraded = socket.conn.upgraded;
            let alive = drive(&worker.ctx, &mut io, socket, id, now);
            if socket.conn.upgraded && !was_upgraded {
                debug!(worker = worker.id, conn = id.raw(), "upgraded");
            }
            if alive {
                deadlines.arm(id, &mut socket.conn);
            } else {
                remove(worker, &mut io, &mut table, id, None);
            }
        }

        stop |= shutdown.is_disconnected() || shutdown.try_recv().is_ok();
        let slots = table.conns.iter().map(|(_, s)| &*s.conn.slot);
        match drain.step(worker, stop, now, table.conns.len(), slots) {
            DrainStep::Serve => {}
            DrainStep::Started => continue,
            DrainStep::Done => break,
            DrainStep::TimedOut => {
                let left = worker.ctx.metrics.upgraded_current.get();
                let ids: Vec<ConnId> = table.conns.iter().map(|(_, s)| s.conn.slot.id()).collect();
                for &id in &ids {
                    remove(
                        worker,
                        &mut io,
                        &mut table,
                        id,
                        Some(CloseReason::DrainTimeout),
                    );
                }
                drain.timed_out(worker, left, ids.len());
                break;
            }
        }
        worker.ctx.metrics.loop_turn.record(now.elapsed());

        if io.ring.queued() > 0 {
            // Submit what this turn queued (and reap) on the next turn at once.
            yield_now().await;
            continue;
        }
        let sleep_until = drain.deadline().map_or(next_sweep, |d| d.min(next_sweep));
        let kicks = &worker.kicks;
        monoio::select! {
            _ = watch.readable(false) => {
                let mut count = [0u8; 8];
                // SAFETY: reads 8 bytes into a local array from our eventfd;
                // EAGAIN (already read) is fine.
                unsafe { libc::read(efd.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
            }
            _ = poll_fn(|cx| kicks.poll_ready(cx)) => {}
            _ = monoio::time::sleep_until(sleep_until.into()) => {}
            _ = shutdown.recv_async(), if drain.deadline().is_none() => stop = true,
        }
    }
    stopped(worker);
    // Closes queued on the way out (a timed-out drain's) still go.
    if io.ring.queued() > 0 {
        cqes.clear();
        let _ = io.ring.submit_and_reap(0, &mut cqes);
    }
    // The ring goes first (closing it cancels what is pending), then what
    // its sends pointed into: connections still held (a drain that finished
    // without them, plain HTTP ones) and the orphans.
    let Io { ring, orphans, .. } = io;
    drop(ring);
    drop(table);
    drop(orphans);
    Ok(())
}

/// Sets up an accepted connection and arms its receive; `None` when it
/// could not be (the socket is closed).
fn accepted(
    worker: &Worker,
    io: &mut Io,
    table: &mut Table,
    fd: OwnedFd,
    api: bool,
    now: Instant,
) -> Option<ConnId> {
    set_nodelay(fd.as_raw_fd());
    let peer = peer_ip(fd.as_raw_fd());
    let entry = table.conns.vacant_entry();
    table.generation = table.generation.wrapping_add(1) % GENERATIONS;
    let id = ConnId::new(table.generation, entry.key());
    let tls = match &worker.tls {
        Some(store) if !api => match RingTls::new(store) {
            Ok(tls) => Some(tls),
            Err(e) => {
                warn!(worker = worker.id, "cannot start TLS for a connection: {e}");
                return None;
            }
        },
        _ => None,
    };
    if let Err(e) = io.ring.recv_multishot(fd.as_raw_fd(), id.raw()) {
        warn!(
            worker = worker.id,
            "cannot receive on a new connection: {e}"
        );
        return None;
    }
    let slot = Rc::new(Slot::new(id, worker.kicks.clone()));
    let conn = Conn::new(slot, peer, api, &worker.ctx, now);
    entry.insert(RingSocket {
        conn,
        fd,
        recv: Recv::Armed,
        eof: false,
        carry: Vec::new(),
        send: None,
        full: false,
        tls,
    });
    let m = &worker.ctx.metrics;
    m.connections_opened.set(m.connections_opened.get() + 1);
    m.connections_current.set(table.conns.len() as u64);
    debug!(worker = worker.id, conn = id.raw(), %peer, "accepted");
    Some(id)
}

/// A receive completion: bytes (fed, buffer recycled), EOF, or the end of
/// the multishot (re-armed, or, for `ENOBUFS`, put on the starved list).
fn on_recv(
    worker: &Worker,
    io: &mut Io,
    table: &mut Table,
    cqe: &Completion,
    now: Instant,
    work: &mut Vec<ConnId>,
) {
    let id = ConnId::from_raw(cqe.token);
    let Some(socket) = table.get_mut(id) else {
        // A late completion for a connection that has gone.
        if let Some(buffer) = cqe.buffer {
            io.ring.recycle(buffer);
        }
        return;
    };
    let ctx = &worker.ctx;
    if socket.tls.as_ref().is_some_and(|tls| tls.ended) {
        // The TLS stream has ended: whatever follows is dropped, and the
        // receive is not armed again.
        if let Some(buffer) = cqe.buffer {
            io.ring.recycle(buffer);
        }
        if !cqe.more {
            socket.recv = Recv::Ended;
        }
        return;
    }
    if let Some(buffer) = cqe.buffer {
        let len = usize::try_from(cqe.result).unwrap_or(0);
        if len > 0 {
            let bytes = io.ring.data_mut(buffer, len);
            if socket.carry.is_empty() {
                if !feed(socket, ctx, bytes, now, io.tick) {
                    io.held.push(id);
                }
            } else {
                socket.carry.extend_from_slice(bytes);
            }
        }
        io.ring.recycle(buffer);
    }
    match cqe.result {
        r if r > 0 => {
            if !cqe.more && matches!(socket.recv, Recv::Armed | Recv::Cancelling) {
                // The multishot ended without an error (or before a cancel
                // reached it): `drive` arms it again when the carry allows.
                socket.recv = Recv::Paused;
            }
            if socket.carry.len() > CARRY_PAUSE && socket.recv == Recv::Armed {
                let _ = io.ring.cancel(Op::Recv, id.raw());
                socket.recv = Recv::Cancelling;
            }
        }
        0 => {
            socket.recv = Recv::Ended;
            socket.eof = true;
        }
        r if r == -libc::ENOBUFS => {
            // The bytes wait in the socket; `drive` re-arms this turn, after
            // every completion reaped with it has given its buffer back.
            Metrics::add(&ctx.metrics.recv_buffer_exhausted, 1);
            io.starved = true;
            socket.recv = Recv::Paused;
        }
        r if r == -libc::ECANCELED && socket.recv == Recv::Cancelling => {
            socket.recv = Recv::Paused;
        }
        _ => {
            // A read error ends the stream, as on the readiness path.
            socket.recv = Recv::Ended;
            socket.eof = true;
        }
    }
    work.push(id);
}

/// Hands `bytes` to the connection as far as it wants them, settling each
/// read's reply; what it does not want yet goes to the carry, in order.
/// `false`: input was held back behind a send in flight ([`may_feed`]).
fn feed(
    socket: &mut RingSocket,
    ctx: &super::context::ConnContext,
    bytes: &mut [u8],
    now: Instant,
    tick: std::time::Duration,
) -> bool {
    if socket.tls.is_some() {
        return feed_tls(socket, ctx, bytes, now, tick);
    }
    let mut rest = bytes;
    let mut fed = true;
    while !rest.is_empty() {
        let want = socket.conn.poll_read(ctx);
        if want == 0 {
            break;
        }
        if !may_feed(
            &socket.conn,
            socket.full,
            socket.send.as_deref(),
            ctx,
            now,
            tick,
        ) {
            fed = false;
            break;
        }
        // In slices, so that `may_feed` is asked again between them.
        let n = want.min(rest.len()).min(FEED_SLICE);
        let (head, tail) = rest.split_at_mut(n);
        socket.conn.handle_read(ctx, head, now);
        settle(&mut socket.conn, ctx, now);
        rest = tail;
    }
    socket.carry.extend_from_slice(rest);
    fed
}

/// [`feed`] for a `wss://` connection: `cipher` goes through rustls
/// (`ring_tls.rs`); what it does not take yet goes to the carry. At the
/// end of the TLS stream (close_notify, or an error whose alert is sent at
/// once when no send is in flight) the connection sees EOF.
fn feed_tls(
    socket: &mut RingSocket,
    ctx: &super::context::ConnContext,
    cipher: &[u8],
    now: Instant,
    tick: std::time::Duration,
) -> bool {
    let RingSocket {
        conn,
        fd,
        eof,
        carry,
        send,
        full,
        tls,
        ..
    } = socket;
    let Some(tls) = tls else {
        return true;
    };
    let (taken, held) = tls.feed(
        conn,
        ctx,
        cipher,
        now,
        |conn| settle(conn, ctx, now),
        |conn| may_feed(conn, *full, send.as_deref(), ctx, now, tick),
    );
    carry.extend_from_slice(&cipher[taken..]);
    if tls.ended {
        *eof = true;
        if send.is_none() {
            tls.flush_now(fd.as_raw_fd());
        }
    }
    !held
}

/// Whether more input may be turned into replies now. Replies wait in the
/// outbox for the next submission (a turn's receives are all fed before
/// its sends start), and the outbox's bound (`max_outbound_bytes`) is meant
/// for bytes the socket refused, not for bytes merely waiting: so past half
/// the bound, input waits for the send to complete, unless the socket has
/// shown it is full (a short send, or one in flight for a timer tick), when
/// reading goes on as on the readiness path and the bound applies.
fn may_feed(
    conn: &Conn,
    full: bool,
    send: Option<&InFlight>,
    ctx: &super::context::ConnContext,
    now: Instant,
    tick: std::time::Duration,
) -> bool {
    if conn.slot.outbox.borrow().len() < ctx.limits.max_outbound_bytes / 2 {
        return true;
    }
    full || send.is_some_and(|send| now >= send.started + tick)
}

/// Moves a reply just produced out of the core's write scratch into the
/// outbox (the offer is answered "nothing taken"): a completion driver never
/// sends synchronously. The send itself is started by [`transmit`].
fn settle(conn: &mut Conn, ctx: &super::context::ConnContext, now: Instant) {
    if !ctx.scratch.write.borrow().is_empty() {
        if let Transmit::Send(()) = conn.poll_transmit(ctx, now, |_| ()) {
            conn.handle_sent(ctx, 0, now);
        }
    }
}

/// A send completion: the socket took `result` bytes of the outbox.
fn on_sent(
    worker: &Worker,
    io: &mut Io,
    table: &mut Table,
    cqe: &Completion,
    now: Instant,
    work: &mut Vec<ConnId>,
) {
    let id = ConnId::from_raw(cqe.token);
    if let Some((send, _slot)) = io.orphans.remove(&cqe.token) {
        io.give_back(send);
        return;
    }
    let Some(socket) = table.get_mut(id) else {
        return;
    };
    let Some(mut send) = socket.send.take() else {
        return;
    };
    let ctx = &worker.ctx;
    if socket.tls.is_some() {
        // Ciphertext: the plaintext was settled when it was encrypted; a
        // short send goes on at once from where it stopped.
        match usize::try_from(cqe.result) {
            Ok(sent) if sent > 0 => {
                send.cipher_sent += sent;
                socket.full = send.cipher_sent < send.cipher.len();
                if !socket.full {
                    io.give_back(send);
                } else if let Some(send) = queue_cipher(io, socket.fd.as_raw_fd(), send, id) {
                    socket.send = Some(send);
                } else {
                    socket.conn.handle_error(ctx);
                }
            }
            _ => {
                io.give_back(send);
                socket.conn.handle_error(ctx);
            }
        }
        work.push(id);
        return;
    }
    let send_offered = send.offered;
    io.give_back(send);
    match usize::try_from(cqe.result) {
        Ok(sent) => {
            socket.full = sent < send_offered;
            socket.conn.handle_sent(ctx, sent, now);
            settle(&mut socket.conn, ctx, now);
        }
        Err(_) => socket.conn.handle_error(ctx),
    }
    work.push(id);
}

/// Runs the connection as far as it goes: kicks and deadline, bytes it
/// now wants from the carry, EOF once the carry is consumed, then what is
/// owed to the socket. `false`: the connection is finished.
fn drive(
    ctx: &super::context::ConnContext,
    io: &mut Io,
    socket: &mut RingSocket,
    id: ConnId,
    now: Instant,
) -> bool {
    let kicks = socket.conn.slot.take_kicks();
    socket.conn.handle_kicks(ctx, kicks, now);
    socket.conn.handle_timeout(ctx, now);
    settle(&mut socket.conn, ctx, now);
    let tls_plain = |socket: &RingSocket| socket.tls.as_ref().is_some_and(|t| t.has_plaintext());
    if (!socket.carry.is_empty() || tls_plain(socket)) && socket.conn.poll_read(ctx) > 0 {
        // What the connection still does not want comes back into the
        // (emptied) carry; a consumed carry gives its memory back.
        let mut carry = std::mem::take(&mut socket.carry);
        if !feed(socket, ctx, &mut carry, now, io.tick) {
            io.held.push(id);
        }
    }
    if socket.eof && socket.carry.is_empty() && !tls_plain(socket) {
        socket.eof = false;
        socket.conn.handle_eof(ctx, now);
        settle(&mut socket.conn, ctx, now);
    }
    let tls_ended = socket.tls.as_ref().is_some_and(|t| t.ended);
    if socket.recv == Recv::Paused
        && socket.carry.len() <= CARRY_PAUSE / 2
        && !socket.eof
        && !tls_ended
    {
        if io
            .ring
            .recv_multishot(socket.fd.as_raw_fd(), id.raw())
            .is_err()
        {
            socket.conn.handle_error(ctx);
            return false;
        }
        socket.recv = Recv::Armed;
    }
    transmit(ctx, io, socket, id, now)
}

/// Starts a send over the outbox if none is in flight, or shuts the write
/// side down when asked. `false`: the connection is finished.
fn transmit(
    ctx: &super::context::ConnContext,
    io: &mut Io,
    socket: &mut RingSocket,
    id: ConnId,
    now: Instant,
) -> bool {
    loop {
        match socket.conn.poll_transmit(ctx, now, |_| ()) {
            Transmit::Send(()) => {
                socket.conn.handle_sent(ctx, 0, now);
                if socket.send.is_none() {
                    let started = match socket.tls {
                        Some(_) => start_tls_send(ctx, io, socket, id, now),
                        None => start_send(io, socket, id),
                    };
                    if !started {
                        socket.conn.handle_error(ctx);
                        return false;
                    }
                }
                return true;
            }
            Transmit::Idle => {
                // Ciphertext rustls holds with no reply behind it: the
                // handshake's records.
                let owed = socket.tls.as_ref().is_some_and(|t| t.wants_write());
                if owed && socket.send.is_none() && !start_tls_send(ctx, io, socket, id, now) {
                    socket.conn.handle_error(ctx);
                    return false;
                }
                return true;
            }
            Transmit::Shutdown => {
                if let Some(tls) = &mut socket.tls {
                    // close_notify first; FIN once it (and every record
                    // before it) has been sent: this send's completion
                    // drives the connection here again.
                    tls.close_notify();
                    if socket.send.is_some() {
                        return true;
                    }
                    if tls.wants_write() {
                        if !start_tls_send(ctx, io, socket, id, now) {
                            socket.conn.handle_error(ctx);
                            return false;
                        }
                        return true;
                    }
                }
                // Offered only once the outbox is empty, so no send is in
                // flight: the FIN follows every byte.
                // A plain call, not an SQE: `IORING_OP_SHUTDOWN` is run
                // asynchronously (io-wq) and, it seems, looks the descriptor
                // number up only then, when it may already be closed and
                // reused by the next accept. With the SQE, proxy.rs's cap
                // test saw a fresh connection end before its response in 7
                // of 32 runs; with this call, in none of 35.
                shutdown_write(socket.fd.as_raw_fd());
                socket.conn.handle_shutdown(ctx, now);
            }
            Transmit::Close => return false,
        }
    }
}

/// Encrypts what rustls takes of the outbox and queues a send of every
/// pending record, in a buffer the send's box owns; `false` if it could
/// not be.
fn start_tls_send(
    ctx: &super::context::ConnContext,
    io: &mut Io,
    socket: &mut RingSocket,
    id: ConnId,
    now: Instant,
) -> bool {
    let RingSocket { conn, fd, tls, .. } = socket;
    let Some(tls) = tls else {
        return true;
    };
    let mut send = io.spare.pop().unwrap_or_else(InFlight::new);
    if tls.encrypt_into(conn, ctx, now, &mut send.cipher).is_err() {
        io.give_back(send);
        return false;
    }
    if send.cipher.is_empty() {
        io.give_back(send);
        return true;
    }
    send.offered = send.cipher.len();
    send.started = Instant::now();
    match queue_cipher(io, fd.as_raw_fd(), send, id) {
        Some(send) => {
            socket.send = Some(send);
            true
        }
        None => false,
    }
}

/// Queues a `sendmsg` of the ciphertext `send` has not sent yet; `None`
/// (the box given back) if it could not be.
fn queue_cipher(
    io: &mut Io,
    fd: RawFd,
    mut send: Box<InFlight>,
    id: ConnId,
) -> Option<Box<InFlight>> {
    let rest = &send.cipher[send.cipher_sent..];
    send.iov[0] = libc::iovec {
        iov_base: rest.as_ptr() as *mut libc::c_void,
        iov_len: rest.len(),
    };
    send.msg.msg_iov = send.iov.as_mut_ptr();
    send.msg.msg_iovlen = 1;
    let msg: *const libc::msghdr = &send.msg;
    // SAFETY: the header, iovec and ciphertext are boxed and held in the
    // connection's `send` (or `orphans`) until this send's completion, and
    // nothing touches the ciphertext before then.
    let queued = unsafe { io.ring.send_msg(fd, msg, id.raw()) };
    if queued.is_err() {
        io.give_back(send);
        return None;
    }
    Some(send)
}

/// Queues a `sendmsg` over the outbox's frames; `false` if it could not be.
fn start_send(io: &mut Io, socket: &mut RingSocket, id: ConnId) -> bool {
    let mut send = io.spare.pop().unwrap_or_else(InFlight::new);
    let (count, offered) = {
        let outbox = socket.conn.slot.outbox.borrow();
        let mut slices = [io::IoSlice::new(&[]); MAX_IOVECS];
        let count = outbox.slices_into(&mut slices);
        for (iov, slice) in send.iov.iter_mut().zip(&slices[..count]) {
            iov.iov_base = slice.as_ptr() as *mut libc::c_void;
            iov.iov_len = slice.len();
        }
        (count, slices[..count].iter().map(|s| s.len()).sum())
    };
    if count == 0 {
        io.give_back(send);
        return true;
    }
    send.offered = offered;
    send.started = Instant::now();
    send.msg.msg_iov = send.iov.as_mut_ptr();
    send.msg.msg_iovlen = count as _;
    let msg: *const libc::msghdr = &send.msg;
    // SAFETY: the header and iovecs are boxed and held in `socket.send` (or
    // `orphans`) until this send's completion; the iovecs point into the
    // outbox's frames, which nothing but `handle_sent` (called on that
    // completion) consumes, and which an orphan's slot keeps alive.
    let queued = unsafe { io.ring.send_msg(socket.fd.as_raw_fd(), msg, id.raw()) };
    if queued.is_err() {
        io.give_back(send);
        return false;
    }
    socket.send = Some(send);
    true
}

/// Takes connection `id` out of the table: its receive and send are
/// cancelled, then its socket closed, all as SQEs; a send in flight leaves
/// its box and slot in `orphans` until its completion.
fn remove(
    worker: &Worker,
    io: &mut Io,
    table: &mut Table,
    id: ConnId,
    reason: Option<CloseReason>,
) {
    let socket = table.conns.remove(id.key());
    closed(worker, &socket.conn, id, reason, table.conns.len());
    let RingSocket {
        conn,
        fd,
        recv,
        send,
        ..
    } = socket;
    if matches!(recv, Recv::Armed | Recv::Cancelling) {
        let _ = io.ring.cancel(Op::Recv, id.raw());
    }
    if let Some(send) = send {
        let _ = io.ring.cancel(Op::Send, id.raw());
        io.orphans.insert(id.raw(), (send, conn.slot.clone()));
    }
    let raw = fd.into_raw_fd();
    if io.ring.close(raw, id.raw()).is_err() {
        // SAFETY: `raw` was ours (from `into_raw_fd`) and is closed once.
        unsafe { libc::close(raw) };
    }
}

fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: a valid fd and a pointer to a local int of the size given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// The peer's address (unspecified if the socket no longer knows it).
fn peer_ip(fd: RawFd) -> IpAddr {
    // SAFETY: getpeername writes at most `len` bytes into a zeroed storage.
    unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getpeername(
            fd,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ) != 0
        {
            return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        }
        match i32::from(addr.ss_family) {
            libc::AF_INET => {
                let a = &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes())
            }
            libc::AF_INET6 => {
                let a = &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4)
            }
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }
}
