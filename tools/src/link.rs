//! A running client connection: a shared outbound buffer drained by a writer
//! task, and a read loop that hands each message to a scenario's [`Handler`].
//!
//! Why two tasks: an open-loop sender must never wait for a socket. Senders
//! (the pacing loop, a handler answering an echo, the read loop answering a
//! ping) append masked frames to [`Link`]'s buffer and return at once; the
//! connection's writer task wakes, swaps the buffer for its spare one and
//! writes it whole, so everything queued during one write goes out in the
//! next (one `send` per loop turn per connection, whatever the rate). A
//! server that stops reading makes the buffer grow; past `max_backlog` bytes
//! further sends are refused ([`SendError::Backlogged`]) and counted, so a
//! stuck server cannot eat the generator's memory.
//!
//! Lifecycle: `Open` → (we send close) `Closing` → `Done` (the read loop has
//! ended). The writer flushes what is queued and exits once `Done`; dropping
//! its write half sends FIN. [`Link::drop_now`] shuts the socket down both
//! ways at once, without a close frame (a storm's simulated network drop):
//! the pending read returns 0 and the read loop ends with
//! [`LinkEnd::Dropped`].
//!
//! Memory of an idle link: the socket, the read buffer held by the pending
//! receive, the decoder, and an empty outbound buffer (allocated on first use).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use monoio::io::{
    AsyncWriteRentExt, CancelHandle, CancelableAsyncReadRent, OwnedReadHalf, OwnedWriteHalf,
    Splitable,
};
use monoio::net::TcpStream;
use ringcast::proto::decoder::{Decoder, Event, Limits};
use ringcast::proto::error::ProtocolError;
use ringcast::proto::frame::{encode_masked_frame_into, OpCode};

use crate::client::{encode_masked_close_into, io_cause, new_mask, Connection};

/// Largest message the generator accepts from a server, in bytes.
pub const MAX_INCOMING: u64 = 16 * 1024 * 1024;

/// Outbound bytes a link may queue before sends are refused (default).
pub const DEFAULT_MAX_BACKLOG: usize = 1024 * 1024;

/// Where a link is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Our close frame is queued: nothing else may be sent.
    Closing,
    /// The read loop has ended: the writer flushes and exits.
    Done,
}

/// Why a send was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The link is closing or closed.
    Closed,
    /// More than the backlog limit is already queued.
    Backlogged,
}

impl SendError {
    pub fn cause(self) -> &'static str {
        match self {
            SendError::Closed => "not sent: connection closed",
            SendError::Backlogged => "not sent: outbound backlog full",
        }
    }
}

/// The sending side of a connection, shared by its tasks (one thread: `Rc`).
pub struct Link {
    /// Frames queued for the writer. Appended to by senders, swapped out whole
    /// by the writer task.
    out: RefCell<Vec<u8>>,
    /// The writer task, parked while `out` is empty.
    writer: Cell<Option<Waker>>,
    state: Cell<State>,
    /// Set by [`Link::drop_now`]: the EOF that follows is ours.
    dropped: Cell<bool>,
    /// The first write error, kept for the report.
    write_error: RefCell<Option<String>>,
    max_backlog: usize,
    fd: RawFd,
}

impl Link {
    /// Queues a masked data frame with `payload`.
    pub fn send(&self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        self.check()?;
        encode_masked_frame_into(
            &mut self.out.borrow_mut(),
            opcode,
            true,
            new_mask(),
            payload,
        );
        self.wake_writer();
        Ok(())
    }

    /// Queues bytes the caller built (already framed and masked).
    pub fn send_with(&self, build: impl FnOnce(&mut Vec<u8>)) -> Result<(), SendError> {
        self.check()?;
        build(&mut self.out.borrow_mut());
        self.wake_writer();
        Ok(())
    }

    /// Queues our close frame; nothing may be sent after it.
    pub fn close(&self, code: u16) {
        if self.state.get() != State::Open {
            return;
        }
        encode_masked_close_into(&mut self.out.borrow_mut(), Some(code));
        self.state.set(State::Closing);
        self.wake_writer();
    }

    /// Shuts the socket down both ways now (no close frame): the server sees
    /// the connection drop, and our read loop ends with [`LinkEnd::Dropped`].
    pub fn drop_now(&self) {
        self.dropped.set(true);
        self.state.set(State::Done);
        // SAFETY: `fd` belongs to the stream this link's tasks own, which
        // stays open until both halves are dropped; shutdown only changes the
        // socket's state and never closes or reuses the descriptor.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
        self.wake_writer();
    }

    /// True until our close is queued or the connection ended.
    pub fn is_open(&self) -> bool {
        self.state.get() == State::Open
    }

    /// Bytes queued and not yet handed to the kernel.
    pub fn backlog(&self) -> usize {
        self.out.borrow().len()
    }

    /// The first write error, if any.
    pub fn write_error(&self) -> Option<String> {
        self.write_error.borrow().clone()
    }

    fn check(&self) -> Result<(), SendError> {
        if self.state.get() != State::Open {
            return Err(SendError::Closed);
        }
        if self.out.borrow().len() > self.max_backlog {
            return Err(SendError::Backlogged);
        }
        Ok(())
    }

    fn wake_writer(&self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    fn finish(&self) {
        self.state.set(State::Done);
        self.wake_writer();
    }
}

/// How a link's read loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEnd {
    /// The thread cancelled the read (end of run, after the close timeout).
    Cancelled,
    /// The server sent a close frame (its code): the answer to ours, or its
    /// own, which we echoed.
    Closed { code: Option<u16>, by_server: bool },
    /// We dropped the connection on purpose ([`Link::drop_now`]).
    Dropped,
    /// The server closed TCP without a close frame.
    Eof,
    /// A socket error (label from [`io_cause`]).
    Io(String),
    /// The server broke RFC 6455; we sent a close frame with its code.
    Protocol(ProtocolError),
}

impl LinkEnd {
    /// A short, stable label for counting how connections ended.
    pub fn cause(&self) -> String {
        match self {
            LinkEnd::Cancelled => "no close frame (timeout)".to_string(),
            LinkEnd::Closed {
                code: Some(c),
                by_server: true,
            } => format!("closed by server {c}"),
            LinkEnd::Closed {
                code: None,
                by_server: true,
            } => "closed by server (no code)".to_string(),
            LinkEnd::Closed { .. } => "closed".to_string(),
            LinkEnd::Dropped => "dropped".to_string(),
            LinkEnd::Eof => "EOF from server".to_string(),
            LinkEnd::Io(cause) => cause.clone(),
            LinkEnd::Protocol(e) => format!("protocol error: {e}"),
        }
    }

    /// True for the ends a run expects: a completed close handshake that we
    /// started, or our own drop.
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            LinkEnd::Closed {
                by_server: false,
                ..
            } | LinkEnd::Dropped
        )
    }
}

/// What a scenario does with the messages of one connection.
pub trait Handler {
    /// A whole text or binary message. `now_ns` is when the read that carried
    /// it completed (ns since the run's time base).
    fn on_message(&mut self, link: &Link, data: &[u8], text: bool, now_ns: u64);

    /// A ping arrived (already answered).
    fn on_ping(&mut self) {}
}

/// Splits an established connection into a [`Link`] and its writer task,
/// and returns the link and what the read loop needs.
pub fn start(conn: Connection, max_backlog: usize) -> (Rc<Link>, Reader) {
    let (stream, mut decoder, leftover) = conn.into_parts();
    decoder.set_limits(Limits {
        max_frame_size: MAX_INCOMING,
        max_message_size: MAX_INCOMING,
    });
    let fd = stream.as_raw_fd();
    let (read, write) = stream.into_split();
    let link = Rc::new(Link {
        out: RefCell::new(Vec::new()),
        writer: Cell::new(None),
        state: Cell::new(State::Open),
        dropped: Cell::new(false),
        write_error: RefCell::new(None),
        max_backlog,
        fd,
    });
    monoio::spawn(write_loop(Rc::clone(&link), write));
    let reader = Reader {
        read,
        decoder,
        pending: leftover,
    };
    (link, reader)
}

/// The receiving side, driven by [`Reader::run`].
pub struct Reader {
    read: OwnedReadHalf<TcpStream>,
    decoder: Decoder,
    /// Bytes that followed the handshake, decoded before the first read.
    pending: Vec<u8>,
}

impl Reader {
    /// Reads until the connection ends, answering pings and close frames and
    /// handing every message to `handler`. `base` is the run's time base;
    /// `buf_size` the read buffer. Always leaves the link `Done`.
    pub async fn run<H: Handler>(
        mut self,
        link: &Rc<Link>,
        handler: &mut H,
        base: Instant,
        buf_size: usize,
        cancel: CancelHandle,
    ) -> LinkEnd {
        let end = self.read_loop(link, handler, base, buf_size, cancel).await;
        if let LinkEnd::Protocol(e) = &end {
            if link.state.get() == State::Open {
                encode_masked_close_into(&mut link.out.borrow_mut(), Some(e.close_code().0));
            }
        }
        link.finish();
        end
    }

    async fn read_loop<H: Handler>(
        &mut self,
        link: &Rc<Link>,
        handler: &mut H,
        base: Instant,
        buf_size: usize,
        cancel: CancelHandle,
    ) -> LinkEnd {
        let mut buf = std::mem::take(&mut self.pending);
        buf.reserve(buf_size.saturating_sub(buf.len()));
        loop {
            if !buf.is_empty() {
                let now_ns = nanos_since(base);
                if let Some(end) = self.handle_input(link, handler, &mut buf, now_ns) {
                    return end;
                }
                buf.clear();
            }
            let (res, returned) = self.read.cancelable_read(buf, cancel.clone()).await;
            buf = returned;
            crate::pace::note_activity();
            match res {
                Ok(0) if link.dropped.get() => return LinkEnd::Dropped,
                Ok(0) => return LinkEnd::Eof,
                Ok(_) => {}
                Err(_) if link.dropped.get() => return LinkEnd::Dropped,
                Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => return LinkEnd::Cancelled,
                Err(e) => return LinkEnd::Io(io_cause(&e)),
            }
        }
    }

    /// Decodes all of `input`; `Some` when the connection is over.
    fn handle_input<H: Handler>(
        &mut self,
        link: &Link,
        handler: &mut H,
        input: &mut [u8],
        now_ns: u64,
    ) -> Option<LinkEnd> {
        let mut input = input;
        while !input.is_empty() {
            let decoded = match self.decoder.decode(input) {
                Ok(d) => d,
                Err(e) => return Some(LinkEnd::Protocol(e)),
            };
            match decoded.event {
                Some(Event::Text(text)) => handler.on_message(link, text.as_bytes(), true, now_ns),
                Some(Event::Binary(data)) => handler.on_message(link, data, false, now_ns),
                Some(Event::Ping(payload)) => {
                    // Pongs go out even while closing is not yet done; after
                    // our close frame nothing may follow it, so skip them then.
                    if link.state.get() == State::Open {
                        encode_masked_frame_into(
                            &mut link.out.borrow_mut(),
                            OpCode::Pong,
                            true,
                            new_mask(),
                            payload,
                        );
                        link.wake_writer();
                    }
                    handler.on_ping();
                }
                Some(Event::Close(frame)) => {
                    let code = frame.map(|f| f.code.0);
                    let by_server = link.state.get() == State::Open;
                    if by_server {
                        encode_masked_close_into(&mut link.out.borrow_mut(), code);
                    }
                    return Some(LinkEnd::Closed { code, by_server });
                }
                Some(Event::Pong(_)) | None => {}
            }
            let consumed = decoded.consumed;
            input = &mut input[consumed..];
        }
        self.decoder.reclaim();
        None
    }
}

/// Nanoseconds from `base` to now.
pub fn nanos_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Drains the link's buffer to the socket until the link is `Done` and empty.
async fn write_loop(link: Rc<Link>, mut write: OwnedWriteHalf<TcpStream>) {
    let mut spare = Vec::new();
    loop {
        WaitForWork(&link).await;
        if link.out.borrow().is_empty() {
            break; // Done, nothing left to send.
        }
        std::mem::swap(&mut *link.out.borrow_mut(), &mut spare);
        let (res, returned) = write.write_all(spare).await;
        spare = returned;
        crate::pace::note_activity();
        spare.clear();
        if let Err(e) = res {
            if !link.dropped.get() {
                link.write_error.replace(Some(io_cause(&e)));
            }
            link.out.borrow_mut().clear();
            link.state.set(State::Done);
            break;
        }
        // Give back a buffer that a burst grew large.
        if spare.capacity() > 64 * 1024 {
            spare = Vec::new();
        }
    }
    // Dropping `write` shuts down the write side (FIN).
}

/// Ready when the link has bytes to send or is `Done`.
struct WaitForWork<'a>(&'a Link);

impl Future for WaitForWork<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let link = self.0;
        if !link.out.borrow().is_empty() || link.state.get() == State::Done {
            return Poll::Ready(());
        }
        link.writer.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}
