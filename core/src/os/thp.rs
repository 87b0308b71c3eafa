//! Transparent huge pages for the process (`server.transparent_huge_pages`).
//!
//! The allocator (mimalloc) asks for 2 MiB pages on its heap
//! (`MADV_HUGEPAGE`), and where the kernel grants them (THP `madvise` or
//! `always` mode) a region becomes resident 2 MiB at a time. A server whose
//! heap is mostly small per-connection records pays for that in idle
//! memory: at 19,000 idle `/echo` connections on one worker the heap grew
//! by 0.85–0.89 KiB per connection in about half the runs and 0.73–0.75 in
//! the others (the same binary, the two groups 2.2 MiB apart: one huge page),
//! and by 0.67–0.68 KiB in every run with huge pages off (2026-12-04).
//! `PR_SET_THP_DISABLE` turns them off for the whole process, including
//! memory the allocator already reserved; pages faulted in from then on are
//! 4 KiB.

use std::io;

/// Allows (`true`) or forbids transparent huge pages for this process.
pub fn set_transparent_huge_pages(allowed: bool) -> io::Result<()> {
    let disable = libc::c_ulong::from(!allowed);
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and the rest zero.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, disable, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether transparent huge pages are allowed for this process.
pub fn transparent_huge_pages() -> io::Result<bool> {
    // SAFETY: PR_GET_THP_DISABLE takes no argument (all zero).
    let rc = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_is_read_back() {
        let before = transparent_huge_pages().expect("PR_GET_THP_DISABLE");
        set_transparent_huge_pages(false).expect("disable");
        assert!(!transparent_huge_pages().expect("read"));
        set_transparent_huge_pages(true).expect("enable");
        assert!(transparent_huge_pages().expect("read"));
        set_transparent_huge_pages(before).expect("restore");
    }
}
