//! Resident memory of another process (`--server-pid`), from `/proc/PID/status`.
//!
//! `VmRSS` is what the kernel charges the process for resident pages (anon +
//! file + shmem), in KiB. It does not include kernel memory spent on the
//! process's sockets (skbs, TCP state); [`read_tcp_mem_pages`] reports that
//! system-wide figure from `/proc/net/sockstat` beside it.

use std::fs;

/// Why a memory figure could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RssError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no `{field}` line")]
    Missing { path: String, field: &'static str },
}

/// `VmRSS` of process `pid`, in KiB.
pub fn read_rss_kib(pid: u32) -> Result<u64, RssError> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).map_err(|source| RssError::Read {
        path: path.clone(),
        source,
    })?;
    parse_status_field_kib(&text, "VmRSS:").ok_or(RssError::Missing {
        path,
        field: "VmRSS",
    })
}

/// The value of a `Name:   1234 kB` line of a `/proc/PID/status` text.
pub fn parse_status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?;
        let mut words = rest.split_whitespace();
        let value = words.next()?.parse().ok()?;
        (words.next() == Some("kB")).then_some(value)
    })
}

/// Pages of memory used by all TCP sockets of the system (`TCP: ... mem N`
/// in `/proc/net/sockstat`).
pub fn read_tcp_mem_pages() -> Result<u64, RssError> {
    let path = "/proc/net/sockstat";
    let text = fs::read_to_string(path).map_err(|source| RssError::Read {
        path: path.to_string(),
        source,
    })?;
    parse_sockstat_tcp_mem(&text).ok_or(RssError::Missing {
        path: path.to_string(),
        field: "TCP mem",
    })
}

/// `mem N` from the `TCP:` line of a `/proc/net/sockstat` text.
pub fn parse_sockstat_tcp_mem(sockstat: &str) -> Option<u64> {
    let line = sockstat.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "mem" {
            return words.next()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vmrss() {
        let status = "Name:\tringcast\nVmPeak:\t  100 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(parse_status_field_kib(status, "VmRSS:"), Some(5120));
        assert_eq!(parse_status_field_kib(status, "VmHWM:"), None);
        assert_eq!(parse_status_field_kib("VmRSS:\t12 MB\n", "VmRSS:"), None);
    }

    #[test]
    fn parses_sockstat() {
        let s =
            "sockets: used 330\nTCP: inuse 12 orphan 0 tw 3 alloc 14 mem 7\nUDP: inuse 1 mem 2\n";
        assert_eq!(parse_sockstat_tcp_mem(s), Some(7));
        assert_eq!(parse_sockstat_tcp_mem("UDP: inuse 1 mem 2\n"), None);
    }

    #[test]
    fn reads_own_rss() {
        let kib = read_rss_kib(std::process::id()).expect("own /proc status");
        assert!(kib > 0);
    }
}
