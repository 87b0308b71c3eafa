//! The `[api]` table: the HTTP server API for application backends
//! (`/api/publish`, `/api/history`, ...), off unless a key is configured.
//!
//! Keys are secrets: several may be valid at once, so a backend can move to a
//! new key before the old one is removed (rotation). They come from
//! `api.key` (one key, or several separated by commas) and from
//! `api.key_file` (one key per line, `#` comments), read at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::proxy::TrustedProxies;
use super::secret::Secret;
use super::{refuse, ConfigError};

/// `[api]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSection {
    /// API keys, comma-separated (`api.key`). Empty, together with an empty
    /// `key_file`, keeps the API off (every `/api/` path is 404).
    pub key: Secret,
    /// A file of API keys, one per line (`api.key_file`). Default: none.
    pub key_file: PathBuf,
    /// Where the API listens on a port of its own (e.g. `127.0.0.1:8090`);
    /// `None` (the default, shown as `""`) serves it on the main port
    /// under `/api/`.
    pub listen: Option<SocketAddr>,
    /// Client addresses allowed to call the API (addresses and CIDR blocks);
    /// empty (the default) allows any address that has a key.
    pub allowed_clients: TrustedProxies,
    /// Largest request body, in bytes. Default 1 MiB; past it 413.
    pub max_body_bytes: usize,
    /// API connections the whole process holds at once; past it 503.
    /// Default 256.
    pub max_connections: usize,
    /// Channels one `/api/broadcast` may name. Default 1,000; past it 400.
    pub max_broadcast_channels: usize,
    /// How long a request may take from its first byte to its answer (a
    /// slow body, or an answer from Redis); past it the connection is
    /// closed (503 when the answer is what is late). Default 10 s.
    pub request_timeout: Duration,
    /// How long a keep-alive connection may wait idle between requests.
    /// Default 60 s.
    pub idle_timeout: Duration,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            key: Secret::default(),
            key_file: PathBuf::new(),
            listen: None,
            allowed_clients: TrustedProxies::default(),
            max_body_bytes: 1 << 20,
            max_connections: 256,
            max_broadcast_channels: 1000,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Why the API keys could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("api.key_file: cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("api.key_file holds no key (one key per line)")]
    Empty,
}

impl ApiSection {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 64 {
            return refuse("api.max_body_bytes", "must be at least 64 bytes");
        }
        if self.max_connections == 0 {
            return refuse("api.max_connections", "must be at least 1");
        }
        if self.max_broadcast_channels == 0 {
            return refuse("api.max_broadcast_channels", "must be at least 1");
        }
        if self.request_timeout.is_zero() {
            return refuse("api.request_timeout", "must be positive");
        }
        if self.idle_timeout.is_zero() {
            return refuse("api.idle_timeout", "must be positive");
        }
        if self.key.expose().split(',').any(|k| k.trim().len() > 512) {
            return refuse("api.key", "a key is longer than 512 bytes");
        }
        Ok(())
    }

    /// Whether a key source is set (the API is on).
    pub fn is_enabled(&self) -> bool {
        !self.key.is_empty() || !self.key_file.as_os_str().is_empty()
    }

    /// Every configured key: `api.key` split on commas, then the lines of
    /// `api.key_file`; blank entries and `#` lines skipped.
    pub fn load_keys(&self) -> Result<Vec<Secret>, ApiKeyError> {
        let mut keys: Vec<Secret> = split_keys(self.key.expose()).collect();
        if !self.key_file.as_os_str().is_empty() {
            let text =
                std::fs::read_to_string(&self.key_file).map_err(|source| ApiKeyError::Read {
                    path: self.key_file.clone(),
                    source,
                })?;
            keys.extend(
                text.lines()
                    .filter(|line| !line.trim_start().starts_with('#'))
                    .flat_map(split_keys),
            );
        }
        Ok(keys)
    }
}

fn split_keys(text: &str) -> impl Iterator<Item = Secret> + '_ {
    text.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(Secret::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_list_and_the_file() {
        let dir = std::env::temp_dir().join(format!("ringcast-api-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("keys");
        std::fs::write(&file, "# old\nk2\n\n  k3 \n").expect("write");
        let section = ApiSection {
            key: Secret::new("k0, k1,"),
            key_file: file,
            ..ApiSection::default()
        };
        assert!(section.is_enabled());
        let keys: Vec<String> = section
            .load_keys()
            .expect("keys")
            .iter()
            .map(|k| k.expose().to_owned())
            .collect();
        assert_eq!(keys, ["k0", "k1", "k2", "k3"]);
        assert!(!ApiSection::default().is_enabled());
        let missing = ApiSection {
            key_file: dir.join("absent"),
            ..ApiSection::default()
        };
        assert!(missing.load_keys().is_err());
    }
}
