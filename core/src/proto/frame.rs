//! Frame headers (RFC 6455 §5.2): opcodes, header parse/encode, frame encoders.
//!
//! ```text
//!  byte 0: FIN RSV1 RSV2 RSV3 opcode(4)
//!  byte 1: MASK len(7)              len 0..=125 is the length,
//!  [2 or 8 bytes big-endian length]  126: a u16 follows, 127: a u64 follows
//!  [4 bytes masking key]             present iff MASK
//! ```
//!
//! Guarantees:
//! - [`FrameHeader::parse`] is purely syntactic: it returns `Ok(None)` until
//!   the whole header (at most [`MAX_HEADER_LEN`] bytes) is there, and fails
//!   only on what cannot be represented: a reserved opcode, or a 64-bit length
//!   with its top bit set. Policy (masking direction, RSV bits, control-frame
//!   rules, size limits) is the decoder's, because it depends on the role and
//!   on negotiated extensions.
//! - Non-minimal length encodings (a 5-byte payload declared with the 16-bit
//!   form) are accepted, as most servers do; encoders always write the minimal
//!   form.
//! - The encoders append to a caller-owned `Vec` and reserve once;
//!   [`FrameHeader::encode`] builds a header on the stack, for callers that
//!   place it themselves (one copy, no allocation).

use super::close::{encode_close_payload_into, CloseCode};
use super::error::ProtocolError;
use super::mask::apply_mask;

/// The longest header: 2 fixed bytes, an 8-byte length and a 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

/// RSV1 in [`FrameHeader::rsv`] (used by permessage-deflate, RFC 7692).
pub const RSV1: u8 = 0b100;
/// RSV2 in [`FrameHeader::rsv`].
pub const RSV2: u8 = 0b010;
/// RSV3 in [`FrameHeader::rsv`].
pub const RSV3: u8 = 0b001;

/// The opcodes RFC 6455 defines; every other value is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl TryFrom<u8> for OpCode {
    type Error = ProtocolError;

    /// The 4-bit opcode field. 0x3-0x7, 0xB-0xF (and anything wider than 4
    /// bits) are [`ProtocolError::ReservedOpcode`].
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0x0 => Ok(Self::Continuation),
            0x1 => Ok(Self::Text),
            0x2 => Ok(Self::Binary),
            0x8 => Ok(Self::Close),
            0x9 => Ok(Self::Ping),
            0xA => Ok(Self::Pong),
            other => Err(ProtocolError::ReservedOpcode(other)),
        }
    }
}

impl OpCode {
    /// Close, ping and pong: at most 125 bytes, never fragmented, and allowed
    /// between the fragments of a message (§5.5).
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }

    /// The wire value of the opcode field.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1-3 as the low 3 bits: [`RSV1`] `0b100`, [`RSV2`] `0b010`, [`RSV3`] `0b001`.
    pub rsv: u8,
    pub opcode: OpCode,
    /// The masking key, present iff the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// Payload length; below 2^63 when parsed (§5.2).
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the front of `buf`. `Ok(None)` means more bytes
    /// are needed; nothing is consumed then. On success, returns the header
    /// and its length in bytes (2..=14); the payload follows it.
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let (b0, b1) = match buf {
            [b0, b1, ..] => (*b0, *b1),
            _ => return Ok(None),
        };
        let opcode = OpCode::try_from(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let (length_bytes, short_len) = match b1 & 0x7F {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        let header_len = 2 + length_bytes + if masked { 4 } else { 0 };
        let Some(header) = buf.get(..header_len) else {
            return Ok(None);
        };
        let payload_len = match short_len {
            Some(n) => n,
            None => {
                let mut be = [0u8; 8];
                be[8 - length_bytes..].copy_from_slice(&header[2..2 + length_bytes]);
                u64::from_be_bytes(be)
            }
        };
        if payload_len >> 63 != 0 {
            return Err(ProtocolError::LengthMsbSet);
        }
        let mask = masked.then(|| {
            let at = 2 + length_bytes;
            [header[at], header[at + 1], header[at + 2], header[at + 3]]
        });
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0b111,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, header_len)))
    }

    /// Encodes the header in minimal-length form on the stack: the bytes are
    /// built in registers and copied out once by the caller, rather than
    /// appended to a `Vec` piece by piece (each append checks capacity).
    /// `rsv` above 3 bits and a length of 2^63 or more are caller bugs (debug
    /// assertions).
    #[inline]
    pub fn encode(&self) -> HeaderBytes {
        debug_assert!(self.rsv <= 0b111, "rsv is 3 bits");
        debug_assert!(
            self.payload_len >> 63 == 0,
            "payload length must be below 2^63"
        );
        // Byte i of the header is bits 8*i.. of one u128, written out with
        // `to_le_bytes`: built with shifts in registers, not byte by byte in
        // memory (small stores read back as one wide load stall the CPU).
        let b0 = (u8::from(self.fin) << 7) | ((self.rsv & 0b111) << 4) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        // The key's bytes in wire order; zero (and not counted) when absent.
        let key = u128::from(self.mask.map_or(0, u32::from_le_bytes));
        let len = self.payload_len;
        let (wire, length_end) = if len <= 125 {
            (u128::from(mask_bit | len as u8) << 8 | key << 16, 2)
        } else if let Ok(len16) = u16::try_from(len) {
            let be = u128::from(u16::from_le_bytes(len16.to_be_bytes()));
            (u128::from(mask_bit | 126) << 8 | be << 16 | key << 32, 4)
        } else {
            let be = u128::from(u64::from_le_bytes(len.to_be_bytes()));
            (u128::from(mask_bit | 127) << 8 | be << 16 | key << 80, 10)
        };
        let header_len = length_end + if self.mask.is_some() { 4 } else { 0 };
        HeaderBytes {
            buf: (wire | u128::from(b0)).to_le_bytes(),
            len: header_len,
        }
    }

    /// Appends the header in minimal-length form. Written piece by piece
    /// rather than as one copy of [`FrameHeader::encode`]: appending a
    /// variable-length slice to a `Vec` costs a `memcpy` call, and measured
    /// slower (`header_encode` bench) than these fixed-size appends.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        debug_assert!(self.rsv <= 0b111, "rsv is 3 bits");
        debug_assert!(
            self.payload_len >> 63 == 0,
            "payload length must be below 2^63"
        );
        let b0 = (u8::from(self.fin) << 7) | ((self.rsv & 0b111) << 4) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let len = self.payload_len;
        if len <= 125 {
            out.extend_from_slice(&[b0, mask_bit | len as u8]);
        } else if let Ok(len16) = u16::try_from(len) {
            out.extend_from_slice(&[b0, mask_bit | 126]);
            out.extend_from_slice(&len16.to_be_bytes());
        } else {
            out.extend_from_slice(&[b0, mask_bit | 127]);
            out.extend_from_slice(&len.to_be_bytes());
        }
        if let Some(mask) = self.mask {
            out.extend_from_slice(&mask);
        }
    }
}

/// An encoded frame header: [`FrameHeader::encode`]'s output, 2..=14 bytes
/// kept inline so that encoding allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderBytes {
    /// The header, then zeros: [`MAX_HEADER_LEN`] rounded up to a whole
    /// `u128`, so it is built in two registers and copied with two stores.
    buf: [u8; 16],
    /// How many bytes of `buf` are the header.
    len: u8,
}

impl HeaderBytes {
    /// The header's wire bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl AsRef<[u8]> for HeaderBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Length of the minimal header for a payload of `payload_len` bytes.
pub fn header_len(payload_len: u64, masked: bool) -> usize {
    let length_bytes = match payload_len {
        0..=125 => 0,
        126..=0xFFFF => 2,
        _ => 8,
    };
    2 + length_bytes + if masked { 4 } else { 0 }
}

/// Appends an unmasked frame (server to client): header, then `payload`.
pub fn encode_frame_into(out: &mut Vec<u8>, opcode: OpCode, fin: bool, payload: &[u8]) {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    };
    out.reserve(header_len(header.payload_len, false) + payload.len());
    header.encode_into(out);
    out.extend_from_slice(payload);
}

/// Appends a masked frame (client to server; the load tool and tests):
/// header with `mask`, then `payload` masked with it.
pub fn encode_masked_frame_into(
    out: &mut Vec<u8>,
    opcode: OpCode,
    fin: bool,
    mask: [u8; 4],
    payload: &[u8],
) {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask: Some(mask),
        payload_len: payload.len() as u64,
    };
    out.reserve(header_len(header.payload_len, true) + payload.len());
    header.encode_into(out);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask, 0);
}

/// Appends an unmasked close frame carrying `code` and `reason` (reason cut
/// to 123 bytes on a char boundary; [`CloseCode::NO_STATUS`] gives an empty
/// close frame). See [`encode_close_payload_into`].
pub fn encode_close_frame_into(out: &mut Vec<u8>, code: CloseCode, reason: &str) {
    // A close payload is at most 125 bytes, so the header is always the
    // 2-byte form: write it with a zero length and patch the length in.
    let start = out.len();
    out.reserve(2 + 125);
    out.extend_from_slice(&[0x80 | OpCode::Close.as_u8(), 0]);
    encode_close_payload_into(out, code, reason);
    let payload_len = out.len() - start - 2;
    debug_assert!(payload_len <= 125);
    out[start + 1] = payload_len as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: OpCode, fin: bool, mask: Option<[u8; 4]>, payload_len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask,
            payload_len,
        }
    }

    fn parse_ok(buf: &[u8]) -> (FrameHeader, usize) {
        FrameHeader::parse(buf)
            .expect("valid header")
            .expect("complete header")
    }

    /// Every strict prefix of a header is "need more bytes".
    fn assert_prefixes_incomplete(wire: &[u8], header_len: usize) {
        for cut in 0..header_len {
            assert_eq!(
                FrameHeader::parse(&wire[..cut]),
                Ok(None),
                "prefix of {cut} bytes"
            );
        }
    }

    #[test]
    fn opcodes_round_trip_and_reserved_ones_fail() {
        for value in 0..=255u8 {
            match OpCode::try_from(value) {
                Ok(op) => {
                    assert_eq!(op.as_u8(), value);
                    assert_eq!(op.is_control(), value >= 8);
                }
                Err(err) => {
                    assert!(!matches!(value, 0..=2 | 8..=10), "{value}");
                    assert_eq!(err, ProtocolError::ReservedOpcode(value));
                }
            }
        }
        assert!(!OpCode::Continuation.is_control());
        assert!(OpCode::Ping.is_control());
    }

    #[test]
    fn rfc_examples_parse() {
        // RFC 6455 §5.7, single-frame unmasked text "Hello".
        let wire = b"\x81\x05\x48\x65\x6c\x6c\x6f";
        assert_eq!(parse_ok(wire), (header(OpCode::Text, true, None, 5), 2));
        // Masked "Hello".
        let wire = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
        assert_eq!(
            parse_ok(wire),
            (
                header(OpCode::Text, true, Some([0x37, 0xfa, 0x21, 0x3d]), 5),
                6
            )
        );
        assert_prefixes_incomplete(wire, 6);
        // First fragment "Hel", then final fragment "lo".
        assert_eq!(
            parse_ok(b"\x01\x03\x48\x65\x6c"),
            (header(OpCode::Text, false, None, 3), 2)
        );
        assert_eq!(
            parse_ok(b"\x80\x02\x6c\x6f"),
            (header(OpCode::Continuation, true, None, 2), 2)
        );
        // Unmasked ping "Hello", masked pong "Hello".
        assert_eq!(
            parse_ok(b"\x89\x05Hello"),
            (header(OpCode::Ping, true, None, 5), 2)
        );
        assert_eq!(
            parse_ok(b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
            (
                header(OpCode::Pong, true, Some([0x37, 0xfa, 0x21, 0x3d]), 5),
                6
            )
        );
        // 256 bytes binary, 64 KiB binary.
        assert_eq!(
            parse_ok(b"\x82\x7e\x01\x00"),
            (header(OpCode::Binary, true, None, 256), 4)
        );
        let wire = b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00";
        assert_eq!(
            parse_ok(wire),
            (header(OpCode::Binary, true, None, 65536), 10)
        );
        assert_prefixes_incomplete(wire, 10);
    }

    #[test]
    fn rfc_examples_encode() {
        let mut out = Vec::new();
        encode_frame_into(&mut out, OpCode::Text, true, b"Hello");
        assert_eq!(out, b"\x81\x05\x48\x65\x6c\x6c\x6f");

        let mut out = Vec::new();
        encode_masked_frame_into(
            &mut out,
            OpCode::Text,
            true,
            [0x37, 0xfa, 0x21, 0x3d],
            b"Hello",
        );
        assert_eq!(out, b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");

        let mut out = Vec::new();
        encode_frame_into(&mut out, OpCode::Text, false, b"Hel");
        encode_frame_into(&mut out, OpCode::Continuation, true, b"lo");
        assert_eq!(out, b"\x01\x03\x48\x65\x6c\x80\x02\x6c\x6f");

        let mut out = Vec::new();
        encode_frame_into(&mut out, OpCode::Ping, true, b"Hello");
        encode_masked_frame_into(
            &mut out,
            OpCode::Pong,
            true,
            [0x37, 0xfa, 0x21, 0x3d],
            b"Hello",
        );
        assert_eq!(
            out,
            b"\x89\x05Hello\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
        );

        let mut out = Vec::new();
        encode_frame_into(&mut out, OpCode::Binary, true, &[0xAB; 256]);
        assert_eq!(&out[..4], b"\x82\x7e\x01\x00");
        assert_eq!(out.len(), 4 + 256);

        let mut out = Vec::new();
        encode_frame_into(&mut out, OpCode::Binary, true, &vec![0xCD; 65536]);
        assert_eq!(&out[..10], b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00");
        assert_eq!(out.len(), 10 + 65536);
    }

    #[test]
    fn length_boundaries_round_trip() {
        // (payload length, expected unmasked header bytes)
        let cases: [(u64, &[u8]); 8] = [
            (0, b"\x82\x00"),
            (1, b"\x82\x01"),
            (125, b"\x82\x7d"),
            (126, b"\x82\x7e\x00\x7e"),
            (127, b"\x82\x7e\x00\x7f"),
            (65535, b"\x82\x7e\xff\xff"),
            (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
            ((1 << 63) - 1, b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff"),
        ];
        let mask = [0x01, 0x02, 0x03, 0x04];
        for (len, wire) in cases {
            let unmasked = header(OpCode::Binary, true, None, len);
            let mut out = Vec::new();
            unmasked.encode_into(&mut out);
            assert_eq!(out, wire, "encode {len}");
            assert_eq!(header_len(len, false), wire.len());
            assert_eq!(parse_ok(&out), (unmasked, wire.len()), "parse {len}");
            assert_prefixes_incomplete(&out, wire.len());

            // Masked: same bytes with the MASK bit set and the key appended.
            let masked = header(OpCode::Binary, true, Some(mask), len);
            let mut expected = wire.to_vec();
            expected[1] |= 0x80;
            expected.extend_from_slice(&mask);
            let mut out = Vec::new();
            masked.encode_into(&mut out);
            assert_eq!(out, expected, "encode masked {len}");
            assert_eq!(header_len(len, true), expected.len());
            assert_eq!(
                parse_ok(&out),
                (masked, expected.len()),
                "parse masked {len}"
            );
            assert_prefixes_incomplete(&out, expected.len());
        }
    }

    #[test]
    fn frame_encoders_at_length_boundaries() {
        for len in [0usize, 1, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            encode_frame_into(&mut out, OpCode::Binary, true, &payload);
            let (h, n) = parse_ok(&out);
            assert_eq!(h, header(OpCode::Binary, true, None, len as u64));
            assert_eq!(n, header_len(len as u64, false));
            assert_eq!(&out[n..], &payload[..]);

            let mask = [0x37, 0xfa, 0x21, 0x3d];
            let mut out = Vec::new();
            encode_masked_frame_into(&mut out, OpCode::Text, false, mask, &payload);
            let (h, n) = parse_ok(&out);
            assert_eq!(h, header(OpCode::Text, false, Some(mask), len as u64));
            let mut unmasked = out[n..].to_vec();
            apply_mask(&mut unmasked, mask, 0);
            assert_eq!(unmasked, payload);
        }
    }

    #[test]
    fn encode_on_the_stack_at_length_boundaries() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        // (header, expected wire bytes): every length form, masked and not,
        // with FIN/RSV/opcode bits that must not bleed into each other.
        let cases: [(FrameHeader, &[u8]); 10] = [
            (header(OpCode::Text, true, None, 0), b"\x81\x00"),
            (header(OpCode::Text, false, None, 125), b"\x01\x7d"),
            (
                header(OpCode::Continuation, true, None, 126),
                b"\x80\x7e\x00\x7e",
            ),
            (
                header(OpCode::Binary, true, None, 65535),
                b"\x82\x7e\xff\xff",
            ),
            (
                header(OpCode::Binary, true, None, 65536),
                b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00",
            ),
            (
                FrameHeader {
                    rsv: RSV1 | RSV3,
                    ..header(OpCode::Pong, true, Some(mask), 5)
                },
                b"\xda\x85\x37\xfa\x21\x3d",
            ),
            (
                header(OpCode::Ping, true, Some(mask), 125),
                b"\x89\xfd\x37\xfa\x21\x3d",
            ),
            (
                header(OpCode::Text, true, Some(mask), 126),
                b"\x81\xfe\x00\x7e\x37\xfa\x21\x3d",
            ),
            (
                header(OpCode::Close, true, Some(mask), 65536),
                b"\x88\xff\x00\x00\x00\x00\x00\x01\x00\x00\x37\xfa\x21\x3d",
            ),
            (
                header(OpCode::Binary, false, Some(mask), (1 << 63) - 1),
                b"\x02\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x37\xfa\x21\x3d",
            ),
        ];
        for (h, wire) in cases {
            let encoded = h.encode();
            assert_eq!(encoded.as_slice(), wire, "{h:?}");
            assert_eq!(encoded.as_ref(), wire);
            assert_eq!(wire.len(), header_len(h.payload_len, h.mask.is_some()));
            assert_eq!(parse_ok(wire), (h, wire.len()));
            // `encode_into` appends the same bytes after what is there, with
            // room to spare and with exactly enough room (where it must not
            // grow the Vec).
            for spare in [MAX_HEADER_LEN + 7, wire.len()] {
                let mut out = Vec::with_capacity(3 + spare);
                out.extend_from_slice(b"xyz");
                let capacity = out.capacity();
                h.encode_into(&mut out);
                assert_eq!(&out[..3], b"xyz");
                assert_eq!(&out[3..], wire, "{h:?} with {spare} spare bytes");
                assert_eq!(out.capacity(), capacity, "no regrowth");
            }
            let mut out = Vec::new();
            h.encode_into(&mut out);
            assert_eq!(out, wire, "into an empty Vec");
        }
    }

    #[test]
    fn length_with_top_bit_set_is_rejected() {
        let wire = b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00";
        assert_eq!(FrameHeader::parse(wire), Err(ProtocolError::LengthMsbSet));
        let wire = b"\x82\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x02\x03\x04";
        assert_eq!(FrameHeader::parse(wire), Err(ProtocolError::LengthMsbSet));
        // Still "need more" while the length bytes are incomplete.
        assert_eq!(FrameHeader::parse(&wire[..9]), Ok(None));
    }

    #[test]
    fn non_minimal_lengths_are_accepted() {
        // 5 bytes declared with the 16-bit and with the 64-bit form.
        assert_eq!(
            parse_ok(b"\x81\x7e\x00\x05"),
            (header(OpCode::Text, true, None, 5), 4)
        );
        assert_eq!(
            parse_ok(b"\x81\x7f\x00\x00\x00\x00\x00\x00\x00\x05"),
            (header(OpCode::Text, true, None, 5), 10)
        );
    }

    #[test]
    fn reserved_opcodes_are_rejected() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                FrameHeader::parse(&[0x80 | op, 0x00]),
                Err(ProtocolError::ReservedOpcode(op)),
                "{op:#x}"
            );
        }
    }

    #[test]
    fn rsv_bits_and_fin_are_reported() {
        let (h, _) = parse_ok(b"\xc1\x00");
        assert_eq!((h.fin, h.rsv), (true, RSV1));
        let (h, _) = parse_ok(b"\x21\x00");
        assert_eq!((h.fin, h.rsv), (false, RSV2));
        let (h, _) = parse_ok(b"\x11\x00");
        assert_eq!((h.fin, h.rsv), (false, RSV3));
        let (h, _) = parse_ok(b"\xf2\x00");
        assert_eq!((h.fin, h.rsv, h.opcode), (true, 0b111, OpCode::Binary));

        let mut out = Vec::new();
        FrameHeader {
            rsv: RSV1,
            ..header(OpCode::Text, true, None, 3)
        }
        .encode_into(&mut out);
        assert_eq!(out, b"\xc1\x03");
    }

    #[test]
    fn parse_ignores_bytes_after_the_header() {
        let (h, n) = parse_ok(b"\x82\x02\xaa\xbb\x81\x00");
        assert_eq!((h.payload_len, n), (2, 2));
    }

    #[test]
    fn header_len_values() {
        assert_eq!(header_len(0, false), 2);
        assert_eq!(header_len(125, false), 2);
        assert_eq!(header_len(126, false), 4);
        assert_eq!(header_len(65535, false), 4);
        assert_eq!(header_len(65536, false), 10);
        assert_eq!(header_len(u64::MAX >> 1, true), MAX_HEADER_LEN);
        assert_eq!(header_len(0, true), 6);
    }

    #[test]
    fn close_frames() {
        let mut out = Vec::new();
        encode_close_frame_into(&mut out, CloseCode::NORMAL, "bye");
        assert_eq!(out, b"\x88\x05\x03\xe8bye");

        let mut out = Vec::new();
        encode_close_frame_into(&mut out, CloseCode::PROTOCOL_ERROR, "");
        assert_eq!(out, b"\x88\x02\x03\xea");

        let mut out = Vec::new();
        encode_close_frame_into(&mut out, CloseCode::NO_STATUS, "dropped");
        assert_eq!(out, b"\x88\x00");

        // The longest reason is cut so the whole frame is 2 + 125 bytes.
        let mut out = b"queued".to_vec();
        encode_close_frame_into(&mut out, CloseCode::GOING_AWAY, &"z".repeat(500));
        assert_eq!(&out[..9], b"queued\x88\x7d\x03");
        assert_eq!(out.len(), 6 + 2 + 125);
    }
}
