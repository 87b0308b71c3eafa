//! The `[deflate]` table: permessage-deflate (RFC 7692), what the server
//! accepts in the handshake and what it compresses.
//!
//! Off by default: compression costs CPU on every compressed message, and a
//! deployment that serves mostly tiny pushes or already-compressed binary
//! gains nothing from it. When on, the defaults keep idle memory flat and
//! pushes cheap: the server insists on `server_no_context_takeover` (every
//! message is compressed on its own, so one compressed push frame serves
//! every subscriber, made by one shared compressor per core) and on
//! `client_no_context_takeover` (inflate state lives only while a
//! compressed message is being read, not per idle connection).
//!
//! What context takeover may cost is bounded twice: per connection
//! (`max_memory_per_connection`, the zlib state one connection may hold,
//! honoured in the negotiation) and per worker (`max_context_connections`,
//! how many of its connections may keep state between messages at once;
//! past it new ones are answered with no context takeover either way).

use super::{refuse, ConfigError};
use crate::proto::deflate::{deflate_state_bytes, INFLATE_STATE_BYTES};

/// `[deflate]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateSection {
    /// Accept `permessage-deflate` offers. Default: false (declined).
    pub enabled: bool,
    /// zlib compression level, 1 (fastest) to 9 (smallest). Default: 2.
    /// On zlib-rs, level 1 uses fixed Huffman codes only and leaves a
    /// 203-byte chat push at 202 bytes; level 2 makes it 163 (and level 6
    /// no smaller) for about twice the CPU of level 1 (`bench/benches/deflate.rs`).
    pub level: u32,
    /// Smallest message payload compressed, in bytes; smaller ones are sent
    /// as they are (RSV1 is per message). Default: 64 bytes.
    pub min_size: usize,
    /// The largest LZ77 window the server's compressed messages use, 8 to
    /// 15 (bits). Below 15 it is announced to every client
    /// (`server_max_window_bits`), and messages larger than 2^bits are sent
    /// uncompressed. Default: 15.
    pub server_max_window_bits: u8,
    /// Answer `server_no_context_takeover` even when the client did not ask
    /// for it. Default: true. When false, a client that did not ask gets a
    /// compressor of its own kept for the connection's life (380,032 B
    /// while it exists), and its pushes are compressed once per connection.
    pub server_no_context_takeover: bool,
    /// Answer `client_no_context_takeover` even when the client did not ask
    /// for it. Default: true. When false, a client that did not ask keeps
    /// its LZ77 window across messages, so the server keeps an inflater for
    /// that connection from its first compressed message on (47,552 B).
    pub client_no_context_takeover: bool,
    /// The most zlib state one connection may hold, in bytes; 0: no limit.
    /// It counts the inflate stream reading a compressed message needs
    /// (47,552 B on zlib-rs, at any window) and, when the connection keeps
    /// context, its own deflate stream (380,032 B at 15 bits): a budget
    /// under both makes the server answer `server_no_context_takeover`.
    /// Must hold at least one inflate stream (else no offer could be
    /// accepted). Default: 0.
    pub max_memory_per_connection: u64,
    /// Connections of one worker that may keep zlib state between messages
    /// (a context-takeover agreement either way) at once; 0: no limit. Past
    /// it a new connection is answered with both no-context-takeover
    /// parameters (counted in `ringcast_deflate_context_downgrades_total`)
    /// until one of them closes. Default: 0.
    pub max_context_connections: usize,
}

impl Default for DeflateSection {
    fn default() -> Self {
        Self {
            enabled: false,
            level: 2,
            min_size: 64,
            server_max_window_bits: 15,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            max_memory_per_connection: 0,
            max_context_connections: 0,
        }
    }
}

impl DeflateSection {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=9).contains(&self.level) {
            return refuse(
                "deflate.level",
                format!("{} is not a zlib level: must be 1 to 9", self.level),
            );
        }
        if !(8..=15).contains(&self.server_max_window_bits) {
            return refuse(
                "deflate.server_max_window_bits",
                format!(
                    "{} is not a deflate window: must be 8 to 15",
                    self.server_max_window_bits
                ),
            );
        }
        let budget = self.max_memory_per_connection;
        if budget > 0 && budget < INFLATE_STATE_BYTES {
            return refuse(
                "deflate.max_memory_per_connection",
                format!(
                    "{budget} bytes do not hold one inflate stream ({INFLATE_STATE_BYTES} B on \
                     zlib-rs), so every offer would be declined: use 0 (no limit), at least \
                     {INFLATE_STATE_BYTES}, or deflate.enabled = false"
                ),
            );
        }
        Ok(())
    }

    /// Whether a connection may get a deflate stream of its own under
    /// this table: the server does not insist on no context takeover, its
    /// window is 15 bits (below, each message is compressed on its own),
    /// and the budget holds the stream beside the inflate stream (as the
    /// negotiation checks).
    pub fn allows_own_deflater(&self) -> bool {
        let both = deflate_state_bytes(15) + INFLATE_STATE_BYTES;
        let budget = self.max_memory_per_connection;
        !self.server_no_context_takeover
            && self.server_max_window_bits == 15
            && (budget == 0 || both <= budget)
    }

    /// The most zlib state one connection keeps between messages under this
    /// table, in bytes: its own deflate stream when allowed, and its inflate
    /// stream when the server does not insist on
    /// `client_no_context_takeover`. 0 under the defaults.
    pub fn kept_bytes_per_connection(&self) -> u64 {
        let own = if self.allows_own_deflater() {
            deflate_state_bytes(15)
        } else {
            0
        };
        let inflater = if self.client_no_context_takeover {
            0
        } else {
            INFLATE_STATE_BYTES
        };
        own + inflater
    }
}
