//! permessage-deflate (RFC 7692): the negotiation, and the deflate and
//! inflate of whole messages. The compression itself is `flate2` on the
//! `zlib-rs` backend (chosen over `miniz_oxide` by `bench/benches/deflate.rs`);
//! the framing around it (RSV1, the sync tail, fragments, limits) is ours.
//!
//! | file | what it owns |
//! | --- | --- |
//! | `negotiate.rs` | `Sec-WebSocket-Extensions` offers in, accepted parameters and the answer out |
//! | `compress.rs` | one message in, one RSV1 frame out; per-core shared or per-connection stream |
//! | `inflate.rs` | one compressed message in, the message out, checked against the size limit as it grows |
//!
//! Memory: what one zlib-rs stream holds on the heap, counted by a global
//! allocator ([`DEFLATE_STATE_BYTES`], [`INFLATE_STATE_BYTES`]). Under the
//! default policy the server holds one deflate stream per core (shared by
//! every connection of the core) and an inflate stream only while a
//! compressed message is being read; context takeover (when the `[deflate]`
//! table and its memory budget allow it) costs the connection its own
//! streams for its whole life.

pub mod compress;
pub mod inflate;
pub mod negotiate;

pub use self::compress::MessageDeflater;
pub use self::inflate::MessageInflater;
pub use self::negotiate::{negotiate, DeflateParams, DeflatePolicy, EXTENSION_NAME};

/// Heap bytes of one raw deflate stream (flate2 on zlib-rs 0.6.8, memLevel
/// 8), by window bits 9 to 15 (index `bits - 9`), once it has compressed a
/// message; the same at levels 1, 2, 6 and 9, all allocated when the stream
/// is made. Measured by `cargo test -p ringcast --test zlib_state --
/// --nocapture` (a counting global allocator), 2026-12-04, CI box; that
/// test fails when the figures change. zlib's formula (`(1 << (bits + 2)) +
/// (1 << (memLevel + 9))`) says 133,120 to 262,144 B: zlib-rs holds about
/// 115 KiB more at every window, so a smaller window saves at most a third
/// (380,032 B at 15 bits, 251,008 at 9). Resident memory is less while the
/// stream is young: 10,000 level-2 streams took 3.0 GiB of RSS (about 310
/// KiB each) in the `fanout/deflate` bench.
pub const DEFLATE_STATE_BYTES: [u64; 7] = [
    251_008, 253_056, 257_152, 265_344, 281_728, 314_496, 380_032,
];

/// Heap bytes of one raw inflate stream (flate2 on zlib-rs 0.6.8), whatever
/// its window bits: zlib-rs allocates the 32 KiB window of a 15-bit stream
/// even for a smaller one, so `client_max_window_bits` would save the
/// server nothing. Same measurement as [`DEFLATE_STATE_BYTES`]; zlib's
/// formula (`1 << bits` plus about 7 KiB) says 39,936 B at 15 bits.
pub const INFLATE_STATE_BYTES: u64 = 47_552;

/// [`DEFLATE_STATE_BYTES`] for a window of `bits` (clamped to 9..=15).
pub fn deflate_state_bytes(bits: u8) -> u64 {
    DEFLATE_STATE_BYTES[usize::from(bits.clamp(9, 15) - 9)]
}
