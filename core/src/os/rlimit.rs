//! The open-file limit (`RLIMIT_NOFILE`): every connection is one descriptor.
//!
//! [`raise_nofile`] lifts this process's soft limit to its hard limit (which
//! an unprivileged process may always do) and returns what is in force, so
//! the server can log it and a load run can refuse a connection count that
//! cannot fit before opening anything.

use std::io;

/// The open-file limits around [`raise_nofile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// Soft limit before the call.
    pub before: u64,
    /// Soft limit now (the hard limit unless raising failed).
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; the limits are read
/// again afterwards, so what is returned is what the kernel holds.
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

    #[test]
    fn raising_twice_changes_nothing() {
        let first = raise_nofile().expect("first");
        let second = raise_nofile().expect("second");
        assert_eq!(second.before, first.soft);
        assert_eq!((second.soft, second.hard), (first.soft, first.hard));
    }
}
