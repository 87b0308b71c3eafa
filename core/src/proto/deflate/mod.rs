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
//! Memory (zlib-rs, 15-bit window): a deflate stream is about 270 KiB at
//! level 1 to 9 (window, hash chains, pending buffer), an inflate stream
//! about 40 KiB once it has inflated. Under the default policy the server
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
