//! The `[io_uring]` table, and [`UringFlags`], the ring setup flags it asks
//! for: built here, below both the server (which builds its rings with them,
//! falling back rung by rung in `server::driver`) and `ringcast doctor`
//! (which tries them on this kernel).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{refuse, refuse_pair, show_duration, ConfigError};

/// Largest io_uring queue the kernel accepts (`IORING_MAX_ENTRIES`).
const MAX_URING_ENTRIES: u32 = 32_768;

/// `[io_uring]`. The TOML keys keep their `uring_` prefix
/// (`io_uring.uring_entries` is the field `entries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoUringSection {
    /// Use the epoll driver even where io_uring works (as
    /// `MONOIO_FORCE_LEGACY_DRIVER=1` does for the whole process). Default false.
    pub force_epoll: bool,
    /// io_uring submission queue entries per worker (power of two, 8..=32768).
    /// Default 1024.
    pub entries: u32,
    /// `IORING_SETUP_SQPOLL`: a kernel thread per worker polls the submission
    /// queue, saving `io_uring_enter` calls at the cost of a busy core while
    /// traffic flows. Needs its own cores. Default false.
    pub sqpoll: bool,
    /// How long an SQPOLL thread spins without work before it sleeps.
    /// Used only with `sqpoll`. Default 1 s.
    pub sqpoll_idle: Duration,
    /// `IORING_SETUP_COOP_TASKRUN` (5.19+): no interrupt to run completion
    /// work; it runs when the loop enters the kernel anyway. The kernel
    /// refuses it together with SQPOLL. Default true.
    pub coop_taskrun: bool,
    /// `IORING_SETUP_SINGLE_ISSUER` (6.0+): only the worker's thread submits,
    /// which lets the kernel skip locking. Default true.
    pub single_issuer: bool,
    /// How a worker moves its sockets' bytes: `readiness` (an epoll set and
    /// non-blocking calls) or `completion` (a connection ring per worker:
    /// multishot accept and recv into provided buffers, `sendmsg` SQEs). The
    /// completion path needs an io_uring runtime and a kernel with multishot
    /// recv and buffer rings (6.0+); it serves `ws://` and `wss://` alike. A
    /// worker that cannot have it logs why and uses readiness. Default
    /// `readiness`.
    pub socket_io: SocketIo,
    /// Provided receive buffers per worker on the completion path, at most (a
    /// power of two, 1..=32768). A connection holds one only between a
    /// completion and the moment its bytes are consumed; when all handed out
    /// are taken, receives pause (`ringcast_recv_buffer_exhausted_total`)
    /// until some come back, and the worker hands out twice as many, up to
    /// this count (`ringcast_recv_buffers`). Those handed out become resident
    /// as the kernel fills them: up to count × size per worker (16 MiB by
    /// default), whatever the number of connections. Default 4096.
    pub recv_buffers: u32,
    /// Of `recv_buffers`, how many the kernel gets at start (at least 1; one
    /// above `recv_buffers` hands out all of them): what a worker holds
    /// resident until a burst needs more. Default 64 (256 KiB of 4 KiB buffers).
    pub recv_buffers_initial: u32,
    /// Bytes per provided receive buffer (512 B..=1 MiB). Default 4 KiB.
    pub recv_buffer_size: usize,
    /// Completion queue entries of the connection ring (a power of two, at
    /// least `uring_entries`, at most 65536 × 2): multishot receives complete
    /// many times per submission, so this is sized above the SQ. Default 8192.
    pub cq_entries: u32,
}

/// `io_uring.socket_io`: which driver moves a worker's socket bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketIo {
    /// epoll readiness, non-blocking `recv`/`sendmsg` (`reactor.rs`).
    Readiness,
    /// io_uring completions on a connection ring (`ring_reactor.rs`).
    Completion,
}

impl SocketIo {
    pub fn as_str(self) -> &'static str {
        match self {
            SocketIo::Readiness => "readiness",
            SocketIo::Completion => "completion",
        }
    }
}

impl fmt::Display for SocketIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SocketIo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "readiness" => Ok(SocketIo::Readiness),
            "completion" => Ok(SocketIo::Completion),
            other => Err(format!("{other:?} is not one of readiness, completion")),
        }
    }
}

impl Default for IoUringSection {
    fn default() -> Self {
        Self {
            force_epoll: false,
            entries: 1024,
            sqpoll: false,
            sqpoll_idle: Duration::from_secs(1),
            coop_taskrun: true,
            single_issuer: true,
            socket_io: SocketIo::Readiness,
            recv_buffers: 4096,
            recv_buffers_initial: 64,
            recv_buffer_size: 4096,
            cq_entries: 8192,
        }
    }
}

impl IoUringSection {
    /// The ring setup flags this table asks for.
    pub fn flags(&self) -> UringFlags {
        UringFlags {
            sqpoll_idle_ms: self
                .sqpoll
                .then(|| u32::try_from(self.sqpoll_idle.as_millis()).unwrap_or(u32::MAX)),
            coop_taskrun: self.coop_taskrun,
            single_issuer: self.single_issuer,
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.entries < 8 || self.entries > MAX_URING_ENTRIES || !self.entries.is_power_of_two() {
            return refuse(
                "io_uring.uring_entries",
                format!(
                    "{} is not a power of two in 8..={MAX_URING_ENTRIES}",
                    self.entries
                ),
            );
        }
        if self.recv_buffers == 0
            || self.recv_buffers > 1 << 15
            || !self.recv_buffers.is_power_of_two()
        {
            return refuse(
                "io_uring.recv_buffers",
                format!("{} is not a power of two in 1..=32768", self.recv_buffers),
            );
        }
        if self.recv_buffers_initial == 0 {
            return refuse(
                "io_uring.recv_buffers_initial",
                "must be at least 1 (the buffers a worker hands out at start)",
            );
        }
        if !(512..=1 << 20).contains(&self.recv_buffer_size) {
            return refuse(
                "io_uring.recv_buffer_size",
                format!("{} bytes is not in 512 B..=1 MiB", self.recv_buffer_size),
            );
        }
        if !self.cq_entries.is_power_of_two() || self.cq_entries > 2 * 65_536 {
            return refuse(
                "io_uring.uring_cq_entries",
                format!("{} is not a power of two up to 131072", self.cq_entries),
            );
        }
        if self.cq_entries < self.entries {
            return refuse_pair(
                "io_uring.uring_cq_entries",
                "io_uring.uring_entries",
                format!(
                    "the completion queue ({}) must be at least the submission queue ({})",
                    self.cq_entries, self.entries
                ),
            );
        }
        if self.sqpoll && self.coop_taskrun {
            return refuse_pair(
                "io_uring.uring_sqpoll",
                "io_uring.uring_coop_taskrun",
                "the kernel refuses SQPOLL together with COOP_TASKRUN: \
                 set io_uring.uring_coop_taskrun = false",
            );
        }
        if self.sqpoll && (self.sqpoll_idle.is_zero() || self.sqpoll_idle > Duration::from_secs(60))
        {
            return refuse(
                "io_uring.uring_sqpoll_idle",
                format!("{} is not in 1ms..=60s", show_duration(self.sqpoll_idle)),
            );
        }
        Ok(())
    }
}

/// The ring setup flags a worker asks for, from `[io_uring]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UringFlags {
    /// `IORING_SETUP_SQPOLL` with this idle time in milliseconds.
    pub sqpoll_idle_ms: Option<u32>,
    /// `IORING_SETUP_COOP_TASKRUN` (5.19+).
    pub coop_taskrun: bool,
    /// `IORING_SETUP_SINGLE_ISSUER` (6.0+).
    pub single_issuer: bool,
}

impl UringFlags {
    pub const PLAIN: UringFlags = UringFlags {
        sqpoll_idle_ms: None,
        coop_taskrun: false,
        single_issuer: false,
    };

    /// The flags as they appear in logs and `ringcast doctor`.
    pub fn name(&self) -> &'static str {
        match (
            self.sqpoll_idle_ms.is_some(),
            self.coop_taskrun,
            self.single_issuer,
        ) {
            (false, false, false) => "plain",
            (false, true, false) => "coop_taskrun",
            (false, false, true) => "single_issuer",
            (false, true, true) => "coop_taskrun+single_issuer",
            (true, false, false) => "sqpoll",
            (true, true, false) => "sqpoll+coop_taskrun",
            (true, false, true) => "sqpoll+single_issuer",
            (true, true, true) => "sqpoll+coop_taskrun+single_issuer",
        }
    }

    /// An `io_uring` builder with these flags set.
    pub fn builder(&self) -> io_uring::Builder {
        let mut builder = io_uring::IoUring::builder();
        if let Some(idle) = self.sqpoll_idle_ms {
            builder.setup_sqpoll(idle);
        }
        if self.coop_taskrun {
            builder.setup_coop_taskrun();
        }
        if self.single_issuer {
            builder.setup_single_issuer();
        }
        builder
    }

    /// The rungs to try, best first: these flags, the same without SQPOLL
    /// (which needs privileges on kernels before 5.11), then a plain ring.
    pub fn ladder(self) -> Vec<UringFlags> {
        let mut rungs = vec![self];
        for rung in [
            UringFlags {
                sqpoll_idle_ms: None,
                ..self
            },
            UringFlags::PLAIN,
        ] {
            if !rungs.contains(&rung) {
                rungs.push(rung);
            }
        }
        rungs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder_drops_sqpoll_then_everything() {
        let sqpoll = UringFlags {
            sqpoll_idle_ms: Some(100),
            coop_taskrun: false,
            single_issuer: true,
        };
        let names: Vec<&str> = sqpoll.ladder().iter().map(UringFlags::name).collect();
        assert_eq!(names, ["sqpoll+single_issuer", "single_issuer", "plain"]);
        let default = IoUringSection::default().flags();
        let names: Vec<&str> = default.ladder().iter().map(UringFlags::name).collect();
        assert_eq!(names, ["coop_taskrun+single_issuer", "plain"]);
        assert_eq!(UringFlags::PLAIN.ladder(), [UringFlags::PLAIN]);
    }
}

#[cfg(test)]
mod socket_io_tests {
    use super::*;

    #[test]
    fn socket_io_reads_back_what_it_shows_and_refuses_other_names() {
        for io in [SocketIo::Readiness, SocketIo::Completion] {
            assert_eq!(io.to_string().parse::<SocketIo>(), Ok(io));
        }
        assert!("uring".parse::<SocketIo>().is_err());
        assert_eq!(IoUringSection::default().socket_io, SocketIo::Readiness);
    }
}
