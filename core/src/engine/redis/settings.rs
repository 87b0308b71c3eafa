//! Settings of the Redis engine, independent of the configuration file.
//!
//! The server builds a [`RedisSettings`] from the `engine.*` keys
//! ([`RedisSettings::from_config`]); tests and benchmarks build it directly.
//! Every field states its default and unit. The URL ([`RedisUrl`], defined
//! with the configuration) is parsed once, so a bad URL is refused before
//! any thread starts, and every message that shows the URL shows
//! [`RedisUrl::redacted`] (password replaced by `***`).

use std::path::PathBuf;
use std::time::Duration;

use super::error::EngineError;
pub use crate::config::redis_url::RedisUrl;
use crate::config::{EngineSection, ServerConfig};

/// Everything the bridge and the subscriber need to know.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: RedisUrl,
    /// For `rediss://`: a PEM file of the certificates to trust instead of
    /// the OS trust store (a private CA). Default: none (the OS store).
    pub tls_ca_file: Option<PathBuf>,
    /// TCP connect (and TLS handshake) bound. Default 1 s.
    pub connect_timeout: Duration,
    /// Bound on one round trip: a pipeline's replies, a subscribe
    /// confirmation, a health `PING`. Past it the connection is dropped and
    /// its pending requests answer `Unavailable`. Default 2 s.
    pub command_timeout: Duration,
    /// Most requests sent in one pipeline (one round trip). Default 512.
    pub pipeline_batch: usize,
    /// Capacity of the bridge's request queue, in requests; a full queue
    /// answers `Overloaded` at once instead of blocking a core. Default 16384.
    pub queue_capacity: usize,
    /// Prefix of every key and pub/sub channel, so several deployments can
    /// share one Redis. Default `"rc:"`.
    pub key_prefix: String,
    /// Messages kept per channel (stream `MAXLEN`); 0 keeps none. Default 100.
    pub history_size: usize,
    /// How long a message stays in history; whole seconds, at least 1.
    /// Default 300 s.
    pub history_ttl: Duration,
    /// How long a channel's epoch and offset outlive its last publish; whole
    /// seconds. Longer than `history_ttl` so a quiet channel keeps its epoch
    /// (a client resuming with nothing missed still recovers). Default 7 days.
    pub meta_ttl: Duration,
    /// Pub/sub connections per node; channels are hashed onto them.
    /// Default 2.
    pub subscriber_connections: usize,
    /// Idle subscriber connections send a `PING` this often, so a dead peer
    /// is noticed without traffic. Default 1 s.
    pub ping_interval: Duration,
    /// Reconnect backoff: full jitter between 0 and min(max, base·2^attempt).
    /// Defaults 50 ms and 2 s.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long a presence entry lives in Redis unless its node refreshes
    /// it (`engine.redis_presence_ttl`).
    pub presence_ttl: Duration,
}

impl RedisSettings {
    /// Defaults for everything but the URL, which is parsed (and refused with
    /// the redacted URL and the reason) here.
    pub fn new(url: &str) -> Result<Self, EngineError> {
        let url = RedisUrl::parse(url).map_err(|e| EngineError::InvalidUrl {
            url: e.url,
            reason: e.reason,
        })?;
        Ok(Self {
            url,
            tls_ca_file: None,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(2),
            pipeline_batch: 512,
            queue_capacity: 16384,
            key_prefix: "rc:".to_string(),
            history_size: 100,
            history_ttl: Duration::from_secs(300),
            meta_ttl: Duration::from_secs(7 * 24 * 3600),
            subscriber_connections: 2,
            ping_interval: Duration::from_secs(1),
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            presence_ttl: Duration::from_secs(30),
        })
    }

    /// The settings the `engine.*` keys describe; history size and age are
    /// the channel keys `pubsub.history_size` and `pubsub.history_ttl`, as
    /// with the memory engine.
    pub fn from_config(config: &ServerConfig) -> Self {
        let engine: &EngineSection = &config.engine;
        Self {
            url: engine.url.clone(),
            tls_ca_file: Some(engine.tls_ca_file.clone()).filter(|p| !p.as_os_str().is_empty()),
            connect_timeout: engine.connect_timeout,
            command_timeout: engine.command_timeout,
            pipeline_batch: engine.pipeline_batch,
            queue_capacity: engine.queue_capacity,
            key_prefix: engine.key_prefix.clone(),
            history_size: config.pubsub.history_size,
            history_ttl: config.pubsub.history_ttl,
            meta_ttl: engine.meta_ttl,
            subscriber_connections: engine.subscriber_connections,
            ping_interval: engine.ping_interval,
            backoff_base: engine.backoff_base,
            backoff_max: engine.backoff_max,
            presence_ttl: engine.presence_ttl,
        }
    }
}
