//! A connection's outbound queue: the bytes its socket has not taken yet.
//!
//! A frame is queued either as this connection's own [`Bytes`] (a reply, an
//! echo) or as a push shared by its core's subscribers ([`Queued::Shared`]:
//! one `Rc` per core around the frame's `Bytes`). So a push that goes to ten
//! thousand subscribers of one core is one atomic count for the core and ten
//! thousand plain `Rc` increments, never a copy, and a flush hands the kernel
//! several frames in one `sendmsg` (the batch). Both kinds stay where they are
//! in memory until consumed, so a completion driver's iovecs over them stay
//! valid while its send is in flight.
//! The queue is empty, and holds no allocation, whenever the socket keeps up;
//! its size is bounded by `max_outbound_bytes` (the connection closes past it).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::RawFd;
use std::rc::Rc;

use bytes::{Buf, Bytes};

use crate::sys::{try_send_vectored, Transfer};

/// Frames per `sendmsg`: enough to batch a loop turn's pushes, well under IOV_MAX.
pub const MAX_IOVECS: usize = 64;

#[derive(Default)]
pub struct Outbox {
    frames: VecDeque<Queued>,
    bytes: usize,
}

/// One queued frame, as the socket has not taken it yet.
pub enum Queued {
    /// Bytes only this connection sends (a reply, an echo, a frame
    /// compressed with its own deflate stream); a partial send advances it.
    Own(Bytes),
    /// A push shared with the core's other subscribers: the hub wraps each
    /// frame it receives once in an `Rc` and every local subscriber's outbox
    /// clones that, a non-atomic count in place of an atomic one on the
    /// frame's shared cache line. The frame itself is never advanced (the
    /// others still need all of it): `sent` counts what of it this
    /// connection has sent.
    Shared { frame: Rc<Bytes>, sent: usize },
}

impl Queued {
    /// `frame` shared: one more `Rc` count, no atomic operation.
    pub fn shared(frame: &Rc<Bytes>) -> Self {
        Queued::Shared {
            frame: Rc::clone(frame),
            sent: 0,
        }
    }

    /// What is left to send of it.
    fn as_slice(&self) -> &[u8] {
        match self {
            Queued::Own(bytes) => bytes,
            Queued::Shared { frame, sent } => &frame[*sent..],
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks the first `n` bytes (fewer than [`Queued::len`]) sent.
    fn advance(&mut self, n: usize) {
        match self {
            Queued::Own(bytes) => bytes.advance(n),
            Queued::Shared { sent, .. } => *sent += n,
        }
    }

    /// What is left, as owned bytes (tests and benches read frames this
    /// way; a shared frame costs one atomic count here).
    fn into_bytes(self) -> Bytes {
        match self {
            Queued::Own(bytes) => bytes,
            Queued::Shared { frame, sent } => {
                let mut bytes = Rc::unwrap_or_clone(frame);
                bytes.advance(sent);
                bytes
            }
        }
    }
}

impl From<Bytes> for Queued {
    fn from(bytes: Bytes) -> Self {
        Queued::Own(bytes)
    }
}

/// What one flush did, for the batch-size figures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub calls: u64,
    pub frames: u64,
    pub bytes: u64,
}

impl Outbox {
    /// Queues `frame` behind what is queued (an empty one is dropped).
    pub fn push(&mut self, frame: impl Into<Queued>) {
        let frame = frame.into();
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
            *slice = IoSlice::new(frame.as_slice());
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
        Some(frame.into_bytes())
    }

    /// The first queued frame, as it is queued (tests look at its kind).
    pub fn front(&self) -> Option<&Queued> {
        self.frames.front()
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
            let left = front.len();
            if sent >= left {
                sent -= left;
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
        assert_eq!(
            outbox.frames.front().map(Queued::as_slice),
            Some(&b"efg"[..])
        );
        outbox.consume_counting(3, &mut frames);
        assert!(outbox.is_empty());
        assert_eq!(frames, 2);
    }

    /// Two outboxes share one frame and send it at their own pace: a
    /// partial send moves each one's position, never the frame, and the
    /// iovecs keep pointing into the one buffer.
    #[test]
    fn a_shared_frame_is_sent_in_order_by_each_outbox_on_its_own() {
        let frame = Rc::new(Bytes::from_static(b"shared-push"));
        let (mut a, mut b) = (Outbox::default(), Outbox::default());
        for outbox in [&mut a, &mut b] {
            outbox.push(Bytes::from_static(b"own-"));
            outbox.push(Queued::shared(&frame));
            outbox.push(Bytes::from_static(b"-tail"));
        }
        assert_eq!(Rc::strong_count(&frame), 3, "one count per outbox, no copy");
        assert_eq!(a.consume(6), 1, "the reply and 2 bytes of the push");
        assert_eq!(
            b.consume(13),
            1,
            "the reply and all but 2 bytes of the push"
        );
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        assert_eq!(a.slices_into(&mut slices), 2);
        assert_eq!(&*slices[0], b"ared-push");
        assert_eq!(
            slices[0].as_ptr(),
            frame[2..].as_ptr(),
            "points into the frame"
        );
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        assert_eq!(b.slices_into(&mut slices), 2);
        assert_eq!(&*slices[0], b"sh");
        assert_eq!((a.len(), b.len()), (9 + 5, 2 + 5));
        assert_eq!(a.pop_front().as_deref(), Some(&b"ared-push"[..]));
        assert_eq!(b.consume(3), 1);
        assert_eq!(b.pop_front().as_deref(), Some(&b"tail"[..]));
        assert!(b.is_empty());
        drop((a, b));
        assert_eq!(Rc::strong_count(&frame), 1, "every outbox let go of it");
    }

    /// An idle connection's outbox, and each queued frame, are no larger
    /// than when every frame was a plain `Bytes`.
    #[test]
    fn sharing_frames_grows_neither_the_outbox_nor_its_entries() {
        assert_eq!(std::mem::size_of::<Queued>(), std::mem::size_of::<Bytes>());
        assert_eq!(
            std::mem::size_of::<Outbox>(),
            std::mem::size_of::<VecDeque<Bytes>>() + std::mem::size_of::<usize>()
        );
        let mut outbox = Outbox::default();
        outbox.push(Queued::shared(&Rc::new(Bytes::from_static(b"x"))));
        outbox.consume(1);
        assert_eq!(
            outbox.frames.capacity(),
            0,
            "an emptied queue holds no memory"
        );
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
