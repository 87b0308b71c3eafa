//! The server's typed configuration, with the embedded defaults that run
//! anywhere (a laptop, a 2-core CI box).
//!
//! Every limit the server enforces lives here, with its unit and default.
//! Hardware profiles (a later layer) fill this struct from TOML; the command
//! line overrides single fields. [`ServerConfig::validate`] refuses
//! inconsistent values before anything starts.

use std::net::SocketAddr;
use std::time::Duration;

use crate::proto::decoder::Limits;
use crate::proto::handshake::HandshakeLimits;
use crate::proto::session::SessionConfig;

/// Everything `ringcast serve` needs to run.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address every worker listens on (one `SO_REUSEPORT` socket each).
    /// Default `127.0.0.1:8080`; use `0.0.0.0:PORT` to accept from other hosts.
    pub listen: SocketAddr,
    /// Worker threads, one monoio event loop each. `0` = online cores. Default 0.
    pub workers: usize,
    /// Pin worker `i` to the `i`-th CPU the process may run on. Default true.
    pub pin_workers: bool,
    /// io_uring submission queue entries per worker. Default 1024.
    pub uring_entries: u32,
    /// Use the epoll driver even where io_uring works (as
    /// `MONOIO_FORCE_LEGACY_DRIVER=1` does for the whole process). Default false.
    pub force_epoll: bool,
    /// Listen backlog of each worker's socket (the kernel caps it at
    /// `net.core.somaxconn`). Default 1024.
    pub backlog: u32,
    /// Per-core read scratch buffer, in bytes: every read on a core lands here
    /// first, so connections hold no read buffer of their own. Default 64 KiB.
    pub read_buffer_size: usize,
    /// Largest accepted frame payload, in bytes (larger → close 1009). Default 64 KiB.
    pub max_frame_size: u64,
    /// Largest accepted message (all fragments), in bytes (→ 1009). Default 64 KiB.
    pub max_message_size: u64,
    /// Largest HTTP request head of the handshake, in bytes (→ 431). Default 8 KiB.
    pub max_handshake_bytes: usize,
    /// Bytes queued for one connection beyond which it is closed as a slow
    /// consumer (1008). Default 1 MiB.
    pub max_outbound_bytes: usize,
    /// Most connections a worker holds at once; past it, new ones get 503.
    /// Default 100,000.
    pub max_connections_per_worker: usize,
    /// A client must complete its request head within this time. Default 10 s.
    pub handshake_timeout: Duration,
    /// Silence after which the server pings. Default 30 s.
    pub ping_interval: Duration,
    /// Silence (or a partial frame) after which the connection is closed. Default 60 s.
    pub idle_timeout: Duration,
    /// Wait for the peer's close frame after sending ours. Default 5 s.
    pub close_timeout: Duration,
    /// On shutdown, wait this long for close handshakes before exiting. Default 10 s.
    pub drain_timeout: Duration,
    /// Granularity of the per-core timer sweep that fires the timeouts above.
    /// Default 250 ms.
    pub timer_tick: Duration,
    /// Subprotocols the server speaks, in preference order. Default none.
    pub subprotocols: Vec<String>,
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
    /// Sustained commands per second per connection on `/ws`. Default 100.
    pub command_rate: u32,
    /// Commands a connection may send in a burst above the rate. Default 200.
    pub command_burst: u32,
    /// Capacity, in messages, of each core's cross-core inbox. Default 65,536.
    pub inbox_capacity: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 0,
            pin_workers: true,
            uring_entries: 1024,
            force_epoll: false,
            backlog: 1024,
            read_buffer_size: 64 * 1024,
            max_frame_size: 64 * 1024,
            max_message_size: 64 * 1024,
            max_handshake_bytes: 8 * 1024,
            max_outbound_bytes: 1024 * 1024,
            max_connections_per_worker: 100_000,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            timer_tick: Duration::from_millis(250),
            subprotocols: Vec::new(),
            history_size: 100,
            history_ttl: Duration::from_secs(300),
            max_channels: 100_000,
            max_subscriptions_per_connection: 128,
            max_channel_name_len: 128,
            max_publish_bytes: 64 * 1024,
            command_rate: 100,
            command_burst: 200,
            inbox_capacity: 65_536,
        }
    }
}

/// A configuration value that cannot work, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
}

impl ServerConfig {
    /// Worker count after resolving `0` to the online cores.
    pub fn effective_workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, reason: String| Err(ConfigError { key, reason });
        if self.workers > 1024 {
            return err("workers", format!("{} is more than 1024", self.workers));
        }
        if self.read_buffer_size < 4096 {
            return err("read_buffer_size", "must be at least 4096 bytes".into());
        }
        if self.max_frame_size == 0 || self.max_message_size == 0 {
            return err(
                "max_message_size",
                "frame and message limits must be positive".into(),
            );
        }
        if self.max_frame_size > self.max_message_size {
            return err(
                "max_frame_size",
                format!(
                    "{} exceeds max_message_size {}",
                    self.max_frame_size, self.max_message_size
                ),
            );
        }
        if self.max_handshake_bytes < 256 {
            return err("max_handshake_bytes", "must be at least 256 bytes".into());
        }
        if self.ping_interval >= self.idle_timeout {
            return err(
                "ping_interval",
                format!(
                    "{:?} must be shorter than idle_timeout {:?}",
                    self.ping_interval, self.idle_timeout
                ),
            );
        }
        if self.timer_tick.is_zero() || self.timer_tick > self.ping_interval {
            return err(
                "timer_tick",
                "must be positive and at most ping_interval".into(),
            );
        }
        if self.uring_entries < 8 || !self.uring_entries.is_power_of_two() {
            return err(
                "uring_entries",
                format!("{} is not a power of two >= 8", self.uring_entries),
            );
        }
        if self.max_channel_name_len == 0 || self.max_channel_name_len > 1024 {
            return err("max_channel_name_len", "must be between 1 and 1024".into());
        }
        if self.command_rate == 0 || self.command_burst == 0 {
            return err("command_rate", "rate and burst must be positive".into());
        }
        if self.inbox_capacity < 16 {
            return err("inbox_capacity", "must be at least 16".into());
        }
        if self.max_channels < self.effective_workers() {
            return err("max_channels", "must be at least one per worker".into());
        }
        Ok(())
    }

    /// Channels each owner core may hold.
    pub fn max_channels_per_worker(&self) -> usize {
        self.max_channels.div_ceil(self.effective_workers())
    }

    pub fn frame_limits(&self) -> Limits {
        Limits {
            max_frame_size: self.max_frame_size,
            max_message_size: self.max_message_size,
        }
    }

    pub fn handshake_limits(&self) -> HandshakeLimits {
        HandshakeLimits {
            max_head_bytes: self.max_handshake_bytes,
            ..HandshakeLimits::default()
        }
    }

    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            limits: self.frame_limits(),
            ping_interval: self.ping_interval,
            idle_timeout: self.idle_timeout,
            close_timeout: self.close_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ServerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn ping_must_be_shorter_than_idle() {
        let config = ServerConfig {
            ping_interval: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            ..ServerConfig::default()
        };
        assert_eq!(config.validate().map_err(|e| e.key), Err("ping_interval"));
    }

    #[test]
    fn frame_limit_cannot_exceed_message_limit() {
        let config = ServerConfig {
            max_frame_size: 2 << 20,
            ..ServerConfig::default()
        };
        assert_eq!(config.validate().map_err(|e| e.key), Err("max_frame_size"));
    }
}
