//! Driving an async-only codec from memory, with no runtime and no socket.
//!
//! fastwebsockets decodes frames only through `WebSocket::read_frame`, an
//! async method over a tokio stream. To bench its codec on the same bytes as
//! the sans-IO decoders, [`MemStream`] serves a byte buffer as a stream that is
//! always ready (reads copy from the buffer, as a socket read copies from the
//! kernel; writes are discarded), and [`ready`] polls a future over it once.

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An in-memory stream: reads return the bytes of `data` in order, then EOF;
/// writes succeed and are dropped.
#[derive(Debug, Clone)]
pub struct MemStream {
    data: Vec<u8>,
    pos: usize,
}

impl MemStream {
    pub fn new(data: Vec<u8>) -> Self {
        MemStream { data, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
}

impl AsyncRead for MemStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = buf.remaining().min(self.remaining());
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Polls `fut` once and returns its output. Panics if it is pending: only
/// for futures over [`MemStream`], which never wait.
pub fn ready<F: Future>(fut: F) -> F::Output {
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a future over MemStream was pending"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn reads_the_bytes_then_eof() {
        let mut s = MemStream::new(b"hello".to_vec());
        let mut out = [0u8; 3];
        assert_eq!(ready(s.read(&mut out)).expect("read"), 3);
        assert_eq!(&out, b"hel");
        let mut rest = Vec::new();
        assert_eq!(ready(s.read_to_end(&mut rest)).expect("read"), 2);
        assert_eq!(rest, b"lo");
    }
}
