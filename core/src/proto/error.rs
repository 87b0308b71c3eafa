//! Protocol errors: one variant per rule of RFC 6455 that a peer can break.
//!
//! Every variant knows the close code it must be answered with
//! ([`ProtocolError::close_code`]), so the runtime never has to map errors
//! itself. The type is `Copy` and formatting it does not allocate until the
//! caller asks for a `String`, so a hostile peer hammering the error path costs
//! nothing. Display texts are short on purpose: they become the close reason,
//! which RFC 6455 §5.5 limits to 123 bytes (a test checks the longest one).
//!
//! Only faults of the peer live here. Our own misuse (say, encoding a close
//! code that may not be sent) is a `debug_assert!`, and IO failures belong to
//! the runtime's error types.

use super::close::CloseCode;

/// A rule of RFC 6455 broken by the peer. The connection must be closed with
/// [`ProtocolError::close_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// §5.1: a client must mask every frame it sends.
    #[error("unmasked frame from client")]
    UnmaskedFrame,
    /// §5.1: a server must not mask the frames it sends.
    #[error("masked frame from server")]
    MaskedFrameFromServer,
    /// §5.2: RSV1-3 must be 0 unless an extension defining them was negotiated.
    #[error("reserved bits set")]
    ReservedBits,
    /// §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// §5.5: control frames carry at most 125 bytes of payload.
    #[error("control frame of {0} bytes")]
    ControlFrameTooLong(u64),
    /// §5.5: control frames must not be fragmented.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// §5.4: a continuation frame with no fragmented message to continue.
    #[error("continuation frame without a message")]
    UnexpectedContinuation,
    /// §5.4: a new text or binary frame while a fragmented message is unfinished.
    #[error("expected a continuation frame")]
    ExpectedContinuation,
    /// §5.2: the most significant bit of a 64-bit payload length must be 0.
    #[error("payload length has its top bit set")]
    LengthMsbSet,
    /// A frame declared a payload longer than our configured limit (§10.4).
    /// The text names the configuration key the limit comes from, so the
    /// peer's close reason says which knob refused it.
    #[error("frame of {len} bytes over limits.max_frame_size = {max}")]
    FrameTooLarge { len: u64, max: u64 },
    /// A message (all fragments so far plus the next frame) would exceed our
    /// configured limit (§10.4).
    #[error("message of {len} bytes over limits.max_message_size = {max}")]
    MessageTooLarge { len: u64, max: u64 },
    /// §8.1: a text message must be valid UTF-8.
    #[error("invalid UTF-8 in text message")]
    InvalidUtf8,
    /// §7.4: the close code may not be sent on the wire.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// §5.5.1: a close payload is empty or starts with a 2-byte code; 1 byte is neither.
    #[error("close frame with a 1-byte payload")]
    CloseFrameOneByte,
    /// §5.5.1: the close reason must be valid UTF-8.
    #[error("invalid UTF-8 in close reason")]
    InvalidCloseReason,
    /// RFC 7692 §6.1: RSV1 marks a compressed message on its first frame
    /// only; set on a continuation frame it is an error.
    #[error("RSV1 set on a continuation frame")]
    CompressedContinuation,
    /// RFC 7692 §6.1: control frames are never compressed.
    #[error("RSV1 set on a control frame")]
    CompressedControlFrame,
    /// RFC 7692 §6.2: the compressed payload is not valid raw deflate.
    #[error("invalid compressed data")]
    InvalidCompressedData,
    /// A compressed message inflated past our configured limit (§10.4 of
    /// RFC 6455, applied to the inflated size as it grows).
    #[error("inflated message over limits.max_message_size = {max}")]
    InflatedTooLarge { max: u64 },
}

impl ProtocolError {
    /// The close code to answer this error with (RFC 6455 §7.4.1): 1007 for
    /// data that is not what its type says (bad UTF-8, bad deflate data), 1009 for size limits,
    /// 1002 for every framing rule.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCloseReason | Self::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            Self::FrameTooLarge { .. }
            | Self::MessageTooLarge { .. }
            | Self::InflatedTooLarge { .. } => CloseCode::TOO_BIG,
            Self::UnmaskedFrame
            | Self::MaskedFrameFromServer
            | Self::ReservedBits
            | Self::ReservedOpcode(_)
            | Self::ControlFrameTooLong(_)
            | Self::FragmentedControlFrame
            | Self::UnexpectedContinuation
            | Self::ExpectedContinuation
            | Self::LengthMsbSet
            | Self::InvalidCloseCode(_)
            | Self::CloseFrameOneByte
            | Self::CompressedContinuation
            | Self::CompressedControlFrame => CloseCode::PROTOCOL_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant, with the widest values its fields can hold.
    const ALL: [ProtocolError; 19] = [
        ProtocolError::UnmaskedFrame,
        ProtocolError::MaskedFrameFromServer,
        ProtocolError::ReservedBits,
        ProtocolError::ReservedOpcode(0xFF),
        ProtocolError::ControlFrameTooLong(u64::MAX),
        ProtocolError::FragmentedControlFrame,
        ProtocolError::UnexpectedContinuation,
        ProtocolError::ExpectedContinuation,
        ProtocolError::LengthMsbSet,
        ProtocolError::FrameTooLarge {
            len: u64::MAX,
            max: u64::MAX,
        },
        ProtocolError::MessageTooLarge {
            len: u64::MAX,
            max: u64::MAX,
        },
        ProtocolError::InvalidUtf8,
        ProtocolError::InvalidCloseCode(u16::MAX),
        ProtocolError::CloseFrameOneByte,
        ProtocolError::InvalidCloseReason,
        ProtocolError::CompressedContinuation,
        ProtocolError::CompressedControlFrame,
        ProtocolError::InvalidCompressedData,
        ProtocolError::InflatedTooLarge { max: u64::MAX },
    ];

    #[test]
    fn display_fits_in_a_close_reason() {
        for err in ALL {
            let text = err.to_string();
            assert!(!text.is_empty());
            assert!(
                text.len() <= 123,
                "{err:?} displays as {} bytes",
                text.len()
            );
        }
    }

    #[test]
    fn close_codes_follow_rfc_7_4_1() {
        for err in ALL {
            let expected = match err {
                ProtocolError::InvalidUtf8
                | ProtocolError::InvalidCloseReason
                | ProtocolError::InvalidCompressedData => 1007,
                ProtocolError::FrameTooLarge { .. }
                | ProtocolError::MessageTooLarge { .. }
                | ProtocolError::InflatedTooLarge { .. } => 1009,
                _ => 1002,
            };
            assert_eq!(err.close_code(), CloseCode(expected), "{err:?}");
            assert!(err.close_code().is_sendable());
        }
    }

    #[test]
    fn display_texts() {
        assert_eq!(
            ProtocolError::ReservedOpcode(3).to_string(),
            "reserved opcode 0x3"
        );
        assert_eq!(
            ProtocolError::FrameTooLarge {
                len: 70000,
                max: 65536
            }
            .to_string(),
            "frame of 70000 bytes over limits.max_frame_size = 65536"
        );
        assert_eq!(
            ProtocolError::InvalidCloseCode(1005).to_string(),
            "invalid close code 1005"
        );
    }
}
