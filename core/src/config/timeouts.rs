//! The `[timeouts]` table: how long the server waits for a handshake, a
//! pong, a close frame and a drain, and the timer sweep that fires them.

use std::time::Duration;

use super::{refuse, refuse_pair, show_duration, ConfigError};

/// `[timeouts]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutsSection {
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
}

impl Default for TimeoutsSection {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            timer_tick: Duration::from_millis(250),
        }
    }
}

impl TimeoutsSection {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("timeouts.handshake_timeout", self.handshake_timeout),
            ("timeouts.close_timeout", self.close_timeout),
            ("timeouts.idle_timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                return refuse(key, "must be positive");
            }
        }
        if self.ping_interval >= self.idle_timeout {
            return refuse_pair(
                "timeouts.ping_interval",
                "timeouts.idle_timeout",
                format!(
                    "{} must be shorter than timeouts.idle_timeout ({})",
                    show_duration(self.ping_interval),
                    show_duration(self.idle_timeout)
                ),
            );
        }
        if self.timer_tick.is_zero() {
            return refuse("timeouts.timer_tick", "must be positive");
        }
        if self.timer_tick > self.ping_interval {
            return refuse_pair(
                "timeouts.timer_tick",
                "timeouts.ping_interval",
                format!(
                    "{} is longer than timeouts.ping_interval ({})",
                    show_duration(self.timer_tick),
                    show_duration(self.ping_interval)
                ),
            );
        }
        Ok(())
    }
}
