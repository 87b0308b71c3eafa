//! `ws://` target URLs (`--url`).
//!
//! Only plain `ws://` (no TLS): the load generator measures the server, not a
//! TLS stack. The host is resolved once, up front, so no connection pays a DNS
//! lookup and every connection goes to the same address. The `Host` header
//! sent in the handshake is the authority as written in the URL.

use std::net::{SocketAddr, ToSocketAddrs};

/// A parsed and resolved `ws://host[:port][/path][?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// Where to connect (the first address the host resolved to).
    pub addr: SocketAddr,
    /// `host[:port]` as written, for the `Host` header.
    pub authority: String,
    /// Path and query, `/` when absent; the request target of the handshake.
    pub target: String,
    /// A `Sec-WebSocket-Extensions` offer sent with the handshake (`connect
    /// --extensions`, to hold connections that negotiated one); `None`:
    /// no header.
    pub extensions: Option<String>,
}

impl std::fmt::Display for WsUrl {
    /// `ws://authority/target`, as given.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ws://{}{}", self.authority, self.target)
    }
}

/// Why a `--url` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("`{0}`: only ws:// URLs are supported")]
    Scheme(String),
    #[error("`{0}`: no host")]
    NoHost(String),
    #[error("`{0}`: bad port")]
    BadPort(String),
    #[error("`{url}`: cannot resolve host: {reason}")]
    Resolve { url: String, reason: String },
}

impl WsUrl {
    /// Parses and resolves `url`.
    pub fn parse(url: &str) -> Result<WsUrl, UrlError> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| UrlError::Scheme(url.to_string()))?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let (host, port) = split_host_port(authority, url)?;
        if host.is_empty() {
            return Err(UrlError::NoHost(url.to_string()));
        }
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| UrlError::Resolve {
                url: url.to_string(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| UrlError::Resolve {
                url: url.to_string(),
                reason: "no addresses".to_string(),
            })?;
        Ok(WsUrl {
            addr,
            authority: authority.to_string(),
            target,
            extensions: None,
        })
    }
}

/// `host:port`, `[v6]:port`, `host` (port 80) -> (host without brackets, port).
fn split_host_port<'a>(authority: &'a str, url: &str) -> Result<(&'a str, u16), UrlError> {
    let bad_port = || UrlError::BadPort(url.to_string());
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| UrlError::NoHost(url.to_string()))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, p.parse().map_err(|_| bad_port())?)),
            None if after.is_empty() => Ok((host, 80)),
            None => Err(bad_port()),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, p)) => Ok((host, p.parse().map_err(|_| bad_port())?)),
        None => Ok((authority, 80)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_port_path() {
        let u = WsUrl::parse("ws://127.0.0.1:9001/echo").expect("valid");
        assert_eq!(u.addr, SocketAddr::from(([127, 0, 0, 1], 9001)));
        assert_eq!(u.authority, "127.0.0.1:9001");
        assert_eq!(u.target, "/echo");
    }

    #[test]
    fn defaults_and_query() {
        let u = WsUrl::parse("ws://127.0.0.1").expect("valid");
        assert_eq!(u.addr.port(), 80);
        assert_eq!(u.target, "/");
        let u = WsUrl::parse("ws://127.0.0.1:1?token=x").expect("valid");
        assert_eq!(u.target, "/?token=x");
        let u = WsUrl::parse("ws://[::1]:7/ws?a=b").expect("valid");
        assert_eq!(u.addr, "[::1]:7".parse().expect("addr"));
        assert_eq!(u.target, "/ws?a=b");
    }

    #[test]
    fn refuses_bad_urls() {
        assert!(matches!(
            WsUrl::parse("wss://127.0.0.1/"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            WsUrl::parse("http://127.0.0.1/"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            WsUrl::parse("ws://:80/"),
            Err(UrlError::NoHost(_))
        ));
        assert!(matches!(
            WsUrl::parse("ws://127.0.0.1:99999/"),
            Err(UrlError::BadPort(_))
        ));
        assert!(matches!(
            WsUrl::parse("ws://127.0.0.1:x/"),
            Err(UrlError::BadPort(_))
        ));
    }
}
