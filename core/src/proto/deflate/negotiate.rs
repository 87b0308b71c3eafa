//! The permessage-deflate negotiation (RFC 7692 §5, §7.1): the client's
//! `Sec-WebSocket-Extensions` offers in, the accepted parameters and the
//! response header value out.
//!
//! Rules, as the server applies them:
//! - Offers are taken in the client's order; the first `permessage-deflate`
//!   offer the server can honour is accepted, the others are ignored. Other
//!   extensions are ignored (never accepted).
//! - An offer is declined whole when a parameter is unknown, appears twice,
//!   or has a value it may not have: `server_no_context_takeover` and
//!   `client_no_context_takeover` take none, `server_max_window_bits` needs
//!   one, `client_max_window_bits` may have one; a value is 8 to 15 in
//!   decimal without leading zeros, bare or quoted (§7.1.2).
//! - The answer always carries `server_no_context_takeover` when the client
//!   asked for it, when the server insists on it, and when the window is
//!   below 15 bits (such a window is honoured by compressing each message
//!   that fits in it on its own, and sending larger ones uncompressed); the same for
//!   `client_no_context_takeover`. It carries `server_max_window_bits` with
//!   the smaller of the client's and the server's limit when either is below
//!   15. It never carries `client_max_window_bits`: the server's inflater
//!   takes any window, so the client keeps what it chose (§7.1.2.2 lets the
//!   server leave it out).
//! - Under a memory budget ([`DeflatePolicy::max_memory_per_connection`]),
//!   the zlib state one connection may hold counts the inflate stream it
//!   needs to read a compressed message (made per message or kept, the same
//!   bytes, whatever the window: see [`INFLATE_STATE_BYTES`]) and, when it
//!   keeps context, its own deflate stream. An offer is declined when even
//!   the inflate stream does not fit (no compressed message could be read
//!   within the budget); `server_no_context_takeover` is answered when the
//!   connection's own 15-bit deflate stream (the only window a kept stream
//!   is made with; below 15 bits the server compresses each message on its
//!   own anyway) does not fit beside it. The client's window is never
//!   capped for memory: zlib-rs makes every inflate stream with a 32 KiB
//!   window, so a smaller one would save nothing.

use std::fmt::Write as _;

use super::{deflate_state_bytes, INFLATE_STATE_BYTES};

/// The extension's registered name.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// What the server is willing to accept; built from the `[deflate]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflatePolicy {
    /// The most window bits the server's compressed messages use (8..=15).
    pub server_max_window_bits: u8,
    /// Answer `server_no_context_takeover` even when not asked.
    pub server_no_context_takeover: bool,
    /// Answer `client_no_context_takeover` even when not asked.
    pub client_no_context_takeover: bool,
    /// The most zlib state one connection may hold, in bytes; 0: no limit.
    pub max_memory_per_connection: u64,
}

impl Default for DeflatePolicy {
    fn default() -> Self {
        Self {
            server_max_window_bits: 15,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            max_memory_per_connection: 0,
        }
    }
}

impl DeflatePolicy {
    /// Whether the budget holds the inflate stream a compressed message
    /// needs.
    fn inflater_fits(&self) -> bool {
        let budget = self.max_memory_per_connection;
        budget == 0 || INFLATE_STATE_BYTES <= budget
    }

    /// Whether the budget holds a connection's own deflate stream (made
    /// with a 15-bit window) beside its inflate stream.
    fn own_deflater_fits(&self) -> bool {
        let budget = self.max_memory_per_connection;
        budget == 0 || deflate_state_bytes(15) + INFLATE_STATE_BYTES <= budget
    }
}

/// What both ends agreed on for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server compresses each message on its own (no LZ77 window carried
    /// from one message to the next).
    pub server_no_context_takeover: bool,
    /// The client compresses each message on its own, so the server needs no
    /// inflate state between messages.
    pub client_no_context_takeover: bool,
    /// The largest window the server's messages may use, in bits (8..=15).
    pub server_max_window_bits: u8,
}

impl DeflateParams {
    /// Whether the connection keeps zlib state between messages: its own
    /// deflate stream (no `server_no_context_takeover`) or its inflate
    /// stream (no `client_no_context_takeover`).
    pub fn keeps_context(&self) -> bool {
        !self.server_no_context_takeover || !self.client_no_context_takeover
    }

    /// The same agreement with no context kept either way (the server may
    /// answer both parameters whatever the client offered, §7.1.1).
    pub fn without_context(self) -> Self {
        Self {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..self
        }
    }

    /// The zlib state this connection may hold at once, in bytes: the
    /// inflate stream a compressed message needs and, when it keeps
    /// context, its own deflate stream.
    pub fn state_bytes(&self) -> u64 {
        let own = if self.server_no_context_takeover {
            0
        } else {
            deflate_state_bytes(self.server_max_window_bits)
        };
        INFLATE_STATE_BYTES + own
    }

    /// Whether a message of `len` bytes compressed with a 15-bit window
    /// (and no context from earlier messages) is valid for this client: its
    /// back-references reach at most `len - 1` bytes back, so it is when
    /// `len <= 2^server_max_window_bits`, or when the client takes 15 bits.
    pub fn window_fits(&self, len: usize) -> bool {
        self.server_max_window_bits >= 15 || len <= 1usize << self.server_max_window_bits
    }

    /// The `Sec-WebSocket-Extensions` value that answers the accepted offer.
    pub fn response_header(&self) -> String {
        let mut value = String::from(EXTENSION_NAME);
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            // Writing to a String cannot fail.
            let _ = write!(
                value,
                "; server_max_window_bits={}",
                self.server_max_window_bits
            );
        }
        value
    }
}

/// One parsed `permessage-deflate` offer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: offered without a value; `Some(Some(bits))`: with one.
    client_max_window_bits: Option<Option<u8>>,
}

/// Picks the first acceptable `permessage-deflate` offer among the header
/// values (each a comma-separated list of offers) and returns what was
/// agreed, or `None` when there is nothing to accept.
pub fn negotiate(headers: &[String], policy: &DeflatePolicy) -> Option<DeflateParams> {
    headers
        .iter()
        .flat_map(|value| split_outside_quotes(value, ','))
        .filter_map(parse_offer)
        .find_map(|offer| accept(&offer, policy))
}

/// What the server answers `offer` with, or `None` when it declines it.
fn accept(offer: &Offer, policy: &DeflatePolicy) -> Option<DeflateParams> {
    if !policy.inflater_fits() {
        // Not one compressed message could be read within the budget.
        return None;
    }
    let asked = offer.server_max_window_bits.unwrap_or(15);
    let bits = asked.min(policy.server_max_window_bits);
    Some(DeflateParams {
        // A window below 15 bits is honoured by compressing only messages
        // that fit in it, each on its own: no context takeover then.
        server_no_context_takeover: offer.server_no_context_takeover
            || policy.server_no_context_takeover
            || bits < 15
            || !policy.own_deflater_fits(),
        client_no_context_takeover: offer.client_no_context_takeover
            || policy.client_no_context_takeover,
        server_max_window_bits: bits,
    })
}

/// Parses one offer (`name; param; param=value`). `None` when it is not
/// `permessage-deflate` or is malformed (declined).
fn parse_offer(offer: &str) -> Option<Offer> {
    let mut parts = split_outside_quotes(offer, ';');
    let name = parts.next()?;
    if !name.eq_ignore_ascii_case(EXTENSION_NAME) {
        return None;
    }
    let mut parsed = Offer::default();
    for part in parts {
        let (key, value) = match part.split_once('=') {
            Some((key, value)) => (
                key.trim_matches(is_ows),
                Some(unquote(value.trim_matches(is_ows))?),
            ),
            None => (part, None),
        };
        match (key.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if !parsed.server_no_context_takeover => {
                parsed.server_no_context_takeover = true;
            }
            ("client_no_context_takeover", None) if !parsed.client_no_context_takeover => {
                parsed.client_no_context_takeover = true;
            }
            ("server_max_window_bits", Some(value)) if parsed.server_max_window_bits.is_none() => {
                parsed.server_max_window_bits = Some(window_bits(value)?);
            }
            ("client_max_window_bits", value) if parsed.client_max_window_bits.is_none() => {
                parsed.client_max_window_bits = Some(match value {
                    Some(value) => Some(window_bits(value)?),
                    None => None,
                });
            }
            // Unknown, duplicated, or a value where none may be (or none
            // where one must be): the offer is declined.
            _ => return None,
        }
    }
    Some(parsed)
}

/// A window size value: 8 to 15, decimal, no leading zero (§7.1.2.1).
fn window_bits(value: &str) -> Option<u8> {
    match value.as_bytes() {
        [b'8'] => Some(8),
        [b'9'] => Some(9),
        [b'1', d @ b'0'..=b'5'] => Some(10 + (d - b'0')),
        _ => None,
    }
}

/// The value without its quotes when quoted (a quoted-string holding a
/// token; no escapes are needed for one). `None` for a broken quote.
fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .filter(|inner| !inner.contains(['"', '\\'])),
        None if value.contains('"') || value.is_empty() => None,
        None => Some(value),
    }
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits on `sep` where it is not inside a quoted string; elements are
/// trimmed, empty ones dropped.
fn split_outside_quotes(value: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || loop {
        let s = rest?;
        let mut quoted = false;
        let mut cut = None;
        for (i, c) in s.char_indices() {
            match c {
                '"' => quoted = !quoted,
                c if c == sep && !quoted => {
                    cut = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let element = match cut {
            Some(i) => {
                rest = Some(&s[i + sep.len_utf8()..]);
                &s[..i]
            }
            None => {
                rest = None;
                s
            }
        };
        let element = element.trim_matches(is_ows);
        if !element.is_empty() {
            return Some(element);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    fn answer(values: &[&str], policy: &DeflatePolicy) -> Option<String> {
        negotiate(&offers(values), policy).map(|p| p.response_header())
    }

    const LAX: DeflatePolicy = DeflatePolicy {
        server_max_window_bits: 15,
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        max_memory_per_connection: 0,
    };

    #[test]
    fn plain_offer_is_accepted_with_the_insisted_parameters() {
        let strict = DeflatePolicy::default();
        assert_eq!(
            answer(&["permessage-deflate"], &strict).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
        assert_eq!(
            answer(&["permessage-deflate"], &LAX).as_deref(),
            Some("permessage-deflate")
        );
        // What Chromium and Firefox send.
        let browser = ["permessage-deflate; client_max_window_bits"];
        assert_eq!(
            answer(&browser, &LAX).as_deref(),
            Some("permessage-deflate")
        );
    }

    #[test]
    fn requested_parameters_are_answered() {
        let p = negotiate(
            &offers(&["permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9"]),
            &LAX,
        )
        .expect("accepted");
        assert_eq!(
            p,
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 10,
            }
        );
        assert_eq!(
            p.response_header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
        );
        // Quoted values, odd case and spacing.
        let p = negotiate(
            &offers(&[
                "PerMessage-Deflate ;\tserver_max_window_bits=\"8\" ; client_max_window_bits = 15",
            ]),
            &LAX,
        )
        .expect("accepted");
        assert_eq!(p.server_max_window_bits, 8);
    }

    #[test]
    fn the_server_limit_caps_the_window() {
        let policy = DeflatePolicy {
            server_max_window_bits: 11,
            ..LAX
        };
        assert_eq!(
            answer(&["permessage-deflate"], &policy).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=11")
        );
        assert_eq!(
            answer(&["permessage-deflate; server_max_window_bits=9"], &policy).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=9")
        );
        assert_eq!(
            answer(&["permessage-deflate; server_max_window_bits=13"], &policy).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=11")
        );
    }

    #[test]
    fn malformed_offers_are_declined_and_the_next_one_taken() {
        let bad = [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=",
            "permessage-deflate; server_max_window_bits=\"10",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"x\"",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; mystery",
        ];
        for offer in bad {
            assert_eq!(answer(&[offer], &LAX), None, "{offer}");
            if offer.matches('"').count() % 2 == 1 {
                // An open quote runs to the end of the header: nothing after
                // it is an offer of its own.
                continue;
            }
            // The same bad offer followed by a good one: the good one wins.
            let both = format!("{offer}, permessage-deflate; client_no_context_takeover");
            assert_eq!(
                answer(&[&both], &LAX).as_deref(),
                Some("permessage-deflate; client_no_context_takeover"),
                "{both}"
            );
        }
    }

    #[test]
    fn offers_in_order_across_headers_and_other_extensions_ignored() {
        let values = [
            "x-webkit-deflate-frame, permessage-foo; a=1",
            "permessage-deflate; server_max_window_bits=12, permessage-deflate",
        ];
        assert_eq!(
            answer(&values, &LAX).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=12")
        );
        assert_eq!(answer(&["x-webkit-deflate-frame"], &LAX), None);
        assert_eq!(answer(&[], &LAX), None);
        // A comma inside quotes does not split the offer (and the value is bad).
        assert_eq!(
            answer(
                &["permessage-deflate; server_max_window_bits=\"1,2\""],
                &LAX
            ),
            None
        );
    }

    #[test]
    fn window_fits_at_the_boundary() {
        let p = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 8,
        };
        assert!(p.window_fits(256));
        assert!(!p.window_fits(257));
        let p = DeflateParams {
            server_max_window_bits: 15,
            ..p
        };
        assert!(p.window_fits(32769));
        assert!(p.window_fits(1 << 24));
        let p = DeflateParams {
            server_max_window_bits: 14,
            ..p
        };
        assert!(p.window_fits(16384));
        assert!(!p.window_fits(16385));
    }

    #[test]
    fn the_budget_refuses_the_own_deflater_first_then_the_offer() {
        let own = deflate_state_bytes(15) + INFLATE_STATE_BYTES;
        let budget = |bytes| DeflatePolicy {
            max_memory_per_connection: bytes,
            ..LAX
        };
        let plain = ["permessage-deflate"];
        // Room for both streams: context kept both ways.
        let p = negotiate(&offers(&plain), &budget(own)).expect("accepted");
        assert!(!p.server_no_context_takeover && !p.client_no_context_takeover);
        assert_eq!(p.state_bytes(), own);
        // One byte short: the server insists on compressing each message
        // on its own; the client's context (an inflater, which any
        // compressed message needs anyway) stays.
        assert_eq!(
            answer(&plain, &budget(own - 1)).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        let p = negotiate(&offers(&plain), &budget(INFLATE_STATE_BYTES)).expect("accepted");
        assert_eq!(p.state_bytes(), INFLATE_STATE_BYTES);
        // Not even one inflate stream: every offer is declined, whatever
        // window it asks for (zlib-rs's inflater is the same at any).
        let small = budget(INFLATE_STATE_BYTES - 1);
        assert_eq!(answer(&plain, &small), None);
        assert_eq!(
            answer(
                &["permessage-deflate; client_max_window_bits=9; server_max_window_bits=9"],
                &small
            ),
            None
        );
        // The budget leaves what the client asked for and the window alone.
        assert_eq!(
            answer(
                &["permessage-deflate; client_no_context_takeover; server_max_window_bits=10"],
                &budget(own - 1)
            )
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10")
        );
        // No budget: as before.
        assert_eq!(
            answer(&plain, &budget(0)).as_deref(),
            Some("permessage-deflate")
        );
    }

    #[test]
    fn without_context_answers_both_parameters() {
        let p = negotiate(
            &offers(&["permessage-deflate; server_max_window_bits=15"]),
            &LAX,
        )
        .expect("accepted");
        assert!(p.keeps_context());
        let p = p.without_context();
        assert!(!p.keeps_context());
        assert_eq!(
            p.response_header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(p.state_bytes(), INFLATE_STATE_BYTES);
        // Either direction alone is context kept.
        let server_only = DeflateParams {
            client_no_context_takeover: true,
            ..negotiate(&offers(&["permessage-deflate"]), &LAX).expect("accepted")
        };
        assert!(server_only.keeps_context());
    }
}
