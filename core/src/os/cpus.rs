//! CPU lists in cpuset form (`0-3,8`: the syntax of `taskset -c` and
//! `/sys/devices/system/cpu/online`) and pinning the current thread to one
//! CPU.
//!
//! The server reads a list from `server.cpus` (worker `i` on
//! `cpus[i % len]`); the load tools from `--cpus` as a [`CpuList`] (thread
//! `i` on [`CpuList::for_thread`]). A load generator sharing cores with the
//! server it measures measures itself, so runs pin the two apart (`taskset
//! -c 0 ringcast serve`, `ringcast-load ... --cpus 1`).

use std::str::FromStr;

/// CPU numbers are below this, so a typo cannot build a huge list.
pub const CPU_LIMIT: usize = 4096;

/// Parses a cpuset list like `"0-3,8,10-11"`, in the order written; blanks
/// around numbers and empty items are skipped, so `""` is the empty list.
/// The error is the line shown to the operator (the configuration wraps it
/// with the key and source, `--cpus` with the flag).
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.trim().is_empty()) {
        let bad = || format!("{text:?} is not a CPU list like \"0-3,8\"");
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part.trim(), part.trim()),
        };
        let lo: usize = lo.parse().map_err(|_| bad())?;
        let hi: usize = hi.parse().map_err(|_| bad())?;
        if lo > hi || hi >= CPU_LIMIT {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    Ok(cpus)
}

/// Shows a CPU list in cpuset form, runs of consecutive CPUs collapsed.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if j > i {
            format!("{}-{}", cpus[i], cpus[j])
        } else {
            cpus[i].to_string()
        });
        i = j + 1;
    }
    parts.join(",")
}

/// A non-empty list of CPU numbers, in the order written (a CPU may repeat:
/// it then gets more of the threads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

/// Why a CPU list was refused, or pinning failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuError {
    #[error("empty CPU list")]
    Empty,
    /// The message of [`parse_cpu_list`], or a list longer than
    /// [`CPU_LIMIT`] entries.
    #[error("{0}")]
    Bad(String),
    #[error("CPU {cpu} is out of range (this machine has {online} online)")]
    NotOnline { cpu: usize, online: usize },
    #[error("cannot pin thread to CPU {0}")]
    PinFailed(usize),
}

impl CpuList {
    /// The CPU for thread `i`.
    pub fn for_thread(&self, i: usize) -> usize {
        self.0[i % self.0.len()]
    }

    pub fn cpus(&self) -> &[usize] {
        &self.0
    }

    /// Checks every CPU exists on this machine.
    pub fn check_online(&self) -> Result<(), CpuError> {
        let online = online_count();
        match self.0.iter().find(|&&cpu| cpu >= online) {
            Some(&cpu) => Err(CpuError::NotOnline { cpu, online }),
            None => Ok(()),
        }
    }
}

impl FromStr for CpuList {
    type Err = CpuError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cpus = parse_cpu_list(s).map_err(CpuError::Bad)?;
        if cpus.is_empty() {
            return Err(CpuError::Empty);
        }
        // Only repeats get here (each number is below the limit).
        if cpus.len() > CPU_LIMIT {
            return Err(CpuError::Bad(format!(
                "{s:?} lists more than {CPU_LIMIT} CPUs"
            )));
        }
        Ok(CpuList(cpus))
    }
}

/// CPUs online on the machine. Not the affinity mask of this process: under
/// `taskset -c 1` the process may still pin its threads anywhere.
pub fn online_count() -> usize {
    // SAFETY: sysconf reads a constant of the system; it has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> Result<(), CpuError> {
    // `core_affinity` indexes a fixed-size `cpu_set_t` and would panic past it.
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(CpuError::PinFailed(cpu));
    }
    if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        Ok(())
    } else {
        Err(CpuError::PinFailed(cpu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_in_order_and_format_collapsed() {
        assert_eq!(parse_cpu_list("0-3,8"), Ok(vec![0, 1, 2, 3, 8]));
        assert_eq!(parse_cpu_list(" 2 - 4, 7 ,"), Ok(vec![2, 3, 4, 7]));
        assert_eq!(parse_cpu_list("0,2"), Ok(vec![0, 2]));
        assert_eq!(parse_cpu_list("3,1"), Ok(vec![3, 1]));
        assert_eq!(parse_cpu_list("4095"), Ok(vec![4095]));
        assert_eq!(parse_cpu_list(""), Ok(vec![]));
        assert_eq!(parse_cpu_list(" , "), Ok(vec![]));
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format_cpu_list(&[5]), "5");
        assert_eq!(format_cpu_list(&[]), "");
        assert_eq!(format_cpu_list(&[3, 2]), "3,2");
    }

    #[test]
    fn a_bad_cpu_list_is_refused_with_the_text_as_written() {
        for text in ["x", "3-1", "4096", "99999", "-3", "1-2-3", "0-4096", "1;2"] {
            assert_eq!(
                parse_cpu_list(text),
                Err(format!("{text:?} is not a CPU list like \"0-3,8\"")),
                "{text}"
            );
        }
    }

    #[test]
    fn a_cpu_list_assigns_threads_round_robin() {
        let l: CpuList = "1-2".parse().expect("range");
        assert_eq!(l.cpus(), [1, 2]);
        assert_eq!(
            (l.for_thread(0), l.for_thread(1), l.for_thread(2)),
            (1, 2, 1)
        );
        let l: CpuList = "1,1,2".parse().expect("repeats");
        assert_eq!(l.cpus(), [1, 1, 2]);
    }

    #[test]
    fn a_cpu_list_is_not_empty_nor_huge() {
        assert_eq!("".parse::<CpuList>(), Err(CpuError::Empty));
        assert_eq!(" , ".parse::<CpuList>(), Err(CpuError::Empty));
        assert!(matches!("x".parse::<CpuList>(), Err(CpuError::Bad(m)) if m.contains("\"x\"")));
        assert!(matches!("3-1".parse::<CpuList>(), Err(CpuError::Bad(_))));
        assert_eq!(
            "0-4095".parse::<CpuList>().map(|l| l.cpus().len()),
            Ok(4096)
        );
        assert!(matches!(
            "0-4095,0".parse::<CpuList>(),
            Err(CpuError::Bad(m)) if m.contains("more than 4096")
        ));
    }

    #[test]
    fn online_cpus_ignore_the_affinity_mask() {
        let online = online_count();
        assert!(online >= 1);
        let l: CpuList = (online - 1).to_string().parse().expect("cpu");
        assert_eq!(l.check_online(), Ok(()));
        let l: CpuList = online.to_string().parse().expect("cpu");
        assert_eq!(
            l.check_online(),
            Err(CpuError::NotOnline {
                cpu: online,
                online
            })
        );
    }

    #[test]
    fn pins_to_cpu_zero_and_not_to_an_offline_cpu() {
        // Threads of their own, so the test harness thread stays unpinned.
        let pinned = std::thread::spawn(|| pin_current_thread(0))
            .join()
            .expect("thread");
        assert_eq!(pinned, Ok(()));
        // The first CPU number past the online ones: the kernel refuses a
        // mask with no CPU it can run the thread on.
        let offline = online_count();
        let refused = std::thread::spawn(move || pin_current_thread(offline))
            .join()
            .expect("thread");
        assert_eq!(refused, Err(CpuError::PinFailed(offline)));
    }
}
