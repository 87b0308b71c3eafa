//! The `[admission]` table: server-wide and per-address handshake rates,
//! the `Retry-After` jitter, the `Origin` allow-list and the trusted
//! proxies. The last two arrive parsed ([`OriginPolicy`],
//! [`TrustedProxies`]): a bad entry is refused while loading, with the key.

use std::time::Duration;

use super::origin::OriginPolicy;
use super::proxy::TrustedProxies;
use super::{check_rate, refuse, show_duration, ConfigError};

/// `[admission]` (read by `admission::AdmissionConfig::from_config`). The
/// TOML keys keep their prefix: `admission.admission_rate` is `rate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionSection {
    /// Handshakes per second the whole server admits (a token bucket shared
    /// by all workers); past it, 503 with `Retry-After`. `0` = no limit.
    /// Default 0.
    pub rate: u32,
    /// Handshakes admitted in a burst above `rate`. Used only when `rate`
    /// is set. Default 1000.
    pub burst: u32,
    /// Handshakes per second admitted from one client address (IPv6: per
    /// /64). `0` = no limit. Default 0.
    pub rate_per_ip: u32,
    /// Handshakes admitted from one address in a burst above
    /// `rate_per_ip`. Used only when that is set. Default 20.
    pub burst_per_ip: u32,
    /// Most random seconds added to every `Retry-After`, so that refused
    /// clients do not all come back at the same second (whole seconds, at
    /// most 1 h). Default 5 s.
    pub retry_jitter: Duration,
    /// `Origin` allow-list for WebSocket handshakes: exact origins
    /// (`"https://app.example.com"`, `"http://localhost:3000"`) or one-label
    /// wildcards (`"https://*.example.com"`). Empty = any origin. Requests
    /// without `Origin` (non-browser clients) are always let through.
    /// Other origins get 403. Default empty.
    pub allowed_origins: OriginPolicy,
    /// Reverse proxies whose `X-Forwarded-For` names the client: addresses
    /// or CIDR blocks (`["127.0.0.1/32", "10.0.0.0/8"]`). From such a peer,
    /// the client is the rightmost `X-Forwarded-For` entry that is not itself
    /// a trusted proxy, and that address is what the per-IP caps and rates
    /// count and the handshake logs name; a missing or malformed header
    /// counts the proxy itself. Other peers' headers are ignored
    /// (`admission::proxy`). Default empty: trust nobody.
    pub trusted_proxies: TrustedProxies,
}

impl Default for AdmissionSection {
    fn default() -> Self {
        Self {
            rate: 0,
            burst: 1000,
            rate_per_ip: 0,
            burst_per_ip: 20,
            retry_jitter: Duration::from_secs(5),
            allowed_origins: OriginPolicy::any(),
            trusted_proxies: TrustedProxies::none(),
        }
    }
}

impl AdmissionSection {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_rate(
            ("admission.admission_rate", self.rate),
            ("admission.admission_burst", self.burst),
        )?;
        check_rate(
            ("admission.admission_rate_per_ip", self.rate_per_ip),
            ("admission.admission_burst_per_ip", self.burst_per_ip),
        )?;
        if self.retry_jitter > Duration::from_secs(3600) {
            return refuse(
                "admission.retry_jitter",
                format!("{} is more than 1h", show_duration(self.retry_jitter)),
            );
        }
        Ok(())
    }
}
