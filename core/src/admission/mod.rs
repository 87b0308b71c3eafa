//! Admission and rate limits: which handshakes get in, and how fast a
//! connection may send commands.
//!
//! Sans-IO: every check takes `now: Instant` from the caller and reads no
//! clock; the only randomness (the `Retry-After` jitter) is an injectable
//! function.
//!
//! | file | what it owns |
//! | --- | --- |
//! | `bucket.rs` | [`TokenBucket`] (8-byte GCRA cell), [`SharedBucket`] (atomic), [`Rate`] |
//! | `ip.rs` | [`Admission`]: connections per address and in total, handshake rates, [`IpGuard`], [`Refusal`] |
//! | `command.rs` | [`CommandLimiter`]: commands, publishes, subscribes per second per connection, and the close-on-persisting rule |
//! | `proxy.rs` | the client behind a [`TrustedProxies`] peer, from `X-Forwarded-For` |
//!
//! The `Origin` allow-list ([`OriginPolicy`]) and the trusted proxy networks
//! ([`TrustedProxies`]) are configuration values, parsed when the
//! configuration loads (`config::origin`, `config::proxy`) and re-exported
//! here; this module only matches requests against them.
//!
//! # Wiring (how the connection code uses this module)
//!
//! - **Startup**: one `Admission::new(AdmissionConfig::from_config(&config),
//!   Instant::now())` for the process, shared as `Arc<Admission>` by every
//!   worker; the parsed `config.admission.allowed_origins` shared the same
//!   way. Per worker:
//!   `CommandPolicy::from_config(&config, worker_start)`.
//! - **Accept** (`reactor.rs`): keep the peer address that `accept` returns
//!   (today it is dropped as `_peer`) and hand it to `Conn::new`.
//! - **Handshake** (`conn.rs` `route`, for `/echo` and `/ws`, after the
//!   path, the draining and the per-worker cap checks, before authentication
//!   and the 101): first `origin.allows(request.origin.as_deref())` → else
//!   403 (`HandshakeError::OriginNotAllowed`); then `admission.try_admit(
//!   client, now)`, where `client = admission.client_ip(peer.ip(),
//!   request.x_forwarded_for.as_deref())` (the peer itself unless it is a
//!   trusted proxy): `Err(refusal)` → 503 with `Retry-After:
//!   refusal.retry_after` and body `refusal.reason.as_str()` (the existing
//!   `encode_plain_response_into` call with the value instead of `"1"`);
//!   `Ok(guard)` → keep the [`IpGuard`] in the upgraded connection's state
//!   (`Open`), so it drops exactly when the connection does. Plain HTTP
//!   (`/healthz`, `/metrics`) is not admitted: it holds no connection.
//!   Admit before verifying the token: a refused handshake then costs no
//!   signature check.
//! - **Commands** (`ws.rs`): replace `TokenBucket` with a [`CommandLimiter`]
//!   in `WsConn`; after parsing a command and before running it, `match
//!   limiter.check(&policy, kind, now)`: `Run` → go on; `Refuse` → error
//!   reply `rate_limited`; `Close` → close with [`RATE_LIMIT_CLOSE`] /
//!   [`RATE_LIMIT_CLOSE_REASON`] (like the slow-consumer abort).
//! - **Per-connection state**: [`IpGuard`] 32 bytes + [`CommandLimiter`] 40
//!   bytes, both in the boxed `Open`.

pub mod bucket;
pub mod command;
pub mod ip;
pub mod proxy;

pub use crate::config::origin::{self, OriginPolicy};
pub use bucket::{Epoch, Rate, SharedBucket, TokenBucket, Wait};
pub use command::{
    CommandKind, CommandLimiter, CommandPolicy, Limit, RateVerdict, RATE_LIMIT_CLOSE,
    RATE_LIMIT_CLOSE_REASON,
};
pub use ip::{Admission, AdmissionConfig, IpGuard, Jitter, Refusal, RefusalReason};
pub use proxy::TrustedProxies;
