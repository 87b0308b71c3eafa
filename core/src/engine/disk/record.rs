//! One log record on disk: encode and parse, no IO.
//!
//! ```text
//! len    u32 LE   bytes of the body (everything after the CRC)
//! crc    u32 LE   CRC-32 (IEEE) of the body
//! body:
//!   offset     u64 LE   the channel's offset of this publish
//!   timestamp  u64 LE   publish time, Unix milliseconds
//!   epoch_len  u8, epoch (ASCII)
//!   name_len   u16 LE, channel name (UTF-8)
//!   payload    the rest: the publish's `data`, raw JSON
//! ```
//!
//! Segments are preallocated with zeros, so a `len` of 0 is the end of what
//! was written. [`parse`] tells the three outcomes apart: a record, the
//! clean end, or a record that cannot be trusted (short, bad length, bad
//! CRC, bad field) — what the caller does with the last is `recover.rs`'s.

use bytes::Bytes;

/// Bytes before the body: `len` and `crc`.
pub const HEADER: usize = 8;
/// The smallest body: offset, timestamp, the two lengths.
const MIN_BODY: usize = 8 + 8 + 1 + 2;

/// A parsed record; the payload shares the segment's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub timestamp_ms: u64,
    pub epoch: String,
    pub channel: String,
    pub payload: Bytes,
}

/// What [`parse`] found at a position.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A record and its size on disk (header included).
    Record(Record, usize),
    /// Zeros (or the end of the buffer): nothing was written here.
    End,
    /// Something was written here that is not a whole, valid record.
    Bad(&'static str),
}

/// The bytes of one record on disk.
pub fn encoded_len(epoch: &str, channel: &str, payload: &[u8]) -> usize {
    HEADER + MIN_BODY + epoch.len() + channel.len() + payload.len()
}

/// Appends one record to `out`. The caller keeps `epoch` under 256 bytes
/// and `channel` under 65,536 (the protocol's limits are far below both).
pub fn encode_into(
    out: &mut Vec<u8>,
    offset: u64,
    timestamp_ms: u64,
    epoch: &str,
    channel: &str,
    payload: &[u8],
) {
    let body_len = MIN_BODY + epoch.len() + channel.len() + payload.len();
    let start = out.len();
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    out.push(epoch.len() as u8);
    out.extend_from_slice(epoch.as_bytes());
    out.extend_from_slice(&(channel.len() as u16).to_le_bytes());
    out.extend_from_slice(channel.as_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Parses the record at `buf[pos..]`; `buf` is a whole segment.
pub fn parse(buf: &Bytes, pos: usize) -> Parsed {
    let rest = &buf[pos.min(buf.len())..];
    if rest.len() < HEADER {
        return match rest.iter().all(|b| *b == 0) {
            true => Parsed::End,
            false => Parsed::Bad("short header"),
        };
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len == 0 {
        return match crc == 0 {
            true => Parsed::End,
            false => Parsed::Bad("zero length with a CRC"),
        };
    }
    if len < MIN_BODY || len > rest.len() - HEADER {
        return Parsed::Bad("length past the segment");
    }
    let body = &rest[HEADER..HEADER + len];
    if crc32fast::hash(body) != crc {
        return Parsed::Bad("CRC mismatch");
    }
    let offset = u64_at(body, 0);
    let timestamp_ms = u64_at(body, 8);
    let epoch_len = body[16] as usize;
    let name_at = 17 + epoch_len;
    if name_at + 2 > body.len() {
        return Parsed::Bad("epoch past the record");
    }
    let name_len = u16::from_le_bytes([body[name_at], body[name_at + 1]]) as usize;
    let payload_at = name_at + 2 + name_len;
    if payload_at > body.len() {
        return Parsed::Bad("channel past the record");
    }
    let (Ok(epoch), Ok(channel)) = (
        std::str::from_utf8(&body[17..name_at]),
        std::str::from_utf8(&body[name_at + 2..payload_at]),
    ) else {
        return Parsed::Bad("epoch or channel not UTF-8");
    };
    let start = pos + HEADER + payload_at;
    let record = Record {
        offset,
        timestamp_ms,
        epoch: epoch.to_owned(),
        channel: channel.to_owned(),
        payload: buf.slice(start..pos + HEADER + len),
    };
    Parsed::Record(record, HEADER + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(offset: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_into(
            &mut out,
            offset,
            1_700_000_000_123,
            "00ab",
            "room:1",
            payload,
        );
        out
    }

    #[test]
    fn a_record_reads_back_and_its_length_is_known_ahead() {
        for payload in [&b""[..], b"{\"a\":1}", &[b'x'; 70_000]] {
            let mut seg = one(7, payload);
            assert_eq!(seg.len(), encoded_len("00ab", "room:1", payload));
            seg.extend_from_slice(&[0; 32]);
            let seg = Bytes::from(seg);
            let Parsed::Record(r, used) = parse(&seg, 0) else {
                panic!("record expected");
            };
            assert_eq!(used, encoded_len("00ab", "room:1", payload));
            assert_eq!(
                (r.offset, r.timestamp_ms, &*r.epoch, &*r.channel),
                (7, 1_700_000_000_123, "00ab", "room:1")
            );
            assert_eq!(&r.payload[..], payload);
            assert_eq!(parse(&seg, used), Parsed::End);
        }
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_bad_never_a_record() {
        let whole = one(3, b"\"hello\"");
        for cut in 1..whole.len() {
            let seg = Bytes::copy_from_slice(&whole[..cut]);
            assert!(matches!(parse(&seg, 0), Parsed::Bad(_)), "cut at {cut}");
        }
        for at in 0..whole.len() {
            let mut bad = whole.clone();
            bad[at] ^= 0x40;
            let seg = Bytes::from(bad);
            assert!(
                !matches!(parse(&seg, 0), Parsed::Record(..)),
                "flip at {at}"
            );
        }
    }

    #[test]
    fn zeros_are_the_end() {
        assert_eq!(parse(&Bytes::from_static(&[0; 20]), 0), Parsed::End);
        assert_eq!(parse(&Bytes::from_static(&[0; 3]), 0), Parsed::End);
        assert_eq!(parse(&Bytes::new(), 0), Parsed::End);
    }
}
