//! A live push as it travels on Redis pub/sub: `<offset>:<epoch>:<payload>`.
//!
//! The publish script writes it; the subscriber parses it. Offset and epoch
//! travel with every push so the receiving node can order, deduplicate
//! against history and notice an epoch change (Redis restarted empty) without
//! another round trip. The payload is opaque bytes and may contain `:`; the
//! epoch is hex and the offset decimal, so the first two `:` delimit.

use bytes::Bytes;

/// One message received from another (or this) node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub channel: String,
    pub offset: u64,
    pub epoch: String,
    pub payload: Bytes,
}

impl Push {
    /// `None` for bytes no publish script of ours could have written.
    pub fn parse(channel: &str, wire: &[u8]) -> Option<Self> {
        let colon = wire.iter().position(|b| *b == b':')?;
        let offset = std::str::from_utf8(&wire[..colon]).ok()?.parse().ok()?;
        let rest = &wire[colon + 1..];
        let colon = rest.iter().position(|b| *b == b':')?;
        let epoch = std::str::from_utf8(&rest[..colon]).ok()?;
        if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Self {
            channel: channel.to_string(),
            offset,
            epoch: epoch.to_string(),
            payload: Bytes::copy_from_slice(&rest[colon + 1..]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offset_epoch_and_payload_with_colons() {
        let push = Push::parse("c", b"42:00ff:{\"a\":1}").expect("test step");
        assert_eq!(push.offset, 42);
        assert_eq!(push.epoch, "00ff");
        assert_eq!(&push.payload[..], b"{\"a\":1}");
        assert_eq!(
            Push::parse("c", b"1:ab:").expect("test step").payload.len(),
            0
        );
    }

    #[test]
    fn refuses_foreign_bytes() {
        for bad in [&b""[..], b"x:ab:p", b"1:ab", b"1::p", b"1:zz:p", b"-1:ab:p"] {
            assert_eq!(Push::parse("c", bad), None, "{bad:?}");
        }
    }
}
