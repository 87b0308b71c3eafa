//! The limits one core's hub works under, taken once from the configuration
//! (`[pubsub]` and `limits.max_outbound_bytes`), so the hub does not depend on
//! the configuration's layout.

use std::time::Duration;

use crate::config::ServerConfig;

/// What a [`super::hub::Hub`] needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Messages kept per channel for resume (`pubsub.history_size`).
    pub history_size: usize,
    /// Age past which history goes, and idle channels are evicted
    /// (`pubsub.history_ttl`).
    pub history_ttl: Duration,
    /// Channels this owner core may hold (`pubsub.max_channels` over the cores).
    pub max_channels: usize,
    /// `pubsub.max_channels` itself and the worker count it is split over,
    /// for the `too_many_channels` message.
    pub max_channels_total: usize,
    pub workers: usize,
    /// Channels one connection may subscribe to.
    pub max_subscriptions: usize,
    /// Bytes queued for one connection before it is closed as a slow consumer.
    pub max_outbound: usize,
    /// Spilled messages past which an owner refuses publishes
    /// (`pubsub.inbox_capacity`).
    pub spill_limit: usize,
    /// Inbox messages handled per turn before the core's sockets get theirs
    /// (`pubsub.inbox_batch`).
    pub inbox_batch: usize,
    /// Subscribers a presence answer lists (`pubsub.max_presence`).
    pub max_presence: usize,
    /// Largest `info` claim presence shows (`pubsub.max_presence_info_bytes`).
    pub max_presence_info: usize,
    /// Channel prefixes with join/leave pushes (`pubsub.presence_push_prefixes`).
    pub presence_pushes: Vec<String>,
    /// zlib level of compressed frames (`deflate.level`).
    pub deflate_level: u32,
    /// Smallest payload compressed, in bytes (`deflate.min_size`).
    pub deflate_min_size: usize,
}

impl Settings {
    /// Whether `channel`'s subscribers get join/leave pushes.
    pub fn presence_pushes(&self, channel: &str) -> bool {
        self.presence_pushes
            .iter()
            .any(|p| channel.starts_with(p.as_str()))
    }

    pub fn from_config(config: &ServerConfig) -> Self {
        Self {
            history_size: config.pubsub.history_size,
            history_ttl: config.pubsub.history_ttl,
            max_channels: config.max_channels_per_worker(),
            max_channels_total: config.pubsub.max_channels,
            workers: config.server.effective_workers(),
            max_subscriptions: config.pubsub.max_subscriptions_per_connection,
            max_outbound: config.limits.max_outbound_bytes,
            spill_limit: config.pubsub.inbox_capacity,
            inbox_batch: config.pubsub.inbox_batch,
            max_presence: config.pubsub.max_presence,
            max_presence_info: config.pubsub.max_presence_info_bytes,
            presence_pushes: config.pubsub.presence_push_prefixes.clone(),
            deflate_level: config.deflate.level,
            deflate_min_size: config.deflate.min_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_comes_from_its_key() {
        let mut config = ServerConfig::default();
        config.server.workers = 2;
        config.pubsub.history_size = 7;
        config.pubsub.history_ttl = Duration::from_secs(9);
        config.pubsub.max_channels = 10;
        config.pubsub.max_subscriptions_per_connection = 3;
        config.limits.max_outbound_bytes = 4096;
        config.pubsub.inbox_capacity = 64;
        config.pubsub.inbox_batch = 5;
        let s = Settings::from_config(&config);
        assert_eq!((s.history_size, s.history_ttl), (7, Duration::from_secs(9)));
        assert_eq!(s.max_channels, config.max_channels_per_worker());
        assert_eq!((s.max_channels_total, s.workers), (10, 2));
        assert_eq!((s.max_subscriptions, s.max_outbound), (3, 4096));
        assert_eq!((s.spill_limit, s.inbox_batch), (64, 5));
    }
}
