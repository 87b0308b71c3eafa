//! The descriptor budget of a load run: every connection is one descriptor,
//! and a run refuses a connection count the open-file limit cannot fit
//! before opening anything. Raising the limit is
//! [`ringcast::os::rlimit::raise_nofile`], shared with the server.

/// Descriptors a run needs besides its sockets: stdio, the io_uring/epoll
/// and eventfd descriptors of each runtime thread, the JSON report file,
/// `/proc` reads, and slack for libraries.
pub fn reserved_fds(threads: usize) -> u64 {
    32 + 8 * threads as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_adds_to_the_fixed_reserve() {
        assert_eq!(reserved_fds(0), 32);
        assert_eq!(reserved_fds(4) - reserved_fds(3), 8);
    }
}
