//! The server's typed configuration: every knob, its default, its unit, and
//! the rules that make a set of values consistent.
//!
//! [`ServerConfig::default`] is the embedded default that runs anywhere (a
//! laptop, a 2-core CI box). Hardware profiles, `RINGCAST_*` environment
//! variables and command-line flags change single keys on top of it; that
//! layering, and where each value came from, lives in [`layers`].
//!
//! **Parsed once.** Every key is parsed into its typed value when it is set
//! ([`keys`]): sizes, durations, the `Origin` allow-list
//! ([`origin::OriginPolicy`]), the trusted proxies
//! ([`proxy::TrustedProxies`]), the JWT algorithms and key source
//! ([`auth::KeySource`]), the default channel grants ([`pattern`]). A value
//! that does not parse is refused there, with its source and key; the rules
//! between values are [`ServerConfig::validate`]'s. Nothing downstream
//! parses a configuration value again: `auth` and `admission` build their
//! runtime objects from these types without a way to fail (reading a key
//! file at startup aside).
//!
//! **Layering.** `config` sits below `auth`, `admission`, `pubsub` and
//! `server` and imports none of them: the value types those modules
//! consume (the allow-lists, [`secret::Secret`], [`io_uring::UringFlags`])
//! are defined here.
//!
//! | file | what it owns |
//! | --- | --- |
//! | `mod.rs` | [`ServerConfig`], [`ConfigError`], and the rules between tables |
//! | `server.rs`, `log.rs`, `io_uring.rs`, `limits.rs`, `timeouts.rs`, `pubsub.rs`, `store.rs`, `auth.rs`, `admission.rs` | one TOML table each (`store.rs` also `[capacity]`): its typed section, defaults, units and rules |
//! | `deflate.rs` | the `[deflate]` table: permessage-deflate negotiation and compression |
//! | `api.rs` | the `[api]` table: the HTTP server API's keys, listener, allow-list and bounds |
//! | `engine.rs` | the `[engine]` table: memory or Redis, and the Redis engine's bounds |
//! | `origin.rs`, `proxy.rs`, `pattern.rs`, `secret.rs`, `redis_url.rs` | parsed value types: the `Origin` allow-list, trusted proxy networks, channel patterns, a secret that never prints, a Redis URL that never prints its password |
//! | `keys.rs` | the key table: TOML name → section field, value type of every key |
//! | `profile.rs` | which profile: embedded tiers, a file, or `auto` |
//! | `layers.rs` | default < profile < env < flags, with provenance per key |
//! | `capacity.rs` | the capacity model: measured costs, and what a configuration holds on a box (`capacity/deflate.rs`: its permessage-deflate part) |
//! | `machine.rs` | cores, memory and disks of this box, and the `auto` pick |
//! | `doctor/` | `ringcast doctor`: this machine against what a profile needs (`probe.rs` reads, `checks.rs` and `net.rs` judge) |

pub mod admission;
pub mod api;
pub mod auth;
pub mod capacity;
pub mod deflate;
pub mod doctor;
pub mod engine;
pub mod io_uring;
pub mod keys;
pub mod layers;
pub mod limits;
pub mod log;
pub mod machine;
pub mod origin;
pub mod pattern;
pub mod profile;
pub mod proxy;
pub mod pubsub;
pub mod redis_url;
pub mod secret;
pub mod server;
pub mod store;
pub mod timeouts;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use self::admission::AdmissionSection;
pub use self::api::ApiSection;
pub use self::auth::{AuthMode, AuthSection, KeySource};
pub use self::deflate::DeflateSection;
pub use self::engine::{EngineKind, EngineSection};
pub use self::io_uring::{IoUringSection, SocketIo, UringFlags};
pub use self::limits::LimitsSection;
pub use self::log::LogSection;
pub use self::pubsub::PubsubSection;
pub use self::server::{DemoPage, ServerSection};
pub use self::store::{CapacitySection, FsyncPolicy, StoreSection};
pub use self::timeouts::TimeoutsSection;
use crate::proto::decoder::Limits;
use crate::proto::deflate::DeflatePolicy;
use crate::proto::handshake::HandshakeLimits;
use crate::proto::session::SessionConfig;

/// Everything `ringcast serve` needs to run: one typed section per TOML
/// table. The key `TABLE.KEY` of a value is listed in [`keys::KEYS`]; inside
/// a section the fields drop the prefixes the keys carry
/// (`io_uring.uring_entries` is `config.io_uring.entries`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerConfig {
    pub server: ServerSection,
    pub log: LogSection,
    pub io_uring: IoUringSection,
    pub limits: LimitsSection,
    pub timeouts: TimeoutsSection,
    pub pubsub: PubsubSection,
    /// The disk engine's log (`engine.kind = "disk"`).
    pub store: StoreSection,
    /// The profile's capacity statement; checked by doctor, never enforced.
    pub capacity: CapacitySection,
    pub auth: AuthSection,
    pub admission: AdmissionSection,
    /// Where channel offsets, history and cross-node delivery live.
    pub engine: EngineSection,
    /// The HTTP server API for application backends (off without a key).
    pub api: ApiSection,
    /// permessage-deflate (off by default).
    pub deflate: DeflateSection,
}

/// A configuration value that cannot work, named by its key.
///
/// `key` is the key that is wrong (`limits.max_frame_size`); for an
/// inconsistent pair, `pair` is the other key of the rule, so a caller that
/// knows where each value came from can blame the one that was set last.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
    pub pair: Option<&'static str>,
}

fn refuse(key: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError {
        key,
        reason: reason.into(),
        pair: None,
    })
}

fn refuse_pair(
    key: &'static str,
    pair: &'static str,
    reason: impl Into<String>,
) -> Result<(), ConfigError> {
    Err(ConfigError {
        key,
        reason: reason.into(),
        pair: Some(pair),
    })
}

fn show_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A rate of events per second with its burst. One rule for every rate
/// key (`limits.command_rate`, `publish_rate`, `subscribe_rate`,
/// `admission.admission_rate`, `admission_rate_per_ip`): `0` turns the
/// limit off, and its burst is then not read; a set rate needs a burst of
/// at least 1 and at most one event per nanosecond (the token buckets count
/// in nanoseconds).
fn check_rate(
    (rate_key, rate): (&'static str, u32),
    (burst_key, burst): (&'static str, u32),
) -> Result<(), ConfigError> {
    if rate > 1_000_000_000 {
        return refuse(
            rate_key,
            format!("{rate} is more than 1,000,000,000 per second"),
        );
    }
    if rate > 0 && burst == 0 {
        return refuse_pair(
            burst_key,
            rate_key,
            format!("must be at least 1 when {rate_key} is set"),
        );
    }
    Ok(())
}

impl ServerConfig {
    /// Checks every range and every rule between two values, table by table
    /// in key order; the first violation wins. Values that parse (origins,
    /// proxies, algorithms, patterns, one key source) were checked when
    /// they were set.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.violations().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every table's first violation, in key order: what a profile with
    /// several mistakes is told all at once (one table's later rules often
    /// depend on its earlier ones, so each table stops at its first).
    pub fn violations(&self) -> Vec<ConfigError> {
        let workers = self.server.effective_workers();
        let channels = if self.pubsub.max_channels < workers {
            refuse_pair(
                "pubsub.max_channels",
                "server.workers",
                format!(
                    "{} is fewer than one per worker ({workers})",
                    self.pubsub.max_channels
                ),
            )
        } else {
            Ok(())
        };
        [
            self.server.validate(),
            self.io_uring.validate(),
            self.limits.validate(),
            self.timeouts.validate(),
            self.log.validate(),
            self.pubsub.validate().and(channels),
            self.auth.validate(),
            self.admission.validate(),
            self.engine
                .validate()
                .and_then(|()| match self.engine.kind {
                    EngineKind::Redis => self.engine.validate_with(self.pubsub.history_ttl),
                    EngineKind::Memory | EngineKind::Disk => Ok(()),
                }),
            self.api.validate(),
            self.store.validate(self.engine.kind == EngineKind::Disk),
            self.deflate.validate(),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect()
    }

    /// Channels each owner core may hold.
    pub fn max_channels_per_worker(&self) -> usize {
        self.pubsub
            .max_channels
            .div_ceil(self.server.effective_workers())
    }

    pub fn frame_limits(&self) -> Limits {
        Limits {
            max_frame_size: self.limits.max_frame_size,
            max_message_size: self.limits.max_message_size,
        }
    }

    pub fn handshake_limits(&self) -> HandshakeLimits {
        HandshakeLimits {
            max_head_bytes: self.limits.max_handshake_bytes,
            ..HandshakeLimits::default()
        }
    }

    /// What permessage-deflate offers are accepted with (`[deflate]`).
    pub fn deflate_policy(&self) -> DeflatePolicy {
        DeflatePolicy {
            server_max_window_bits: self.deflate.server_max_window_bits,
            server_no_context_takeover: self.deflate.server_no_context_takeover,
            client_no_context_takeover: self.deflate.client_no_context_takeover,
            max_memory_per_connection: self.deflate.max_memory_per_connection,
        }
    }

    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            limits: self.frame_limits(),
            ping_interval: self.timeouts.ping_interval,
            idle_timeout: self.timeouts.idle_timeout,
            close_timeout: self.timeouts.close_timeout,
        }
    }
}
