//! A connection's outbound queue: the bytes its socket has not taken yet.
//!
//! Frames are kept as [`Bytes`], so a push that goes to ten thousand
//! subscribers is ten thousand reference counts, not ten thousand copies, and
//! a flush hands the kernel several frames in one `sendmsg` (the batch).
//! The queue is empty, and holds no allocation, whenever the socket keeps up;
//! its size is bounded by `max_outbound_bytes` (the connection closes past it).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::RawFd;

use bytes::{Buf, Bytes};

use crate::sys::{try_send_vectored, Transfer};

/// Frames per `sendmsg`: enough to batch a loop turn's pushes, well under IOV_MAX.
pub const MAX_IOVECS: usize = 64;

#[derive(Default)]
pub struct Outbox {
    frames: VecDeque<Bytes>,
    bytes: usize,
}

/// What one flush did, for the batch-size figures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub calls: u64,
    pub frames: u64,
    pub bytes: u64,
}

impl Outbox {
    pub fn push(&mut self, frame: Bytes) {
        if !frame.is_empty() {
            self.bytes += frame.len();
            self.frames.push_back(frame);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// Frames queued.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Points `slices` at the queued frames, in order, as many as fit;
    /// returns how many it filled. A send over them is answered with
    /// [`Outbox::consume`].
    pub fn slices_into<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut count = 0;
        for (slice, frame) in slices.iter_mut().zip(&self.frames) {
            *slice = IoSlice::new(frame);
            count += 1;
        }
        count
    }

    /// Drops the first `sent` bytes (sent by the socket); returns how many
    /// whole frames that finished. An emptied queue gives its memory back.
    pub fn consume(&mut self, sent: usize) -> u64 {
        let mut frames = 0;
        self.consume_counting(sent, &mut frames);
        if self.frames.is_empty() {
            self.frames = VecDeque::new();
        }
        frames
    }

    /// Takes the first queued frame (tests read replies this way).
    pub fn pop_front(&mut self) -> Option<Bytes> {
        let frame = self.frames.pop_front()?;
        self.bytes -= frame.len();
        Some(frame)
    }

    /// Drops everything queued (benches use it to reset between rounds).
    pub fn clear(&mut self) {
        *self = Outbox::default();
    }

    /// Sends what the socket takes now. Whole frames sent count in `frames`.
    pub fn flush(&mut self, fd: RawFd) -> io::Result<Flushed> {
        self.flush_with(|slices| try_send_vectored(fd, slices))
    }

    /// [`Outbox::flush`] through any vectored writer (TLS uses it).
    pub fn flush_with(
        &mut self,
        mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<Transfer>,
    ) -> io::Result<Flushed> {
        let mut done = Flushed::default();
        while !self.frames.is_empty() {
            // On the stack: a flush allocates nothing.
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let count = self.slices_into(&mut slices);
            let sent = match write(&slices[..count])? {
                Transfer::Done(n) => n,
                Transfer::WouldBlock => break,
            };
            done.calls += 1;
            done.bytes += sent as u64;
            self.consume_counting(sent, &mut done.frames);
        }
        if self.frames.is_empty() {
            // An idle connection holds no queue memory.
            self.frames = VecDeque::new();
        }
        Ok(done)
    }

    fn consume_counting(&mut self, mut sent: usize, frames: &mut u64) {
        self.bytes -= sent;
        while sent > 0 {
            let Some(front) = self.frames.front_mut() else {
                break;
            };
            if sent >= front.len() {
                sent -= front.len();
                self.frames.pop_front();
                *frames += 1;
            } else {
                front.advance(sent);
                sent = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn partial_sends_keep_order_and_count() {
        let mut outbox = Outbox::default();
        outbox.push(Bytes::from_static(b"abc"));
        outbox.push(Bytes::from_static(b""));
        outbox.push(Bytes::from_static(b"defg"));
        assert_eq!(outbox.len(), 7);
        let mut frames = 0;
        outbox.consume_counting(4, &mut frames);
        assert_eq!((outbox.len(), frames), (3, 1));
        assert_eq!(outbox.frames.front().map(|b| &b[..]), Some(&b"efg"[..]));
        outbox.consume_counting(3, &mut frames);
        assert!(outbox.is_empty());
        assert_eq!(frames, 2);
    }

    #[test]
    fn flush_writes_many_frames_in_one_call() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let mut outbox = Outbox::default();
        for i in 0..10u8 {
            outbox.push(Bytes::from(vec![i; 100]));
        }
        let done = outbox.flush(server.as_raw_fd()).expect("flush");
        assert_eq!(
            done,
            Flushed {
                calls: 1,
                frames: 10,
                bytes: 1000
            }
        );
        assert!(outbox.is_empty());
        let mut got = vec![0u8; 1000];
        client.read_exact(&mut got).expect("read");
        assert!(got
            .chunks(100)
            .enumerate()
            .all(|(i, c)| c.iter().all(|b| *b == i as u8)));
    }
}
