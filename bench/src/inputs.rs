//! Inputs the criterion benches share, built once outside any timed closure
//! and deterministic, so runs compare.

use ringcast::proto::frame::{encode_masked_frame_into, OpCode};

/// A 32-byte JSON-ish payload: the size of a small chat or ticker message.
pub const SMALL_PAYLOAD: &[u8; 32] = b"{\"channel\":\"btc\",\"data\":42.50}  ";

/// Wire bytes of `frames` masked client frames, each carrying `payload`
/// with opcode `opcode` and masking key `mask`.
pub fn masked_frames(frames: usize, opcode: OpCode, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(frames * (14 + payload.len()));
    for _ in 0..frames {
        encode_masked_frame_into(&mut wire, opcode, true, mask, payload);
    }
    wire
}

/// `len` bytes of printable ASCII (JSON-like), valid UTF-8.
pub fn ascii_text(len: usize) -> String {
    const UNIT: &str = r#"{"channel":"prices","offset":1024,"data":{"bid":101.25,"ask":101.5}},"#;
    repeat_to(UNIT, len)
}

/// About `len` bytes of mixed text: ASCII with 2-, 3- and 4-byte characters
/// (Cyrillic, CJK, emoji), as chat messages carry. Ends on a char boundary.
pub fn mixed_text(len: usize) -> String {
    const UNIT: &str = "{\"user\":\"анна\",\"text\":\"こんにちは世界 🚀🎉 ok\"},";
    repeat_to(UNIT, len)
}

/// `unit` repeated and cut at the last char boundary at or below `len` bytes.
fn repeat_to(unit: &str, len: usize) -> String {
    let mut s = unit.repeat(len / unit.len() + 1);
    let mut end = len.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// A browser's upgrade request to `/ws` (the headers Chrome sends), with the
/// RFC 6455 sample key.
pub const UPGRADE_REQUEST: &[u8] = b"GET /ws?token=abc123 HTTP/1.1\r\n\
Host: chat.example.com\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://chat.example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

/// The `Sec-WebSocket-Accept` that [`UPGRADE_REQUEST`]'s key must yield (RFC 6455 §1.3).
pub const UPGRADE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_have_the_asked_size_and_are_utf8() {
        for len in [1000, 16 * 1024] {
            assert_eq!(ascii_text(len).len(), len);
            let mixed = mixed_text(len);
            assert!(mixed.len() <= len && mixed.len() + 4 > len);
            assert!(mixed.chars().any(|c| c.len_utf8() == 4));
        }
    }

    #[test]
    fn frames_are_back_to_back() {
        let wire = masked_frames(3, OpCode::Binary, [1, 2, 3, 4], SMALL_PAYLOAD);
        assert_eq!(wire.len(), 3 * (6 + 32));
    }
}
