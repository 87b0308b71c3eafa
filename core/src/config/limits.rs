//! The `[limits]` table: connection caps, frame, message and buffer sizes,
//! and the per-connection command rates.

use std::time::Duration;

use super::{check_rate, refuse, refuse_pair, ConfigError};

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsSection {
    /// Most connections a worker holds at once; past it, new ones get 503.
    /// Default 100,000.
    pub max_connections_per_worker: usize,
    /// Most connections the whole server holds at once, over all workers
    /// (`admission::Admission`); past it, new ones get 503 with
    /// `Retry-After`. `0` = no server-wide cap (each worker still has its
    /// `max_connections_per_worker`). Default 0.
    pub max_connections: usize,
    /// Most connections one client address may hold at once (IPv6: one /64
    /// prefix; IPv4-mapped IPv6 counts as IPv4); past it, 503 with
    /// `Retry-After`. `0` = no limit. Enforced by `admission::Admission`
    /// once the handshake calls it. Default 0.
    pub max_connections_per_ip: usize,
    /// Largest accepted frame payload, in bytes (larger → close 1009). At
    /// most `max_message_size` (a larger frame could never be accepted).
    /// When no layer sets it, it follows `max_message_size`
    /// ([`super::layers`] applies that rule), so raising the message limit
    /// alone lets a browser send such a message in its usual single frame;
    /// set it lower to make clients fragment. Default: `max_message_size`.
    pub max_frame_size: u64,
    /// Largest accepted message (all fragments), in bytes (→ 1009). Default 64 KiB.
    pub max_message_size: u64,
    /// Largest HTTP request head of the handshake, in bytes (→ 431). Default 8 KiB.
    pub max_handshake_bytes: usize,
    /// Bytes queued for one connection beyond which it is closed as a slow
    /// consumer (1008). Default 1 MiB.
    pub max_outbound_bytes: usize,
    /// Per-core read scratch buffer, in bytes: every read on a core lands here
    /// first, so connections hold no read buffer of their own. Default 64 KiB.
    pub read_buffer_size: usize,
    /// Sustained commands per second per connection on `/ws`, every kind
    /// counted (a publish and a subscribe take a token here too); past it,
    /// `rate_limited`, and 1008 once refusals persist
    /// (`rate_limit_close_after`). `0` = no overall limit. Default 100.
    pub command_rate: u32,
    /// Commands a connection may send in a burst above `command_rate`.
    /// Used only when `command_rate` is set. Default 200.
    pub command_burst: u32,
    /// Sustained publishes per second per connection, on top of
    /// `command_rate` (a publish takes a token from both). `0` = no separate
    /// publish limit. Default 0.
    pub publish_rate: u32,
    /// Publishes a connection may send in a burst above `publish_rate`.
    /// Used only when `publish_rate` is set. Default 100.
    pub publish_burst: u32,
    /// Sustained subscribes per second per connection, on top of
    /// `command_rate`. `0` = no separate subscribe limit. Default 0.
    pub subscribe_rate: u32,
    /// Subscribes a connection may send in a burst above `subscribe_rate`
    /// (a reconnecting client resubscribes to all its channels at once: keep
    /// it at least `pubsub.max_subscriptions_per_connection`). Used only when
    /// `subscribe_rate` is set. Default 128.
    pub subscribe_burst: u32,
    /// Consecutive `rate_limited` refusals (with no command run between
    /// them, within `rate_limit_window`) after which the connection is
    /// closed with 1008. `0` = never close. Default 100.
    pub rate_limit_close_after: u32,
    /// The window of `rate_limit_close_after`: a refusal later than this
    /// after the first of a streak starts a new streak. Default 10 s.
    pub rate_limit_window: Duration,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_connections_per_worker: 100_000,
            max_connections: 0,
            max_connections_per_ip: 0,
            max_frame_size: 64 * 1024,
            max_message_size: 64 * 1024,
            max_handshake_bytes: 8 * 1024,
            max_outbound_bytes: 1024 * 1024,
            read_buffer_size: 64 * 1024,
            command_rate: 100,
            command_burst: 200,
            publish_rate: 0,
            publish_burst: 100,
            subscribe_rate: 0,
            subscribe_burst: 128,
            rate_limit_close_after: 100,
            rate_limit_window: Duration::from_secs(10),
        }
    }
}

impl LimitsSection {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections_per_worker == 0 {
            return refuse("limits.max_connections_per_worker", "must be at least 1");
        }
        if self.read_buffer_size < 4096 || self.read_buffer_size > 64 << 20 {
            return refuse(
                "limits.read_buffer_size",
                "must be between 4 KiB and 64 MiB",
            );
        }
        if self.max_message_size == 0 {
            return refuse("limits.max_message_size", "must be positive");
        }
        if self.max_frame_size == 0 {
            return refuse("limits.max_frame_size", "must be positive");
        }
        if self.max_frame_size > self.max_message_size {
            return refuse_pair(
                "limits.max_frame_size",
                "limits.max_message_size",
                format!(
                    "{} exceeds limits.max_message_size ({})",
                    self.max_frame_size, self.max_message_size
                ),
            );
        }
        if self.max_handshake_bytes < 256 || self.max_handshake_bytes > 1 << 20 {
            return refuse(
                "limits.max_handshake_bytes",
                "must be between 256 bytes and 1 MiB",
            );
        }
        if self.max_outbound_bytes < 4096 {
            return refuse("limits.max_outbound_bytes", "must be at least 4 KiB");
        }
        check_rate(
            ("limits.command_rate", self.command_rate),
            ("limits.command_burst", self.command_burst),
        )?;
        check_rate(
            ("limits.publish_rate", self.publish_rate),
            ("limits.publish_burst", self.publish_burst),
        )?;
        check_rate(
            ("limits.subscribe_rate", self.subscribe_rate),
            ("limits.subscribe_burst", self.subscribe_burst),
        )?;
        if self.rate_limit_close_after > 0 && self.rate_limit_window.is_zero() {
            return refuse_pair(
                "limits.rate_limit_window",
                "limits.rate_limit_close_after",
                "must be positive when limits.rate_limit_close_after is set",
            );
        }
        Ok(())
    }
}
