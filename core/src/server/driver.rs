//! Building a worker's monoio runtime: io_uring with the best flags the
//! kernel accepts, then plainer flags, then the epoll driver.
//!
//! monoio's `build()` fails outright when the kernel refuses a ring flag, with
//! no fallback of its own, so we walk down a ladder and keep the first rung
//! that builds. `MONOIO_FORCE_LEGACY_DRIVER=1` (checked by
//! `monoio::utils::detect_uring`) skips straight to epoll. The caller logs which
//! driver each worker got.

use std::fmt;
use std::future::Future;
use std::io;

use monoio::time::TimeDriver;
use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

/// The driver a worker ended up with, for its start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverKind {
    IoUring { flags: &'static str },
    Epoll { reason: String },
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverKind::IoUring { flags } => write!(f, "io_uring ({flags})"),
            DriverKind::Epoll { reason } => write!(f, "epoll ({reason})"),
        }
    }
}

/// Ring set-ups to try, best first: cooperative task running and a single
/// issuer cut kernel overhead (5.19+ / 6.0+); a plain ring works from 5.6.
const URING_LADDER: [(&str, bool); 2] = [("coop_taskrun+single_issuer", true), ("plain", false)];

fn uring_builder(tuned: bool) -> io_uring::Builder {
    let mut builder = io_uring::IoUring::builder();
    if tuned {
        builder.setup_coop_taskrun();
        builder.setup_single_issuer();
    }
    builder
}

/// Builds the best runtime this thread can get and runs `make(kind)` on it to
/// completion (epoll only, when `force_epoll`). Returns the driver used, or the epoll driver's build error.
pub fn block_on_best<F, Fut>(entries: u32, force_epoll: bool, make: F) -> io::Result<DriverKind>
where
    F: FnOnce(DriverKind) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut refused = String::from("io_uring unavailable or MONOIO_FORCE_LEGACY_DRIVER set");
    if force_epoll {
        refused = String::from("force_epoll set");
    } else if monoio::utils::detect_uring() {
        for (flags, tuned) in URING_LADDER {
            let built = RuntimeBuilder::<TimeDriver<IoUringDriver>>::new()
                .with_entries(entries)
                .uring_builder(uring_builder(tuned))
                .build();
            match built {
                Ok(mut runtime) => {
                    let kind = DriverKind::IoUring { flags };
                    runtime.block_on(make(kind.clone()));
                    return Ok(kind);
                }
                Err(e) => refused = format!("io_uring {flags} refused: {e}"),
            }
        }
    }
    let mut runtime = RuntimeBuilder::<TimeDriver<LegacyDriver>>::new().build()?;
    let kind = DriverKind::Epoll { reason: refused };
    runtime.block_on(make(kind.clone()));
    Ok(kind)
}
