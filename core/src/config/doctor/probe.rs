//! The thin reader behind `ringcast doctor`: gathers the text of the `/proc`
//! and `/sys` files the checks need, and tries io_uring for real. Nothing
//! here interprets what it read; [`super::checks`] does, so tests can feed
//! fixtures instead.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::machine::online_cpus;
use crate::config::ServerConfig;
use crate::config::UringFlags;

/// Raw readings of one machine. `None` = the file could not be read.
#[derive(Debug, Clone)]
pub struct Probe {
    /// `/proc/self/limits`.
    pub limits: Option<String>,
    /// `/proc/sys/fs/nr_open`: the most `RLIMIT_NOFILE` may be raised to.
    pub nr_open: Option<String>,
    /// `/proc/sys/net/core/somaxconn`.
    pub somaxconn: Option<String>,
    /// `/proc/sys/net/ipv4/tcp_max_syn_backlog`.
    pub tcp_max_syn_backlog: Option<String>,
    /// `/proc/sys/net/ipv4/ip_local_port_range`.
    pub ip_local_port_range: Option<String>,
    /// `/proc/sys/net/ipv4/tcp_mem` (pages).
    pub tcp_mem: Option<String>,
    /// `/proc/sys/net/ipv4/tcp_rmem` and `tcp_wmem` (bytes: min default max).
    pub tcp_rmem: Option<String>,
    pub tcp_wmem: Option<String>,
    /// `/proc/sys/net/core/rmem_max` and `wmem_max`: caps on `SO_RCVBUF`/`SO_SNDBUF`.
    pub rmem_max: Option<String>,
    pub wmem_max: Option<String>,
    /// `/proc/sys/kernel/osrelease`.
    pub osrelease: Option<String>,
    /// `/proc/sys/kernel/io_uring_disabled` (absent before 6.6).
    pub io_uring_disabled: Option<String>,
    /// Creating a small plain ring: `Err` carries the error.
    pub uring_plain: Result<(), String>,
    /// Creating a ring with the configured flags.
    pub uring_flags: Result<(), String>,
    /// CPUs this process may run on.
    pub cpus: Vec<usize>,
    /// `/proc/meminfo`.
    pub meminfo: Option<String>,
    /// `/sys/kernel/mm/transparent_hugepage/enabled`.
    pub thp: Option<String>,
    /// `scaling_governor` of every CPU that has cpufreq (empty in most VMs).
    pub governors: Vec<String>,
    /// Page size in bytes (`tcp_mem` is in pages).
    pub page_size: u64,
    /// The disk under `store.data_path`, when it is set.
    pub store: Option<StoreProbe>,
}

/// Where `store.data_path` lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreProbe {
    pub path: PathBuf,
    pub exists: bool,
    /// The nearest existing directory, whose device was read.
    pub checked: PathBuf,
    /// Block device name (`nvme0n1`, `md0`, `vda`), its `queue/rotational`
    /// and, for `md`, its `md/level`. `None`: not a block device (tmpfs,
    /// overlay, network filesystem).
    pub device: Option<(String, String, Option<String>)>,
    /// Free bytes for an unprivileged writer on `checked`'s filesystem.
    pub free: Option<u64>,
}

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn try_ring(flags: UringFlags) -> Result<(), String> {
    flags
        .builder()
        .build(8)
        .map(drop)
        .map_err(|e| e.to_string())
}

impl Probe {
    /// Reads this machine, for the configuration `config`.
    pub fn read(config: &ServerConfig) -> Probe {
        let governors = fs::read_dir("/sys/devices/system/cpu")
            .map(|dir| {
                let mut found: Vec<(String, String)> = dir
                    .flatten()
                    .filter_map(|entry| {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        let governor = entry.path().join("cpufreq/scaling_governor");
                        name.strip_prefix("cpu")?.parse::<usize>().ok()?;
                        Some((name, fs::read_to_string(governor).ok()?.trim().to_string()))
                    })
                    .collect();
                found.sort();
                found.into_iter().map(|(_, g)| g).collect()
            })
            .unwrap_or_default();
        Probe {
            limits: read("/proc/self/limits"),
            nr_open: read("/proc/sys/fs/nr_open"),
            somaxconn: read("/proc/sys/net/core/somaxconn"),
            tcp_max_syn_backlog: read("/proc/sys/net/ipv4/tcp_max_syn_backlog"),
            ip_local_port_range: read("/proc/sys/net/ipv4/ip_local_port_range"),
            tcp_mem: read("/proc/sys/net/ipv4/tcp_mem"),
            tcp_rmem: read("/proc/sys/net/ipv4/tcp_rmem"),
            tcp_wmem: read("/proc/sys/net/ipv4/tcp_wmem"),
            rmem_max: read("/proc/sys/net/core/rmem_max"),
            wmem_max: read("/proc/sys/net/core/wmem_max"),
            osrelease: read("/proc/sys/kernel/osrelease"),
            io_uring_disabled: read("/proc/sys/kernel/io_uring_disabled"),
            uring_plain: try_ring(UringFlags::PLAIN),
            uring_flags: try_ring(config.io_uring.flags()),
            cpus: online_cpus(),
            meminfo: read("/proc/meminfo"),
            thp: read("/sys/kernel/mm/transparent_hugepage/enabled"),
            governors,
            page_size: page_size(),
            store: (!config.store.data_path.as_os_str().is_empty())
                .then(|| probe_store(&config.store.data_path)),
        }
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf takes no pointers and only reads a constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

/// Splits a Linux `dev_t` into major and minor numbers (glibc's encoding).
fn major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

fn probe_store(path: &Path) -> StoreProbe {
    let exists = path.exists();
    let checked = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    let device = fs::metadata(&checked).ok().and_then(|meta| {
        let (major, minor) = major_minor(meta.dev());
        // /sys/dev/block/M:m → .../block/DISK or .../block/DISK/PARTITION
        let mut dir = fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
        if dir.join("partition").exists() {
            dir = dir.parent()?.to_path_buf();
        }
        let name = dir.file_name()?.to_string_lossy().into_owned();
        let rotational = fs::read_to_string(dir.join("queue/rotational")).unwrap_or_default();
        let level = fs::read_to_string(dir.join("md/level")).ok();
        Some((name, rotational, level))
    });
    let free = crate::os::fsinfo::free_bytes(&checked).ok();
    StoreProbe {
        path: path.to_path_buf(),
        exists,
        free,
        checked,
        device,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_t_splits_like_glibc() {
        assert_eq!(major_minor(0xfd00), (253, 0));
        assert_eq!(major_minor(0x10301), (259, 1)); // nvme0n1p1 style
        assert_eq!(major_minor((0x103 << 8) | 0x05), (259, 5));
    }

    #[test]
    fn reading_this_machine_does_not_fail() {
        let probe = Probe::read(&ServerConfig::default());
        assert!(!probe.cpus.is_empty());
        assert!(probe.page_size >= 4096);
    }
}
