//! Incremental UTF-8 validation of text messages that arrive in pieces.
//!
//! A text message may be split anywhere: across reads, across fragments, in
//! the middle of a multi-byte character. [`Utf8Validator`] is fed the pieces
//! in order and guarantees:
//! - **Fail fast.** `feed` returns [`ProtocolError::InvalidUtf8`] on the call
//!   that delivers the first byte after which no continuation could make the
//!   stream valid, even when that byte completes a sequence begun in an earlier
//!   call (`ED` then `A0` fails on the `A0`). Autobahn's 6.x cases check this.
//! - **Exactly UTF-8 as `str` defines it**: overlong forms, surrogates
//!   (`ED A0..BF`), code points above U+10FFFF (`F4 90..`, `F5..FF`) and stray
//!   continuation bytes are rejected.
//! - `finish` rejects a stream that ends inside a character.
//!
//! The bulk of every piece goes through `std::str::from_utf8`, which has an
//! ASCII fast path and documents how it reports a truncated last character
//! (`Utf8Error::error_len() == None`); only the at most 3 bytes of a character
//! split between pieces are checked here, byte by byte. The state is those
//! bytes: 4 bytes in all.

use super::error::ProtocolError;

/// Validates a UTF-8 stream fed in arbitrary pieces. See the module doc.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// The first bytes of a character cut off at the end of the last piece:
    /// always a valid prefix of some character, never a whole one.
    pending: [u8; 3],
    /// How many bytes of `pending` are in use (0 when on a char boundary).
    pending_len: u8,
}

impl Utf8Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the next piece of the stream. On error the validator's state
    /// is unspecified; call [`reset`](Self::reset) before reusing it.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        let rest = self.complete_pending(bytes)?;
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            // The piece ends inside a character whose bytes so far are valid:
            // keep them for the next piece.
            Err(err) if err.error_len().is_none() => {
                let tail = &rest[err.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }

    /// Ends the stream: it is valid only if it did not stop inside a character.
    /// Leaves the validator ready for the next stream either way.
    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        let complete = self.pending_len == 0;
        self.reset();
        if complete {
            Ok(())
        } else {
            Err(ProtocolError::InvalidUtf8)
        }
    }

    /// Forgets any partial character, to start a new stream.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }

    /// Feeds the front of `bytes` into the pending partial character, checking
    /// each byte as it comes. Returns the bytes after that character; empty if
    /// it is still incomplete.
    fn complete_pending<'b>(&mut self, bytes: &'b [u8]) -> Result<&'b [u8], ProtocolError> {
        let have = usize::from(self.pending_len);
        if have == 0 {
            return Ok(bytes);
        }
        let lead = self.pending[0];
        let width = char_width(lead);
        let mut used = 0;
        for (n, &byte) in (have..width).zip(bytes) {
            // Only the second byte has a lead-dependent range; it is what rules
            // out overlongs, surrogates and code points above U+10FFFF.
            let allowed = if n == 1 {
                second_byte_range(lead)
            } else {
                0x80..=0xBF
            };
            if !allowed.contains(&byte) {
                return Err(ProtocolError::InvalidUtf8);
            }
            if n < 3 {
                self.pending[n] = byte;
            }
            used += 1;
        }
        if have + used < width {
            // `bytes` ran out first; all of it went into `pending`.
            self.pending_len = (have + used) as u8;
            Ok(&[])
        } else {
            self.pending_len = 0;
            Ok(&bytes[used..])
        }
    }
}

/// Length of the character a lead byte starts. Only called on the first byte
/// of a pending partial character, which `str::from_utf8` has already checked
/// to be a multi-byte lead (0xC2..=0xF4).
fn char_width(lead: u8) -> usize {
    match lead {
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 2,
    }
}

/// Allowed range of the byte after `lead` (Unicode Table 3-7, "Well-Formed
/// UTF-8 Byte Sequences").
fn second_byte_range(lead: u8) -> std::ops::RangeInclusive<u8> {
    match lead {
        0xE0 => 0xA0..=0xBF, // below: overlong 3-byte forms
        0xED => 0x80..=0x9F, // above: UTF-16 surrogates D800..DFFF
        0xF0 => 0x90..=0xBF, // below: overlong 4-byte forms
        0xF4 => 0x80..=0x8F, // above: beyond U+10FFFF
        _ => 0x80..=0xBF,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index of the first byte after which `bytes` cannot be the start of any
    /// valid UTF-8 string, per `std`; `None` if every prefix is viable.
    fn first_impossible_byte(bytes: &[u8]) -> Option<usize> {
        (0..bytes.len()).find(
            |&i| matches!(std::str::from_utf8(&bytes[..=i]), Err(e) if e.error_len().is_some()),
        )
    }

    /// Feeds `bytes` one byte per call; returns the index of the byte whose
    /// call failed, or the result of `finish`.
    fn feed_bytewise(bytes: &[u8]) -> Result<(), (usize, ProtocolError)> {
        let mut v = Utf8Validator::new();
        for (i, b) in bytes.iter().enumerate() {
            v.feed(std::slice::from_ref(b)).map_err(|e| (i, e))?;
        }
        v.finish().map_err(|e| (bytes.len(), e))
    }

    fn feed_split(bytes: &[u8], cuts: &[usize]) -> Result<(), ProtocolError> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &cut in cuts.iter().chain([&bytes.len()]) {
            v.feed(&bytes[start..cut])?;
            start = cut;
        }
        v.finish()
    }

    /// Checks `bytes` every way it can be fed against `std::str::from_utf8`,
    /// including the exact byte at which it must fail.
    fn check(bytes: &[u8]) {
        let valid = std::str::from_utf8(bytes).is_ok();
        let mut whole = Utf8Validator::new();
        let whole_result = whole.feed(bytes).and_then(|()| whole.finish());
        assert_eq!(whole_result.is_ok(), valid, "whole {bytes:x?}");

        let expected_fail_at = first_impossible_byte(bytes);
        match feed_bytewise(bytes) {
            Ok(()) => assert!(valid, "bytewise accepted {bytes:x?}"),
            Err((at, err)) => {
                assert_eq!(err, ProtocolError::InvalidUtf8);
                assert!(!valid, "bytewise rejected valid {bytes:x?}");
                // Fails on the impossible byte, or at finish if there is none.
                assert_eq!(at, expected_fail_at.unwrap_or(bytes.len()), "{bytes:x?}");
            }
        }
        for cut in 0..=bytes.len() {
            assert_eq!(
                feed_split(bytes, &[cut]).is_ok(),
                valid,
                "cut {cut} {bytes:x?}"
            );
        }
    }

    #[test]
    fn valid_strings() {
        for s in [
            "",
            "a",
            "Hello-µ@ßöäüàá-UTF-8!!",
            "κόσμε",
            "\u{7f}\u{80}\u{7ff}\u{800}\u{d7ff}\u{e000}\u{fffd}\u{ffff}\u{10000}\u{10ffff}",
            "𝄞 music, € euro, 日本語",
        ] {
            check(s.as_bytes());
            assert_eq!(feed_bytewise(s.as_bytes()), Ok(()));
        }
    }

    #[test]
    fn invalid_sequences_fail_on_the_first_impossible_byte() {
        // (bytes, index of the byte on which a byte-at-a-time feed must fail)
        let cases: [(&[u8], usize); 22] = [
            (b"\x80", 0), // stray continuation
            (b"a\xbf", 1),
            (b"\xc0\x80", 0), // C0, C1 can only start overlongs
            (b"\xc1\xbf", 0),
            (b"\xe0\x80\x80", 1), // overlong 3-byte
            (b"\xe0\x9f\xbf", 1),
            (b"\xf0\x80\x80\x80", 1), // overlong 4-byte
            (b"\xf0\x8f\xbf\xbf", 1),
            (b"\xed\xa0\x80", 1), // surrogates
            (b"\xed\xbf\xbf", 1),
            (b"\xf4\x90\x80\x80", 1), // above U+10FFFF
            (b"\xf5\x80\x80\x80", 0),
            (b"\xf8\x88\x80\x80\x80", 0), // old 5- and 6-byte forms
            (b"\xfc\x84\x80\x80\x80\x80", 0),
            (b"\xfe", 0),
            (b"\xff", 0),
            (b"\xce\x41", 1), // lead byte followed by ASCII
            (b"\xe2\x82\x41", 2),
            (b"\xf0\x9f\x98\x41", 3),
            (b"\xce\xce\xba", 1), // lead byte followed by a lead byte
            // Autobahn 6.4.x: valid "κόσμε" then a surrogate; fails at \xa0.
            (
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
                12,
            ),
            (
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited",
                12,
            ),
        ];
        for (bytes, at) in cases {
            assert_eq!(first_impossible_byte(bytes), Some(at), "oracle {bytes:x?}");
            assert_eq!(
                feed_bytewise(bytes),
                Err((at, ProtocolError::InvalidUtf8)),
                "{bytes:x?}"
            );
            check(bytes);
        }
    }

    #[test]
    fn truncated_character_fails_only_at_finish() {
        for bytes in [
            &b"\xce"[..],
            b"\xe2\x82",
            b"\xf0\x9f\x98",
            b"ok\xf4\x8f\xbf",
        ] {
            let mut v = Utf8Validator::new();
            assert_eq!(v.feed(bytes), Ok(()), "{bytes:x?}");
            assert_eq!(v.finish(), Err(ProtocolError::InvalidUtf8), "{bytes:x?}");
            // finish resets: the validator is usable for the next message.
            assert_eq!(v.feed(b"next"), Ok(()));
            assert_eq!(v.finish(), Ok(()));
        }
    }

    #[test]
    fn character_split_across_three_pieces() {
        // U+1D11E MUSICAL SYMBOL G CLEF = F0 9D 84 9E
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"a\xf0"), Ok(()));
        assert_eq!(v.feed(b"\x9d"), Ok(()));
        assert_eq!(v.feed(b""), Ok(()));
        assert_eq!(v.feed(b"\x84"), Ok(()));
        assert_eq!(v.feed(b"\x9eb\xce"), Ok(()));
        assert_eq!(v.feed(b"\xba"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn pending_character_completed_by_an_invalid_byte() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xed"), Ok(()));
        assert_eq!(v.feed(b"\xa0\x80"), Err(ProtocolError::InvalidUtf8));

        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf4\x8f"), Ok(()));
        assert_eq!(v.feed(b"\xbf\xbf\x41"), Ok(()), "U+10FFFF then A");
        assert_eq!(v.finish(), Ok(()));

        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xe2\x82"), Ok(()));
        assert_eq!(
            v.feed(b"\xac\x80"),
            Err(ProtocolError::InvalidUtf8),
            "euro then stray"
        );
    }

    #[test]
    fn reset_forgets_a_partial_character() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xe2\x82"), Ok(()));
        v.reset();
        assert_eq!(v.feed(b"plain"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn every_one_and_two_byte_sequence_agrees_with_std() {
        for a in 0..=255u8 {
            check(&[a]);
            for b in 0..=255u8 {
                check(&[a, b]);
            }
        }
    }

    #[test]
    fn every_multibyte_lead_with_every_second_byte_agrees_with_std() {
        // Third and fourth bytes: the edges of the continuation range and
        // one byte on each side of it.
        let edges = [0x7F, 0x80, 0xBF, 0xC0];
        for a in 0xC0..=0xFFu8 {
            for b in 0..=255u8 {
                for c in edges {
                    check(&[a, b, c]);
                    for d in edges {
                        check(&[a, b, c, d]);
                        check(&[b'x', a, b, c, d, b'y']);
                    }
                }
            }
        }
    }

    #[test]
    fn random_streams_agree_with_std() {
        // xorshift: deterministic, no dependency.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: [&[u8]; 10] = [
            b"a",
            b"\xce\xba",
            b"\xe2\x82\xac",
            b"\xf0\x9f\x98\x80",
            b"\xf4\x8f\xbf\xbf",
            b"\xed\x9f\xbf",
            b"\x80",
            b"\xed\xa0",
            b"\xe0\x9f",
            b"\xf4\x90",
        ];
        for _ in 0..3000 {
            let mut bytes = Vec::new();
            for _ in 0..next() % 12 {
                // Mostly valid characters, sometimes a broken one.
                let pick = if next() % 8 == 0 {
                    next() % 10
                } else {
                    next() % 6
                };
                bytes.extend_from_slice(alphabet[pick as usize]);
            }
            let valid = std::str::from_utf8(&bytes).is_ok();
            let mut cuts: Vec<usize> = (0..next() % 5)
                .map(|_| (next() as usize) % (bytes.len() + 1))
                .collect();
            cuts.sort_unstable();
            assert_eq!(
                feed_split(&bytes, &cuts).is_ok(),
                valid,
                "{bytes:x?} cuts {cuts:?}"
            );
            match feed_bytewise(&bytes) {
                Ok(()) => assert!(valid),
                Err((at, _)) => {
                    assert_eq!(at, first_impossible_byte(&bytes).unwrap_or(bytes.len()))
                }
            }
        }
    }

    #[test]
    fn state_is_small() {
        assert!(std::mem::size_of::<Utf8Validator>() <= 4);
    }
}
