//! The ring against real loopback sockets: accept, receive into provided
//! buffers, send, cancel, and buffer exhaustion without losing a byte.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::*;

const LIMIT: Duration = Duration::from_secs(10);

fn ring(buffers: u16, buffer_size: usize) -> Ring {
    ring_growing(buffers, buffers, buffer_size)
}

/// A ring whose kernel gets `initial` of its `buffers` at start.
fn ring_growing(buffers: u16, initial_buffers: u16, buffer_size: usize) -> Ring {
    let ring = Ring::new(RingConfig {
        entries: 64,
        cq_entries: 512,
        buffers,
        initial_buffers,
        buffer_size,
    })
    .expect("ring");
    assert!(ring.features().complete(), "{}", ring.features());
    ring
}

fn listener() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    l
}

/// Reaps until `done` says so, failing past [`LIMIT`].
fn run(ring: &mut Ring, mut turn: impl FnMut(&mut Ring, Vec<Completion>) -> bool) {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < LIMIT,
            "ring test did not finish in {LIMIT:?}"
        );
        let mut out = Vec::new();
        ring.submit_and_reap(1, &mut out).expect("enter");
        if turn(ring, out) {
            return;
        }
    }
}

/// Accepts `n` connections through multishot accept; returns their fds.
fn accept_n(ring: &mut Ring, listener: &TcpListener, n: usize) -> Vec<OwnedFd> {
    ring.accept_multishot(listener.as_raw_fd(), 0)
        .expect("arm accept");
    let mut fds = Vec::new();
    run(ring, |_, out| {
        for c in out {
            assert_eq!(c.op, Op::Accept);
            assert!(c.result >= 0, "accept failed: {}", c.result);
            assert!(c.more, "multishot accept stays armed");
            // SAFETY: a fresh fd the kernel just accepted for us.
            fds.push(unsafe { OwnedFd::from_raw_fd(c.result) });
        }
        fds.len() >= n
    });
    fds
}

#[test]
fn accepts_receives_into_provided_buffers_and_sends_back() {
    let mut ring = ring(8, 256);
    let l = listener();
    let mut clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(l.local_addr().expect("addr")).expect("connect"))
        .collect();
    let fds = accept_n(&mut ring, &l, 3);
    for (i, fd) in fds.iter().enumerate() {
        ring.recv_multishot(fd.as_raw_fd(), i as u64)
            .expect("arm recv");
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(format!("hello {i}").as_bytes()).expect("write");
    }
    // Echo each message back with sendmsg; the iovec and bytes live in
    // `sending` until the send's completion.
    type InFlight = (Box<[u8]>, Box<libc::iovec>, Box<libc::msghdr>);
    let mut sending: HashMap<u64, InFlight> = HashMap::new();
    let mut sent = 0;
    run(&mut ring, |ring, out| {
        for c in out {
            match c.op {
                Op::Recv => {
                    assert!(c.result > 0 && c.more, "{c:?}");
                    let bid = c.buffer.expect("a provided buffer");
                    let bytes: Box<[u8]> = ring.data(bid, c.result as usize).into();
                    ring.recycle(bid);
                    let mut iov = Box::new(libc::iovec {
                        iov_base: bytes.as_ptr() as *mut _,
                        iov_len: bytes.len(),
                    });
                    // SAFETY: an all-zero msghdr is valid; the fields set
                    // next point into boxes kept until the completion.
                    let mut msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
                    msg.msg_iov = &mut *iov;
                    msg.msg_iovlen = 1;
                    let fd: RawFd = fds[c.token as usize].as_raw_fd();
                    // SAFETY: kept in `sending` until the completion.
                    unsafe { ring.send_msg(fd, &*msg, c.token) }.expect("send");
                    sending.insert(c.token, (bytes, iov, msg));
                }
                Op::Send => {
                    let (bytes, _, _) = sending.remove(&c.token).expect("a send in flight");
                    assert_eq!(c.result as usize, bytes.len());
                    sent += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        sent == 3
    });
    for (i, c) in clients.iter_mut().enumerate() {
        let want = format!("hello {i}");
        let mut got = vec![0u8; want.len()];
        c.read_exact(&mut got).expect("read echo");
        assert_eq!(got, want.as_bytes());
    }
    // EOF ends the multishot recv: one completion with 0 and no `more`.
    drop(clients.remove(0));
    run(&mut ring, |_, out| {
        out.iter()
            .any(|c| c.op == Op::Recv && c.token == 0 && c.result == 0 && !c.more)
    });
}

/// `conns` clients write `each` bytes at once; multishot recvs on the
/// accepted ends take them into the ring's buffers, each buffer given back
/// at the end of its turn (as a decoder would) and each ended recv re-armed
/// after `starved` ran for a turn that saw `ENOBUFS`. Checks every byte of
/// every connection, in order, and that no completion used a buffer the
/// kernel was never given; returns how many recvs ended with `ENOBUFS`.
fn receive_all(
    ring: &mut Ring,
    conns: usize,
    each: usize,
    mut starved: impl FnMut(&mut Ring),
) -> usize {
    let l = listener();
    let mut clients: Vec<TcpStream> = (0..conns)
        .map(|_| TcpStream::connect(l.local_addr().expect("addr")).expect("connect"))
        .collect();
    let fds = accept_n(ring, &l, conns);
    let pattern = |conn: usize, i: usize| ((conn * 31 + i * 7) % 251) as u8;
    for (conn, c) in clients.iter_mut().enumerate() {
        let data: Vec<u8> = (0..each).map(|i| pattern(conn, i)).collect();
        c.write_all(&data).expect("write");
    }
    for (conn, fd) in fds.iter().enumerate() {
        ring.recv_multishot(fd.as_raw_fd(), conn as u64)
            .expect("arm");
    }
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); conns];
    let mut exhausted = 0;
    let mut rearm: Vec<u64> = Vec::new();
    let mut held: Vec<u16> = Vec::new();
    run(ring, |ring, out| {
        let mut dry = false;
        for c in out {
            assert_eq!(c.op, Op::Recv);
            if c.result == -libc::ENOBUFS {
                assert!(!c.more, "ENOBUFS ends the multishot recv");
                exhausted += 1;
                dry = true;
                rearm.push(c.token);
                continue;
            }
            assert!(c.result > 0, "{c:?}");
            let bid = c.buffer.expect("buffer");
            assert!(
                bid < ring.buffers().provided(),
                "buffer {bid} was never handed out"
            );
            got[c.token as usize].extend_from_slice(ring.data(bid, c.result as usize));
            held.push(bid);
            if !c.more {
                rearm.push(c.token);
            }
        }
        ring.recycle_all(held.drain(..));
        if dry {
            starved(ring);
        }
        for token in rearm.drain(..) {
            let fd = fds[token as usize].as_raw_fd();
            ring.recv_multishot(fd, token).expect("re-arm");
        }
        got.iter().all(|g| g.len() >= each)
    });
    for (conn, g) in got.iter().enumerate() {
        assert_eq!(g.len(), each, "connection {conn}");
        let want: Vec<u8> = (0..each).map(|i| pattern(conn, i)).collect();
        assert!(*g == want, "connection {conn}: bytes lost or reordered");
    }
    exhausted
}

#[test]
fn buffer_exhaustion_loses_and_reorders_nothing() {
    // 4 buffers of 64 bytes for 64,000 bytes arriving at once: most
    // multishot recvs end with ENOBUFS and are re-armed once buffers return.
    let mut ring = ring(4, 64);
    let exhausted = receive_all(&mut ring, 16, 4000, |_| {});
    assert!(
        exhausted > 0,
        "the test must drive the ring into exhaustion"
    );
}

#[test]
fn buffers_are_handed_out_as_exhaustion_asks_and_no_byte_is_lost() {
    // One of eight buffers at start: the first receives run dry, and each
    // turn that saw ENOBUFS doubles what the kernel may fill, up to eight.
    let mut ring = ring_growing(8, 1, 64);
    assert_eq!(ring.buffers().provided(), 1);
    let mut grown = Vec::new();
    receive_all(&mut ring, 4, 3000, |ring| grown.extend(ring.grow_buffers()));
    assert_eq!(grown, [2, 4, 8], "doubling up to the ring's size");
    assert_eq!(ring.grow_buffers(), None, "nothing left to hand out");
}

#[test]
fn cancel_ends_a_multishot_recv_with_its_last_completion() {
    let mut ring = ring(8, 256);
    let l = listener();
    let _client = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    let fds = accept_n(&mut ring, &l, 1);
    ring.recv_multishot(fds[0].as_raw_fd(), 7).expect("arm");
    ring.cancel(Op::Recv, 7).expect("cancel");
    let (mut ended, mut answered) = (false, false);
    run(&mut ring, |_, out| {
        for c in out {
            match c.op {
                Op::Recv => {
                    assert_eq!((c.token, c.result, c.more), (7, -libc::ECANCELED, false));
                    ended = true;
                }
                Op::Cancel => {
                    assert_eq!((c.token, c.result), (7, 1), "one request cancelled");
                    answered = true;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        ended && answered
    });
}
