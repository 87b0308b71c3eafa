//! The `[server]` table: where the server listens, how many workers it runs
//! and where they are pinned, the listening sockets' settings, and TLS.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::{refuse, refuse_pair, ConfigError};

/// `[server]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSection {
    /// Address every worker listens on (one `SO_REUSEPORT` socket each).
    /// Default `127.0.0.1:8080`; use `0.0.0.0:PORT` to accept from other hosts.
    pub listen: SocketAddr,
    /// Worker threads, one monoio event loop each. `0` = one per CPU in
    /// `cpus` when that list is set, else one per online core. Default 0.
    pub workers: usize,
    /// Pin each worker thread to one CPU. Default true.
    pub pin_workers: bool,
    /// CPUs to pin workers to: worker `i` runs on `cpus[i % len]`. Empty =
    /// worker `i` on the `i`-th CPU the process may run on. Default empty.
    pub cpus: Vec<usize>,
    /// Listen backlog of each worker's socket (the kernel caps it at
    /// `net.core.somaxconn`). Default 1024.
    pub backlog: u32,
    /// `SO_RCVBUF` of the listening sockets, inherited by every accepted
    /// socket, in bytes (the kernel doubles it and caps it at
    /// `net.core.rmem_max`). `0` = kernel autotuning (`net.ipv4.tcp_rmem`).
    /// Default 0.
    pub so_rcvbuf: usize,
    /// `SO_SNDBUF` of the listening sockets, inherited like `so_rcvbuf`, in
    /// bytes: it bounds the kernel memory a slow reader can pin. `0` = kernel
    /// autotuning (`net.ipv4.tcp_wmem`). Default 0.
    pub so_sndbuf: usize,
    /// Subprotocols the server speaks, in preference order. Default none.
    pub subprotocols: Vec<String>,
    /// PEM certificate chain for `wss://`. Empty (the default): plain `ws://`.
    /// Set together with `tls_key`.
    pub tls_cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`. Default empty.
    pub tls_key: PathBuf,
    /// The demo chat at `GET /`: `"auto"` (the default) serves it while
    /// `auth.auth_mode = "none"` only, `"on"` always, `"off"` never.
    pub demo_page: DemoPage,
    /// Let the heap use 2 MiB transparent huge pages where the kernel grants
    /// them. Off (the default), the process asks the kernel for none
    /// (`PR_SET_THP_DISABLE`) and its memory grows 4 KiB at a time: idle
    /// connections cost 0.67 KiB each instead of 0.73–0.89 KiB, landing in
    /// 2 MiB steps (`core/src/os/thp.rs`). On suits a box with few
    /// connections and a large, busy heap, where fewer TLB misses matter more.
    pub transparent_huge_pages: bool,
}

/// `server.demo_page`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoPage {
    /// Served while authentication is off: the page connects without a token.
    Auto,
    On,
    Off,
}

impl DemoPage {
    /// Whether the page is served, given whether authentication is on.
    pub fn served(self, auth_enabled: bool) -> bool {
        match self {
            DemoPage::Auto => !auth_enabled,
            DemoPage::On => true,
            DemoPage::Off => false,
        }
    }
}

impl std::str::FromStr for DemoPage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DemoPage::Auto),
            "on" => Ok(DemoPage::On),
            "off" => Ok(DemoPage::Off),
            other => Err(format!(
                "expected one of \"auto\", \"on\", \"off\", got {other:?}"
            )),
        }
    }
}

impl std::fmt::Display for DemoPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DemoPage::Auto => "auto",
            DemoPage::On => "on",
            DemoPage::Off => "off",
        })
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 0,
            pin_workers: true,
            cpus: Vec::new(),
            backlog: 1024,
            so_rcvbuf: 0,
            so_sndbuf: 0,
            subprotocols: Vec::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            demo_page: DemoPage::Auto,
            transparent_huge_pages: false,
        }
    }
}

impl ServerSection {
    /// Worker count after resolving `0`: one per listed CPU, else one per
    /// online core.
    pub fn effective_workers(&self) -> usize {
        match self.workers {
            0 if !self.cpus.is_empty() => self.cpus.len(),
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The CPU worker `index` is pinned to when `cpus` is set.
    pub fn cpu_for_worker(&self, index: usize) -> Option<usize> {
        (!self.cpus.is_empty()).then(|| self.cpus[index % self.cpus.len()])
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.tls_cert.as_os_str().is_empty() != self.tls_key.as_os_str().is_empty() {
            return refuse_pair(
                "server.tls_cert",
                "server.tls_key",
                "tls_cert and tls_key are set together, or neither",
            );
        }
        if self.workers > 1024 {
            return refuse(
                "server.workers",
                format!("{} is more than 1024", self.workers),
            );
        }
        let mut seen = BTreeSet::new();
        for cpu in &self.cpus {
            if *cpu >= 4096 {
                return refuse(
                    "server.cpus",
                    format!("CPU {cpu} is out of range (0..4096)"),
                );
            }
            if !seen.insert(*cpu) {
                return refuse("server.cpus", format!("CPU {cpu} is listed twice"));
            }
        }
        if self.backlog == 0 || self.backlog > 1 << 20 {
            return refuse(
                "server.backlog",
                format!("{} is not in 1..=1048576", self.backlog),
            );
        }
        for (key, value) in [
            ("server.so_rcvbuf", self.so_rcvbuf),
            ("server.so_sndbuf", self.so_sndbuf),
        ] {
            if value != 0 && !(4096..=1 << 30).contains(&value) {
                return refuse(
                    key,
                    format!("{value} is neither 0 (autotuning) nor in 4 KiB..=1 GiB"),
                );
            }
        }
        Ok(())
    }
}
