//! The `admission.trusted_proxies` value: the reverse proxies whose
//! `X-Forwarded-For` names the client, parsed once when the configuration
//! loads.
//!
//! Entries are addresses or CIDR blocks (`"127.0.0.1/32"`, `"10.0.0.0/8"`,
//! `"fd00::/8"`); a block with bits set past its prefix is refused with the
//! block that was probably meant. IPv4-mapped IPv6 addresses
//! (`::ffff:a.b.c.d`, what dual-stack sockets report) match IPv4 networks.
//! An empty list (the default) trusts nobody. Reading the header itself is
//! `admission::proxy`'s job.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
pub fn canonical(ip: IpAddr) -> IpAddr {
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

/// The parsed `admission.trusted_proxies` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Net>,
    /// The entries as written, for `ringcast profile show`.
    written: Vec<String>,
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
        let written = list.iter().map(|raw| raw.as_ref().to_owned()).collect();
        Ok(TrustedProxies { nets, written })
    }

    /// The entries as they were written.
    pub fn as_written(&self) -> &[String] {
        &self.written
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
    fn the_list_is_kept_as_written() {
        assert_eq!(proxies(&[" 10.0.0.0/8 "]).as_written(), [" 10.0.0.0/8 "]);
    }
}
