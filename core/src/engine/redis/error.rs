//! The errors of the Redis engine, one variant per way an answer can fail.
//!
//! The distinction that matters to a publisher is [`EngineError::Unavailable`]:
//! Redis could not be reached, or the connection broke before its reply
//! arrived. The engine never answers `Ok` unless Redis replied with the
//! offset, so a publish is acknowledged only once it is stored; a publish
//! answered `Unavailable` may or may not have been applied (its connection
//! died after sending), exactly like a timeout on any network store.

use thiserror::Error;

/// Why an engine request failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    /// Redis is not reachable or the connection broke mid-request. `url` has
    /// its password redacted.
    #[error("redis at {url} is unavailable: {reason}")]
    Unavailable { url: String, reason: String },
    /// The settings' URL cannot be used (bad scheme, host, port or database).
    #[error("invalid redis url {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// Redis answered with an error reply (e.g. `WRONGTYPE`, `OOM`).
    #[error("redis replied with an error: {0}")]
    Server(String),
    /// Redis replied with something the engine did not expect: a version or
    /// key-layout mismatch, never peer data trusted blindly.
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
    /// The bridge's bounded queue is full: the node publishes faster than one
    /// Redis connection absorbs. The caller answers the client and drops.
    #[error("the redis bridge queue is full")]
    Overloaded,
    /// The bridge or subscriber was shut down.
    #[error("the redis engine is shut down")]
    Closed,
}
