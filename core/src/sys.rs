//! Non-blocking `recv`/`send` on a raw socket, for readiness-based IO.
//!
//! monoio 0.2.4's read ops own their buffer until they complete, so a waiting
//! read would pin a buffer per idle connection. Instead a connection waits for
//! readiness (`PollAdd` on io_uring, epoll on the legacy driver) with no buffer,
//! then reads with `MSG_DONTWAIT` into the per-core scratch buffer. Writes go
//! out the same way, straight from whatever buffer holds the bytes.

use std::io;
use std::os::fd::RawFd;

/// Outcome of one non-blocking socket call.
#[derive(Debug, PartialEq, Eq)]
pub enum Transfer {
    /// This many bytes moved (0 on `recv` means the peer closed its side).
    Done(usize),
    /// The socket is not ready; wait for readiness and try again.
    WouldBlock,
}

fn classify(ret: isize) -> io::Result<Transfer> {
    if ret >= 0 {
        return Ok(Transfer::Done(ret as usize));
    }
    let err = io::Error::last_os_error();
    match err.kind() {
        io::ErrorKind::WouldBlock => Ok(Transfer::WouldBlock),
        io::ErrorKind::Interrupted => Ok(Transfer::WouldBlock),
        _ => Err(err),
    }
}

/// Reads what the socket has, up to `buf.len()` bytes, without blocking.
pub fn try_recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Transfer> {
    // SAFETY: `buf` is a valid, writable region of `buf.len()` bytes for the
    // duration of the call; `recv` writes at most that many bytes into it.
    let ret = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    classify(ret)
}

/// Sends what the socket will take of `buf`, without blocking and without
/// raising SIGPIPE on a reset peer.
pub fn try_send(fd: RawFd, buf: &[u8]) -> io::Result<Transfer> {
    // SAFETY: `buf` is a valid, readable region of `buf.len()` bytes for the
    // duration of the call; `send` only reads from it.
    let ret = unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    classify(ret)
}

/// Sends what the socket will take of `slices`, in order, in one call.
pub fn try_send_vectored(fd: RawFd, slices: &[std::io::IoSlice<'_>]) -> io::Result<Transfer> {
    // SAFETY: an all-zero msghdr is a valid "no address, no control data"
    // header; we then point it at `slices`, whose layout is that of `iovec`
    // on Unix (guaranteed by std) and which outlive the call.
    let ret = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = slices.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = slices.len() as _;
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    classify(ret)
}

/// Shuts down the writing side: the peer reads EOF after our last bytes.
pub fn shutdown_write(fd: RawFd) {
    // SAFETY: `shutdown` takes no pointers; a stale or invalid fd only yields
    // an error, which is ignored because the connection is ending anyway.
    unsafe {
        libc::shutdown(fd, libc::SHUT_WR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn recv_send_and_would_block_on_a_real_socket_pair() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 16];
        assert_eq!(
            try_recv(server.as_raw_fd(), &mut buf).expect("recv"),
            Transfer::WouldBlock
        );
        client.write_all(b"abc").expect("write");
        client.flush().expect("flush");
        // Loopback delivery is immediate once write returns, but poll briefly to be safe.
        let mut got = Transfer::WouldBlock;
        for _ in 0..1000 {
            got = try_recv(server.as_raw_fd(), &mut buf).expect("recv");
            if got != Transfer::WouldBlock {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(got, Transfer::Done(3));
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(
            try_send(server.as_raw_fd(), b"xyz").expect("send"),
            Transfer::Done(3)
        );
        let mut back = [0u8; 3];
        client.read_exact(&mut back).expect("read");
        assert_eq!(&back, b"xyz");
        shutdown_write(server.as_raw_fd());
        assert_eq!(client.read(&mut back).expect("eof"), 0);
    }
}
