//! Close codes and close-frame payloads (RFC 6455 §5.5.1, §7.4).
//!
//! A close payload is either empty or a 2-byte big-endian code followed by a
//! UTF-8 reason; the whole payload is a control-frame payload, so at most 125
//! bytes, which leaves 123 for the reason. Guarantees:
//! - [`parse_close_payload`] accepts only codes that may appear on the wire
//!   ([`CloseCode::is_sendable`]) and reasons that are valid UTF-8; the error
//!   says which rule was broken, so the reply carries the right close code.
//! - [`encode_close_payload_into`] never produces more than 125 bytes: it
//!   truncates the reason on a `char` boundary instead of failing, because a
//!   close must always be sendable whatever reason text the caller built.

use super::error::ProtocolError;

/// Longest close reason that fits a control frame: 125 bytes minus the code.
pub const MAX_REASON_LEN: usize = 123;

/// A close status code (RFC 6455 §7.4). Any `u16` can be held; whether it may
/// be put on the wire is [`CloseCode::is_sendable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED: Self = Self(1003);
    /// 1005: local-only marker for "the close frame carried no code". Never sent:
    /// [`encode_close_payload_into`] encodes it as an empty payload.
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: local-only marker for "the connection dropped without a close frame".
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: data inconsistent with its type (e.g. bad UTF-8 in a text message).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violating the endpoint's policy.
    pub const POLICY: Self = Self(1008);
    /// 1009: a message too big to process.
    pub const TOO_BIG: Self = Self(1009);
    /// 1010: (client only) the server did not negotiate a required extension.
    pub const MANDATORY_EXT: Self = Self(1010);
    /// 1011: an unexpected condition inside the server.
    pub const INTERNAL: Self = Self(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later, e.g. the server is overloaded (IANA registry).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway got an invalid response upstream (IANA registry).
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: local-only marker for a failed TLS handshake.
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// True if this code may appear in a close frame on the wire: the codes of
    /// RFC 6455 §7.4.1 that are not local-only markers (1000-1003, 1007-1011),
    /// the IANA-registered 1012-1014, and the 3000-4999 ranges for libraries
    /// and applications. 0-999 are unused, 1004 is reserved, 1005/1006/1015
    /// are local-only, 1016-2999 are reserved for future RFCs and 5000+ is
    /// undefined.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// A parsed close payload that carried a code. The reason borrows the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    pub code: CloseCode,
    pub reason: &'a str,
}

/// Parses the payload of a close frame. An empty payload is `Ok(None)` (the
/// peer sent no code, which the application sees as 1005).
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame<'_>>, ProtocolError> {
    let (code, reason) = match payload {
        [] => return Ok(None),
        [_] => return Err(ProtocolError::CloseFrameOneByte),
        [hi, lo, reason @ ..] => (CloseCode(u16::from_be_bytes([*hi, *lo])), reason),
    };
    if !code.is_sendable() {
        return Err(ProtocolError::InvalidCloseCode(code.0));
    }
    let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
    Ok(Some(CloseFrame { code, reason }))
}

/// Appends a close payload: the code, then `reason` cut to at most
/// [`MAX_REASON_LEN`] bytes on a `char` boundary. [`CloseCode::NO_STATUS`]
/// encodes as an empty payload (and drops the reason, which needs a code).
pub fn encode_close_payload_into(out: &mut Vec<u8>, code: CloseCode, reason: &str) {
    if code == CloseCode::NO_STATUS {
        return;
    }
    // A code we may not send is a bug in our caller, never input from the peer
    // (peer codes are checked by `parse_close_payload` before anyone echoes them).
    debug_assert!(code.is_sendable(), "close code {} may not be sent", code.0);
    let reason = truncate_reason(reason);
    out.reserve(2 + reason.len());
    out.extend_from_slice(&code.0.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
}

/// The longest prefix of `reason` that fits a close frame and ends on a char boundary.
fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_LEN {
        return reason;
    }
    let mut end = MAX_REASON_LEN;
    // A UTF-8 char is at most 4 bytes, so this steps back at most 3 times;
    // index 0 is always a boundary, so it terminates.
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_codes() {
        let sendable = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ];
        let not_sendable = [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ];
        for code in sendable.into_iter().chain([3000, 3999, 4000, 4999]) {
            assert!(CloseCode(code).is_sendable(), "{code}");
        }
        for code in not_sendable {
            assert!(!CloseCode(code).is_sendable(), "{code}");
        }
        // Exhaustive against the ranges written out the long way.
        for code in 0..=u16::MAX {
            let expected = (1000..=1003).contains(&code)
                || (1007..=1014).contains(&code)
                || (3000..=4999).contains(&code);
            assert_eq!(CloseCode(code).is_sendable(), expected, "{code}");
        }
    }

    #[test]
    fn named_constants() {
        assert_eq!(CloseCode::NORMAL.0, 1000);
        assert_eq!(CloseCode::GOING_AWAY.0, 1001);
        assert_eq!(CloseCode::PROTOCOL_ERROR.0, 1002);
        assert_eq!(CloseCode::UNSUPPORTED.0, 1003);
        assert_eq!(CloseCode::NO_STATUS.0, 1005);
        assert_eq!(CloseCode::ABNORMAL.0, 1006);
        assert_eq!(CloseCode::INVALID_PAYLOAD.0, 1007);
        assert_eq!(CloseCode::POLICY.0, 1008);
        assert_eq!(CloseCode::TOO_BIG.0, 1009);
        assert_eq!(CloseCode::MANDATORY_EXT.0, 1010);
        assert_eq!(CloseCode::INTERNAL.0, 1011);
        assert_eq!(CloseCode::SERVICE_RESTART.0, 1012);
        assert_eq!(CloseCode::TRY_AGAIN_LATER.0, 1013);
        assert_eq!(CloseCode::BAD_GATEWAY.0, 1014);
        assert_eq!(CloseCode::TLS_HANDSHAKE.0, 1015);
    }

    #[test]
    fn parse_empty_is_no_status() {
        assert_eq!(parse_close_payload(b""), Ok(None));
    }

    #[test]
    fn parse_one_byte_is_an_error() {
        assert_eq!(
            parse_close_payload(b"\x03"),
            Err(ProtocolError::CloseFrameOneByte)
        );
        assert_eq!(
            ProtocolError::CloseFrameOneByte.close_code(),
            CloseCode::PROTOCOL_ERROR
        );
    }

    #[test]
    fn parse_code_only() {
        assert_eq!(
            parse_close_payload(b"\x03\xe8"),
            Ok(Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: ""
            }))
        );
    }

    #[test]
    fn parse_code_and_reason() {
        assert_eq!(
            parse_close_payload(b"\x03\xe9bye \xce\xba"),
            Ok(Some(CloseFrame {
                code: CloseCode::GOING_AWAY,
                reason: "bye κ"
            }))
        );
        assert_eq!(
            parse_close_payload(b"\x0b\xb8app"),
            Ok(Some(CloseFrame {
                code: CloseCode(3000),
                reason: "app"
            }))
        );
        assert_eq!(
            parse_close_payload(b"\x13\x87"),
            Ok(Some(CloseFrame {
                code: CloseCode(4999),
                reason: ""
            }))
        );
    }

    #[test]
    fn parse_rejects_codes_that_may_not_be_sent() {
        let cases: [(&[u8], u16); 9] = [
            (b"\x00\x00", 0),
            (b"\x03\xe7", 999),
            (b"\x03\xec", 1004),
            (b"\x03\xed", 1005),
            (b"\x03\xee", 1006),
            (b"\x03\xf7", 1015),
            (b"\x03\xf8", 1016),
            (b"\x0b\xb7", 2999),
            (b"\x13\x88", 5000),
        ];
        for (payload, code) in cases {
            assert_eq!(
                parse_close_payload(payload),
                Err(ProtocolError::InvalidCloseCode(code)),
                "{code}"
            );
        }
        assert_eq!(
            ProtocolError::InvalidCloseCode(1005).close_code(),
            CloseCode::PROTOCOL_ERROR
        );
    }

    #[test]
    fn parse_rejects_invalid_utf8_reason() {
        for payload in [
            &b"\x03\xe8\xff"[..],
            b"\x03\xe8ok\xc0\x80",       // overlong NUL
            b"\x03\xe8\xed\xa0\x80",     // surrogate
            b"\x03\xe8\xce",             // truncated sequence
            b"\x03\xe8\xf4\x90\x80\x80", // above U+10FFFF
        ] {
            assert_eq!(
                parse_close_payload(payload),
                Err(ProtocolError::InvalidCloseReason)
            );
        }
        assert_eq!(
            ProtocolError::InvalidCloseReason.close_code(),
            CloseCode::INVALID_PAYLOAD
        );
    }

    #[test]
    fn encode_code_and_reason() {
        let mut out = b"prefix".to_vec();
        encode_close_payload_into(&mut out, CloseCode::NORMAL, "bye");
        assert_eq!(out, b"prefix\x03\xe8bye");

        let mut out = Vec::new();
        encode_close_payload_into(&mut out, CloseCode(4000), "");
        assert_eq!(out, b"\x0f\xa0");
    }

    #[test]
    fn encode_no_status_is_empty() {
        let mut out = Vec::new();
        encode_close_payload_into(&mut out, CloseCode::NO_STATUS, "ignored");
        assert!(out.is_empty());
    }

    #[test]
    fn encode_truncates_reason_to_123_bytes() {
        let long = "x".repeat(200);
        let mut out = Vec::new();
        encode_close_payload_into(&mut out, CloseCode::GOING_AWAY, &long);
        assert_eq!(out.len(), 125);
        assert_eq!(&out[..2], b"\x03\xe9");
        assert!(out[2..].iter().all(|&b| b == b'x'));

        // Exactly 123 bytes is kept whole.
        let exact = "y".repeat(123);
        let mut out = Vec::new();
        encode_close_payload_into(&mut out, CloseCode::NORMAL, &exact);
        assert_eq!(&out[2..], exact.as_bytes());
    }

    #[test]
    fn encode_truncates_on_a_char_boundary() {
        // For every width of char (2, 3, 4 bytes) and every way it can straddle
        // byte 123, the result is valid UTF-8 and as long as possible.
        for ch in ['é', '€', '𝄞'] {
            for pad in 118..=123 {
                let reason = format!("{}{ch}{ch}", "a".repeat(pad));
                let mut out = Vec::new();
                encode_close_payload_into(&mut out, CloseCode::NORMAL, &reason);
                assert!(out.len() <= 125);
                let parsed = parse_close_payload(&out).expect("valid").expect("has code");
                assert!(reason.starts_with(parsed.reason));
                let next = reason[parsed.reason.len()..]
                    .chars()
                    .next()
                    .map_or(0, char::len_utf8);
                assert!(
                    parsed.reason.len() == reason.len() || parsed.reason.len() + next > 123,
                    "{ch} pad {pad}: kept {} bytes",
                    parsed.reason.len()
                );
            }
        }
    }

    #[test]
    fn round_trip_every_sendable_code() {
        for code in (0..=u16::MAX).map(CloseCode).filter(|c| c.is_sendable()) {
            let mut out = Vec::new();
            encode_close_payload_into(&mut out, code, "r");
            assert_eq!(
                parse_close_payload(&out),
                Ok(Some(CloseFrame { code, reason: "r" }))
            );
        }
    }
}
