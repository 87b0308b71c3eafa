//! The receiving side: a compressed message's payload in, the message out
//! (RFC 7692 §7.2.2), never past the message size limit.
//!
//! The limit is applied to the inflated bytes as they are produced: the
//! output buffer never grows past `max + 1` bytes, so a decompression bomb
//! costs at most the limit in memory and is refused as soon as it passes it,
//! not after it has been inflated whole.

use flate2::{Decompress, FlushDecompress, Status};

use super::compress::SYNC_TAIL;
use crate::proto::error::ProtocolError;

/// Smallest first allocation of the output buffer.
const MIN_OUT: usize = 1024;

/// An inflate stream and the buffer of the message it last inflated.
pub struct MessageInflater {
    decompress: Decompress,
    /// The inflated message; emptied and freed by the decoder once delivered.
    pub out: Vec<u8>,
}

impl std::fmt::Debug for MessageInflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageInflater")
            .field("out", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl Default for MessageInflater {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageInflater {
    /// A raw-inflate stream with a 15-bit window (it takes any smaller one).
    pub fn new() -> Self {
        Self {
            decompress: Decompress::new(false),
            out: Vec::new(),
        }
    }

    /// Starts the next message from an empty window (the peer uses no
    /// context takeover, or a new stream is wanted).
    pub fn reset(&mut self) {
        self.decompress.reset(false);
    }

    /// Inflates one whole message's `payload` (the sync tail appended here)
    /// into `out`, replacing what it held. Errors: `InflatedTooLarge` once
    /// more than `max` bytes come out, `InvalidCompressedData` for a stream
    /// that is not raw deflate or that ends (a final block) with input left.
    pub fn inflate_message(&mut self, payload: &[u8], max: u64) -> Result<(), ProtocolError> {
        self.out.clear();
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        self.feed(payload, max)?;
        self.feed(&SYNC_TAIL, max)
    }

    fn feed(&mut self, input: &[u8], max: usize) -> Result<(), ProtocolError> {
        let start_in = self.decompress.total_in();
        loop {
            let used = (self.decompress.total_in() - start_in) as usize;
            if self.out.len() == self.out.capacity() {
                // Grow by doubling, but never past one byte over the limit:
                // that byte is how a message over the limit is seen.
                let ceiling = max.saturating_add(1);
                let len = self.out.len();
                if len >= ceiling {
                    return Err(ProtocolError::InflatedTooLarge { max: max as u64 });
                }
                let target = (len * 2).max(MIN_OUT).max(input.len().saturating_mul(2));
                self.out.reserve_exact(target.min(ceiling) - len);
            }
            let before = (self.out.len(), self.decompress.total_in());
            let status = self
                .decompress
                .decompress_vec(&input[used..], &mut self.out, FlushDecompress::None)
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
            if self.out.len() > max {
                return Err(ProtocolError::InflatedTooLarge { max: max as u64 });
            }
            let used = (self.decompress.total_in() - start_in) as usize;
            match status {
                Status::StreamEnd => {
                    // A final block: fine only at the very end of the message.
                    if used < input.len() && input[used..] != SYNC_TAIL {
                        return Err(ProtocolError::InvalidCompressedData);
                    }
                    // Anything after a final block would start a new stream.
                    self.decompress.reset(false);
                    return Ok(());
                }
                Status::Ok | Status::BufError => {}
            }
            let room = self.out.len() < self.out.capacity();
            if used == input.len() && room {
                return Ok(());
            }
            if (self.out.len(), self.decompress.total_in()) == before && room {
                // No progress with input left and room to write: truncated
                // or broken data that inflate cannot go on with.
                return Err(ProtocolError::InvalidCompressedData);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::deflate::compress::MessageDeflater;
    use crate::proto::frame::{FrameHeader, OpCode};

    fn compressed(payload: &[u8]) -> Vec<u8> {
        let mut d = MessageDeflater::new(6);
        let mut out = Vec::new();
        assert!(d.encode_frame_into(&mut out, OpCode::Binary, payload, true));
        let (_, at) = FrameHeader::parse(&out).expect("ok").expect("whole");
        out.split_off(at)
    }

    #[test]
    fn rfc_7692_examples() {
        let mut z = MessageInflater::new();
        // §7.2.3.1: "Hello" with a fixed Huffman block.
        z.inflate_message(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100)
            .expect("valid");
        assert_eq!(z.out, b"Hello");
        // §7.2.3.3: "Hello" in a stored block.
        z.reset();
        z.inflate_message(
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o', 0x00,
            ],
            100,
        )
        .expect("valid");
        assert_eq!(z.out, b"Hello");
        // §7.2.3.2: the second "Hello" with context takeover refers back.
        z.reset();
        z.inflate_message(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100)
            .expect("valid");
        z.inflate_message(&[0xf2, 0x00, 0x11, 0x00, 0x00], 100)
            .expect("valid");
        assert_eq!(z.out, b"Hello");
        // §7.2.3.4: a final block (BFINAL set) inflates too.
        z.reset();
        z.inflate_message(&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100)
            .expect("valid");
        assert_eq!(z.out, b"Hello");
        // An empty message: one empty stored block's first byte.
        z.reset();
        z.inflate_message(&[0x00], 100).expect("valid");
        assert!(z.out.is_empty());
    }

    #[test]
    fn the_limit_is_exact_and_memory_stays_under_it() {
        let payload = vec![b'a'; 100_000];
        let packed = compressed(&payload);
        assert!(packed.len() < 1000);
        let mut z = MessageInflater::new();
        z.inflate_message(&packed, 100_000).expect("at the limit");
        assert_eq!(z.out, payload);
        let mut z = MessageInflater::new();
        assert_eq!(
            z.inflate_message(&packed, 99_999),
            Err(ProtocolError::InflatedTooLarge { max: 99_999 })
        );
        assert!(z.out.capacity() <= 100_000, "{}", z.out.capacity());
    }

    #[test]
    fn a_bomb_is_stopped_at_the_limit() {
        // 64 MiB of zeros compress to about 64 KiB; the limit is 1 MiB.
        let payload = vec![0u8; 64 << 20];
        let packed = compressed(&payload);
        let mut z = MessageInflater::new();
        assert_eq!(
            z.inflate_message(&packed, 1 << 20),
            Err(ProtocolError::InflatedTooLarge { max: 1 << 20 })
        );
        assert!(z.out.capacity() <= (1 << 20) + 1);
    }

    #[test]
    fn garbage_is_invalid_data() {
        let mut z = MessageInflater::new();
        // BTYPE 11 is reserved.
        assert_eq!(
            z.inflate_message(&[0xff, 0xff, 0xff], 100),
            Err(ProtocolError::InvalidCompressedData)
        );
        // Data after a final block.
        z.reset();
        assert_eq!(
            z.inflate_message(&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x12, 0x34], 100),
            Err(ProtocolError::InvalidCompressedData)
        );
    }
}
