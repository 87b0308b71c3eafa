//! `ringcast doctor`: compares this machine with what a profile needs and
//! prints each finding as ok / warn / blocker, with the command that fixes it.
//!
//! Split in two so the judgement is testable: [`probe`] reads `/proc`,
//! `/sys` and tries io_uring (nothing else touches the system), and
//! [`checks`] (process, CPU, memory, disk) and [`net`] (network sysctls) are
//! pure functions from the configuration and those readings to a
//! [`Finding`]. [`run`] puts them together; the binary prints the
//! report and exits non-zero when any finding is a blocker.

pub mod checks;
pub mod net;
pub mod probe;

use std::fmt;

pub use probe::Probe;

use super::keys::human_size;
use super::ServerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    /// Runs, but worse than it could, or on a fallback.
    Warn,
    /// The profile cannot reach its capacity statement on this machine.
    Blocker,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Blocker => "BLOCKER",
        })
    }
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub status: Status,
    /// Short name of what was checked (`open files`, `somaxconn`).
    pub check: &'static str,
    /// What was found, with the numbers.
    pub detail: String,
    /// The command that fixes it; `None` when ok.
    pub fix: Option<String>,
}

/// Runs every check of `config` against `probe`, in a fixed order.
pub fn run(config: &ServerConfig, probe: &Probe) -> Vec<Finding> {
    let limits = probe.limits.as_deref();
    let osrelease = probe.osrelease.as_deref();
    vec![
        checks::open_files(config, limits, probe.nr_open.as_deref()),
        checks::caps(config),
        net::somaxconn(config, probe.somaxconn.as_deref()),
        net::syn_backlog(config, probe.tcp_max_syn_backlog.as_deref()),
        net::port_range(probe.ip_local_port_range.as_deref()),
        net::tcp_mem(config, probe.tcp_mem.as_deref(), probe.page_size),
        net::socket_buffers(
            config,
            probe.rmem_max.as_deref(),
            probe.wmem_max.as_deref(),
            probe.tcp_rmem.as_deref(),
            probe.tcp_wmem.as_deref(),
        ),
        checks::memlock(config, limits, osrelease),
        checks::io_uring(
            config,
            probe.io_uring_disabled.as_deref(),
            &probe.uring_plain,
            &probe.uring_flags,
            osrelease,
        ),
        checks::cpus(config, &probe.cpus),
        checks::memory(config, probe.meminfo.as_deref()),
        checks::plan(config),
        checks::thp(probe.thp.as_deref()),
        checks::governor(&probe.governors),
        checks::store_disk(config, probe.store.as_ref()),
    ]
}

/// The worst status among `findings`.
pub fn worst(findings: &[Finding]) -> Status {
    findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Ok)
}

/// The report as printed: a header naming the profile and its capacity
/// statement, one block per finding, and a count.
pub fn render(profile: &str, config: &ServerConfig, findings: &[Finding]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ringcast doctor: profile {profile}, {} workers",
        config.server.effective_workers()
    );
    if config.capacity.planned_connections > 0 {
        let _ = writeln!(
            out,
            "planned for {} connections, {} messages/s delivered; computed for that plan: \
             {} of memory, {} deliveries/s of CPU (ringcast profile capacity)",
            config.capacity.planned_connections,
            config.capacity.planned_messages_per_sec,
            human_size(checks::computed_memory(config)),
            checks::computed_deliveries(config)
        );
    } else {
        let _ = writeln!(out, "no capacity statement (embedded defaults)");
    }
    let _ = writeln!(out);
    for f in findings {
        let _ = writeln!(
            out,
            "{:<8} {:<16} {}",
            f.status.to_string(),
            f.check,
            f.detail
        );
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "{:<8} {:<16} fix: {fix}", "", "");
        }
    }
    let count = |s| findings.iter().filter(|f| f.status == s).count();
    let _ = writeln!(
        out,
        "\n{} ok, {} warn, {} blocker",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Blocker)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-core CI box like ours: 2 CPUs, fd limit 20000 that
    /// cannot be raised, 23.5 GiB, no cpufreq, THP madvise.
    fn fixture() -> Probe {
        Probe {
            limits: Some(
                "Max open files            20000                20000                files\n\
                 Max locked memory         8388608              8388608              bytes\n"
                    .into(),
            ),
            nr_open: Some("1048576\n".into()),
            somaxconn: Some("4096\n".into()),
            tcp_max_syn_backlog: Some("2048\n".into()),
            ip_local_port_range: Some("32768\t60999\n".into()),
            tcp_mem: Some("287898\t383866\t575796\n".into()),
            tcp_rmem: Some("4096\t131072\t33554432\n".into()),
            tcp_wmem: Some("4096\t16384\t4194304\n".into()),
            rmem_max: Some("4194304\n".into()),
            wmem_max: Some("4194304\n".into()),
            osrelease: Some("6.18.44-fc-v782\n".into()),
            io_uring_disabled: Some("0\n".into()),
            uring_plain: Ok(()),
            uring_flags: Ok(()),
            cpus: vec![0, 1],
            meminfo: Some("MemTotal:       24683564 kB\nMemAvailable:   23673064 kB\n".into()),
            thp: Some("always [madvise] never\n".into()),
            governors: vec![],
            page_size: 4096,
            store: None,
        }
    }

    #[test]
    fn the_defaults_on_this_box_warn_about_the_fd_limit_but_block_nothing() {
        let mut config = ServerConfig::default();
        config.server.workers = 2;
        let findings = run(&config, &fixture());
        assert_eq!(worst(&findings), Status::Warn);
        let fd = &findings[0];
        assert_eq!((fd.check, fd.status), ("open files", Status::Warn));
        let report = render("none", &config, &findings);
        assert!(report.contains("no capacity statement"), "{report}");
        assert!(
            report.contains("warn     open files       soft 20000, hard 20000"),
            "{report}"
        );
        assert!(report.contains("0 blocker"), "{report}");
    }

    #[test]
    fn a_profile_sized_past_the_fd_limit_is_blocked() {
        let mut config = ServerConfig::default();
        config.server.workers = 6;
        config.limits.max_connections_per_worker = 40_000;
        config.capacity.planned_connections = 200_000;
        config.capacity.planned_memory = 4 << 30;
        let findings = run(&config, &fixture());
        assert_eq!(worst(&findings), Status::Blocker);
        let report = render("medium", &config, &findings);
        assert!(report.contains("BLOCKER  open files"), "{report}");
        assert!(report.contains("fix: LimitNOFILE=262144"), "{report}");
        assert!(
            report.contains("warn     cpus             6 workers on 2 CPUs"),
            "{report}"
        );
    }
}
