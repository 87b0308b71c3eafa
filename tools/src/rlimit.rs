//! The open-file limit (`RLIMIT_NOFILE`): every connection is one descriptor.
//!
//! [`raise_nofile`] lifts this process's soft limit to its hard limit (which
//! an unprivileged process may always do) and returns both, so the caller can
//! say how many connections fit and refuse a run that cannot fit before
//! opening anything.

use std::io;

/// The open-file limits after [`raise_nofile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// Soft limit before the call.
    pub before: u64,
    /// Soft limit now (the hard limit unless raising failed).
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// Descriptors a run needs besides its sockets: stdio, the io_uring/epoll
/// and eventfd descriptors of each runtime thread, the JSON report file,
/// `/proc` reads, and slack for libraries.
pub fn reserved_fds(threads: usize) -> u64 {
    32 + 8 * threads as u64
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit.
pub fn raise_nofile() -> io::Result<NofileLimit> {
    let (before, hard) = get_nofile()?;
    if before < hard {
        set_nofile(hard, hard)?;
    }
    let (soft, hard) = get_nofile()?;
    Ok(NofileLimit { before, soft, hard })
}

// `rlim_t` is 32 bits on some 32-bit targets, so the casts are not no-ops everywhere.
#[allow(clippy::unnecessary_cast)]
fn get_nofile() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lim.rlim_cur as u64, lim.rlim_max as u64))
}

fn set_nofile(soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: `lim` is a valid rlimit that setrlimit only reads.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_hard_limit() {
        let lim = raise_nofile().expect("getrlimit/setrlimit");
        assert_eq!(lim.soft, lim.hard);
        assert!(lim.before <= lim.soft);
        assert_eq!(get_nofile().expect("getrlimit"), (lim.hard, lim.hard));
    }
}
