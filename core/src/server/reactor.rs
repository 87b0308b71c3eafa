//! One core's event loop for its sockets: the listener and every connection
//! sit in an epoll set; the core's monoio runtime (io_uring `PollAdd`, or its
//! epoll driver) waits on that set's fd, on the kick queue, on the timer and
//! on shutdown, in one `select!` per turn.
//!
//! Each turn: accept what the listener has, drive every connection with an
//! edge, a kick (pub/sub output, overflow, shutdown) or leftover input, and,
//! every `timer_tick`, every connection whose deadline passed (taken from a
//! deadline heap, so a tick costs the connections due, not a walk over
//! all of them: `deadlines.rs`). Connections
//! live in a slab owned by this loop alone; the pub/sub hub reaches them only
//! through their [`Slot`]. So an idle connection is one slab entry, its slot,
//! and its boxed session: no task, no future, no buffer.

use std::future::poll_fn;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::conn::Conn;
use super::deadlines::{self, Deadlines, Driven};
use super::drain::{closed, stopped, Drain, DrainStep};
use super::epoll::{Epoll, Ready};
use super::metrics::CloseReason;
use super::socket::{Drive, Socket};
use super::summary;
use super::tls::Tls;
use super::worker::Worker;
use crate::mailbox::{ConnId, Slot};
use crate::rt::yield_now;

/// The epoll token of the listener; connection tokens are their [`ConnId`]s,
/// whose generation half is never all ones.
const LISTENER: u64 = u64::MAX;
/// The epoll token of the server API's own listener (`api.listen`).
const API_LISTENER: u64 = u64::MAX - 1;
/// Connections accepted per turn before the others get their turn.
const ACCEPTS_PER_TURN: usize = 64;
/// Events taken from epoll per turn.
const EVENTS_PER_TURN: usize = 1024;

type Table = deadlines::Table<Socket>;

impl Driven for Socket {
    fn conn(&self) -> &Conn {
        &self.conn
    }
    fn conn_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

pub(crate) async fn run(
    worker: Rc<Worker>,
    listener: TcpListener,
    api_listener: Option<TcpListener>,
    shutdown: flume::Receiver<()>,
) {
    if let Err(e) = serve(&worker, listener, api_listener, shutdown).await {
        warn!(worker = worker.id, "event loop failed: {e}");
    }
}

async fn serve(
    worker: &Rc<Worker>,
    listener: TcpListener,
    api_listener: Option<TcpListener>,
    shutdown: flume::Receiver<()>,
) -> io::Result<()> {
    let epoll = Epoll::new()?;
    epoll.add(listener.as_raw_fd(), LISTENER)?;
    if let Some(api) = &api_listener {
        epoll.add(api.as_raw_fd(), API_LISTENER)?;
    }

    // monoio waits on a duplicate of the epoll fd (it owns and closes its copy).
    // SAFETY: dup of a valid fd we own; the result is owned by the new OwnedFd.
    let dup = unsafe { libc::fcntl(epoll.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh fd owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(dup) };
    let watch = monoio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(owned))?;

    let mut table = Table::with_capacity(worker.config.limits.max_connections_per_worker);
    let mut events = Vec::with_capacity(EVENTS_PER_TURN);
    let mut ready: Vec<Ready> = Vec::with_capacity(EVENTS_PER_TURN);
    let mut kicked: Vec<ConnId> = Vec::new();
    let mut again: Vec<ConnId> = Vec::new();
    let mut accept_ready = false;
    let mut api_accept_ready = false;
    let tick = worker.config.timeouts.timer_tick;
    let mut next_sweep = Instant::now() + tick;
    let mut deadlines = Deadlines::new(Instant::now(), tick);
    let mut drain = Drain::default();
    let mut stop = false;

    loop {
        ready.clear();
        epoll.poll_into(&mut events, &mut ready)?;
        let now = Instant::now();
        let mut work = std::mem::take(&mut again);
        for event in &ready {
            if event.token == LISTENER {
                accept_ready = true;
            } else if event.token == API_LISTENER {
                api_accept_ready = true;
            } else {
                let id = ConnId::from_raw(event.token);
                if let Some(conn) = table.get_mut(id) {
                    conn.readable |= event.readable;
                    work.push(id);
                }
            }
        }
        if accept_ready {
            accept_ready = accept(worker, &listener, false, &epoll, &mut table, now, &mut work);
        }
        if let (true, Some(api)) = (api_accept_ready, &api_listener) {
            api_accept_ready = accept(worker, api, true, &epoll, &mut table, now, &mut work);
        }
        worker.kicks.drain_into(&mut kicked);
        work.append(&mut kicked);
        if now >= next_sweep {
            next_sweep = now + tick;
            let lines = worker.ctx.summary.borrow_mut().flush(now);
            summary::emit(worker.id, worker.config.log.summary_interval, &lines);
            deadlines.expire(now, &mut table, &mut work);
        }
        for id in work.drain(..) {
            let Some(conn) = table.get_mut(id) else {
                continue;
            };
            let was_upgraded = conn.conn.upgraded;
            let drive = conn.drive(&worker.ctx, now);
            if conn.conn.upgraded && !was_upgraded {
                debug!(worker = worker.id, conn = id.raw(), "upgraded");
            }
            match drive {
                Drive::Idle => deadlines.arm(id, &mut conn.conn),
                Drive::More => {
                    deadlines.arm(id, &mut conn.conn);
                    again.push(id);
                }
                Drive::Done => remove(worker, &mut table, id, None),
            }
        }
        // `again` may hold duplicates of ids driven twice in a turn; harmless.
        again.dedup();

        stop |= shutdown.is_disconnected() || shutdown.try_recv().is_ok();
        let slots = table.conns.iter().map(|(_, s)| &*s.conn.slot);
        match drain.step(worker, stop, now, table.conns.len(), slots) {
            DrainStep::Serve => {}
            DrainStep::Started => continue,
            DrainStep::Done => break,
            DrainStep::TimedOut => {
                // `left`: WebSockets whose close did not finish; `dropped`:
                // every socket still held, those and plain HTTP ones.
                let left = worker.ctx.metrics.upgraded_current.get();
                let dropped = drop_remaining(worker, &mut table);
                drain.timed_out(worker, left, dropped);
                break;
            }
        }
        worker.ctx.metrics.loop_turn.record(now.elapsed());

        if !again.is_empty() || accept_ready || api_accept_ready {
            yield_now().await;
            continue;
        }
        let sleep_until = drain.deadline().map_or(next_sweep, |d| d.min(next_sweep));
        let kicks = &worker.kicks;
        monoio::select! {
            _ = watch.readable(false) => {}
            _ = poll_fn(|cx| kicks.poll_ready(cx)) => {}
            _ = monoio::time::sleep_until(sleep_until.into()) => {}
            _ = shutdown.recv_async(), if drain.deadline().is_none() => stop = true,
        }
    }
    stopped(worker);
    Ok(())
}

/// Accepts up to a turn's worth of connections; true when more may be
/// waiting. `api`: the server API's own listener (plain TCP, API only).
fn accept(
    worker: &Worker,
    listener: &TcpListener,
    api: bool,
    epoll: &Epoll,
    table: &mut Table,
    now: Instant,
    work: &mut Vec<ConnId>,
) -> bool {
    for _ in 0..ACCEPTS_PER_TURN {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS: the connection waits in the backlog;
                // retry on the next turn rather than spinning on the error,
                // and say so once per episode, not once per turn.
                if !worker.accept_failing.replace(true) {
                    warn!(
                        worker = worker.id,
                        "accept failed (retrying quietly until it works): {e}"
                    );
                }
                return false;
            }
        };
        if worker.accept_failing.replace(false) {
            info!(worker = worker.id, "accepting again");
        }
        let _ = stream.set_nodelay(true);
        if stream.set_nonblocking(true).is_err() {
            continue;
        }
        let fd = OwnedFd::from(stream);
        let entry = table.conns.vacant_entry();
        table.generation = table.generation.wrapping_add(1) % u32::MAX;
        let id = ConnId::new(table.generation, entry.key());
        if let Err(e) = epoll.add(fd.as_raw_fd(), id.raw()) {
            warn!(worker = worker.id, "cannot watch a new connection: {e}");
            continue;
        }
        let slot = Rc::new(Slot::new(id, worker.kicks.clone()));
        let tls = match &worker.tls {
            _ if api => None,
            None => None,
            Some(store) => match Tls::new(store) {
                Ok(tls) => Some(Box::new(tls)),
                Err(e) => {
                    warn!(worker = worker.id, "cannot start TLS for a connection: {e}");
                    continue;
                }
            },
        };
        let conn = Conn::new(slot, peer.ip(), api, &worker.ctx, now);
        entry.insert(Socket::new(fd, tls, conn));
        let m = &worker.ctx.metrics;
        m.connections_opened.set(m.connections_opened.get() + 1);
        m.connections_current.set(table.conns.len() as u64);
        debug!(worker = worker.id, conn = id.raw(), %peer, "accepted");
        work.push(id);
    }
    true
}

/// Drops every connection still in the table, each counted (and logged at
/// debug) as closed by [`CloseReason::DrainTimeout`]: what the drain does
/// when its deadline passes. Returns how many there were.
fn drop_remaining(worker: &Worker, table: &mut Table) -> usize {
    let ids: Vec<ConnId> = table.conns.iter().map(|(_, s)| s.conn.slot.id()).collect();
    for &id in &ids {
        remove(worker, table, id, Some(CloseReason::DrainTimeout));
    }
    ids.len()
}

/// Takes connection `id` out of the table and counts its close: for
/// `reason`, or, when `None`, for the reason the connection recorded.
fn remove(worker: &Worker, table: &mut Table, id: ConnId, reason: Option<CloseReason>) {
    // Dropping the connection closes its socket, which also leaves the epoll set.
    let socket = table.conns.remove(id.key());
    closed(worker, &socket.conn, id, reason, table.conns.len());
}
