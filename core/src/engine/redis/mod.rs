//! The Redis engine's foundation: one channel's sequence, history and live
//! delivery shared by many ringcast nodes through one Redis.
//!
//! Self-contained and tested against a real `redis-server`
//! (`core/tests/redis_engine.rs`); not wired into the server yet (the plan is
//! at the end of this doc).
//!
//! # Layout
//!
//! - [`settings`] — [`RedisSettings`]: URL (password redacted in every
//!   message), timeouts, batch and queue sizes, key prefix, history size/TTL.
//! - [`conn`] — one blocking, logged-in connection (plain or TLS).
//! - [`keys`] — the names a channel has in Redis.
//! - [`script`] — the two Lua scripts (`lua/publish.lua`, `lua/history.lua`),
//!   their invocation and replies.
//! - [`history`] — the resume rule on a history snapshot.
//! - [`bridge`] — [`Bridge`]: the node's command thread; publishes and history
//!   reads, pipelined.
//! - [`subscriber`] — [`Subscriber`]: the node's pub/sub connections.
//! - [`push`] — the wire form of a live push.
//! - [`probe`] — what `ringcast doctor` asks Redis (version, AOF).
//! - [`backoff`] — full-jitter reconnect delays.
//! - [`error`] — [`EngineError`]; `Unavailable` is what a publisher sees while
//!   Redis is down.
//!
//! # Which Redis client, and why
//!
//! ringcast's cores are monoio event loops, one pinned thread each, and core
//! links no tokio. The candidates:
//!
//! - `fred` 10: the most complete async client (sharded pub/sub, streams,
//!   scripts), but built on tokio; its `monoio` feature is experimental and
//!   still links tokio. It would put a second runtime, and its scheduling,
//!   into the server.
//! - `redis` 1.x async: needs tokio or smol, same objection.
//! - `redis-protocol` 6: a runtime-free RESP codec only; everything else
//!   (commands, URLs, replies) would be ours.
//! - `redis` 1.x without default features: a maintained crate with no runtime
//!   at all. **Chosen.** We use its command encoder ([`redis::Cmd`], packed
//!   straight into one pipeline buffer), its incremental RESP parser
//!   ([`redis::Parser`]) and its [`redis::Value`]. The ~200 lines of socket
//!   handling in [`conn`] are ours because `redis::Connection` treats a read
//!   timeout as a lost reply and drops the next one, which the subscriber's
//!   "wait 20 ms for a push, then look at the control queue" loop cannot use;
//!   with our own socket both sides share one transport (TLS via the rustls
//!   already in the tree, OS trust roots).
//!
//! Redis IO therefore runs on plain threads beside the cores, never on them:
//! one [`Bridge`] thread per node for commands, and `subscriber_connections`
//! (default 2) [`Subscriber`] threads for pub/sub. Cores talk to them only
//! through bounded queues (a full queue is `Overloaded`, never a blocked
//! core) and get answers through a callback the caller supplies, meant to
//! push onto the cross-core bus. The cost of the thread hop is amortized by
//! batching: the bridge sends everything queued since its last round trip as
//! ONE pipeline (up to `pipeline_batch`), so under load a round trip carries
//! hundreds of publishes.
//!
//! # Keys
//!
//! For channel `news` and the default prefix `rc:` (see [`keys`]):
//!
//! | name          | type    | holds                                                 |
//! |---------------|---------|-------------------------------------------------------|
//! | `rc:{news}:m` | hash    | `e`: epoch (random hex), `t`: top offset; TTL `meta_ttl` |
//! | `rc:{news}:h` | stream  | entry id `<offset>-0`, fields `t` (ms), `d` (payload); `MAXLEN history_size`, TTL `history_ttl` |
//! | `rc:{news}:p` | pub/sub | pushes `<offset>:<epoch>:<payload>`                   |
//!
//! `{news}` is a cluster hash tag: a channel's keys and its sharded pub/sub
//! channel live on one slot. The offset is the stream entry's id (rather than
//! a field beside an automatic id) so a resume is one `XRANGE` from
//! `since+1`, not a scan.
//!
//! # What one publish costs
//!
//! One `EVALSHA` of `publish.lua`, pipelined with whatever else is queued:
//! `HGET` (epoch), `HINCRBY` (offset), `EXPIRE` (meta), `TIME`, `XADD … MAXLEN`,
//! `EXPIRE` (stream), `SPUBLISH` (Redis ≥ 7; `PUBLISH` before, from
//! `INFO server`). 8 commands in `INFO commandstats`, whatever the number of
//! subscribers or nodes: measured by
//! `redis_commands_per_publish_do_not_grow_with_subscribers`. Redis sends
//! each push once per subscribed node, never per client.
//!
//! # Guarantees
//!
//! - A publish is acknowledged (`Ok(offset, epoch)`) only after Redis ran the
//!   script: stored in history and broadcast. Redis down or the connection
//!   lost mid-request → `Unavailable` (a request in flight may have been
//!   applied; that is the one ambiguity, as with any network store).
//! - Offsets of a channel are gapless and increasing across all nodes (the
//!   script is atomic); one core's publishes keep their order.
//! - The resume rule is the memory engine's ([`history`]): same epoch, offset
//!   not in the future, every offset after it still in history (count and
//!   age), else `NotRecovered`. Redis restarted empty → new epoch →
//!   `NotRecovered`.
//! - Pushes of one channel reach a subscribing node in offset order (one
//!   connection per channel); after a lost connection the [`Subscriber`]
//!   re-subscribes with backoff and names, through [`PushSink::recover`],
//!   the channels whose pushes may have been missed.
//!
//! # Wiring it into the server (next session)
//!
//! 1. *Config* (`config/`): `engine.kind = "memory" | "redis"`,
//!    `engine.redis.url`, `…connect_timeout`, `…command_timeout`,
//!    `…pipeline_batch`, `…subscriber_connections`, `…start_degraded`
//!    build a [`RedisSettings`]; history size/TTL come from the existing
//!    channel keys. Start-up calls [`Bridge::connect`] and exits 2 with its
//!    error (URL redacted, reason), or [`Bridge::start_degraded`] when asked.
//!    `ringcast doctor` uses [`conn`] to report the version and
//!    `INFO persistence` (`aof_enabled`).
//! 2. *Publish* (`pubsub/`, on the channel's owner core, where
//!    `OwnedChannel::next_offset/append` run today): with Redis the owner
//!    core does not number the message; it calls [`Bridge::publish`] with a
//!    callback that posts `(request, result)` to its own cross-core inbox and
//!    wakes it. On `Ok` it acks the publisher with the offset; on
//!    `Unavailable` it answers the error `unavailable`. It does NOT fan out on
//!    the ack: fan-out is driven by pushes only (including this node's own,
//!    which come back through Redis), so local and remote publishes take one
//!    path, in one order.
//! 3. *Live delivery*: the [`PushSink`] routes each [`Push`] to the channel's
//!    owner core (the same hash as today) through the cross-core bus. The
//!    owner core keeps, per channel, the epoch and `delivered` (last offset
//!    fanned out). A push with `offset == delivered + 1` fans out to the
//!    subscriber cores as today; `≤ delivered` is a duplicate (dropped);
//!    `> delivered + 1` is a gap (a lost connection): hold it, read history
//!    from `delivered`, deliver, continue. A different epoch means Redis lost
//!    the channel: tell local subscribers `recovered: false`. The first local
//!    subscriber calls [`Subscriber::subscribe`]; the last one leaving calls
//!    [`Subscriber::unsubscribe`] (after a short linger, to not flap).
//! 4. *Resume, and the history-read / live-subscribe race.* A client
//!    subscribes with `since = (e, s)` on a node where the channel is not
//!    live yet. The owner core subscribes in Redis and waits for
//!    [`PushSink::subscribed`], buffering pushes; only then does it call
//!    [`Bridge::history`] with `since`. Redis runs commands one at a time and
//!    each publish script atomically, so every publish is entirely before or
//!    entirely after the subscription, and entirely before or after the
//!    history script. The snapshot returns top `T` and every entry in
//!    `(s, T]`. A publish with offset `> T` ran after the snapshot, hence
//!    after the subscription was confirmed, hence its push arrives. A push
//!    with offset `≤ T` may also arrive (published between the subscription
//!    and the snapshot): it is dropped by offset. So the client gets
//!    `(s, T]` from history, then pushes `> T`: no gap, no duplicate, even
//!    though the two travel on different connections — the order is Redis's
//!    single execution order, and the confirmation is received before the
//!    history request is sent. When the channel is already live on the node,
//!    the same read gives `T ≥ delivered` (the push of `delivered` was
//!    received before the read was sent); the client is held at watermark
//!    `T` and skips pushes `≤ T`. After [`PushSink::recover`] the owner core
//!    runs the gap path for each channel from its `delivered`: the
//!    re-subscription was confirmed first, so the same argument holds.
//! 5. *Faults and ops*: [`BridgeStats::connected`] false → `/readyz` says
//!    degraded with the last reason; `unavailable`, `reconnects` and
//!    `round_trips` (and the subscriber's counters) become metrics.
//!
//! Not done here: Redis Cluster routing (one endpoint; the key layout is
//! already slot-ready, and a subscription Redis drops by itself is renewed
//! and reported like a lost connection), Sentinel, and an idempotency key for
//! publishes retried after an ambiguous `Unavailable`.

pub mod backoff;
pub mod bridge;
pub mod conn;
pub mod error;
pub mod history;
pub mod keys;
pub mod probe;
pub mod push;
pub mod script;
pub mod settings;
pub mod subscriber;

pub use bridge::{Bridge, BridgeStats, Done};
pub use error::EngineError;
pub use history::{HistoryReply, Recovery};
pub use probe::{probe, ServerFacts};
pub use push::Push;
pub use script::Published;
pub use settings::{RedisSettings, RedisUrl};
pub use subscriber::{PushSink, Subscriber, SubscriberStats};
