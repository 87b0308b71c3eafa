//! TLS (`wss://`) on the completion path (`ring_reactor.rs`): the rustls
//! session of one connection between the core's receive buffers and
//! [`Conn`], and between the outbox and the connection's send.
//!
//! - Receive: ciphertext from a completion is handed to rustls one read at
//!   a time ([`Tls::take_ciphertext`], about 4 KiB or the rest of a record),
//!   and what that decrypts goes to [`Conn::handle_read`] (as much as
//!   [`Conn::poll_read`] wants, through the core's read scratch) before the
//!   next read. So rustls never holds more than one record of plaintext, a
//!   record split across completions is simply finished by the next one, and
//!   ciphertext the connection does not want yet waits, in order, in the
//!   driver's carry, as plain bytes do.
//! - Send: only when no send is in flight, the outbox's plaintext goes
//!   into rustls (up to its buffer limit; the rest stays in the outbox, so
//!   the outbound limit still applies) and every pending record is written
//!   into a buffer the send owns ([`RingTls::encrypt_into`]). The buffer
//!   lives in the send's box, which a connection holds only while that send
//!   is in flight: an idle TLS connection holds no send buffer.
//! - End: the peer's close_notify ends the stream like EOF; a TLS error
//!   queues rustls's alert, which the driver sends at once if nothing is in
//!   flight, and ends the stream the same way (the readiness path's
//!   accounting: the connection closes on [`Conn::handle_eof`]). Anything
//!   received after the end is dropped. Our close_notify goes out before FIN.

use std::io::{self, IoSlice};
use std::time::Instant;

use super::conn::Conn;
use super::context::ConnContext;
use super::tls::{Tls, TlsStore};
use crate::mailbox::MAX_IOVECS;

/// Plaintext handed to a connection per `handle_read`.
const FEED_SLICE: usize = 16 * 1024;

/// One connection's TLS state on the completion path (boxed beside the
/// connection, as the readiness path boxes [`Tls`]).
pub(super) struct RingTls {
    tls: Tls,
    /// rustls may hold decrypted bytes (or the peer's close_notify) that
    /// the connection has not taken yet.
    plain: bool,
    /// Our close_notify is queued (it is queued once).
    notified: bool,
    /// The stream has ended (close_notify or a TLS error): nothing more is
    /// read.
    pub ended: bool,
}

impl RingTls {
    pub fn new(store: &TlsStore) -> Result<Box<Self>, rustls::Error> {
        Ok(Box::new(Self {
            tls: Tls::new(store)?,
            plain: false,
            notified: false,
            ended: false,
        }))
    }

    /// Whether decrypted bytes wait for the connection.
    pub fn has_plaintext(&self) -> bool {
        self.plain
    }

    /// Whether ciphertext (handshake records, an alert, encrypted replies)
    /// waits to go out.
    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// Decrypts `cipher` and hands the plaintext to `conn` as far as it
    /// wants it, settling each read's reply with `settle`; `may_feed` is
    /// asked before each hand-over (input held behind a send in flight).
    /// Returns how many bytes of `cipher` were taken (all of them once the
    /// stream has ended) and whether input was held back.
    pub fn feed(
        &mut self,
        conn: &mut Conn,
        ctx: &ConnContext,
        cipher: &[u8],
        now: Instant,
        mut settle: impl FnMut(&mut Conn),
        mut may_feed: impl FnMut(&Conn) -> bool,
    ) -> (usize, bool) {
        let mut rest = cipher;
        while !self.ended {
            if self.plain {
                let want = conn.poll_read(ctx);
                if want == 0 {
                    break;
                }
                if !may_feed(conn) {
                    return (cipher.len() - rest.len(), true);
                }
                let mut scratch = ctx.scratch.read.borrow_mut();
                let room = want.min(scratch.len()).min(FEED_SLICE);
                match self.tls.read_plain(&mut scratch[..room]) {
                    Ok(Some(0)) | Err(_) => self.ended = true,
                    Ok(Some(n)) => {
                        conn.handle_read(ctx, &mut scratch[..n], now);
                        drop(scratch);
                        settle(conn);
                    }
                    Ok(None) => self.plain = false,
                }
                continue;
            }
            if rest.is_empty() || conn.poll_read(ctx) == 0 {
                break;
            }
            match self.tls.take_ciphertext(&mut rest) {
                Ok(plain) => self.plain = plain,
                Err(_) => self.ended = true,
            }
        }
        if self.ended {
            self.plain = false;
            return (cipher.len(), false);
        }
        (cipher.len() - rest.len(), false)
    }

    /// Moves what rustls takes of `conn`'s outbox into it (answering
    /// [`Conn::handle_sent`] with the plaintext taken, as the readiness
    /// path does), then appends every pending record to `cipher`.
    pub fn encrypt_into(
        &mut self,
        conn: &mut Conn,
        ctx: &ConnContext,
        now: Instant,
        cipher: &mut Vec<u8>,
    ) -> io::Result<()> {
        let taken = {
            let outbox = conn.slot.outbox.borrow();
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let count = outbox.slices_into(&mut slices);
            if count == 0 {
                0
            } else {
                self.tls.write_plain(&slices[..count])?
            }
        };
        if taken > 0 {
            conn.handle_sent(ctx, taken, now);
        }
        while self.tls.wants_write() {
            self.tls.write_ciphertext_into(cipher)?;
        }
        Ok(())
    }

    /// Queues our close_notify (once); it goes out with the next send.
    pub fn close_notify(&mut self) {
        if !self.notified {
            self.notified = true;
            self.tls.close_notify();
        }
    }

    /// Sends what rustls holds (a TLS error's alert) with plain
    /// non-blocking calls, best effort: the connection is ending, and no
    /// send of it may be in flight.
    pub fn flush_now(&mut self, fd: std::os::fd::RawFd) {
        let _ = super::socket::tls_flush(&mut self.tls, fd);
    }
}
