//! The Redis engine's foundation: one channel's sequence, history and live
//! delivery shared by many ringcast nodes through one Redis.
//!
//! Tested against a real `redis-server` on its own
//! (`core/tests/redis_engine.rs`) and wired into the server with
//! `engine.kind = "redis"` (`core/tests/cluster.rs`: real nodes on one
//! Redis); how it is wired is at the end of this doc.
//!
//! # Layout
//!
//! - [`settings`] — [`RedisSettings`]: URL (password redacted in every
//!   message), timeouts, batch and queue sizes, key prefix, history size/TTL.
//! - [`conn`] — one blocking, logged-in connection (plain or TLS).
//! - [`keys`] — the names a channel has in Redis.
//! - [`script`] — the Lua scripts (`lua/publish.lua`, `lua/history.lua`,
//!   `lua/presence.lua`, `lua/nodes.lua`: the live nodes' records behind
//!   `/api/info` and `/api/channels`), their invocation and replies.
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
//! # How the server uses it
//!
//! 1. *Config*: the `engine.*` keys (`config/engine.rs`) build a
//!    [`RedisSettings`] ([`RedisSettings::from_config`]); history size and
//!    age are `pubsub.history_size` / `pubsub.history_ttl`. Start-up
//!    ([`crate::pubsub::cluster::Cluster::start`]) calls [`Bridge::connect`]
//!    and exits 2 with its error (URL redacted, reason), or
//!    [`Bridge::start_degraded`] with `engine.start_degraded`. `ringcast
//!    doctor` reports [`probe`]'s version and AOF.
//! 2. *Publish*: the publisher's core queues [`Bridge::publish`] directly
//!    (the plan said "on the owner core"; the hop bought nothing: the
//!    bridge's single FIFO queue already keeps one connection's publishes in
//!    order, and Redis numbers them). The bridge thread posts the encoded
//!    reply to the publisher's core: the offset only after Redis ran the
//!    script, else `unavailable`. Nothing fans out on the reply.
//! 3. *Live delivery*: the [`PushSink`] (`pubsub/cluster.rs`) posts each
//!    [`Push`], confirmation and recovery to the channel's owner core, whose
//!    `pubsub::mirror::Mirror` keeps epoch and `delivered`, drops
//!    duplicates, fills gaps and new epochs from history, and fans out to
//!    the subscriber cores as the memory engine does. The first subscribe
//!    of a channel on the node subscribes it in Redis; the last core
//!    leaving unsubscribes it (at once: no linger yet).
//! 4. *Resume*: the ordering argument above holds, with one refinement
//!    (`pubsub/mirror.rs`): rather than holding the client at a watermark
//!    `T` on its subscriber core, the owner answers at its own `delivered`
//!    `D` with a replay of exactly `(since, D]` (the history read cut at `D`,
//!    completed from the mirror's own recent pushes when `T < D`), so the
//!    subscriber cores keep the memory engine's invariant and code. A client
//!    that saw more than the node delivered (`D < since ≤ T`) is answered
//!    once `delivered` reaches `since`.
//! 5. *Faults and ops*: [`BridgeStats::down_reason`] makes `/readyz` 503
//!    `degraded: redis unavailable: REASON`; `/metrics` has
//!    `ringcast_redis_connected`, `_unavailable_total`, `_reconnects_total`,
//!    `_round_trips_total`, `_pushes_total` and the subscriber's
//!    disconnects and reconnects.
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
pub use script::{NodeRecord, Published};
pub use settings::{RedisSettings, RedisUrl};
pub use subscriber::{PushSink, Subscriber, SubscriberStats};
