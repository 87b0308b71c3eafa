//! The client address behind a trusted proxy (`admission.trusted_proxies`,
//! parsed at load into [`TrustedProxies`]), from `X-Forwarded-For`.
//!
//! Behind a reverse proxy every TCP peer is the proxy, so per-address limits
//! would put all clients in one bucket. When the peer is a trusted proxy the
//! client address is read from `X-Forwarded-For` instead, with the rule that
//! cannot be spoofed from outside: walk the list **from the right** (each
//! proxy appends the address it received the request from), skip the
//! addresses that are themselves trusted proxies, and take the first one that
//! is not. Whatever a client wrote to the left of that was never checked by a
//! proxy we trust and is ignored.
//!
//! Guarantees:
//!
//! - An empty list (the default) trusts nobody: the header is never read.
//! - An untrusted peer's `X-Forwarded-For` is ignored entirely.
//! - A trusted peer whose header is missing, empty, or malformed before the
//!   first untrusted entry is reached counts as itself (never refused).
//! - When every entry is trusted (a client inside a trusted network), the
//!   leftmost entry is the client, as nginx's `real_ip_recursive` does.
//! - IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what dual-stack sockets
//!   report) match IPv4 networks and are returned as IPv4.
//!
//! Entries of the header may be `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
//! `[2001:db8::1]` or `[2001:db8::1]:443`, with spaces around them; empty
//! elements (`a,,b`) are skipped as HTTP list syntax allows. `Forwarded`
//! (RFC 7239) is not read: nginx and most balancers set `X-Forwarded-For`.
//!
//! Sans-IO and allocation-free per request: the header is walked in place.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::config::proxy::canonical;
pub use crate::config::proxy::TrustedProxies;

/// Parses one `X-Forwarded-For` element; `None` for anything but an address
/// (with or without a port).
fn parse_element(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(|v6| canonical(v6.into()));
    }
    text.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// The client address in an `X-Forwarded-For` value received from a trusted
/// proxy: walking from the right, the first address `trusted` says no to;
/// the leftmost address if all are trusted. `None` (use the peer) when the
/// header holds no address, or an element reached by the walk is not one.
pub fn client_from_forwarded_for(header: &str, trusted: impl Fn(IpAddr) -> bool) -> Option<IpAddr> {
    let mut leftmost = None;
    for element in header.rsplit(',').map(str::trim) {
        if element.is_empty() {
            continue;
        }
        let ip = parse_element(element)?;
        if !trusted(ip) {
            return Some(ip);
        }
        leftmost = Some(ip);
    }
    leftmost
}

impl TrustedProxies {
    /// The address a connection from `peer` counts as, given its
    /// `X-Forwarded-For` (`RequestHead::x_forwarded_for`). See the module docs.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        forwarded_for
            .and_then(|header| client_from_forwarded_for(header, |ip| self.trusts(ip)))
            .unwrap_or(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(list).expect("valid list")
    }

    fn client(list: &[&str], header: &str) -> Option<IpAddr> {
        let p = proxies(list);
        client_from_forwarded_for(header, |ip| p.trusts(ip))
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let trusted = ["127.0.0.1/32", "10.0.0.0/8"];
        assert_eq!(client(&trusted, "203.0.113.9"), Some(ip("203.0.113.9")));
        // A proxy chain: client, then two trusted hops.
        assert_eq!(
            client(&trusted, "203.0.113.9, 10.0.0.2, 10.0.0.3"),
            Some(ip("203.0.113.9"))
        );
        // A client spoofing entries to the left: they are never reached.
        assert_eq!(
            client(&trusted, "1.1.1.1, 10.0.0.5, 198.51.100.4, 10.0.0.2"),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(
            client(&trusted, "garbage, ;drop, 198.51.100.4"),
            Some(ip("198.51.100.4")),
            "garbage left of the client is never parsed"
        );
        // All trusted: the leftmost one.
        assert_eq!(
            client(&trusted, "10.0.0.9, 127.0.0.1"),
            Some(ip("10.0.0.9"))
        );
    }

    #[test]
    fn ipv6_ports_spaces_and_empty_elements() {
        let trusted = ["::1/128", "127.0.0.1/32"];
        for (header, want) in [
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("203.0.113.9:5678", "203.0.113.9"),
            ("  203.0.113.9  ", "203.0.113.9"),
            ("203.0.113.9,::1", "203.0.113.9"),
            ("203.0.113.9 ,, ::1 ,", "203.0.113.9"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
            ("203.0.113.9, [::1]:80, ::ffff:127.0.0.1", "203.0.113.9"),
        ] {
            assert_eq!(client(&trusted, header), Some(ip(want)), "{header:?}");
        }
    }

    #[test]
    fn malformed_or_empty_headers_fall_back() {
        let trusted = ["127.0.0.1/32"];
        for header in [
            "",
            " ",
            ",",
            "unknown",
            "_hidden",
            "203.0.113.9, garbage",
            "203.0.113.9 10.0.0.1",
            "\"203.0.113.9\"",
            "203.0.113.9:99999",
            "[203.0.113.9]",
            "[2001:db8::1",
            "for=203.0.113.9",
            "203.0.113.256",
        ] {
            assert_eq!(client(&trusted, header), None, "{header:?}");
        }
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let p = proxies(&["127.0.0.1/32"]);
        let peer = ip("127.0.0.1");
        assert_eq!(p.client_ip(peer, Some("203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(p.client_ip(peer, None), peer, "no header");
        assert_eq!(p.client_ip(peer, Some("nonsense")), peer, "malformed");
        assert_eq!(
            p.client_ip(ip("::ffff:127.0.0.1"), Some("203.0.113.9")),
            ip("203.0.113.9"),
            "a dual-stack socket's mapped peer"
        );
        let stranger = ip("198.51.100.4");
        assert_eq!(p.client_ip(stranger, Some("203.0.113.9")), stranger);
        let nobody = TrustedProxies::none();
        assert_eq!(nobody.client_ip(peer, Some("203.0.113.9")), peer);
    }
}
