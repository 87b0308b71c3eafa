//! What ringcast asks of the operating system itself, below every other
//! module: CPU lists and thread pinning ([`cpus`]), the open-file limit
//! ([`rlimit`]), free space of a filesystem ([`fsinfo`]), transparent huge
//! pages ([`thp`]).
//!
//! The server, its binary and the load tools (`ringcast-tools`) share these
//! so that a CPU list means the same in `server.cpus` as in `--cpus`, and the
//! fd limit is raised one way. Nothing here imports another ringcast module.

pub mod cpus;
pub mod fsinfo;
pub mod rlimit;
pub mod thp;
