//! CPU time used by this process or by the calling thread (`getrusage`).
//!
//! A load generator must say how busy it was: a generator thread near 100 %
//! of its core measures itself as much as the server. Each worker thread
//! reads its own time (`RUSAGE_THREAD`) at the start and end of the measured
//! window; the main thread reads the whole process's (`RUSAGE_SELF`).

use serde::Serialize;

/// User and system CPU time, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CpuTime {
    pub user_us: u64,
    pub system_us: u64,
}

impl CpuTime {
    pub fn total_us(&self) -> u64 {
        self.user_us + self.system_us
    }

    /// Time used since `earlier` (zero where the clock went backwards).
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user_us: self.user_us.saturating_sub(earlier.user_us),
            system_us: self.system_us.saturating_sub(earlier.system_us),
        }
    }
}

/// The whole process's CPU time so far.
pub fn process_cpu() -> CpuTime {
    read(libc::RUSAGE_SELF)
}

/// The calling thread's CPU time so far.
pub fn thread_cpu() -> CpuTime {
    read(libc::RUSAGE_THREAD)
}

fn read(who: libc::c_int) -> CpuTime {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the duration of the call.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    if rc != 0 {
        return CpuTime::default();
    }
    let us = |tv: libc::timeval| {
        u64::try_from(tv.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(tv.tv_usec).unwrap_or(0)
    };
    CpuTime {
        user_us: us(usage.ru_utime),
        system_us: us(usage.ru_stime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Spins until this thread's own clock shows `want` of CPU (however
    /// long a loaded box takes to give it that much), or 60 s pass.
    fn burn(want: u64) -> CpuTime {
        let before = thread_cpu();
        let start = Instant::now();
        let mut x = 0u64;
        let mut used = CpuTime::default();
        while used.total_us() < want && start.elapsed() < Duration::from_secs(60) {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            used = thread_cpu().since(&before);
        }
        used
    }

    /// The thread clock is the caller's alone and the process clock sums
    /// every thread's, even one that has ended: CPU burnt by a helper thread
    /// shows in the process time, not in the time of the thread waiting for
    /// it. (Were `thread_cpu` the process clock, or `process_cpu` a thread
    /// clock, one of the two comparisons would fail.)
    #[test]
    fn thread_time_is_per_thread_and_process_time_counts_every_thread() {
        const WANT: u64 = 50_000;
        let (me, process) = (thread_cpu(), process_cpu());
        let helper = std::thread::spawn(|| burn(WANT))
            .join()
            .expect("helper thread");
        assert!(
            helper.total_us() >= WANT,
            "the helper's thread clock never reached {WANT} µs: {helper:?}"
        );
        let mine = thread_cpu().since(&me);
        assert!(
            mine.total_us() < WANT / 2,
            "the waiting thread was charged the helper's time: {mine:?}"
        );
        let all = process_cpu().since(&process);
        assert!(
            all.total_us() >= helper.total_us(),
            "process {all:?} < helper thread {helper:?}"
        );
    }

    #[test]
    fn since_never_goes_negative() {
        let a = CpuTime {
            user_us: 5,
            system_us: 1,
        };
        let b = CpuTime {
            user_us: 3,
            system_us: 4,
        };
        assert_eq!(
            a.since(&b),
            CpuTime {
                user_us: 2,
                system_us: 0
            }
        );
    }
}
