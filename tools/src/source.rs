//! Source-address sets for outgoing connections (`--source`).
//!
//! One source IP can hold at most one connection per ephemeral port to a given
//! server address (about 28,000 with Linux's default `ip_local_port_range`),
//! so large runs spread connections over several loopback addresses
//! (`127.0.0.2-127.0.0.9`: every address in 127.0.0.0/8 is local on Linux).
//!
//! Accepted forms, comma-separated and combinable: a single address
//! (`127.0.0.2`), an inclusive IPv4 range (`127.0.0.2-127.0.0.9`), or an IPv6
//! address (`::1`). Guarantees: the set is never empty, holds at most
//! [`MAX_SOURCES`] addresses, and [`SourceAddrs::get`] is a pure round-robin
//! over them in the order written.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// Upper bound on the addresses in one set: far more than any run needs, and
/// small enough that a typo like `127.0.0.1-127.255.0.0` is refused instead of
/// allocating millions of entries.
pub const MAX_SOURCES: usize = 65_536;

/// A non-empty, ordered set of source IPs used round-robin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAddrs {
    addrs: Vec<IpAddr>,
}

/// Why a `--source` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceParseError {
    #[error("empty source address list")]
    Empty,
    #[error("`{0}` is not an IP address")]
    BadAddress(String),
    #[error("range `{0}`: both ends must be IPv4 addresses")]
    RangeNotIpv4(String),
    #[error("range `{0}` runs backwards (first address is above the last)")]
    Backwards(String),
    #[error("more than {MAX_SOURCES} source addresses")]
    TooMany,
}

impl SourceAddrs {
    /// The `i`-th address of the round-robin (`i` wraps around).
    pub fn get(&self, i: u64) -> IpAddr {
        // `addrs` is never empty and never longer than MAX_SOURCES, so both
        // the modulo and the cast back are in range.
        let idx = (i % self.addrs.len() as u64) as usize;
        self.addrs[idx]
    }

    /// Number of distinct addresses in the set.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Always false (a set is never empty); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The addresses, in round-robin order.
    pub fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }
}

impl FromStr for SourceAddrs {
    type Err = SourceParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut addrs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('-') {
                Some((first, last)) => push_range(&mut addrs, part, first.trim(), last.trim())?,
                None => {
                    let ip = part
                        .parse::<IpAddr>()
                        .map_err(|_| SourceParseError::BadAddress(part.to_string()))?;
                    addrs.push(ip);
                }
            }
            if addrs.len() > MAX_SOURCES {
                return Err(SourceParseError::TooMany);
            }
        }
        if addrs.is_empty() {
            return Err(SourceParseError::Empty);
        }
        Ok(SourceAddrs { addrs })
    }
}

fn push_range(
    addrs: &mut Vec<IpAddr>,
    part: &str,
    first: &str,
    last: &str,
) -> Result<(), SourceParseError> {
    let parse = |s: &str| {
        s.parse::<Ipv4Addr>()
            .map_err(|_| match s.parse::<IpAddr>() {
                Ok(_) => SourceParseError::RangeNotIpv4(part.to_string()),
                Err(_) => SourceParseError::BadAddress(s.to_string()),
            })
    };
    let (first, last) = (u32::from(parse(first)?), u32::from(parse(last)?));
    if first > last {
        return Err(SourceParseError::Backwards(part.to_string()));
    }
    // Checked before the loop so a huge range never allocates.
    if (last - first) as usize >= MAX_SOURCES.saturating_sub(addrs.len()) {
        return Err(SourceParseError::TooMany);
    }
    addrs.extend((first..=last).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn range_is_inclusive_and_round_robin() {
        let s: SourceAddrs = "127.0.0.2-127.0.0.9".parse().expect("valid range");
        assert_eq!(s.len(), 8);
        assert_eq!(s.get(0), v4(127, 0, 0, 2));
        assert_eq!(s.get(7), v4(127, 0, 0, 9));
        assert_eq!(s.get(8), v4(127, 0, 0, 2));
        assert_eq!(s.get(19_001), v4(127, 0, 0, 3));
    }

    #[test]
    fn range_crosses_octet_boundary() {
        let s: SourceAddrs = "127.0.0.254-127.0.1.1".parse().expect("valid range");
        assert_eq!(
            s.addrs(),
            &[
                v4(127, 0, 0, 254),
                v4(127, 0, 0, 255),
                v4(127, 0, 1, 0),
                v4(127, 0, 1, 1)
            ]
        );
    }

    #[test]
    fn singles_lists_and_ipv6() {
        let s: SourceAddrs = "127.0.0.1".parse().expect("single");
        assert_eq!(s.addrs(), &[v4(127, 0, 0, 1)]);
        let s: SourceAddrs = "127.0.0.5, 127.0.0.2-127.0.0.3,::1".parse().expect("list");
        assert_eq!(
            s.addrs(),
            &[
                v4(127, 0, 0, 5),
                v4(127, 0, 0, 2),
                v4(127, 0, 0, 3),
                "::1".parse().expect("v6")
            ]
        );
        let s: SourceAddrs = "127.0.0.7-127.0.0.7".parse().expect("one-element range");
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert_eq!("".parse::<SourceAddrs>(), Err(SourceParseError::Empty));
        assert_eq!(" , ".parse::<SourceAddrs>(), Err(SourceParseError::Empty));
        assert_eq!(
            "127.0.0.9-127.0.0.2".parse::<SourceAddrs>(),
            Err(SourceParseError::Backwards("127.0.0.9-127.0.0.2".into()))
        );
        assert_eq!(
            "127.0.0.300".parse::<SourceAddrs>(),
            Err(SourceParseError::BadAddress("127.0.0.300".into()))
        );
        assert_eq!(
            "127.0.0.1-::1".parse::<SourceAddrs>(),
            Err(SourceParseError::RangeNotIpv4("127.0.0.1-::1".into()))
        );
        assert_eq!(
            "10.0.0.0-10.255.255.255".parse::<SourceAddrs>(),
            Err(SourceParseError::TooMany)
        );
        assert!("127.0.0.0-127.0.255.255".parse::<SourceAddrs>().is_ok()); // exactly MAX_SOURCES
        assert_eq!(
            "127.0.0.0-127.1.0.0".parse::<SourceAddrs>(),
            Err(SourceParseError::TooMany)
        );
    }
}
