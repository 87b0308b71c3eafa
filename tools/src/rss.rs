//! Resident memory of another process (`--server-pid`), from `/proc/PID/status`.
//!
//! `VmRSS` is what the kernel charges the process for resident pages (anon +
//! file + shmem), in KiB. It does not include the kernel's own memory for the
//! process's sockets (socket structs, TCP state, queued data), which no
//! per-process figure shows.

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
    fn reads_own_rss() {
        let kib = read_rss_kib(std::process::id()).expect("own /proc status");
        assert!(kib > 0);
    }
}
