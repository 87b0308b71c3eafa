//! The `[engine]` table: where channels keep their offsets, history and
//! cross-node delivery.
//!
//! `kind = "memory"` (the default) keeps them in the owner core's memory and
//! reads no other key of the table. `kind = "disk"` keeps them in memory
//! too and appends every publish to the owner core's log under the
//! `[store]` table (`engine/disk/mod.rs`). `kind = "redis"` shares them between
//! nodes through one Redis (`redis_url`); the other keys bound what the
//! node's Redis threads do (see `engine/redis/mod.rs`). History size and age
//! stay the channel keys `pubsub.history_size` and `pubsub.history_ttl`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::redis_url::RedisUrl;
use super::{refuse, refuse_pair, ConfigError};

/// Which engine holds channel state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// In the process, per owner core: fast, lost on restart, one node.
    #[default]
    Memory,
    /// In Redis, shared by every node that names the same Redis.
    Redis,
    /// In the owner core's memory and in its log under `store.data_path`:
    /// survives a restart or a crash, one node.
    Disk,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Memory => "memory",
            EngineKind::Redis => "redis",
            EngineKind::Disk => "disk",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(EngineKind::Memory),
            "redis" => Ok(EngineKind::Redis),
            "disk" => Ok(EngineKind::Disk),
            other => Err(format!("{other:?} is not one of memory, redis, disk")),
        }
    }
}

/// `[engine]`. Every `redis_*` key is read only with `kind = "redis"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSection {
    /// `engine.kind`: `memory`, `redis` or `disk`. Default `memory`.
    pub kind: EngineKind,
    /// `engine.redis_url`: `redis://[user[:password]@]host[:port][/db]`, or
    /// `rediss://` for TLS. Default `redis://127.0.0.1:6379/0`.
    pub url: RedisUrl,
    /// `engine.redis_tls_ca_file`: PEM certificates to trust for `rediss://`
    /// instead of the OS store. Default empty (the OS store).
    pub tls_ca_file: PathBuf,
    /// `engine.redis_connect_timeout`: TCP connect, TLS and login. Default 1 s.
    pub connect_timeout: Duration,
    /// `engine.redis_command_timeout`: one round trip (a pipeline's replies,
    /// a subscribe confirmation, a `PING`); past it the connection is
    /// dropped and its requests answer `unavailable`. Default 2 s.
    pub command_timeout: Duration,
    /// `engine.redis_pipeline_batch`: requests sent in one round trip at
    /// most. Default 512.
    pub pipeline_batch: usize,
    /// `engine.redis_queue_capacity`: requests waiting for the node's Redis
    /// command thread; past it a publish answers `overloaded`. Default 16,384.
    pub queue_capacity: usize,
    /// `engine.redis_subscriber_connections`: pub/sub connections per node,
    /// channels hashed onto them. Default 2.
    pub subscriber_connections: usize,
    /// `engine.redis_key_prefix`: prefix of every key and pub/sub channel,
    /// so deployments can share a Redis; no `{`. Default `rc:`.
    pub key_prefix: String,
    /// `engine.redis_meta_ttl`: how long a channel's epoch and offset outlive
    /// its last publish; at least `pubsub.history_ttl`. Default 7 days.
    pub meta_ttl: Duration,
    /// `engine.redis_ping_interval`: idle connections ping this often, so a
    /// dead Redis is noticed without traffic. Default 1 s.
    pub ping_interval: Duration,
    /// `engine.redis_backoff_base` / `redis_backoff_max`: reconnect delays,
    /// full jitter up to min(max, base·2^attempt). Defaults 50 ms and 2 s.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// `engine.start_degraded`: start even when Redis does not answer
    /// (publishes answer `unavailable` until it does) instead of exiting 2.
    /// Default false.
    pub start_degraded: bool,
    /// `engine.redis_presence_ttl`: a presence entry in Redis expires unless
    /// its node refreshes it (every third of this), so a killed node's
    /// subscribers leave presence within it. Default 30 s.
    pub presence_ttl: Duration,
}

impl Default for EngineSection {
    fn default() -> Self {
        Self {
            kind: EngineKind::Memory,
            url: RedisUrl::default(),
            tls_ca_file: PathBuf::new(),
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(2),
            pipeline_batch: 512,
            queue_capacity: 16_384,
            subscriber_connections: 2,
            key_prefix: "rc:".into(),
            meta_ttl: Duration::from_secs(7 * 24 * 3600),
            ping_interval: Duration::from_secs(1),
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            start_degraded: false,
            presence_ttl: Duration::from_secs(30),
        }
    }
}

impl EngineSection {
    /// The rules inside the table, checked whatever the kind (a profile
    /// that switches to Redis later should not meet its errors then);
    /// `meta_ttl` against `pubsub.history_ttl` is [`Self::validate_with`]'s.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, d) in [
            ("engine.redis_connect_timeout", self.connect_timeout),
            ("engine.redis_command_timeout", self.command_timeout),
            ("engine.redis_ping_interval", self.ping_interval),
            ("engine.redis_backoff_max", self.backoff_max),
        ] {
            if d.is_zero() {
                return refuse(key, "must be positive");
            }
        }
        if self.backoff_base > self.backoff_max {
            return refuse_pair(
                "engine.redis_backoff_base",
                "engine.redis_backoff_max",
                "must not exceed engine.redis_backoff_max",
            );
        }
        if self.pipeline_batch == 0 || self.pipeline_batch > 65_536 {
            return refuse("engine.redis_pipeline_batch", "must be between 1 and 65536");
        }
        if self.queue_capacity < self.pipeline_batch {
            return refuse_pair(
                "engine.redis_queue_capacity",
                "engine.redis_pipeline_batch",
                "must be at least engine.redis_pipeline_batch",
            );
        }
        if self.subscriber_connections == 0 || self.subscriber_connections > 64 {
            return refuse(
                "engine.redis_subscriber_connections",
                "must be between 1 and 64",
            );
        }
        if self.key_prefix.contains('{') || self.key_prefix.contains('}') {
            return refuse(
                "engine.redis_key_prefix",
                "must not contain { or } (they delimit the channel's cluster hash tag)",
            );
        }
        Ok(())
    }

    /// `meta_ttl` must outlive history: a channel whose epoch expired before
    /// its history would make every resume `recovered: false`.
    pub(super) fn validate_with(&self, history_ttl: Duration) -> Result<(), ConfigError> {
        if self.meta_ttl < history_ttl.max(Duration::from_secs(1)) {
            return refuse_pair(
                "engine.redis_meta_ttl",
                "pubsub.history_ttl",
                "must be at least pubsub.history_ttl (and 1s)",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_and_each_rule_names_its_key() {
        let ok = EngineSection::default();
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.validate_with(Duration::from_secs(300)), Ok(()));
        type Tweak = fn(&mut EngineSection);
        let cases: [(Tweak, &str); 5] = [
            (
                |e| e.command_timeout = Duration::ZERO,
                "engine.redis_command_timeout",
            ),
            (|e| e.pipeline_batch = 0, "engine.redis_pipeline_batch"),
            (|e| e.queue_capacity = 1, "engine.redis_queue_capacity"),
            (
                |e| e.subscriber_connections = 0,
                "engine.redis_subscriber_connections",
            ),
            (|e| e.key_prefix = "a{".into(), "engine.redis_key_prefix"),
        ];
        for (tweak, key) in cases {
            let mut e = EngineSection::default();
            tweak(&mut e);
            assert_eq!(e.validate().expect_err(key).key, key);
        }
        let short = EngineSection {
            meta_ttl: Duration::from_secs(10),
            ..EngineSection::default()
        };
        let err = short
            .validate_with(Duration::from_secs(300))
            .expect_err("meta outlives history");
        assert_eq!(
            (err.key, err.pair),
            ("engine.redis_meta_ttl", Some("pubsub.history_ttl"))
        );
    }

    #[test]
    fn kinds_parse_and_show() {
        assert_eq!("redis".parse(), Ok(EngineKind::Redis));
        assert_eq!(EngineKind::default().to_string(), "memory");
        assert_eq!("disk".parse(), Ok(EngineKind::Disk));
        assert!("file"
            .parse::<EngineKind>()
            .expect_err("no such engine")
            .contains("memory, redis, disk"));
    }
}
