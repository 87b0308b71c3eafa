//! Building a worker's monoio runtime: io_uring with the flags the
//! configuration asks for, then plainer flags, then the epoll driver.
//!
//! monoio's `build()` fails outright when the kernel refuses a ring flag, with
//! no fallback of its own, so we walk down a ladder and keep the first rung
//! that builds: the configured flags (`[io_uring]`), the same without SQPOLL,
//! then a plain ring, then epoll. `MONOIO_FORCE_LEGACY_DRIVER=1` (checked by
//! `monoio::utils::detect_uring`) skips straight to epoll. The caller logs
//! which driver each worker got, and what was refused on the way, in one line.

use std::fmt;
use std::future::Future;
use std::io;

use monoio::time::TimeDriver;
use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::config::ServerConfig;

/// The driver a worker ended up with, for its start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverKind {
    /// `refused`: the better rungs the kernel turned down first, and why.
    IoUring {
        flags: &'static str,
        refused: Option<String>,
    },
    Epoll {
        reason: String,
    },
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverKind::IoUring {
                flags,
                refused: None,
            } => write!(f, "io_uring ({flags})"),
            DriverKind::IoUring {
                flags,
                refused: Some(refused),
            } => write!(f, "io_uring ({flags}; {refused})"),
            DriverKind::Epoll { reason } => write!(f, "epoll ({reason})"),
        }
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

    pub fn from_config(config: &ServerConfig) -> UringFlags {
        UringFlags {
            sqpoll_idle_ms: config
                .uring_sqpoll
                .then(|| u32::try_from(config.uring_sqpoll_idle.as_millis()).unwrap_or(u32::MAX)),
            coop_taskrun: config.uring_coop_taskrun,
            single_issuer: config.uring_single_issuer,
        }
    }

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

/// Builds the best runtime this thread can get and runs `make(kind)` on it to
/// completion (epoll only, when `force_epoll`). Returns the driver used, or
/// the epoll driver's build error.
pub fn block_on_best<F, Fut>(
    entries: u32,
    flags: UringFlags,
    force_epoll: bool,
    make: F,
) -> io::Result<DriverKind>
where
    F: FnOnce(DriverKind) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut refused: Vec<String> = Vec::new();
    if force_epoll {
        refused.push("force_epoll set".into());
    } else if monoio::utils::detect_uring() {
        for rung in flags.ladder() {
            let built = RuntimeBuilder::<TimeDriver<IoUringDriver>>::new()
                .with_entries(entries)
                .uring_builder(rung.builder())
                .build();
            match built {
                Ok(mut runtime) => {
                    let kind = DriverKind::IoUring {
                        flags: rung.name(),
                        refused: (!refused.is_empty()).then(|| refused.join("; ")),
                    };
                    runtime.block_on(make(kind.clone()));
                    return Ok(kind);
                }
                Err(e) => refused.push(format!("io_uring {} refused: {e}", rung.name())),
            }
        }
    } else {
        refused.push("io_uring unavailable or MONOIO_FORCE_LEGACY_DRIVER set".into());
    }
    let mut runtime = RuntimeBuilder::<TimeDriver<LegacyDriver>>::new().build()?;
    let kind = DriverKind::Epoll {
        reason: refused.join("; "),
    };
    runtime.block_on(make(kind.clone()));
    Ok(kind)
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
        let default = UringFlags::from_config(&ServerConfig::default());
        let names: Vec<&str> = default.ladder().iter().map(UringFlags::name).collect();
        assert_eq!(names, ["coop_taskrun+single_issuer", "plain"]);
        assert_eq!(UringFlags::PLAIN.ladder(), [UringFlags::PLAIN]);
    }
}
