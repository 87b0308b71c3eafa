//! The sending side: one message in, one compressed frame out (RFC 7692
//! §7.2.1): raw deflate ended with a sync flush, the trailing `00 00 ff ff`
//! removed, RSV1 set on the (single, final) frame.
//!
//! A [`MessageDeflater`] is reset before each message when the connection
//! negotiated `server_no_context_takeover`: then one deflater per core
//! serves every connection of the core, and its output (which refers to no
//! earlier message) is valid for any client whose window is large enough
//! (see `DeflateParams::window_fits`). Kept without reset, it is one
//! connection's stream (context takeover).
//!
//! A message whose compressed form is not smaller than itself is not
//! compressed: the caller sends it as it is (RSV1 is per message).

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};

use crate::proto::frame::{header_len, FrameHeader, OpCode, RSV1};

/// The empty stored block a sync flush ends with (§7.2.1).
pub const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// A deflate stream and the buffer its output lands in.
pub struct MessageDeflater {
    compress: Compress,
    /// Compressed bytes of the message being encoded; kept (cleared) between
    /// messages so a core's shared deflater allocates once.
    buf: Vec<u8>,
}

impl std::fmt::Debug for MessageDeflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageDeflater").finish_non_exhaustive()
    }
}

impl MessageDeflater {
    /// A raw-deflate stream at `level` (1..=9), 15-bit window.
    pub fn new(level: u32) -> Self {
        Self {
            compress: Compress::new(Compression::new(level), false),
            buf: Vec::new(),
        }
    }

    /// Compresses `payload` as one message and appends it as a single frame
    /// with RSV1 to `out`. `fresh`: start from an empty window (no context
    /// takeover). Returns false, appending nothing, when a fresh message
    /// would not get smaller: the caller sends `payload` uncompressed. A
    /// context-takeover stream always sends what it compressed (its window
    /// now holds the message, so the client's must too).
    pub fn encode_frame_into(
        &mut self,
        out: &mut Vec<u8>,
        opcode: OpCode,
        payload: &[u8],
        fresh: bool,
    ) -> bool {
        if fresh {
            self.compress.reset();
        }
        self.buf.clear();
        if !self.deflate(payload) || (fresh && self.buf.len() >= payload.len()) {
            return false;
        }
        let header = FrameHeader {
            fin: true,
            rsv: RSV1,
            opcode,
            mask: None,
            payload_len: self.buf.len() as u64,
        };
        out.reserve(header_len(header.payload_len, false) + self.buf.len());
        header.encode_into(out);
        out.extend_from_slice(&self.buf);
        if self.buf.capacity() > 64 * 1024 {
            // One large message must not leave a large buffer on the core.
            self.buf = Vec::new();
        }
        true
    }

    /// The compressed form of an encoded, unmasked, single-frame data
    /// message (`frame` as the hub queues it), or `None` when it is not one
    /// (a control frame, a fragment, RSV set) or does not get smaller.
    pub fn deflate_frame(&mut self, frame: &[u8], fresh: bool) -> Option<Bytes> {
        let (header, at) = FrameHeader::parse(frame).ok()??;
        let data = matches!(header.opcode, OpCode::Text | OpCode::Binary);
        if !data || !header.fin || header.rsv != 0 || header.mask.is_some() {
            return None;
        }
        let payload = frame.get(at..)?;
        let mut out = Vec::new();
        self.encode_frame_into(&mut out, header.opcode, payload, fresh)
            .then(|| Bytes::from(out))
    }

    /// Deflates `payload` into `buf` with a sync flush and strips the
    /// flush's tail. False when deflate failed (not seen in practice: the
    /// stream is never finished, so it cannot be misused).
    fn deflate(&mut self, payload: &[u8]) -> bool {
        let start_in = self.compress.total_in();
        // Deflate adds a few bytes per 16 KiB at worst; the loop grows the
        // buffer should the guess be short.
        self.buf.reserve(payload.len() / 2 + 64);
        loop {
            let used = (self.compress.total_in() - start_in) as usize;
            let before = (self.buf.len(), self.compress.total_in());
            let status =
                self.compress
                    .compress_vec(&payload[used..], &mut self.buf, FlushCompress::Sync);
            match status {
                Ok(Status::Ok | Status::BufError) => {}
                Ok(Status::StreamEnd) | Err(_) => return false,
            }
            let consumed_all = (self.compress.total_in() - start_in) as usize == payload.len();
            // Done when all input is in and the flush fitted (room left).
            if consumed_all && self.buf.len() < self.buf.capacity() {
                break;
            }
            let stuck = (self.buf.len(), self.compress.total_in()) == before;
            if stuck && self.buf.len() < self.buf.capacity() {
                return false;
            }
            self.buf.reserve(self.buf.len().max(64));
        }
        if !self.buf.ends_with(&SYNC_TAIL) {
            return false;
        }
        self.buf.truncate(self.buf.len() - SYNC_TAIL.len());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn inflate(compressed: &[u8], d: &mut Decompress) -> Vec<u8> {
        let mut input = compressed.to_vec();
        input.extend_from_slice(&SYNC_TAIL);
        let mut out = Vec::with_capacity(1 << 20);
        d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .expect("valid deflate");
        out
    }

    #[test]
    fn rfc_7692_hello_example() {
        // §7.2.3.1: "Hello" compressed is f2 48 cd c9 c9 07 00 when the
        // encoder picks a fixed Huffman block; ours may pick otherwise but
        // must inflate back, and "Hello" is too short to get smaller.
        let mut d = MessageDeflater::new(1);
        let mut out = Vec::new();
        assert!(!d.encode_frame_into(&mut out, OpCode::Text, b"Hello", true));
        assert!(out.is_empty());
        let mut z = Decompress::new(false);
        assert_eq!(
            inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut z),
            b"Hello"
        );
    }

    #[test]
    fn frames_round_trip_at_length_boundaries() {
        let mut d = MessageDeflater::new(1);
        for len in [64, 125, 126, 1000, 65535, 65536, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| b"abcabcabd"[i % 9]).collect();
            let mut out = Vec::new();
            assert!(
                d.encode_frame_into(&mut out, OpCode::Binary, &payload, true),
                "{len}"
            );
            let (header, at) = FrameHeader::parse(&out).expect("ok").expect("whole");
            assert_eq!(header.rsv, RSV1);
            assert!(header.fin);
            assert_eq!(header.opcode, OpCode::Binary);
            assert_eq!(header.payload_len as usize, out.len() - at);
            assert!(!out.ends_with(&SYNC_TAIL));
            assert_eq!(
                inflate(&out[at..], &mut Decompress::new(false)),
                payload,
                "{len}"
            );
        }
    }

    #[test]
    fn context_takeover_stream_inflates_in_sequence() {
        let mut d = MessageDeflater::new(6);
        let mut z = Decompress::new(false);
        let message = br#"{"channel":"room:1","data":{"text":"the same words again and again"}}"#;
        let mut sizes = Vec::new();
        for _ in 0..3 {
            let mut out = Vec::new();
            assert!(d.encode_frame_into(&mut out, OpCode::Text, message, false));
            let (_, at) = FrameHeader::parse(&out).expect("ok").expect("whole");
            assert_eq!(inflate(&out[at..], &mut z), message);
            sizes.push(out.len());
        }
        // The window carried over: later copies are references to the first.
        assert!(sizes[1] < sizes[0], "{sizes:?}");
    }

    #[test]
    fn deflate_frame_takes_only_plain_data_frames() {
        let mut d = MessageDeflater::new(1);
        let text = "x".repeat(300);
        let mut frame = Vec::new();
        crate::proto::frame::encode_frame_into(&mut frame, OpCode::Text, true, text.as_bytes());
        let out = d.deflate_frame(&frame, true).expect("compressible");
        assert_eq!(out[0], 0x80 | 0x40 | 0x1);
        let mut ping = Vec::new();
        crate::proto::frame::encode_frame_into(
            &mut ping,
            OpCode::Ping,
            true,
            &text.as_bytes()[..100],
        );
        assert_eq!(d.deflate_frame(&ping, true), None);
        let mut fragment = Vec::new();
        crate::proto::frame::encode_frame_into(&mut fragment, OpCode::Text, false, text.as_bytes());
        assert_eq!(d.deflate_frame(&fragment, true), None);
        assert_eq!(d.deflate_frame(&[0x81], true), None);
    }

    #[test]
    fn random_bytes_stay_uncompressed() {
        let mut d = MessageDeflater::new(1);
        let mut rng = fastrand::Rng::with_seed(7);
        let payload: Vec<u8> = (0..4096).map(|_| rng.u8(..)).collect();
        let mut out = Vec::new();
        assert!(!d.encode_frame_into(&mut out, OpCode::Binary, &payload, true));
        assert!(out.is_empty());
    }
}
