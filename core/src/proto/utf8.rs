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
//! Each piece is cut in three: the end of a character left over from the
//! previous piece (checked here byte by byte), a body that ends on a character
//! boundary, and at most 3 bytes of a character that the piece cuts off. The
//! body, nearly all of the bytes, goes through `simdutf8::basic::from_utf8`
//! (SIMD picked at run time: AVX2, SSE4.2 or scalar), which is 5-20x faster
//! than `std::str::from_utf8` on text but only says valid or not. That answer
//! is enough: the body is followed either by nothing or by a byte that cannot
//! continue a character, so an invalid body can never become valid and fails
//! at once. The cut-off tail is checked by `std::str::from_utf8`, whose
//! `Utf8Error::error_len() == None` tells a viable prefix (kept for the next
//! piece) from an impossible one. So a valid stream is never scanned twice,
//! even when most pieces end inside a character. The state is the carried
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
        let (body, tail) = rest.split_at(cut_off_start(rest));
        // `body` ends at the end of the piece or before a byte that is not a
        // continuation byte, so if it is invalid no later piece can fix it.
        if simdutf8::basic::from_utf8(body).is_err() {
            return Err(ProtocolError::InvalidUtf8);
        }
        match std::str::from_utf8(tail) {
            Ok(_) => Ok(()),
            // The piece ends inside a character whose bytes so far are valid:
            // keep them for the next piece. `tail` starts with a lead byte, so
            // `valid_up_to` is 0 and all of it (at most 3 bytes) is kept.
            Err(err) if err.error_len().is_none() => {
                let tail = &tail[err.valid_up_to()..];
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

/// Where the character that `bytes` cuts off at its end starts: the index of
/// the last lead byte (0xC0..=0xFF) among the last 3 bytes when the character
/// it starts needs more bytes than remain; `bytes.len()` otherwise. Only the
/// last 3 bytes are looked at: a character cut off further back could not be
/// valid anyway (4 bytes at most), and the body check rejects it. The lead
/// need not be a valid one (0xC0, 0xF5..); the tail check rejects it.
fn cut_off_start(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for from_end in 1..=len.min(3) {
        let byte = bytes[len - from_end];
        if is_continuation(byte) {
            continue;
        }
        let width = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xFF => 4,
            _ => 1, // ASCII
        };
        return if width > from_end {
            len - from_end
        } else {
            len
        };
    }
    len
}

fn is_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

/// Length of the character a lead byte starts. Only called on the first byte
/// of a pending partial character, which `str::from_utf8` has already checked
/// to be a multi-byte lead (0xC2..=0xF4) in `feed`.
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

    /// A valid text of 1-, 2-, 3- and 4-byte characters, including the
    /// edges of each width, at least `min_len` bytes long. Past 64 bytes a
    /// body goes through simdutf8's SIMD code rather than its scalar fallback.
    fn mixed_text(min_len: usize) -> Vec<u8> {
        let chars =
            "a\u{7f}é\u{80}\u{7ff}€\u{800}\u{d7ff}\u{e000}\u{ffff}𝄞\u{10000}\u{10ffff}Z 日本";
        let mut text = String::new();
        while text.len() < min_len {
            text.push_str(chars);
        }
        text.into_bytes()
    }

    /// Feeds `bytes` cut at the (sorted) `cuts`; returns the index of the
    /// piece whose `feed` failed, `cuts.len() + 1` if `finish` failed, `None`
    /// if the stream was accepted.
    fn failing_piece(bytes: &[u8], cuts: &[usize]) -> Option<usize> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for (piece, &cut) in cuts.iter().chain([&bytes.len()]).enumerate() {
            if v.feed(&bytes[start..cut]).is_err() {
                return Some(piece);
            }
            start = cut;
        }
        v.finish().err().map(|_| cuts.len() + 1)
    }

    /// The piece on which a stream cut at `cuts` must fail, by `std`: the one
    /// holding the first impossible byte, else `finish` if the stream is
    /// invalid, else none.
    fn expected_failing_piece(bytes: &[u8], cuts: &[usize]) -> Option<usize> {
        match first_impossible_byte(bytes) {
            Some(at) => Some(cuts.iter().filter(|&&cut| cut <= at).count()),
            None if std::str::from_utf8(bytes).is_err() => Some(cuts.len() + 1),
            None => None,
        }
    }

    /// Every split of `bytes` into 2 pieces, and into 3 pieces with both cuts
    /// within `window` (empty pieces included), fails on the expected piece.
    fn check_every_split(bytes: &[u8], window: std::ops::Range<usize>) {
        for cut in 0..=bytes.len() {
            assert_eq!(
                failing_piece(bytes, &[cut]),
                expected_failing_piece(bytes, &[cut]),
                "cut {cut} {bytes:x?}"
            );
        }
        for first in window.clone() {
            for second in first..window.end {
                let cuts = [first, second];
                assert_eq!(
                    failing_piece(bytes, &cuts),
                    expected_failing_piece(bytes, &cuts),
                    "cuts {cuts:?} {bytes:x?}"
                );
            }
        }
    }

    #[test]
    fn mixed_text_split_into_two_and_three_pieces_at_every_cut() {
        for len in [40, 200] {
            let text = mixed_text(len);
            assert!(std::str::from_utf8(&text).is_ok());
            check_every_split(&text, 0..text.len() + 1);
        }
    }

    #[test]
    fn invalid_sequence_reported_on_the_piece_that_delivers_it() {
        let sequences: [&[u8]; 14] = [
            b"\x80",             // stray continuation
            b"\xbf\xbf",         // two stray continuations
            b"\xc0\xaf",         // overlong '/'
            b"\xc1\xbf",         // overlong 2-byte
            b"\xe0\x80\xaf",     // overlong 3-byte
            b"\xf0\x80\x80\xaf", // overlong 4-byte
            b"\xed\xa0\x80",     // surrogate U+D800
            b"\xed\xbf\xbf",     // surrogate U+DFFF
            b"\xf4\x90\x80\x80", // U+110000
            b"\xf5\x80\x80\x80", // lead beyond U+10FFFF
            b"\xff",
            b"\xe2\x82",     // truncated, then a lead byte follows
            b"\xf0\x9f\x98", // truncated, then a lead byte follows
            b"\xce\x41",     // lead then ASCII
        ];
        // Long enough on both sides that the bodies go through SIMD code.
        let prefix = mixed_text(70);
        let suffix = "日本 text".repeat(8);
        for seq in sequences {
            let mut bytes = prefix.clone();
            bytes.extend_from_slice(seq);
            bytes.extend_from_slice(suffix.as_bytes());
            assert!(std::str::from_utf8(&bytes).is_err(), "{seq:x?}");
            let at = prefix.len();
            check_every_split(&bytes, at.saturating_sub(6)..at + seq.len() + 6);
        }
    }

    #[test]
    fn truncated_then_invalid_across_a_boundary_fails_on_the_invalid_piece() {
        let text = mixed_text(100);
        // (second piece, third piece, index of the piece that must fail)
        let cases: [(&[u8], &[u8], usize); 7] = [
            (b"\xe2\x82", b"A", 2),          // 3-byte char cut by ASCII
            (b"\xf0\x9f", b"\x98\xce", 2),   // 4-byte char cut by a lead byte
            (b"\xed", b"\xa0\x80", 2),       // surrogate completed later
            (b"\xf4", b"\x90", 2),           // beyond U+10FFFF completed later
            (b"\xe0", b"\x9f\xbf", 2),       // overlong completed later
            (b"\xe2", b"\x82\xac\x80", 2),   // completed, then a stray byte
            (b"\xe2\x82\xac\x80", b"ok", 1), // stray byte in the same piece
        ];
        for (second, third, expected) in cases {
            let mut v = Utf8Validator::new();
            let results = [v.feed(&text), v.feed(second), v.feed(third)];
            let failed = results.iter().position(Result::is_err);
            assert_eq!(failed, Some(expected), "{second:x?} {third:x?}");
        }
        // A truncated character followed by more of it across pieces, then a
        // valid character: accepted.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&text), Ok(()));
        assert_eq!(v.feed(b"\xf0"), Ok(()));
        assert_eq!(v.feed(b"\x9f\x98"), Ok(()));
        let mut rest = b"\x80".to_vec();
        rest.extend_from_slice(&text);
        rest.extend_from_slice(b"\xe2\x82");
        assert_eq!(v.feed(&rest), Ok(()));
        assert_eq!(v.feed(b"\xac"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn invalid_byte_at_every_position_of_a_long_text_fails_on_its_piece() {
        // Positions cross simdutf8's 64-byte blocks and its scalar tail.
        let text = mixed_text(300);
        for at in 0..text.len() {
            for bad in [0x80, 0xff] {
                let mut bytes = text.clone();
                bytes[at] = bad;
                for piece_len in [1021, 64, 61, 7] {
                    let cuts: Vec<usize> = (piece_len..bytes.len()).step_by(piece_len).collect();
                    assert_eq!(
                        failing_piece(&bytes, &cuts),
                        expected_failing_piece(&bytes, &cuts),
                        "byte {bad:x} at {at}, pieces of {piece_len}"
                    );
                }
            }
        }
    }

    #[test]
    fn cut_off_start_finds_the_incomplete_last_character() {
        let cases: [(&[u8], usize); 14] = [
            (b"", 0),
            (b"abc", 3),
            (b"a\xce", 1),
            (b"a\xce\xba", 3),
            (b"a\xe2", 1),
            (b"a\xe2\x82", 1),
            (b"a\xe2\x82\xac", 4),
            (b"\xf0\x9f\x98", 0),
            (b"a\xf0\x9f\x98", 1),
            (b"\xf0\x9f\x98\x80", 4),
            (b"\x80\x80\x80", 3), // no lead in reach: left to the body check
            (b"\xe2\x80\x80\x80", 4),
            (b"a\xff", 1), // invalid leads go to the tail check
            (b"a\xc0", 1),
        ];
        for (bytes, start) in cases {
            assert_eq!(cut_off_start(bytes), start, "{bytes:x?}");
        }
    }

    #[test]
    fn state_is_small() {
        assert!(std::mem::size_of::<Utf8Validator>() <= 4);
    }
}
