//! The node's Redis engine as the cores see it (`engine.kind = "redis"`):
//! one [`Bridge`] (the command thread) and one [`Subscriber`] (the pub/sub
//! threads) for the whole process, and the sink that brings their answers
//! and pushes back onto the cross-core bus.
//!
//! # Who runs what
//!
//! - A publish goes from the publisher's core straight to the bridge's
//!   queue ([`Cluster::publish`]); the bridge thread posts the encoded reply
//!   (offset, or `unavailable`) to the publisher's core as a
//!   [`Msg::PublishReply`]. The reply is sent only after Redis ran the
//!   publish script. Nothing fans out on the reply: this node's own
//!   publishes come back as pushes, like every other node's, so every
//!   delivery takes one path, in Redis's order.
//! - Pushes, subscription confirmations and recoveries go to the channel's
//!   owner core ([`owner_of`]), which keeps the channel's
//!   [`super::mirror::Mirror`]; history reads it asks for come back to it.
//!
//! # Posting from a Redis thread
//!
//! The engine threads are not cores: when an inbox is full they wait
//! (50 µs sleeps) until the core drained it, so no reply and no push is
//! dropped, and the backpressure lands on Redis's socket, not on a core.
//! A core never waits for these threads (their queues refuse at once when
//! full), so the wait cannot deadlock. At shutdown [`Cluster::close`] stops
//! the waiting: the cores are gone and what is left is dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::answer::{history_json, published_json, HistorySince, ReplyTo};
use super::hub::{answer_msg, owner_of, HistoryAnswer, Msg};
use super::mirror::{refusal_for, Waiter};
use super::presence::{Entry, Who};
use super::Refusal;
use crate::bus::Mesh;
use crate::engine::redis::bridge::{NodesOp, PresenceOp};
use crate::engine::redis::script::Snapshot;
use crate::engine::redis::{
    Bridge, BridgeStats, EngineError, HistoryReply, NodeRecord, Published, Push, PushSink,
    RedisSettings, Subscriber, SubscriberStats,
};
use crate::mailbox::ConnId;
use crate::proto::v1::{frame_payload, published_frame, push_frame, Since};

/// Why a history read was asked, so its answer finds its way.
#[derive(Debug, Clone)]
pub enum ReadPurpose {
    /// The mirror's own catch-up.
    Sync,
    /// One subscribe request's replay.
    For(Waiter),
}

/// Posts onto the bus from an engine thread.
struct BusSink {
    mesh: Arc<Mesh<Msg>>,
    closed: AtomicBool,
}

impl BusSink {
    fn post(&self, to: usize, mut msg: Msg) {
        loop {
            match self.mesh.try_send(to, msg) {
                Ok(()) => return,
                Err(back) if !self.closed.load(Ordering::Acquire) => {
                    msg = back;
                    std::thread::sleep(Duration::from_micros(50));
                }
                Err(_) => return,
            }
        }
    }

    fn owner(&self, channel: &str) -> usize {
        owner_of(channel, self.mesh.cores())
    }
}

impl PushSink for BusSink {
    fn push(&self, push: Push) {
        let to = self.owner(&push.channel);
        self.post(
            to,
            Msg::EnginePush {
                push: Box::new(push),
            },
        );
    }

    fn subscribed(&self, channel: &str) {
        self.post(
            self.owner(channel),
            Msg::EngineLive {
                channel: Arc::from(channel),
            },
        );
    }

    fn recover(&self, channels: Vec<String>) {
        for channel in channels {
            self.subscribed(&channel);
        }
    }

    fn disconnected(&self, reason: &str) {
        tracing::debug!(%reason, "redis pub/sub connection lost; pushes resume after recovery");
    }
}

/// The process's Redis engine, shared by every core (behind an `Arc`).
pub struct Cluster {
    bridge: Bridge,
    subscriber: Subscriber,
    sink: Arc<BusSink>,
    /// How long a subscribe waits for Redis before it is answered
    /// `unavailable` (`engine.redis_command_timeout`, at least 1 s).
    pub wait_limit: Duration,
    queue_capacity: usize,
    /// This process's name in shared presence (random per start), so two
    /// nodes' connections never share a member name.
    pub node: String,
    /// How long a presence entry lives in Redis without a refresh
    /// (`engine.redis_presence_ttl`); owners refresh every third of it.
    /// The nodes' records (`/api/info`, `/api/channels`) live as long.
    pub presence_ttl: Duration,
    /// The address this node listens on, as its record shows it.
    pub address: String,
    /// When this node started, in Unix seconds (its record shows it).
    pub started: u64,
    /// Offsets this node's subscribers never got because Redis history no
    /// longer held them when the gap was found (`/metrics`).
    pub skipped: AtomicU64,
}

impl Cluster {
    /// Connects to Redis (refusing with the redacted URL and the reason, or
    /// starting without a connection when `degraded`) and starts the
    /// engine's threads, which post onto `mesh`.
    pub fn start(
        settings: RedisSettings,
        mesh: Arc<Mesh<Msg>>,
        degraded: bool,
        address: String,
    ) -> Result<Self, EngineError> {
        let bridge = match Bridge::connect(settings.clone()) {
            Ok(bridge) => bridge,
            Err(e) if degraded => {
                tracing::warn!("starting degraded: {e}");
                Bridge::start_degraded(settings.clone())
            }
            Err(e) => return Err(e),
        };
        let sink = Arc::new(BusSink {
            mesh,
            closed: AtomicBool::new(false),
        });
        let wait_limit = settings.command_timeout.max(Duration::from_secs(1));
        let queue_capacity = settings.queue_capacity;
        let presence_ttl = settings.presence_ttl;
        let subscriber = Subscriber::start(settings, sink.clone());
        // Messages between nodes (`/api/disconnect`): every node listens.
        subscriber.subscribe(super::hub::CONTROL_CHANNEL)?;
        Ok(Self {
            bridge,
            subscriber,
            sink,
            wait_limit,
            queue_capacity,
            node: format!("{:08x}", fastrand::u32(..)),
            presence_ttl,
            address,
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            skipped: AtomicU64::new(0),
        })
    }

    pub fn bridge_stats(&self) -> &Arc<BridgeStats> {
        self.bridge.stats()
    }

    pub fn subscriber_stats(&self) -> &Arc<SubscriberStats> {
        self.subscriber.stats()
    }

    /// `None` while the command connection is up, else why not (`/readyz`).
    pub fn degraded(&self) -> Option<String> {
        self.bridge.stats().down_reason()
    }

    /// Stops engine threads from waiting on inboxes nobody drains any more.
    pub fn close(&self) {
        self.sink.closed.store(true, Ordering::Release);
    }

    /// Queues a publish; the reply reaches `conn` on core `from` once Redis
    /// answered. `Err` when the bridge's queue is full (not taken).
    pub fn publish(
        &self,
        channel: &str,
        data: Bytes,
        from: usize,
        conn: ConnId,
        reply: ReplyTo,
    ) -> Result<(), Refusal> {
        let sink = self.sink.clone();
        let done = Box::new(move |result: Result<Published, EngineError>| {
            let msg = match (reply, result) {
                (ReplyTo::Ws(id), Ok(published)) => Msg::PublishReply {
                    conn,
                    reply: published_frame(id, published.offset),
                },
                (reply, result) => {
                    let result = result
                        .map(|p| published_json(p.offset, &p.epoch))
                        .map_err(|e| refusal_for(&e));
                    match answer_msg(conn, reply, result) {
                        Some(msg) => msg,
                        None => return,
                    }
                }
            };
            sink.post(from, msg);
        });
        self.bridge
            .publish(channel, data, done)
            .map_err(|e| self.refusal(&e))
    }

    /// Queues a history read for the owner core `core`; the answer comes
    /// back as [`Msg::EngineHistory`]. `Err` when the bridge's queue is full.
    pub fn history(
        &self,
        channel: &Arc<str>,
        gen: u64,
        since: Option<Since>,
        purpose: ReadPurpose,
        core: usize,
    ) -> Result<(), Refusal> {
        let sink = self.sink.clone();
        let name = channel.clone();
        let done = Box::new(move |result: Result<HistoryReply, EngineError>| {
            let msg = Msg::EngineHistory(Box::new(HistoryAnswer {
                channel: name,
                gen,
                purpose,
                result,
            }));
            sink.post(core, msg);
        });
        self.bridge
            .history(channel, since, done)
            .map_err(|e| self.refusal(&e))
    }

    /// Reads `channel`'s history from Redis for the `history` command
    /// (what [`crate::pubsub::channel::OwnedChannel::read`] does on the
    /// memory engine); the answer reaches `conn` on core `from`.
    pub fn history_read(
        &self,
        channel: &str,
        since: Option<HistorySince>,
        limit: usize,
        (from, conn, reply): (usize, ConnId, ReplyTo),
    ) -> Result<(), Refusal> {
        let sink = self.sink.clone();
        let name = channel.to_string();
        let first = since.as_ref().map_or(1, |s| s.offset.saturating_add(1));
        let done = Box::new(move |result: Result<Snapshot, EngineError>| {
            let result = result
                .map(|snap| history_answer(&name, snap, since.as_ref(), limit))
                .map_err(|e| refusal_for(&e));
            if let Some(msg) = answer_msg(conn, reply, result) {
                sink.post(from, msg);
            }
        });
        self.bridge
            .read(channel, first, done)
            .map_err(|e| self.refusal(&e))
    }

    /// Asks every other node to close the `/ws` connections of `user`.
    pub fn disconnect_everywhere(
        &self,
        user: &str,
        code: u16,
        reason: &str,
    ) -> Result<(), Refusal> {
        let msg = super::hub::ControlMsg {
            node: self.node.clone(),
            disconnect: user.to_string(),
            code,
            reason: reason.to_string(),
        };
        let payload = serde_json::to_vec(&msg).unwrap_or_default();
        self.bridge
            .broadcast(super::hub::CONTROL_CHANNEL, Bytes::from(payload))
            .map_err(|e| self.refusal(&e))
    }

    /// A presence change of this node's subscribers (best effort: a lost
    /// leave expires, a lost join is written by the next refresh).
    pub fn presence_write(&self, channel: &str, op: PresenceOp) {
        if let Err(e) = self.bridge.presence(channel, op, None) {
            tracing::debug!(%channel, "presence write not queued: {e}");
        }
    }

    /// Reads `channel`'s presence across nodes; the answer reaches `conn`
    /// on core `from` in the form `reply` asks. `Err` when the bridge's
    /// queue is full.
    pub fn presence_read(
        &self,
        channel: &str,
        (stats, max): (bool, usize),
        from: usize,
        conn: ConnId,
        reply: ReplyTo,
    ) -> Result<(), Refusal> {
        let sink = self.sink.clone();
        let done = Box::new(move |result: Result<Vec<(String, String)>, EngineError>| {
            let result = result
                .map(|stored| {
                    let entries: Vec<Entry> = stored
                        .into_iter()
                        .map(|(client, value)| Entry {
                            client,
                            who: Who::decode_stored(&value),
                        })
                        .collect();
                    super::presence::entries_json(&entries, max, stats)
                })
                .map_err(|e| refusal_for(&e));
            if let Some(msg) = answer_msg(conn, reply, result) {
                sink.post(from, msg);
            }
        });
        self.bridge
            .presence(channel, PresenceOp::Read, Some(done))
            .map_err(|e| self.refusal(&e))
    }

    /// One core's record: its figures and its channels' subscriber counts
    /// (best effort: a lost write is the next refresh's).
    pub fn node_write(&self, core: usize, record: String, channels: Vec<(String, u64)>) {
        let op = NodesOp::Write {
            member: format!("{}-{core:x}", self.node),
            record,
            channels,
        };
        if let Err(e) = self.bridge.nodes(op, None) {
            tracing::debug!("node record not queued: {e}");
        }
    }

    /// Reads every live node core's record (with its channel counts under
    /// `prefix` when `channels`); the answer reaches `conn` on core `from`
    /// as `{"records":[{"record":{..},"channels":{NAME:N,..}},..]}`. `Err`
    /// when the bridge's queue is full.
    pub fn nodes_read(
        &self,
        (channels, prefix): (bool, String),
        from: usize,
        conn: ConnId,
        reply: ReplyTo,
    ) -> Result<(), Refusal> {
        let sink = self.sink.clone();
        let done = Box::new(move |result: Result<Vec<NodeRecord>, EngineError>| {
            let result = result
                .map(|records| {
                    let records: Vec<serde_json::Value> = records
                        .into_iter()
                        .filter_map(|r| {
                            // A record this server did not write is skipped.
                            let record: serde_json::Value = serde_json::from_str(&r.record).ok()?;
                            let counts: serde_json::Map<String, serde_json::Value> = r
                                .channels
                                .into_iter()
                                .map(|(name, n)| (name, n.into()))
                                .collect();
                            Some(serde_json::json!({"record": record, "channels": counts}))
                        })
                        .collect();
                    Bytes::from(serde_json::json!({ "records": records }).to_string())
                })
                .map_err(|e| refusal_for(&e));
            if let Some(msg) = answer_msg(conn, reply, result) {
                sink.post(from, msg);
            }
        });
        let op = NodesOp::Read { channels, prefix };
        self.bridge
            .nodes(op, Some(done))
            .map_err(|e| self.refusal(&e))
    }

    /// First local subscriber of `channel` on this node.
    pub fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.subscriber.subscribe(channel)
    }

    /// Last local subscriber of `channel` on this node gone.
    pub fn unsubscribe(&self, channel: &str) {
        if let Err(e) = self.subscriber.unsubscribe(channel) {
            tracing::warn!(%channel, "redis unsubscribe not queued: {e}");
        }
    }

    fn refusal(&self, e: &EngineError) -> Refusal {
        match e {
            EngineError::Overloaded => Refusal::engine_overloaded(self.queue_capacity),
            other => refusal_for(other),
        }
    }
}

/// The `history` answer from a Redis snapshot read from `first` on: the
/// messages as pushes, the newest `limit` (or the first `limit` after
/// `since`), `complete` when the range has no hole.
fn history_answer(
    channel: &str,
    snap: Snapshot,
    since: Option<&HistorySince>,
    limit: usize,
) -> Bytes {
    let first = since.map_or(1, |s| s.offset.saturating_add(1));
    let contiguous = snap
        .entries
        .iter()
        .zip(first..)
        .all(|((offset, _), want)| *offset == want)
        && snap.entries.len() as u64 == snap.top.saturating_sub(first - 1);
    let (skip, take) = match since {
        Some(_) => (0, limit),
        None => (snap.entries.len().saturating_sub(limit), limit),
    };
    let complete = match since {
        Some(s) => {
            contiguous && s.offset <= snap.top && s.epoch.as_deref().is_none_or(|e| e == snap.epoch)
        }
        // The newest `limit` are whole when no hole is among them.
        None => contiguous || skip > 0,
    };
    let pushes: Vec<Bytes> = snap
        .entries
        .iter()
        .skip(skip)
        .take(take)
        .map(|(offset, payload)| {
            let data = std::str::from_utf8(payload).unwrap_or("null");
            frame_payload(&push_frame(channel, *offset, &snap.epoch, data))
        })
        .collect();
    let messages: Vec<&[u8]> = pushes.iter().map(|p| &p[..]).collect();
    history_json(&snap.epoch, snap.top, complete, &messages)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.close();
    }
}
