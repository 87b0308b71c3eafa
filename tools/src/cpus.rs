//! CPU lists (`--cpus 1`, `--cpus 0,2`, `--cpus 2-3`) and pinning the
//! current thread to one CPU.
//!
//! A load generator sharing cores with the server it measures measures
//! itself: runs pin the server and the generator apart (`taskset -c 0
//! ringcast serve`, `ringcast-load ... --cpus 1`). Thread `i` of a run is
//! pinned to `cpus[i % cpus.len()]`.

use std::str::FromStr;

/// Upper bound on a CPU number, so a typo cannot build a huge list.
const MAX_CPU: usize = 4096;

/// A non-empty list of CPU numbers, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

/// Why a `--cpus` value was refused, or pinning failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuError {
    #[error("empty CPU list")]
    Empty,
    #[error("`{0}` is not a CPU number or range (like 1, 0,2 or 2-3)")]
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
        let online = online_cpus();
        match self.0.iter().find(|&&cpu| cpu >= online) {
            Some(&cpu) => Err(CpuError::NotOnline { cpu, online }),
            None => Ok(()),
        }
    }
}

impl FromStr for CpuList {
    type Err = CpuError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut cpus = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || CpuError::Bad(part.to_string());
            let parse = |n: &str| n.trim().parse::<usize>().ok().filter(|&c| c < MAX_CPU);
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (parse(a).ok_or_else(bad)?, parse(b).ok_or_else(bad)?);
                    if a > b {
                        return Err(bad());
                    }
                    cpus.extend(a..=b);
                }
                None => cpus.push(parse(part).ok_or_else(bad)?),
            }
            if cpus.len() > MAX_CPU {
                return Err(CpuError::Bad(s.to_string()));
            }
        }
        if cpus.is_empty() {
            return Err(CpuError::Empty);
        }
        Ok(CpuList(cpus))
    }
}

/// CPUs online on the machine. Not the affinity mask of this process: under
/// `taskset -c 1` the process may still pin its threads anywhere.
pub fn online_cpus() -> usize {
    // SAFETY: sysconf reads a constant of the system; it has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> Result<(), CpuError> {
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
    fn parses_lists_and_ranges() {
        assert_eq!("1".parse::<CpuList>(), Ok(CpuList(vec![1])));
        assert_eq!("0,2".parse::<CpuList>(), Ok(CpuList(vec![0, 2])));
        assert_eq!("2-4, 7".parse::<CpuList>(), Ok(CpuList(vec![2, 3, 4, 7])));
        let l: CpuList = "1-2".parse().expect("range");
        assert_eq!(
            (l.for_thread(0), l.for_thread(1), l.for_thread(2)),
            (1, 2, 1)
        );
    }

    #[test]
    fn refuses_bad_lists() {
        assert_eq!("".parse::<CpuList>(), Err(CpuError::Empty));
        assert_eq!("x".parse::<CpuList>(), Err(CpuError::Bad("x".into())));
        assert_eq!("3-1".parse::<CpuList>(), Err(CpuError::Bad("3-1".into())));
        assert_eq!(
            "99999".parse::<CpuList>(),
            Err(CpuError::Bad("99999".into()))
        );
    }

    #[test]
    fn online_cpus_ignore_the_affinity_mask() {
        let online = online_cpus();
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
    fn pins_to_cpu_zero() {
        // Run on a thread of its own so the test harness thread stays unpinned.
        let pinned = std::thread::spawn(|| pin_current_thread(0))
            .join()
            .expect("thread");
        assert_eq!(pinned, Ok(()));
    }
}
