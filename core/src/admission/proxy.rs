//! Trusted proxies (`admission.trusted_proxies`) and the client address
//! behind them, from `X-Forwarded-For`.
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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One trusted network: an address with its low `128 - prefix` (IPv6) or
/// `32 - prefix` (IPv4) bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    }
}

/// Parses one `trusted_proxies` entry: `addr` or `addr/prefix`.
fn parse_net(text: &str) -> Result<Net, String> {
    let hint = "(write an address or a CIDR block: \"10.0.0.0/8\", \"fd00::/8\")";
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address {hint}"))?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(digits) => match digits.parse::<u8>() {
            Ok(p) if p <= max && !digits.starts_with('+') => p,
            _ => {
                return Err(format!(
                    "{text:?} has a prefix length that is not 0 to {max}"
                ))
            }
        },
    };
    // `::ffff:a.b.c.d/N` (N >= 96) is the IPv4 network `a.b.c.d/(N - 96)`:
    // addresses are compared in their canonical form.
    let (addr, prefix) = match (canonical(addr), addr) {
        (IpAddr::V4(v4), IpAddr::V6(_)) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
        _ => (addr, prefix),
    };
    let host_bits = match addr {
        IpAddr::V4(v4) => u32::from(v4) & !mask_v4(prefix) != 0,
        IpAddr::V6(v6) => u128::from(v6) & !mask_v6(prefix) != 0,
    };
    if host_bits {
        let net = match addr {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_v4(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_v6(prefix))),
        };
        return Err(format!(
            "{text:?} has bits set past the prefix (did you mean \"{net}/{prefix}\"?)"
        ));
    }
    Ok(Net { addr, prefix })
}

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

/// The parsed `admission.trusted_proxies` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Net>,
}

impl TrustedProxies {
    /// Trusts nobody (the default).
    pub fn none() -> TrustedProxies {
        TrustedProxies::default()
    }

    /// Parses `admission.trusted_proxies`; the error names the bad entry.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<TrustedProxies, String> {
        let nets = list
            .iter()
            .map(|raw| parse_net(raw.as_ref().trim()))
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { nets })
    }

    /// Whether any proxy is trusted.
    pub fn is_enabled(&self) -> bool {
        !self.nets.is_empty()
    }

    /// Whether `ip` is in a trusted network.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(ip))
    }

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
    fn networks_parse_and_match() {
        let p = proxies(&["127.0.0.1/32", "10.0.0.0/8", "fd00::/8", "192.0.2.7", "::1"]);
        for yes in [
            "127.0.0.1",
            "10.0.0.0",
            "10.255.255.255",
            "fd12::1",
            "192.0.2.7",
            "::1",
            "::ffff:10.1.2.3",
        ] {
            assert!(p.trusts(ip(yes)), "{yes}");
        }
        for no in [
            "127.0.0.2",
            "11.0.0.1",
            "fe00::1",
            "192.0.2.8",
            "::2",
            "::a00:1",
        ] {
            assert!(!p.trusts(ip(no)), "{no}");
        }
        let everything = proxies(&["0.0.0.0/0", "::/0"]);
        assert!(everything.trusts(ip("203.0.113.9")) && everything.trusts(ip("2001:db8::1")));
        assert!(!TrustedProxies::none().is_enabled());
        assert!(!TrustedProxies::none().trusts(ip("127.0.0.1")));
        assert!(proxies(&[" 10.0.0.0/8 "]).trusts(ip("10.1.1.1")), "trimmed");
        assert!(
            proxies(&["::ffff:10.0.0.0/104"]).trusts(ip("10.9.9.9")),
            "a mapped network is its IPv4 network"
        );
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry() {
        for (bad, why) in [
            ("10.0.0.0/33", "prefix length"),
            ("fd00::/129", "prefix length"),
            ("10.0.0.0/", "prefix length"),
            ("10.0.0.0/+8", "prefix length"),
            ("10.0.0.0/x", "prefix length"),
            ("10.0.0.1/8", "did you mean \"10.0.0.0/8\""),
            ("fd00::1/8", "did you mean \"fd00::/8\""),
            ("10.0.0", "not an IP address"),
            ("localhost", "not an IP address"),
            ("10.0.0.0:80", "not an IP address"),
            ("", "not an IP address"),
        ] {
            let err = TrustedProxies::parse(&[bad]).expect_err(bad);
            assert!(err.starts_with(&format!("{bad:?}")), "{err}");
            assert!(err.contains(why), "{bad}: {err}");
        }
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
