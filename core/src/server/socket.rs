//! The readiness (epoll) driver of one connection: moves bytes between its
//! socket and its sans-IO state machine ([`Conn`], `conn.rs`).
//!
//! Reads land in the core's read scratch (through rustls under TLS, with the
//! core's TLS scratch for ciphertext) and are handed to
//! [`Conn::handle_read`]; what [`Conn::poll_transmit`] offers goes out with
//! one non-blocking `sendmsg` (or `send` for a single slice) per offer, and
//! the count the socket took goes back with [`Conn::handle_sent`]. So a reply
//! the socket takes at once is sent straight from the core's write scratch,
//! and only the rest is copied to the outbox.
//!
//! TLS lives here, not in [`Conn`]: rustls decrypts into the read scratch
//! and encrypts what is offered (bounded by its buffer limit: past it the
//! offer counts as not taken and stays in the outbox, so the outbound limit
//! still applies), and the close_notify goes out before FIN. Those steps
//! depend on what the socket takes right now, which only this driver knows.
//!
//! Sockets are edge-triggered: `readable` remembers an edge until a call
//! returns `EAGAIN` (or a plain socket fills less than was asked, which
//! means it is empty). A connection that stops reading before that (its
//! per-turn read budget) asks to be driven again next turn.

use std::io::{self, IoSlice, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use super::conn::{Conn, Transmit};
use super::context::ConnContext;
use super::tls::Tls;
use crate::sys::{shutdown_write, try_recv, try_send, try_send_vectored, Transfer};

/// Reads per turn before the connection yields to the others of its core.
const READS_PER_TURN: usize = 4;

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

/// A connection with its socket: the reactor's slab entry.
pub(crate) struct Socket {
    pub conn: Conn,
    fd: OwnedFd,
    /// TLS state for `wss://` listeners.
    tls: Option<Box<Tls>>,
    /// An input edge not yet drained to `EAGAIN`.
    pub readable: bool,
}

impl Socket {
    pub fn new(fd: OwnedFd, tls: Option<Box<Tls>>, conn: Conn) -> Self {
        Self {
            conn,
            fd,
            tls,
            readable: false,
        }
    }

    /// Runs the connection as far as it goes without blocking: kicks and
    /// deadline, what is owed to the socket, then input (each read's replies
    /// sent before the next read).
    pub fn drive(&mut self, ctx: &ConnContext, now: Instant) -> Drive {
        let kicks = self.conn.slot.take_kicks();
        self.conn.handle_kicks(ctx, kicks, now);
        self.conn.handle_timeout(ctx, now);
        if !self.transmit(ctx, now) {
            return Drive::Done;
        }
        let mut budget = READS_PER_TURN;
        while self.readable {
            let want = self.conn.poll_read(ctx);
            if want == 0 {
                break;
            }
            if budget == 0 {
                return Drive::More;
            }
            budget -= 1;
            self.read(ctx, want, now);
            if !self.transmit(ctx, now) {
                return Drive::Done;
            }
        }
        Drive::Idle
    }

    /// One read of at most `want` bytes, fed to the connection.
    fn read(&mut self, ctx: &ConnContext, want: usize, now: Instant) {
        let fd = self.fd.as_raw_fd();
        let mut scratch = ctx.scratch.read.borrow_mut();
        let room = want.min(scratch.len());
        let got = match &mut self.tls {
            None => try_recv(fd, &mut scratch[..room]),
            Some(tls) => tls_recv(
                tls,
                fd,
                &mut ctx.scratch.tls.borrow_mut(),
                &mut scratch[..room],
            ),
        };
        match got {
            Ok(Transfer::Done(0)) | Err(_) => {
                self.readable = false;
                drop(scratch);
                self.conn.handle_eof(ctx, now);
            }
            Ok(Transfer::Done(n)) => {
                // A plain socket that filled less than was asked is empty:
                // the next byte to arrive raises a new edge, so the `recv`
                // that would only say EAGAIN is skipped. (Under TLS a short
                // plaintext read says nothing.)
                if self.tls.is_none() && n < room {
                    self.readable = false;
                }
                self.conn.handle_read(ctx, &mut scratch[..n], now);
            }
            Ok(Transfer::WouldBlock) => self.readable = false,
        }
    }

    /// Sends what the connection offers until the socket stops taking it;
    /// shuts the write side down when asked. `false`: drop the connection.
    fn transmit(&mut self, ctx: &ConnContext, now: Instant) -> bool {
        let fd = self.fd.as_raw_fd();
        loop {
            let tls = self.tls.as_deref_mut();
            match self
                .conn
                .poll_transmit(ctx, now, |slices| send(fd, tls, slices))
            {
                Transmit::Send(Ok(sent)) => {
                    self.conn.handle_sent(ctx, sent, now);
                    if sent == 0 {
                        return true;
                    }
                }
                Transmit::Send(Err(_)) => {
                    self.conn.handle_error(ctx);
                    return false;
                }
                Transmit::Idle => {
                    // Ciphertext rustls still holds (its handshake replies).
                    if let Some(tls) = &mut self.tls {
                        if tls_flush(tls, fd).is_err() {
                            self.conn.handle_error(ctx);
                            return false;
                        }
                    }
                    return true;
                }
                Transmit::Shutdown => {
                    if let Some(tls) = &mut self.tls {
                        tls.close_notify();
                        if !matches!(tls_flush(tls, fd), Ok(true)) {
                            // The socket is full: FIN after the alert, on the next writable edge.
                            return true;
                        }
                    }
                    shutdown_write(fd);
                    self.conn.handle_shutdown(ctx, now);
                    // Whatever was already readable must be drained now: no new edge will come.
                    self.readable = true;
                }
                Transmit::Close => return false,
            }
        }
    }
}

/// Sends what the socket (or rustls, within its buffer limit) takes of
/// `slices` now; 0 when it takes nothing.
fn send(fd: RawFd, tls: Option<&mut Tls>, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    let sent = match tls {
        Some(tls) => {
            // Ciphertext already encrypted goes first.
            if !tls_flush(tls, fd)? {
                return Ok(0);
            }
            let accepted = tls.write_plain(slices)?;
            tls_flush(tls, fd)?;
            return Ok(accepted);
        }
        None if slices.len() == 1 => try_send(fd, &slices[0])?,
        None => try_send_vectored(fd, slices)?,
    };
    Ok(match sent {
        Transfer::Done(n) => n,
        Transfer::WouldBlock => 0,
    })
}

/// Reads plaintext into `plain`, pulling ciphertext from the socket through
/// `cipher` as needed and answering handshake records at once. `Done(0)` is
/// the end of the stream.
fn tls_recv(tls: &mut Tls, fd: RawFd, cipher: &mut [u8], plain: &mut [u8]) -> io::Result<Transfer> {
    loop {
        if let Some(n) = tls.read_plain(plain)? {
            return Ok(Transfer::Done(n));
        }
        let n = match try_recv(fd, cipher)? {
            Transfer::Done(0) => return Ok(Transfer::Done(0)),
            Transfer::Done(n) => n,
            Transfer::WouldBlock => return Ok(Transfer::WouldBlock),
        };
        if let Err(e) = tls.handle_ciphertext(&cipher[..n]) {
            // Tell the peer why (an alert), then fail.
            let _ = tls_flush(tls, fd);
            return Err(e);
        }
        tls_flush(tls, fd)?;
    }
}

/// Sends the ciphertext rustls holds; `Ok(true)` when none is left.
pub(super) fn tls_flush(tls: &mut Tls, fd: RawFd) -> io::Result<bool> {
    let mut socket = SocketWriter(fd);
    while tls.wants_write() {
        match tls.write_ciphertext_into(&mut socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A non-blocking socket as the `Write` rustls's `write_tls` wants.
struct SocketWriter(RawFd);

impl Write for SocketWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match try_send(self.0, buf)? {
            Transfer::Done(n) => Ok(n),
            Transfer::WouldBlock => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
