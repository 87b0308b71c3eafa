//! What this machine has — CPUs, memory, disks — and the tier `--profile
//! auto` picks for it.
//!
//! The parsing and the pick are pure functions over the text of `/proc` and
//! `/sys` files, so tests feed them fixtures; [`MachineFacts::read`] is the
//! thin reader that gathers that text on a live system.

use std::fs;
use std::path::Path;

/// A block device worth reporting (loop, zram and RAM disks are skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub name: String,
    pub kind: DiskKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskKind {
    Nvme,
    /// Linux software RAID (`md`), with its level (`raid10`, `raid1`, ...).
    Raid(String),
    /// Non-rotational, not NVMe (SATA/SAS SSD, or a virtual disk saying so).
    Ssd,
    /// Rotational (an HDD, or a virtual disk that reports itself rotational).
    Rotational,
}

impl std::fmt::Display for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            DiskKind::Nvme => write!(f, "{} (NVMe)", self.name),
            DiskKind::Raid(level) => write!(f, "{} (software RAID, {level})", self.name),
            DiskKind::Ssd => write!(f, "{} (SSD)", self.name),
            DiskKind::Rotational => write!(f, "{} (rotational)", self.name),
        }
    }
}

/// Classifies `/sys/block/NAME` from its `queue/rotational` text and, for
/// `md` devices, its `md/level` text. `None` for devices that hold no data
/// of ours (loop, zram, ram, optical).
pub fn classify_disk(name: &str, rotational: &str, md_level: Option<&str>) -> Option<Disk> {
    const SKIP: [&str; 5] = ["loop", "zram", "ram", "sr", "fd"];
    if SKIP.iter().any(|p| name.starts_with(p)) {
        return None;
    }
    let kind = if let Some(level) = md_level.filter(|_| name.starts_with("md")) {
        DiskKind::Raid(level.trim().to_string())
    } else if name.starts_with("nvme") {
        DiskKind::Nvme
    } else if rotational.trim() == "1" {
        DiskKind::Rotational
    } else {
        DiskKind::Ssd
    };
    Some(Disk {
        name: name.to_string(),
        kind,
    })
}

/// The value of a `Name:   1234 kB` line of `/proc/meminfo`, in bytes.
pub fn meminfo_bytes(meminfo: &str, field: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kib * 1024)
    })
}

/// What `auto` and `doctor` need to know about the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineFacts {
    /// CPUs this process may run on.
    pub cpus: usize,
    /// `MemTotal`, in bytes.
    pub mem_total: u64,
    pub disks: Vec<Disk>,
}

impl MachineFacts {
    /// Reads the live system.
    pub fn read() -> MachineFacts {
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        MachineFacts {
            cpus: online_cpus().len().max(1),
            mem_total: meminfo_bytes(&meminfo, "MemTotal").unwrap_or(0),
            disks: read_disks(Path::new("/sys/block")),
        }
    }
}

/// The CPUs this process may run on (its affinity mask), in order.
pub fn online_cpus() -> Vec<usize> {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => ids.into_iter().map(|c| c.id).collect(),
        _ => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

fn read_disks(sys_block: &Path) -> Vec<Disk> {
    let Ok(entries) = fs::read_dir(sys_block) else {
        return Vec::new();
    };
    let mut disks: Vec<Disk> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            let rotational = fs::read_to_string(dir.join("queue/rotational")).unwrap_or_default();
            let level = fs::read_to_string(dir.join("md/level")).ok();
            classify_disk(&name, &rotational, level.as_deref())
        })
        .collect();
    disks.sort_by(|a, b| a.name.cmp(&b.name));
    disks
}

const GIB: u64 = 1 << 30;

/// The smallest machine each tier is for: CPUs and `MemTotal` (a little
/// under the nominal size, which the kernel never reports in full).
const TIERS: [(&str, usize, u64); 3] = [
    ("ultra", 48, 96 * GIB),
    ("high", 8, 28 * GIB),
    ("medium", 4, 7 * GIB),
];

/// The tier nearest to `facts` — the largest whose CPU and memory floors it
/// meets — or `None` for the embedded defaults; and a sentence saying why.
pub fn pick_tier(facts: &MachineFacts) -> (Option<&'static str>, String) {
    let disks = if facts.disks.is_empty() {
        "no disks found".to_string()
    } else {
        facts
            .disks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let seen = format!(
        "{} CPUs, {:.1} GiB memory, disks: {disks}",
        facts.cpus,
        facts.mem_total as f64 / GIB as f64
    );
    let fits = |cpus: usize, mem: u64| facts.cpus >= cpus && facts.mem_total >= mem;
    let Some(&(tier, cpus, mem)) = TIERS.iter().find(|(_, c, m)| fits(*c, *m)) else {
        let (_, cpus, mem) = TIERS[2];
        return (
            None,
            format!(
                "auto: {seen} → embedded defaults (medium needs at least {cpus} CPUs and {} GiB)",
                mem / GIB
            ),
        );
    };
    let mut why = format!(
        "auto: {seen} → {tier} (at least {cpus} CPUs and {} GiB)",
        mem / GIB
    );
    let fast = |d: &Disk| matches!(d.kind, DiskKind::Nvme | DiskKind::Raid(_));
    if tier != "medium" && !facts.disks.iter().any(fast) {
        why.push_str(&format!(
            "; note: {tier} expects RAID 10 or NVMe for the durable store, none found"
        ));
    }
    (Some(tier), why)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:       24683564 kB\nMemFree:        21812224 kB\n\
                           MemAvailable:   23673064 kB\n";

    fn facts(cpus: usize, gib: u64, disks: Vec<Disk>) -> MachineFacts {
        MachineFacts {
            cpus,
            mem_total: gib * GIB,
            disks,
        }
    }

    fn disk(name: &str, rotational: &str, level: Option<&str>) -> Disk {
        classify_disk(name, rotational, level).expect("a real disk")
    }

    #[test]
    fn meminfo_fields_are_read_in_bytes() {
        assert_eq!(meminfo_bytes(MEMINFO, "MemTotal"), Some(24683564 * 1024));
        assert_eq!(
            meminfo_bytes(MEMINFO, "MemAvailable"),
            Some(23673064 * 1024)
        );
        assert_eq!(meminfo_bytes(MEMINFO, "Mem"), None);
    }

    #[test]
    fn disks_are_classified_from_sys_block() {
        assert_eq!(disk("nvme0n1", "0\n", None).kind, DiskKind::Nvme);
        assert_eq!(
            disk("md0", "0\n", Some("raid10\n")).kind,
            DiskKind::Raid("raid10".into())
        );
        assert_eq!(disk("sda", "0\n", None).kind, DiskKind::Ssd);
        assert_eq!(disk("vda", "1\n", None).kind, DiskKind::Rotational);
        assert_eq!(classify_disk("loop0", "0", None), None);
        assert_eq!(classify_disk("zram0", "0", None), None);
    }

    #[test]
    fn auto_picks_the_largest_tier_the_machine_meets() {
        let nvme = || vec![disk("nvme0n1", "0", None)];
        let raid = || vec![disk("md0", "0", Some("raid10"))];
        assert_eq!(pick_tier(&facts(2, 23, vec![])).0, None);
        assert_eq!(pick_tier(&facts(6, 15, nvme())).0, Some("medium"));
        assert_eq!(pick_tier(&facts(12, 31, raid())).0, Some("high"));
        assert_eq!(pick_tier(&facts(64, 125, raid())).0, Some("ultra"));
        // Lots of cores but little memory: memory decides.
        assert_eq!(pick_tier(&facts(64, 16, nvme())).0, Some("medium"));
    }

    #[test]
    fn auto_says_why() {
        let (_, why) = pick_tier(&facts(2, 23, vec![disk("vda", "1", None)]));
        assert_eq!(
            why,
            "auto: 2 CPUs, 23.0 GiB memory, disks: vda (rotational) → embedded defaults \
             (medium needs at least 4 CPUs and 7 GiB)"
        );
        let (_, why) = pick_tier(&facts(12, 31, vec![disk("sda", "0", None)]));
        assert!(
            why.contains("→ high") && why.contains("none found"),
            "{why}"
        );
    }
}
