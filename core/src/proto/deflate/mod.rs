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
//! Memory (zlib-rs, 15-bit window): a deflate stream is about 310 KiB
//! (window, hash chains, pending buffer; 10,000 streams at level 2 took
//! 3.0 GiB of RSS in the `fanout/deflate` bench), an inflate stream some
//! tens of KiB (its 32 KiB window and state; not measured here). Under the default policy the server
//! holds one deflate stream per core (shared by every connection of the
//! core) and an inflate stream only while a compressed message is being
//! read; context takeover (when the `[deflate]` table allows it) costs the
//! connection its own streams for its whole life.

pub mod compress;
pub mod inflate;
pub mod negotiate;

pub use self::compress::MessageDeflater;
pub use self::inflate::MessageInflater;
pub use self::negotiate::{negotiate, DeflateParams, DeflatePolicy, EXTENSION_NAME};
