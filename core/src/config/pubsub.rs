//! The `[pubsub]` table: channel history, channel and subscription caps, and
//! the cross-core inbox.

use std::time::Duration;

use super::{refuse, refuse_pair, ConfigError};

/// `[pubsub]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubsubSection {
    /// Messages kept per channel for resume. Default 100.
    pub history_size: usize,
    /// Age past which history entries are dropped, and after which a channel
    /// with no subscribers is evicted. Default 300 s.
    pub history_ttl: Duration,
    /// Channels the whole server holds at once (split evenly over the owner
    /// cores); publishing to a new channel past it is refused. Default 100,000.
    pub max_channels: usize,
    /// Channels one connection may subscribe to. Default 128.
    pub max_subscriptions_per_connection: usize,
    /// Longest channel name, in bytes. Default 128.
    pub max_channel_name_len: usize,
    /// Largest `data` of one publish, in bytes of JSON. Default 64 KiB.
    pub max_publish_bytes: usize,
    /// Capacity, in messages, of each core's cross-core inbox. Default 65,536.
    pub inbox_capacity: usize,
    /// Most inbox messages a core's hub handles per turn before it lets the
    /// core serve its sockets again. Default 1024.
    pub inbox_batch: usize,
    /// Subscribers a presence answer lists per channel; past it, only the
    /// counts. Default 1,000.
    pub max_presence: usize,
    /// Largest `info` claim, in bytes of JSON, a connection shows in
    /// presence; a larger one is dropped (counted, logged), the connection
    /// is kept. 0: presence never shows info. Default 1 KiB.
    pub max_presence_info_bytes: usize,
    /// Channel name prefixes whose subscribers get `join` / `leave` pushes
    /// when others subscribe or leave (`""` for every channel). Default:
    /// none.
    pub presence_push_prefixes: Vec<String>,
}

impl Default for PubsubSection {
    fn default() -> Self {
        Self {
            history_size: 100,
            history_ttl: Duration::from_secs(300),
            max_channels: 100_000,
            max_subscriptions_per_connection: 128,
            max_channel_name_len: 128,
            max_publish_bytes: 64 * 1024,
            inbox_capacity: 65_536,
            inbox_batch: 1024,
            max_presence: 1000,
            max_presence_info_bytes: 1024,
            presence_push_prefixes: Vec::new(),
        }
    }
}

impl PubsubSection {
    /// The rules inside the table; `max_channels` against the worker count
    /// is checked by [`super::ServerConfig::validate`].
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.history_size > 1_000_000 {
            return refuse("pubsub.history_size", "must be at most 1,000,000");
        }
        if self.history_ttl.is_zero() {
            return refuse("pubsub.history_ttl", "must be positive");
        }
        if self.max_channel_name_len == 0 || self.max_channel_name_len > 1024 {
            return refuse("pubsub.max_channel_name_len", "must be between 1 and 1024");
        }
        if self.max_subscriptions_per_connection == 0 {
            return refuse(
                "pubsub.max_subscriptions_per_connection",
                "must be at least 1",
            );
        }
        if self.max_publish_bytes == 0 {
            return refuse("pubsub.max_publish_bytes", "must be positive");
        }
        if self.inbox_capacity < 16 {
            return refuse("pubsub.inbox_capacity", "must be at least 16");
        }
        if self.inbox_batch == 0 {
            return refuse("pubsub.inbox_batch", "must be at least 1");
        }
        if self.inbox_batch > self.inbox_capacity {
            return refuse_pair(
                "pubsub.inbox_batch",
                "pubsub.inbox_capacity",
                format!(
                    "{} exceeds pubsub.inbox_capacity ({})",
                    self.inbox_batch, self.inbox_capacity
                ),
            );
        }
        Ok(())
    }
}
