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

pub use crate::config::UringFlags;

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
