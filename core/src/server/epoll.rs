//! A minimal epoll set for a core's sockets, whose own readiness the core's
//! monoio loop (io_uring or epoll driver) waits on.
//!
//! Why not one monoio readiness op per connection: in monoio 0.2.4 every wait
//! is a future in a task, and a task per idle connection costs a few hundred
//! bytes of user memory. Registered in an epoll set, an idle connection costs
//! only its kernel entry: the core waits on one fd for all of them, and the
//! registration is edge-triggered and persistent (no re-arming per wait).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Readiness reported for one registered fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub token: u64,
    pub readable: bool,
    pub writable: bool,
}

pub struct Epoll {
    fd: OwnedFd,
}

const INTEREST: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;

impl Epoll {
    pub fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a
        // new fd that nothing else owns.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Watches `fd` for input and output, edge-triggered, reporting `token`.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: INTEREST,
            u64: token,
        };
        // SAFETY: `event` is a valid epoll_event for the duration of the call.
        let ret =
            unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Collects ready fds without blocking, at most `events.capacity()`.
    pub fn poll_into(
        &self,
        events: &mut Vec<libc::epoll_event>,
        out: &mut Vec<Ready>,
    ) -> io::Result<()> {
        events.clear();
        let max = events.capacity().clamp(1, i32::MAX as usize);
        // SAFETY: the kernel writes at most `max` entries into the spare
        // capacity of `events`, and we set the length to what it reports.
        let n = unsafe {
            let n = libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max as i32, 0);
            if n > 0 {
                events.set_len(n as usize);
            }
            n
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(err)
            };
        }
        out.extend(events.iter().map(|e| {
            let bits = e.events;
            let hangup = bits & (libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) as u32 != 0;
            Ready {
                token: e.u64,
                readable: hangup || bits & libc::EPOLLIN as u32 != 0,
                writable: hangup || bits & libc::EPOLLOUT as u32 != 0,
            }
        }));
        Ok(())
    }

    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn reports_edges_with_tokens() {
        let epoll = Epoll::new().expect("epoll");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        epoll.add(server.as_raw_fd(), 7).expect("add");
        let mut events = Vec::with_capacity(8);
        let mut ready = Vec::new();
        epoll.poll_into(&mut events, &mut ready).expect("poll");
        assert_eq!(
            ready,
            vec![Ready {
                token: 7,
                readable: false,
                writable: true
            }]
        );
        ready.clear();
        epoll.poll_into(&mut events, &mut ready).expect("poll");
        assert!(
            ready.is_empty(),
            "edge-triggered: no repeat without a new edge"
        );
        client.write_all(b"x").expect("write");
        for _ in 0..1000 {
            epoll.poll_into(&mut events, &mut ready).expect("poll");
            if !ready.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(ready.len(), 1);
        assert!(ready[0].readable);
        assert_eq!(ready[0].token, 7);
    }
}
