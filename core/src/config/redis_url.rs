//! [`RedisUrl`]: where the Redis engine connects (`engine.redis_url`),
//! parsed once when the key is set.
//!
//! `redis://[user[:password]@]host[:port][/db]` or `rediss://…` (TLS). The
//! password never prints: `Debug`, `Display` and every error show
//! [`RedisUrl::redacted`] (password replaced by `***`), and reading a URL
//! whose password is that text back is refused, so a configuration printed
//! by `ringcast profile show` cannot silently log in with `***`.

use std::fmt;

/// The password as every shown form of a URL writes it.
pub const PASSWORD_SHOWN_AS: &str = "***";

/// A URL that cannot be used, shown redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid redis url {url}: {reason}")]
pub struct InvalidUrl {
    /// The URL with its password redacted (`<unparsable>` when it does not parse).
    pub url: String,
    pub reason: String,
}

/// Where Redis is and how to log in.
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
    /// The default of `engine.redis_url`: a local Redis, database 0.
    pub const DEFAULT: &'static str = "redis://127.0.0.1:6379/0";

    pub fn parse(raw: &str) -> Result<Self, InvalidUrl> {
        let invalid = |redacted: &str, reason: &str| InvalidUrl {
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
        if password.as_deref() == Some(PASSWORD_SHOWN_AS) {
            return Err(invalid(
                &redacted,
                "the password \"***\" is how a shown URL hides it, not a password: set the real one",
            ));
        }
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

impl Default for RedisUrl {
    fn default() -> Self {
        // A constant that the tests below parse.
        Self::parse(Self::DEFAULT).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Cannot fail: a URL with a password has a host.
        let _ = shown.set_password(Some(PASSWORD_SHOWN_AS));
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
        assert_eq!(RedisUrl::default().redacted(), RedisUrl::DEFAULT);
    }

    #[test]
    fn refuses_bad_urls_without_showing_the_password() {
        for (raw, reason) in [
            ("http://u:pw@h:1/0", "scheme"),
            ("redis://u:pw@h:1/x", "database"),
            ("not a url pw", "relative URL"),
            ("redis://u:***@h:1/0", "hides it"),
        ] {
            let err = RedisUrl::parse(raw).expect_err("must fail").to_string();
            assert!(err.contains(reason), "{err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }
}
