//! Settings of the Redis engine, independent of the configuration file.
//!
//! The configuration (`engine.*` keys) will build a [`RedisSettings`] later;
//! until then tests and benchmarks build it directly. Every field states its
//! default and unit. The URL is parsed once, at [`RedisSettings::new`], so a
//! bad URL is refused before any thread starts, and every message that shows
//! the URL shows [`RedisUrl::redacted`] (password replaced by `***`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::error::EngineError;

/// Where Redis is and how to log in, parsed from
/// `redis://[user[:password]@]host[:port][/db]` or `rediss://…` (TLS).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    /// Default 6379.
    pub port: u16,
    /// `rediss://`: TLS to the server.
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Database index (`/0`); default 0.
    pub db: i64,
    redacted: String,
}

impl RedisUrl {
    pub fn parse(raw: &str) -> Result<Self, EngineError> {
        let invalid = |redacted: &str, reason: &str| EngineError::InvalidUrl {
            url: redacted.to_string(),
            reason: reason.to_string(),
        };
        let url = match url::Url::parse(raw) {
            Ok(url) => url,
            // Without a parsed URL we cannot find the password: show nothing
            // of the input that could hold it.
            Err(e) => return Err(invalid("<unparsable>", &e.to_string())),
        };
        let redacted = redact(&url);
        let tls = match url.scheme() {
            "redis" => false,
            "rediss" => true,
            other => {
                return Err(invalid(
                    &redacted,
                    &format!("scheme {other:?} is neither redis nor rediss"),
                ))
            }
        };
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']'),
            _ => return Err(invalid(&redacted, "no host")),
        };
        let db = match url.path().trim_start_matches('/') {
            "" => 0,
            path => path
                .parse::<i64>()
                .ok()
                .filter(|db| *db >= 0)
                .ok_or_else(|| invalid(&redacted, "the path must be a database number"))?,
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let username = Some(url.username()).filter(|u| !u.is_empty()).map(decode);
        let password = url.password().map(decode);
        Ok(Self {
            host: host.to_string(),
            port: url.port().unwrap_or(6379),
            tls,
            username,
            password,
            db,
            redacted,
        })
    }

    /// The URL with its password replaced by `***`: the only form that may
    /// appear in logs and error messages.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Cannot fail: a URL with a password has a host.
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// Never prints the password, even through `{:?}`.
impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

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
}

impl RedisSettings {
    /// Defaults for everything but the URL, which is parsed (and refused with
    /// the redacted URL and the reason) here.
    pub fn new(url: &str) -> Result<Self, EngineError> {
        Ok(Self {
            url: RedisUrl::parse(url)?,
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_parts_and_redacts_the_password() {
        let url =
            RedisUrl::parse("rediss://user:s3cr%40t@redis.example:6380/3").expect("test step");
        assert!(url.tls);
        assert_eq!(url.host, "redis.example");
        assert_eq!(url.port, 6380);
        assert_eq!(url.db, 3);
        assert_eq!(url.username.as_deref(), Some("user"));
        assert_eq!(url.password.as_deref(), Some("s3cr@t"));
        assert_eq!(url.redacted(), "rediss://user:***@redis.example:6380/3");
        assert!(!format!("{url:?}").contains("s3cr"));
    }

    #[test]
    fn defaults_port_and_db() {
        let url = RedisUrl::parse("redis://127.0.0.1").expect("test step");
        assert_eq!((url.port, url.db, url.tls), (6379, 0, false));
        assert_eq!(url.password, None);
        let only_password = RedisUrl::parse("redis://:pw@[::1]:7000/").expect("test step");
        assert_eq!(only_password.host, "::1");
        assert_eq!(only_password.username, None);
        assert_eq!(only_password.password.as_deref(), Some("pw"));
    }

    #[test]
    fn refuses_bad_urls_without_showing_the_password() {
        for (raw, reason) in [
            ("http://u:pw@h:1/0", "scheme"),
            ("redis://u:pw@h:1/x", "database"),
            ("not a url pw", "relative URL"),
        ] {
            let err = RedisUrl::parse(raw).expect_err("must fail").to_string();
            assert!(err.contains(reason), "{err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }
}
