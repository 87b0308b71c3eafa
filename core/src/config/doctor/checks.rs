//! The checks of `ringcast doctor`, as pure functions: the configuration and
//! the text read from `/proc` and `/sys` in, one [`Finding`] out. This file
//! has the process, CPU, memory and disk checks and the shared helpers;
//! `net.rs` has the network ones.
//!
//! Severity: a **blocker** means the profile cannot reach its capacity
//! statement on this machine at all (the fd hard limit or memory is too
//! small); a **warn** means something runs worse than it could, or falls
//! back (epoll instead of io_uring, a backlog cut by `somaxconn`). Every
//! finding that is not ok carries the command that fixes it.

use crate::config::capacity::{self, Load};
use crate::config::keys::{format_cpu_list, human_size};
use crate::config::machine::{classify_disk, meminfo_bytes, DiskKind};
use crate::config::{EngineKind, FsyncPolicy, ServerConfig};

use super::probe::StoreProbe;
use super::{Finding, Status};

/// File descriptors kept free for everything that is not a connection
/// (listeners, rings, eventfds, logs).
pub const FD_SPARE: u64 = 1024;

pub(super) fn ok(check: &'static str, detail: String) -> Finding {
    Finding {
        status: Status::Ok,
        check,
        detail,
        fix: None,
    }
}

pub(super) fn warn(check: &'static str, detail: String, fix: String) -> Finding {
    Finding {
        status: Status::Warn,
        check,
        detail,
        fix: Some(fix),
    }
}

pub(super) fn blocker(check: &'static str, detail: String, fix: String) -> Finding {
    Finding {
        status: Status::Blocker,
        check,
        detail,
        fix: Some(fix),
    }
}

pub(super) fn unreadable(check: &'static str, what: &str) -> Finding {
    warn(
        check,
        format!("cannot read {what}"),
        format!("check by hand: cat {what}"),
    )
}

/// The numbers of a sysctl file (`"4096\t131072\t6291456\n"` → 3 numbers).
pub fn numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// Soft and hard limit of a `/proc/self/limits` row (`unlimited` = `u64::MAX`).
pub fn limit(limits: &str, row: &str) -> Option<(u64, u64)> {
    let line = limits.lines().find(|l| l.starts_with(row))?;
    let mut words = line[row.len()..].split_whitespace();
    let mut value = || match words.next()? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    };
    Some((value()?, value()?))
}

fn show_limit(value: u64) -> String {
    if value == u64::MAX {
        "unlimited".into()
    } else {
        value.to_string()
    }
}

fn show_bytes_limit(value: u64) -> String {
    if value == u64::MAX {
        "unlimited".into()
    } else {
        human_size(value)
    }
}

/// `n` rounded up to a power of two, at least 65536: a tidy limit to set.
fn tidy_limit(n: u64) -> u64 {
    n.max(65_536).next_power_of_two()
}

/// Connections the caps let in: workers × `max_connections_per_worker`.
pub fn connection_cap(config: &ServerConfig) -> u64 {
    (config.server.effective_workers() as u64)
        .saturating_mul(config.limits.max_connections_per_worker as u64)
}

/// Open files: each connection is one fd. ringcast raises its soft limit
/// to the hard limit at start, so the hard limit is what counts.
pub fn open_files(config: &ServerConfig, limits: Option<&str>, nr_open: Option<&str>) -> Finding {
    const CHECK: &str = "open files";
    let Some((soft, hard)) = limits.and_then(|l| limit(l, "Max open files")) else {
        return unreadable(CHECK, "/proc/self/limits");
    };
    let planned = config.capacity.planned_connections;
    let cap = connection_cap(config);
    let need = planned + FD_SPARE;
    let target = tidy_limit(need.max(cap.min(1 << 24) + FD_SPARE));
    let fix = format!(
        "LimitNOFILE={target} in the systemd unit (tuning/ringcast.service); in a shell, as \
         root: ulimit -Hn {target} && ulimit -n {target}; in a container: \
         docker run --ulimit nofile={target}:{target}"
    );
    let limits_text = format!("soft {}, hard {}", show_limit(soft), show_limit(hard));
    if let Some(nr_open) = nr_open.and_then(|t| numbers(t).first().copied()) {
        if planned > 0 && need > nr_open {
            return blocker(
                CHECK,
                format!(
                    "{limits_text}; fs.nr_open {nr_open} is below the {need} fds needed for \
                     {planned} planned connections: no process may raise its limit that far"
                ),
                format!("sysctl -w fs.nr_open={target} (persist: tuning/sysctl.d/), then {fix}"),
            );
        }
    }
    if planned > 0 && hard < need {
        return blocker(
            CHECK,
            format!(
                "{limits_text}: the hard limit is below the {need} fds needed for {planned} \
                 planned connections (+{FD_SPARE} spare); at most {} connections fit",
                hard.saturating_sub(FD_SPARE)
            ),
            fix,
        );
    }
    if hard < cap.saturating_add(FD_SPARE) {
        return warn(
            CHECK,
            format!(
                "{limits_text}: the connection caps allow {cap} (workers × \
                 limits.max_connections_per_worker) but the hard limit stops at about {}",
                hard.saturating_sub(FD_SPARE)
            ),
            fix,
        );
    }
    let raised = if soft < need.max(cap) {
        "; ringcast raises the soft limit to the hard limit at start"
    } else {
        ""
    };
    ok(
        CHECK,
        format!("{limits_text}: room for the caps ({cap} connections){raised}"),
    )
}

/// `(major, minor)` of a kernel release like `6.8.0-45-generic`.
pub fn kernel_version(osrelease: &str) -> Option<(u32, u32)> {
    let mut parts = osrelease.trim().split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Locked memory: before 5.12, io_uring rings are charged to `RLIMIT_MEMLOCK`.
pub fn memlock(config: &ServerConfig, limits: Option<&str>, osrelease: Option<&str>) -> Finding {
    const CHECK: &str = "memlock";
    let Some((soft, _)) = limits.and_then(|l| limit(l, "Max locked memory")) else {
        return unreadable(CHECK, "/proc/self/limits");
    };
    let version = osrelease.and_then(kernel_version);
    if matches!(version, Some(v) if v >= (5, 12)) || config.io_uring.force_epoll {
        return ok(
            CHECK,
            format!(
                "{}: not needed (io_uring memory is charged to the cgroup from kernel 5.12)",
                show_bytes_limit(soft)
            ),
        );
    }
    // SQ entries (64 B) + their index (4 B) + CQ entries (2 per SQE, 16 B each),
    // rounded up to pages, per worker.
    let entries = u64::from(config.io_uring.entries);
    let ring = (entries * (64 + 4 + 2 * 16)).div_ceil(4096) * 4096 + 2 * 4096;
    let need = ring * config.server.effective_workers() as u64;
    if soft < need {
        return warn(
            CHECK,
            format!(
                "{}: below the {} the rings need on this kernel: workers fall back to epoll",
                show_bytes_limit(soft),
                human_size(need)
            ),
            "LimitMEMLOCK=infinity in the systemd unit (tuning/ringcast.service); in a shell, \
             as root: ulimit -l unlimited"
                .into(),
        );
    }
    ok(
        CHECK,
        format!(
            "{} >= {} for the rings",
            show_bytes_limit(soft),
            human_size(need)
        ),
    )
}

/// io_uring: enabled by the kernel, creatable here, and with the flags asked for.
pub fn io_uring(
    config: &ServerConfig,
    disabled: Option<&str>,
    plain: &Result<(), String>,
    flagged: &Result<(), String>,
    osrelease: Option<&str>,
) -> Finding {
    const CHECK: &str = "io_uring";
    if config.io_uring.force_epoll {
        return ok(CHECK, "not used: io_uring.force_epoll = true".into());
    }
    let flags = config.io_uring.flags().name();
    let kernel = osrelease.map_or("?".into(), |k| k.trim().to_string());
    match disabled.and_then(|t| numbers(t).first().copied()) {
        Some(2) => {
            return warn(
                CHECK,
                "kernel.io_uring_disabled = 2: io_uring is off for everyone; workers use epoll"
                    .into(),
                "sysctl -w kernel.io_uring_disabled=0".into(),
            )
        }
        Some(1) if plain.is_err() => {
            return warn(
                CHECK,
                "kernel.io_uring_disabled = 1: only members of kernel.io_uring_group may \
                 create rings; workers use epoll"
                    .into(),
                "sysctl -w kernel.io_uring_disabled=0 (or add ringcast's group: sysctl -w \
                 kernel.io_uring_group=GID)"
                    .into(),
            )
        }
        _ => {}
    }
    if let Err(e) = plain {
        return warn(
            CHECK,
            format!("cannot create a ring ({e}) on kernel {kernel}: workers use epoll"),
            "a kernel >= 5.6 with io_uring built in; in a container, allow io_uring_setup \
             (docker run --security-opt seccomp=unconfined, or a profile that allows it)"
                .into(),
        );
    }
    if let Err(e) = flagged {
        return warn(
            CHECK,
            format!(
                "the kernel ({kernel}) refuses {flags} ({e}): workers fall back to plainer flags"
            ),
            "ringcast serve --set io_uring.uring_sqpoll=false --set \
             io_uring.uring_single_issuer=false (or a kernel >= 6.0)"
                .into(),
        );
    }
    ok(CHECK, format!("rings with {flags} work on kernel {kernel}"))
}

/// CPUs present vs the workers and CPU list asked for.
pub fn cpus(config: &ServerConfig, online: &[usize]) -> Finding {
    const CHECK: &str = "cpus";
    let workers = config.server.effective_workers();
    let count = online.len();
    let absent: Vec<usize> = config
        .server
        .cpus
        .iter()
        .copied()
        .filter(|c| !online.contains(c))
        .collect();
    if !absent.is_empty() {
        return warn(
            CHECK,
            format!(
                "server.cpus lists {} which this process may not use (it has {})",
                format_cpu_list(&absent),
                format_cpu_list(online)
            ),
            format!(
                "ringcast serve --set server.cpus=\"{}\"",
                format_cpu_list(online)
            ),
        );
    }
    if workers > count {
        return warn(
            CHECK,
            format!(
                "{workers} workers on {count} CPUs: `serve` caps the profile's workers at \
                 {count}, so its throughput figures shrink by the same ratio"
            ),
            format!("ringcast serve --set server.workers={count} (or a box with {workers} cores)"),
        );
    }
    if config.io_uring.sqpoll && !config.io_uring.force_epoll && workers * 2 > count {
        return warn(
            CHECK,
            format!(
                "{workers} workers with SQPOLL need {} CPUs (one polling thread each), {count} here",
                workers * 2
            ),
            "ringcast serve --set io_uring.uring_sqpoll=false --set \
             io_uring.uring_coop_taskrun=true"
                .into(),
        );
    }
    ok(CHECK, format!("{workers} workers on {count} CPUs"))
}

/// Memory the capacity plan computes to for `capacity.planned_connections`
/// (64-byte messages, one subscription each), 0 without a plan.
pub fn computed_memory(config: &ServerConfig) -> u64 {
    match config.capacity.planned_connections {
        0 => 0,
        planned => capacity::memory_at(
            config,
            &Load::default(),
            config.server.effective_workers() as u64,
            planned,
        )
        .total(),
    }
}

/// Delivered messages/s the workers' CPU computes to (busy subscribers),
/// by the capacity model's own function.
pub fn computed_deliveries(config: &ServerConfig) -> u64 {
    capacity::cpu_deliveries_per_sec(config.server.effective_workers() as u64, &Load::default())
}

/// Memory the plan needs: the larger of what the model computes for the
/// planned connections and `capacity.planned_memory`.
pub fn memory_needed(config: &ServerConfig) -> u64 {
    computed_memory(config).max(config.capacity.planned_memory)
}

/// The operator's plan (`[capacity]`) vs what the model computes for it.
pub fn plan(config: &ServerConfig) -> Finding {
    const CHECK: &str = "capacity plan";
    let c = &config.capacity;
    if c.planned_connections == 0 {
        return ok(CHECK, "no capacity.planned_connections".into());
    }
    let computed = computed_memory(config);
    let cpu = computed_deliveries(config);
    let fix_hint = "ringcast profile capacity (same --profile and --set) prints the arithmetic";
    if c.planned_memory > 0 && c.planned_memory < computed {
        let gib = computed.div_ceil(1 << 30);
        return warn(
            CHECK,
            format!(
                "capacity.planned_memory {} < {} computed for {} connections; {fix_hint}",
                human_size(c.planned_memory),
                human_size(computed),
                c.planned_connections
            ),
            format!("ringcast serve --set capacity.planned_memory={gib}GiB"),
        );
    }
    if c.planned_messages_per_sec > cpu {
        return warn(
            CHECK,
            format!(
                "capacity.planned_messages_per_sec {} > {cpu} the {} workers' CPU computes to; \
                 {fix_hint}",
                c.planned_messages_per_sec,
                config.server.effective_workers()
            ),
            format!("ringcast serve --set capacity.planned_messages_per_sec={cpu}"),
        );
    }
    ok(
        CHECK,
        format!(
            "{} connections need {} computed (planned {}); CPU computes to {cpu} deliveries/s \
             (planned {})",
            c.planned_connections,
            human_size(computed),
            human_size(c.planned_memory),
            c.planned_messages_per_sec
        ),
    )
}

/// Memory present vs what the capacity plan needs.
pub fn memory(config: &ServerConfig, meminfo: Option<&str>) -> Finding {
    const CHECK: &str = "memory";
    let Some(meminfo) = meminfo else {
        return unreadable(CHECK, "/proc/meminfo");
    };
    let total = meminfo_bytes(meminfo, "MemTotal").unwrap_or(0);
    let available = meminfo_bytes(meminfo, "MemAvailable").unwrap_or(total);
    let planned = memory_needed(config);
    let shown = format!(
        "MemTotal {:.1} GiB, MemAvailable {:.1} GiB",
        total as f64 / (1u64 << 30) as f64,
        available as f64 / (1u64 << 30) as f64
    );
    if planned == 0 {
        return ok(CHECK, format!("{shown} (no capacity statement)"));
    }
    let need = human_size(planned);
    let fix = "ringcast doctor --profile auto (the tier this box can hold), then \
               ringcast serve --profile auto"
        .to_string();
    if total < planned {
        return blocker(
            CHECK,
            format!("{shown}: the profile is sized for {need}, more than this box has"),
            fix,
        );
    }
    if available < planned {
        return warn(
            CHECK,
            format!("{shown}: the profile is sized for {need}, more than is free now"),
            "stop what else runs here, or ".to_string() + &fix,
        );
    }
    ok(CHECK, format!("{shown} >= {need} the profile is sized for"))
}

/// Transparent huge pages: `always` lets khugepaged compact memory under
/// load (latency spikes) and bloats RSS of many small allocations.
pub fn thp(text: Option<&str>) -> Finding {
    const CHECK: &str = "THP";
    let Some(text) = text else {
        return ok(CHECK, "not available on this kernel".into());
    };
    let mode = text
        .split_whitespace()
        .find(|w| w.starts_with('['))
        .map(|w| w.trim_matches(['[', ']']))
        .unwrap_or("?");
    if mode == "always" {
        return warn(
            CHECK,
            "transparent_hugepage = always: compaction stalls under load and larger RSS".into(),
            "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled".into(),
        );
    }
    ok(CHECK, format!("transparent_hugepage = {mode}"))
}

/// CPU frequency governor: `performance` keeps latency flat.
pub fn governor(governors: &[String]) -> Finding {
    const CHECK: &str = "cpu governor";
    if governors.is_empty() {
        return ok(
            CHECK,
            "no cpufreq here (a VM or a fixed clock): nothing to set".into(),
        );
    }
    let slow: Vec<&String> = governors.iter().filter(|g| *g != "performance").collect();
    if slow.is_empty() {
        return ok(
            CHECK,
            format!("performance on all {} CPUs", governors.len()),
        );
    }
    let mut names: Vec<&str> = slow.iter().map(|s| s.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    warn(
        CHECK,
        format!(
            "{} of {} CPUs run {}: clocks ramp up late under bursts",
            slow.len(),
            governors.len(),
            names.join(", ")
        ),
        "cpupower frequency-set -g performance".into(),
    )
}

/// The disk under `store.data_path`: that it exists (the disk engine does
/// not start without it), what kind of disk it is against `store.fsync`,
/// and whether its free space holds `store.max_disk`.
pub fn store_disk(config: &ServerConfig, store: Option<&StoreProbe>) -> Finding {
    const CHECK: &str = "store disk";
    let disk_engine = config.engine.kind == EngineKind::Disk;
    let Some(store) = store else {
        return ok(CHECK, "no durable store (store.data_path is empty)".into());
    };
    let path = store.path.display();
    let fsync = config.store.fsync;
    let disk = store
        .device
        .as_ref()
        .and_then(|(name, rot, level)| classify_disk(name, rot, level.as_deref()));
    let note = match disk_engine {
        true => "",
        false => "; read only with engine.kind = \"disk\"",
    };
    let on = match &disk {
        Some(disk) => format!("on {disk}"),
        None => "not on a local block device".into(),
    };
    if !store.exists {
        let detail = format!(
            "{path} does not exist ({} is {on}){note}",
            store.checked.display()
        );
        let fix = format!("mkdir -p {path}");
        return match disk_engine {
            true => blocker(
                CHECK,
                format!("{detail}: the disk engine does not start"),
                fix,
            ),
            false => warn(CHECK, detail, fix),
        };
    }
    if let Some(free) = store.free {
        let store_cfg = &config.store;
        let workers = config.server.effective_workers() as u64;
        let start_needs = store_cfg.min_free + store_cfg.segment_size * workers;
        if disk_engine && free < start_needs {
            return blocker(
                CHECK,
                format!(
                    "{path} has {} free: below store.min_free {} plus one store.segment_size {} \
                     per worker, so the disk engine cannot start",
                    human_size(free),
                    human_size(store_cfg.min_free),
                    human_size(store_cfg.segment_size)
                ),
                "free space, or lower store.min_free / store.segment_size".into(),
            );
        }
        if disk_engine && store_cfg.max_disk > 0 && free < store_cfg.max_disk {
            return warn(
                CHECK,
                format!(
                    "{path} has {} free, less than store.max_disk {}: the disk fills before \
                     retention deletes segments (publishes then answer unavailable)",
                    human_size(free),
                    human_size(store_cfg.max_disk)
                ),
                format!("ringcast serve --set store.max_disk={}", free / 2),
            );
        }
    }
    if let Some(disk) = &disk {
        if disk.kind == DiskKind::Rotational && fsync != FsyncPolicy::Never {
            return warn(
                CHECK,
                format!(
                    "{path} is {on} with fsync = {fsync}: a rotational disk does ~100-200 \
                     fsyncs/s (virtual disks may report rotational falsely){note}"
                ),
                "put store.data_path on an SSD/NVMe or RAID 10 of them: ringcast serve \
                 --set store.data_path=/path/on/ssd"
                    .to_string(),
            );
        }
    }
    let free = store
        .free
        .map(|f| format!(", {} free", human_size(f)))
        .unwrap_or_default();
    ok(
        CHECK,
        format!("{path} is {on}{free}, fsync = {fsync}{note}"),
    )
}

/// The capacity statement vs the caps of the same profile.
pub fn caps(config: &ServerConfig) -> Finding {
    const CHECK: &str = "connection caps";
    let cap = connection_cap(config);
    let planned = config.capacity.planned_connections;
    if planned > cap {
        let per_worker = planned.div_ceil(config.server.effective_workers() as u64);
        return warn(
            CHECK,
            format!(
                "capacity.planned_connections {planned} > what the caps let in ({cap} = \
                 {} workers × limits.max_connections_per_worker {})",
                config.server.effective_workers(),
                config.limits.max_connections_per_worker
            ),
            format!("ringcast serve --set limits.max_connections_per_worker={per_worker}"),
        );
    }
    let per_ip = match config.limits.max_connections_per_ip {
        0 => "no per-IP cap".to_string(),
        n => format!("per-IP cap {n}"),
    };
    ok(
        CHECK,
        format!(
            "{} workers × {} = {cap} connections; {per_ip}",
            config.server.effective_workers(),
            config.limits.max_connections_per_worker
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max open files            20000                20000                files     
Max locked memory         8388608              8388608              bytes     
";

    fn planned(connections: u64) -> ServerConfig {
        let mut config = ServerConfig::default();
        config.server.workers = 2;
        config.limits.max_connections_per_worker = 100_000;
        config.capacity.planned_connections = connections;
        config
    }

    #[test]
    fn limits_rows_parse_with_unlimited() {
        assert_eq!(limit(LIMITS, "Max open files"), Some((20000, 20000)));
        assert_eq!(limit(LIMITS, "Max cpu time"), Some((u64::MAX, u64::MAX)));
        assert_eq!(limit(LIMITS, "Max processes"), None);
    }

    #[test]
    fn a_hard_fd_limit_below_the_plan_is_a_blocker() {
        let finding = open_files(&planned(200_000), Some(LIMITS), Some("1048576\n"));
        assert_eq!(finding.status, Status::Blocker, "{finding:?}");
        assert!(
            finding.detail.contains("soft 20000, hard 20000"),
            "{}",
            finding.detail
        );
        assert!(
            finding.detail.contains("at most 18976 connections"),
            "{}",
            finding.detail
        );
        assert!(finding.fix.expect("fix").contains("LimitNOFILE=262144"));
    }

    #[test]
    fn without_a_plan_a_low_fd_limit_only_warns_about_the_caps() {
        let finding = open_files(&planned(0), Some(LIMITS), Some("1048576"));
        assert_eq!(finding.status, Status::Warn, "{finding:?}");
        assert!(
            finding.detail.contains("caps allow 200000"),
            "{}",
            finding.detail
        );
        let roomy = LIMITS.replace("20000                20000", "1024     1048576");
        let finding = open_files(&planned(0), Some(&roomy), Some("1048576"));
        assert_eq!(finding.status, Status::Ok, "{finding:?}");
        assert!(
            finding.detail.contains("raises the soft limit"),
            "{}",
            finding.detail
        );
    }

    #[test]
    fn nr_open_below_the_plan_is_a_blocker() {
        let huge = LIMITS.replace("20000                20000", "unlimited unlimited");
        let finding = open_files(&planned(5_000_000), Some(&huge), Some("1048576"));
        assert_eq!(finding.status, Status::Blocker);
        assert!(finding
            .fix
            .expect("fix")
            .starts_with("sysctl -w fs.nr_open=8388608"));
    }

    #[test]
    fn memlock_matters_only_before_5_12() {
        assert_eq!(kernel_version("6.18.44-fc-v782\n"), Some((6, 18)));
        assert_eq!(kernel_version("5.4.0-150-generic"), Some((5, 4)));
        let config = planned(0);
        assert_eq!(
            memlock(&config, Some(LIMITS), Some("6.8.0")).status,
            Status::Ok
        );
        let tight = LIMITS.replace("8388608              8388608", "65536 65536");
        let finding = memlock(&config, Some(&tight), Some("5.4.0"));
        assert_eq!(finding.status, Status::Warn);
        assert!(finding.fix.expect("fix").contains("LimitMEMLOCK=infinity"));
    }

    #[test]
    fn io_uring_states() {
        let config = ServerConfig::default();
        let fine: Result<(), String> = Ok(());
        let refused: Result<(), String> = Err("Invalid argument (os error 22)".into());
        let f = io_uring(&config, Some("0"), &fine, &fine, Some("6.8.0"));
        assert_eq!(f.status, Status::Ok);
        assert_eq!(
            f.detail,
            "rings with coop_taskrun+single_issuer work on kernel 6.8.0"
        );
        let f = io_uring(&config, Some("2\n"), &refused, &refused, None);
        assert_eq!(
            f.fix.as_deref(),
            Some("sysctl -w kernel.io_uring_disabled=0")
        );
        let f = io_uring(&config, None, &fine, &refused, Some("5.15.0"));
        assert_eq!(f.status, Status::Warn);
        assert!(f.detail.contains("refuses coop_taskrun+single_issuer"));
        let f = io_uring(&config, None, &refused, &refused, Some("5.4.0"));
        assert!(f.detail.contains("workers use epoll"));
        let mut epoll = ServerConfig::default();
        epoll.io_uring.force_epoll = true;
        assert_eq!(
            io_uring(&epoll, Some("2"), &refused, &refused, None).status,
            Status::Ok
        );
    }

    #[test]
    fn cpus_vs_workers() {
        let mut six = ServerConfig::default();
        six.server.workers = 6;
        let f = cpus(&six, &[0, 1]);
        assert_eq!(f.status, Status::Warn);
        assert_eq!(
            f.fix.as_deref(),
            Some("ringcast serve --set server.workers=2 (or a box with 6 cores)")
        );
        assert_eq!(cpus(&six, &[0, 1, 2, 3, 4, 5]).status, Status::Ok);
        let mut listed = ServerConfig::default();
        listed.server.cpus = vec![0, 8];
        assert!(cpus(&listed, &[0, 1]).detail.contains("lists 8"));
    }

    #[test]
    fn memory_vs_the_capacity_statement() {
        let meminfo = "MemTotal:       24683564 kB\nMemAvailable:   20000000 kB\n";
        let config = |gib: u64| {
            let mut c = ServerConfig::default();
            c.capacity.planned_memory = gib << 30;
            c
        };
        assert_eq!(memory(&config(8), Some(meminfo)).status, Status::Ok);
        assert_eq!(memory(&config(22), Some(meminfo)).status, Status::Warn);
        assert_eq!(memory(&config(64), Some(meminfo)).status, Status::Blocker);
        assert_eq!(memory(&config(0), Some(meminfo)).status, Status::Ok);
        // The computed figure counts even when planned_memory is smaller:
        // 2,000,000 connections of the defaults need more than this box has.
        let mut c = config(1);
        c.capacity.planned_connections = 2_000_000;
        assert_eq!(memory(&c, Some(meminfo)).status, Status::Blocker);
        // permessage-deflate's kept zlib state counts too: 60,000
        // connections fit this 23.5 GiB box, but not with 418 KiB of
        // streams each.
        let mut c = config(0);
        c.server.workers = 2;
        c.capacity.planned_connections = 60_000;
        assert_eq!(memory(&c, Some(meminfo)).status, Status::Ok);
        c.deflate.enabled = true;
        c.deflate.server_no_context_takeover = false;
        c.deflate.client_no_context_takeover = false;
        assert!(computed_memory(&c) > 60_000 * 427_584);
        assert_eq!(memory(&c, Some(meminfo)).status, Status::Blocker);
        // A cap on the connections keeping it brings it back.
        c.deflate.max_context_connections = 1_000;
        assert_eq!(memory(&c, Some(meminfo)).status, Status::Ok);
    }

    #[test]
    fn the_plan_is_compared_with_the_computed_figures() {
        let mut c = ServerConfig::default();
        c.server.workers = 2;
        assert_eq!(plan(&c).status, Status::Ok);
        c.capacity.planned_connections = 100_000;
        c.capacity.planned_memory = 1 << 30;
        // 100,000 × ~15 KiB + 3.4 GiB of history > 1 GiB.
        let f = plan(&c);
        assert_eq!(f.status, Status::Warn, "{f:?}");
        assert!(
            f.detail.contains("computed for 100000 connections"),
            "{f:?}"
        );
        c.capacity.planned_memory = 8 << 30;
        assert_eq!(plan(&c).status, Status::Ok);
        c.capacity.planned_messages_per_sec = 10_000_000;
        assert_eq!(plan(&c).status, Status::Warn);
        c.capacity.planned_messages_per_sec = computed_deliveries(&c);
        assert_eq!(plan(&c).status, Status::Ok);
    }

    #[test]
    fn thp_and_governor() {
        assert_eq!(thp(Some("always [madvise] never\n")).status, Status::Ok);
        let f = thp(Some("[always] madvise never\n"));
        assert_eq!(
            f.fix.as_deref(),
            Some("echo madvise > /sys/kernel/mm/transparent_hugepage/enabled")
        );
        assert_eq!(governor(&[]).status, Status::Ok);
        let f = governor(&["performance".into(), "powersave".into()]);
        assert_eq!(f.status, Status::Warn);
        assert!(f.detail.starts_with("1 of 2 CPUs run powersave"));
    }

    #[test]
    fn store_disk_kinds() {
        let mut config = ServerConfig::default();
        config.store.data_path = "/var/lib/ringcast".into();
        config.store.fsync = FsyncPolicy::Always;
        let probe = |exists, name: &str, rot: &str, level: Option<&str>| StoreProbe {
            path: "/var/lib/ringcast".into(),
            exists,
            checked: if exists {
                "/var/lib/ringcast"
            } else {
                "/var/lib"
            }
            .into(),
            device: Some((name.into(), rot.into(), level.map(Into::into))),
            free: Some(100 << 30),
        };
        assert_eq!(
            store_disk(&ServerConfig::default(), None).status,
            Status::Ok
        );
        let f = store_disk(&config, Some(&probe(false, "vda", "1", None)));
        assert_eq!(f.fix.as_deref(), Some("mkdir -p /var/lib/ringcast"));
        assert!(
            f.detail.contains("/var/lib is on vda (rotational)"),
            "{}",
            f.detail
        );
        let f = store_disk(&config, Some(&probe(true, "sda", "1\n", None)));
        assert_eq!(f.status, Status::Warn);
        let f = store_disk(&config, Some(&probe(true, "md0", "0", Some("raid10"))));
        assert_eq!(f.status, Status::Ok);
        assert!(
            f.detail.contains("md0 (software RAID, raid10)"),
            "{}",
            f.detail
        );
        // With the disk engine: a missing directory stops the start, and
        // free space is held against store.max_disk and the first segments.
        config.engine.kind = EngineKind::Disk;
        let f = store_disk(&config, Some(&probe(false, "md0", "0", Some("raid10"))));
        assert_eq!(f.status, Status::Blocker);
        let mut small = probe(true, "md0", "0", Some("raid10"));
        small.free = Some(4 << 30);
        let f = store_disk(&config, Some(&small));
        assert_eq!(f.status, Status::Warn);
        assert!(f.detail.contains("store.max_disk"), "{}", f.detail);
        small.free = Some(1 << 20);
        assert_eq!(store_disk(&config, Some(&small)).status, Status::Blocker);
    }

    #[test]
    fn planned_connections_beyond_the_caps_warn() {
        let f = caps(&planned(300_000));
        assert_eq!(f.status, Status::Warn);
        assert_eq!(
            f.fix.as_deref(),
            Some("ringcast serve --set limits.max_connections_per_worker=150000")
        );
        assert_eq!(caps(&planned(150_000)).status, Status::Ok);
    }
}
