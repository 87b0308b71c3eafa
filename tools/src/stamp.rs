//! Timestamps and sequence numbers carried inside message payloads.
//!
//! Every measured message carries the time it was meant to be sent, in
//! nanoseconds since the run's time base (one `Instant` for the whole
//! process, so every thread's stamps compare). It is written as fixed-width
//! lowercase hex: the payload stays valid UTF-8 (text frames, JSON strings)
//! and parsing is a loop over a known number of bytes, with no allocation.
//!
//! Layouts (all ASCII):
//! - echo: `SSSSSSSSSSSSSSSS` then filler up to the message size;
//! - broadcast: `SSSSSSSSSSSSSSSS PPPPPPPP QQQQQQQQQQQQQQQQ` (stamp, publisher,
//!   sequence) then filler — [`BROADCAST_HEADER`] bytes before the filler;
//! - ringcast v1: the same as broadcast, as the JSON string `data` of a publish.
//!
//! Guarantees: [`parse_hex`] accepts exactly what [`write_hex`] writes (any
//! case of `a-f`) and refuses anything else with `None`.

/// Hex digits of a stamp or a sequence number (a `u64`).
pub const STAMP_LEN: usize = 16;

/// Hex digits of a publisher index (a `u32`).
pub const PUBLISHER_LEN: usize = 8;

/// Bytes before the filler in a broadcast/fan-out payload:
/// stamp, space, publisher, space, sequence.
pub const BROADCAST_HEADER: usize = STAMP_LEN + 1 + PUBLISHER_LEN + 1 + STAMP_LEN;

/// The filler byte after the header (a JSON-safe, UTF-8-safe character).
pub const FILLER: u8 = b'x';

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `value` as `out.len()` lowercase hex digits, most significant first.
/// Bits above `4 * out.len()` are dropped.
pub fn write_hex(out: &mut [u8], mut value: u64) {
    for byte in out.iter_mut().rev() {
        *byte = HEX[(value & 0xf) as usize];
        value >>= 4;
    }
}

/// Parses `digits` (1 to 16 hex digits) as a number.
pub fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > STAMP_LEN {
        return None;
    }
    let mut value = 0u64;
    for &b in digits {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        value = (value << 4) | u64::from(d);
    }
    Some(value)
}

/// The stamp at the front of a payload.
pub fn parse_stamp(payload: &[u8]) -> Option<u64> {
    parse_hex(payload.get(..STAMP_LEN)?)
}

/// A payload of `size` bytes (at least [`STAMP_LEN`]): a zero stamp and filler.
pub fn echo_template(size: usize) -> Vec<u8> {
    let mut payload = vec![FILLER; size.max(STAMP_LEN)];
    write_hex(&mut payload[..STAMP_LEN], 0);
    payload
}

/// A payload of `size` bytes (at least [`BROADCAST_HEADER`]) with the header
/// fields zeroed and filler after.
pub fn broadcast_template(size: usize) -> Vec<u8> {
    let mut payload = vec![FILLER; size.max(BROADCAST_HEADER)];
    write_broadcast_header(&mut payload, 0, 0, 0);
    payload
}

/// Overwrites the header of a [`broadcast_template`] payload.
pub fn write_broadcast_header(payload: &mut [u8], stamp: u64, publisher: u32, seq: u64) {
    write_hex(&mut payload[..STAMP_LEN], stamp);
    payload[STAMP_LEN] = b' ';
    let p = STAMP_LEN + 1;
    write_hex(&mut payload[p..p + PUBLISHER_LEN], u64::from(publisher));
    payload[p + PUBLISHER_LEN] = b' ';
    let q = p + PUBLISHER_LEN + 1;
    write_hex(&mut payload[q..q + STAMP_LEN], seq);
}

/// The header of a broadcast payload: (stamp, publisher, sequence).
pub fn parse_broadcast_header(payload: &[u8]) -> Option<(u64, u32, u64)> {
    if payload.len() < BROADCAST_HEADER
        || payload[STAMP_LEN] != b' '
        || payload[STAMP_LEN + 1 + PUBLISHER_LEN] != b' '
    {
        return None;
    }
    let stamp = parse_hex(&payload[..STAMP_LEN])?;
    let p = STAMP_LEN + 1;
    let publisher = u32::try_from(parse_hex(&payload[p..p + PUBLISHER_LEN])?).ok()?;
    let q = p + PUBLISHER_LEN + 1;
    let seq = parse_hex(&payload[q..q + STAMP_LEN])?;
    Some((stamp, publisher, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_at_the_edges() {
        for value in [0, 1, 0xf, 0x10, 0xdead_beef, u64::MAX - 1, u64::MAX] {
            let mut buf = [0u8; STAMP_LEN];
            write_hex(&mut buf, value);
            assert_eq!(parse_hex(&buf), Some(value), "{value:#x}");
        }
        let mut buf = [0u8; STAMP_LEN];
        write_hex(&mut buf, 0x0123_4567_89ab_cdef);
        assert_eq!(&buf, b"0123456789abcdef");
        assert_eq!(parse_hex(b"ABCDEF"), Some(0xabcdef));
    }

    #[test]
    fn hex_refuses_what_it_does_not_write() {
        assert_eq!(parse_hex(b""), None);
        assert_eq!(parse_hex(b"12345678901234567"), None);
        assert_eq!(parse_hex(b"00000000000000g0"), None);
        assert_eq!(parse_hex(b" 1"), None);
        assert_eq!(parse_stamp(b"123"), None);
    }

    #[test]
    fn short_fields_drop_high_bits() {
        let mut buf = [0u8; 2];
        write_hex(&mut buf, 0x1234);
        assert_eq!(&buf, b"34");
    }

    #[test]
    fn echo_payload_has_the_stamp_in_front() {
        let mut p = echo_template(20);
        assert_eq!(p.len(), 20);
        assert_eq!(&p[16..], b"xxxx");
        write_hex(&mut p[..STAMP_LEN], 42);
        assert_eq!(parse_stamp(&p), Some(42));
        assert_eq!(echo_template(3).len(), STAMP_LEN);
    }

    #[test]
    fn broadcast_header_round_trips() {
        let mut p = broadcast_template(64);
        assert_eq!(p.len(), 64);
        write_broadcast_header(&mut p, 1_000_000_007, 7, 99);
        assert_eq!(
            &p[..BROADCAST_HEADER],
            b"000000003b9aca07 00000007 0000000000000063"
        );
        assert_eq!(parse_broadcast_header(&p), Some((1_000_000_007, 7, 99)));
        assert!(p[BROADCAST_HEADER..].iter().all(|&b| b == FILLER));
        assert_eq!(parse_broadcast_header(&p[..BROADCAST_HEADER - 1]), None);
        p[STAMP_LEN] = b'-';
        assert_eq!(parse_broadcast_header(&p), None);
    }
}
