//! One core's share of pub/sub: the channels it owns, the subscriptions of its
//! connections, and the messages it trades with other cores.
//!
//! # Who does what
//!
//! - The **owner** of a channel (`owner_of(name) = hash(name) % cores`) is the
//!   only writer of its [`OwnedChannel`]: it assigns offsets, encodes each push
//!   frame once, appends it to history, and sends one [`Msg::Deliver`] (one
//!   `Bytes` clone) to each core that has subscribers. When some subscriber
//!   takes compressed pushes, it compresses the frame once too and the
//!   `Deliver` carries both (`deflate.rs` says how the owner knows).
//! - A **subscriber core** keeps, per channel, its live local subscribers and
//!   the ones still waiting for their subscribe reply, and copies nothing: it
//!   wraps the `Bytes` it received once in an `Rc` (and the compressed one,
//!   when it came along), and each local subscriber's outbox gets a clone of
//!   that `Rc`. The frame's atomic count moves once per core, not once per
//!   subscriber (`mailbox::Queued`).
//!
//! # Why a subscriber sees every offset once, in order, across a subscribe
//!
//! The owner handles a core's `Subscribe` and every `Publish` one at a time.
//! Handling `Subscribe` marks the core as subscribed and answers with the
//! current offset (plus the replay after `since`). Everything the owner sends
//! to one core travels one FIFO path (its inbox, or its spill queue while the
//! inbox is full, never both out of order), so the reply arrives after every
//! `Deliver` of an offset up to the reply's and before every later one. A new
//! subscriber is *pending* until its reply arrives and ignores `Deliver`s
//! meanwhile: it gets the replay, then exactly the offsets after it. When the
//! owner is the local core, the same messages are handled synchronously, in
//! the same order.
//!
//! # Engines
//!
//! The memory engine is this file. The Redis engine replaces the owner's
//! numbering with Redis's (the `impl Hub` block at the end, `cluster.rs`,
//! `mirror.rs`). The disk engine keeps this path and adds one step: the
//! owner appends each publish to its core's log, and its replies and
//! deliveries leave only once the log has written it (`hub/durable.rs`).
//!
//! # Backpressure
//!
//! A full inbox never blocks a core. A publish whose owner inbox is full is
//! refused (`overloaded`: not acknowledged, so not lost). Other messages wait
//! in a per-target spill queue that is retried every turn; an owner whose spill
//! grows past the inbox capacity refuses publishes until it drains. A slow
//! subscriber's outbox is bounded: past the limit it is closed (1008) and
//! resumes from history on reconnect; it never delays the others. The spill
//! queues and the drain loop are the bus's (`crate::bus`); the hub's task
//! ([`run`]) drains `pubsub.inbox_batch` messages per turn.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

mod queries;
pub use queries::{ControlMsg, CONTROL_CHANNEL};

use super::answer::{self, ApiPart, Encoded, Query, ReplyTo};
use super::channel::{OwnedChannel, Resume};
use super::cluster::{Cluster, ReadPurpose};
use super::deflate::{shared_window, CoreDeflate, SharedWindows};
use super::mirror::{Action, Mirror, Waiter};
use super::presence::{Presence, Who};
use super::{PubsubSnapshot, Refusal, Settings, Stats};
use crate::bus::{drain, Mesh, Port};
use crate::engine::redis::bridge::PresenceOp;
use crate::engine::redis::{EngineError, HistoryReply, Push};
use crate::mailbox::{ConnId, Queued, Slot, KICK_OUTBOUND, KICK_OVERFLOW};
use crate::proto::deflate::DeflateParams;
use crate::proto::v1::{push_frame, subscribed_frame, ErrorCode, Since};
use crate::stats::bump;

mod durable;

/// What cores send each other.
#[derive(Debug)]
pub enum Msg {
    /// To the owner: publish `data` (raw JSON) and acknowledge to `conn` on `from`.
    Publish {
        channel: Arc<str>,
        data: Bytes,
        from: usize,
        conn: ConnId,
        reply: ReplyTo,
    },
    /// To the publisher's core: the encoded reply (offset or error).
    PublishReply { conn: ConnId, reply: Bytes },
    /// To the owner: core `from` wants `conn` (who is `who`: its token's
    /// `sub` and `info`) subscribed, and replayed after `since`.
    Subscribe {
        channel: Arc<str>,
        from: usize,
        conn: ConnId,
        id: Option<u64>,
        since: Option<Box<Since>>,
        who: Who,
        /// The widest window of `from`'s subscribers of `channel` that take
        /// the shared compressed push, this one counted (`0`: none).
        deflate: u8,
    },
    /// To the owner: `conn` on core `from` left `channel` (presence), and
    /// the widest shared deflate window `from` has left for it.
    PresenceLeave {
        channel: Arc<str>,
        from: usize,
        conn: ConnId,
        deflate: u8,
    },
    /// To the owner, or to every core: a question from `conn` on `from`.
    Query {
        query: Box<Query>,
        from: usize,
        conn: ConnId,
        reply: ReplyTo,
    },
    /// To an API connection's core: one part of its answer.
    Answer { conn: ConnId, part: Box<ApiPart> },
    /// To the subscriber's core: the encoded reply, and the replay when it succeeded.
    SubscribeReply {
        channel: Arc<str>,
        conn: ConnId,
        reply: Bytes,
        replay: Vec<Bytes>,
        ok: bool,
    },
    /// To the owner: core `from` has no subscriber of `channel` any more.
    Unsubscribe { channel: Arc<str>, from: usize },
    /// To a subscriber core: one push frame for every live local
    /// subscriber, and its compressed variant when some subscriber takes it
    /// (made once, on the owner).
    Deliver {
        channel: Arc<str>,
        frame: Bytes,
        packed: Option<Bytes>,
    },
    /// Redis engine, to the owner: a push from Redis pub/sub. (The engine's
    /// messages are boxed: they are rare next to `Deliver`, and every inbox
    /// slot is as large as the largest variant.)
    EnginePush { push: Box<Push> },
    /// Redis engine, to the owner: Redis confirmed (again) the channel's
    /// subscription; what came before must be read from history.
    EngineLive { channel: Arc<str> },
    /// Redis engine, to the owner: a history read it asked for.
    EngineHistory(Box<HistoryAnswer>),
}

/// A history read's answer, on its way back to the owner core.
#[derive(Debug)]
pub struct HistoryAnswer {
    pub channel: Arc<str>,
    /// The mirror's generation when the read was asked.
    pub gen: u64,
    pub purpose: ReadPurpose,
    pub result: Result<HistoryReply, EngineError>,
}

/// The message that carries `result` to `conn` as `reply` asks; `None`
/// when nobody waits for it.
pub(crate) fn answer_msg(
    conn: ConnId,
    reply: ReplyTo,
    result: Result<Bytes, Refusal>,
) -> Option<Msg> {
    match answer::encode(reply, result) {
        Encoded::Frame(reply) => Some(Msg::PublishReply { conn, reply }),
        Encoded::Part(part) => Some(Msg::Answer {
            conn,
            part: Box::new(part),
        }),
        Encoded::Nothing => None,
    }
}

/// The core that owns `channel`. Deterministic across cores and runs
/// (`DefaultHasher::new()` has fixed keys).
pub fn owner_of(channel: &str, cores: usize) -> usize {
    let mut hasher = std::hash::DefaultHasher::new();
    channel.hash(&mut hasher);
    (hasher.finish() % cores as u64) as usize
}

#[derive(Default)]
struct LocalChannel {
    live: HashMap<ConnId, Rc<Slot>>,
    /// Subscribed, waiting for the owner's reply, in the order asked (the
    /// owner answers one core in that order); `Deliver`s skip them.
    pending: Vec<Pending>,
    /// The subscribers above (live and pending) that take the shared
    /// compressed push, by window: the owner hears the widest with each
    /// subscribe and leave (`deflate.rs`).
    windows: SharedWindows,
}

/// A subscribe on its way to the owner.
struct Pending {
    conn: ConnId,
    /// The reply to an unsubscribe that came before the owner's answer: the
    /// subscription is dropped when the answer arrives, and this reply is
    /// queued right after it, so the client sees its replies in the order of
    /// its commands (and a later subscribe of the same channel gets its own).
    then: Option<Bytes>,
    /// Its shared deflate window, as counted in `LocalChannel::windows`.
    window: u8,
}

impl LocalChannel {
    fn is_empty(&self) -> bool {
        self.live.is_empty() && self.pending.is_empty()
    }
}

/// A `/ws` connection as the hub knows it: where to queue its frames, and
/// the channels it asked for.
struct Member {
    slot: Rc<Slot>,
    channels: Vec<Arc<str>>,
    /// The token's `sub` (empty when anonymous) and `info` claim:
    /// presence, and `/api/disconnect` (by `sub`).
    who: Who,
    /// A `/ws` connection (else a server API connection, which only asks).
    ws: bool,
}

pub struct Hub {
    core: usize,
    /// This core's end of the pub/sub bus (its spill queues live there).
    port: Port<Msg>,
    settings: Settings,
    owned: RefCell<HashMap<Arc<str>, OwnedChannel>>,
    local: RefCell<HashMap<Arc<str>, LocalChannel>>,
    members: RefCell<HashMap<ConnId, Member>>,
    /// This core's pub/sub counters: owned by the worker (its metrics), written
    /// only here, read by the `/metrics` scrape and the worker's last log line.
    pub stats: Rc<Stats>,
    /// `engine.kind = "redis"`: the node's Redis engine; `None` for memory.
    cluster: Option<Arc<Cluster>>,
    /// Redis engine: the channels this core owns that have subscribers on
    /// this node, mirrored from Redis (`mirror.rs`).
    mirrors: RefCell<HashMap<Arc<str>, Mirror>>,
    /// The next mirror's generation.
    next_gen: Cell<u64>,
    /// Who subscribes to the channels this core owns (both engines; on the
    /// Redis engine, this node's subscribers only).
    presence: RefCell<HashMap<Arc<str>, Presence>>,
    /// Answer parts for this core's server API connections, until the
    /// connection takes them (kicked with `KICK_ANSWER`); dropped with the
    /// connection.
    answers: RefCell<HashMap<ConnId, Vec<ApiPart>>>,
    /// Close code and reason for this core's `/ws` connections that
    /// `/api/disconnect` named (kicked with `KICK_DISCONNECT`).
    closing: RefCell<HashMap<ConnId, (u16, String)>>,
    /// Redis engine: when this core last refreshed its channels' presence
    /// entries and its node record in Redis (`None`: not yet, so the first
    /// tick writes the record and other nodes see this one at once).
    presence_refreshed: Cell<Option<Instant>>,
    /// Whether this core has logged an `info` claim dropped as oversize
    /// (once; the counter counts every one).
    info_drop_logged: Cell<bool>,
    /// `engine.kind = "disk"`: this core's log and the effects held
    /// until it has written (`hub/durable.rs`); `None` otherwise.
    store: Option<durable::Durable>,
    /// This core's compression of outgoing frames (permessage-deflate).
    deflate: CoreDeflate,
}

impl Hub {
    /// Core `core`'s hub on `mesh`, counting into `stats`.
    pub fn new(core: usize, mesh: Arc<Mesh<Msg>>, settings: Settings, stats: Rc<Stats>) -> Self {
        let deflate = CoreDeflate::new(settings.deflate_level, settings.deflate_min_size);
        Self {
            core,
            port: Port::new(core, mesh),
            settings,
            owned: RefCell::default(),
            local: RefCell::default(),
            members: RefCell::default(),
            stats,
            cluster: None,
            mirrors: RefCell::default(),
            next_gen: Cell::new(0),
            presence: RefCell::default(),
            answers: RefCell::default(),
            closing: RefCell::default(),
            presence_refreshed: Cell::new(None),
            info_drop_logged: Cell::new(false),
            store: None,
            deflate,
        }
    }

    /// Runs this hub on the Redis engine: publishes, offsets and history go
    /// through `cluster`, fan-out follows Redis's pushes.
    pub fn with_cluster(mut self, cluster: Arc<Cluster>) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// This core's compression of outgoing frames.
    pub fn deflate(&self) -> &CoreDeflate {
        &self.deflate
    }

    /// The node's Redis engine, when `engine.kind = "redis"`.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// Whether this hub writes to a disk log (`engine.kind = "disk"`).
    pub fn is_durable(&self) -> bool {
        self.store.is_some()
    }

    pub fn core(&self) -> usize {
        self.core
    }

    pub fn cores(&self) -> usize {
        self.port.cores()
    }

    pub fn owner_of(&self, channel: &str) -> usize {
        owner_of(channel, self.port.cores())
    }

    /// Channels this core owns, and the bytes of their history.
    pub fn owned_summary(&self) -> (usize, usize) {
        let owned = self.owned.borrow();
        (
            owned.len(),
            owned.values().map(OwnedChannel::history_bytes).sum(),
        )
    }

    // ----- commands from local connections -----

    /// A `/ws` connection whose token `sub` is `user` (empty: anonymous).
    pub fn join(&self, slot: Rc<Slot>, user: &str) {
        self.join_with_info(slot, user, None)
    }

    /// [`Hub::join`] with the token's `info` claim, which presence shows
    /// when it is at most `pubsub.max_presence_info_bytes` (a larger one is
    /// dropped, counted and logged: the connection itself is not refused).
    pub fn join_with_info(&self, slot: Rc<Slot>, user: &str, info: Option<Box<str>>) {
        let info = match info {
            Some(info) if info.len() > self.settings.max_presence_info => {
                bump(&self.stats.presence_info_dropped, 1);
                if !self.info_drop_logged.replace(true) {
                    tracing::warn!(
                        user,
                        bytes = info.len(),
                        max = self.settings.max_presence_info,
                        "a token's info claim is over pubsub.max_presence_info_bytes: \
                         presence shows this connection without it (logged once per core; \
                         ringcast_presence_info_dropped_total counts them)"
                    );
                } else {
                    tracing::debug!(user, bytes = info.len(), "info claim dropped from presence");
                }
                None
            }
            info => info.map(Arc::from),
        };
        let member = Member {
            slot: slot.clone(),
            channels: Vec::new(),
            who: Who {
                user: Arc::from(user),
                info,
            },
            ws: true,
        };
        self.members.borrow_mut().insert(slot.id(), member);
    }

    /// A server API connection: it subscribes to nothing, it asks.
    pub fn join_api(&self, slot: Rc<Slot>) {
        let member = Member {
            slot: slot.clone(),
            channels: Vec::new(),
            who: Who::default(),
            ws: false,
        };
        self.members.borrow_mut().insert(slot.id(), member);
    }

    /// Drops every subscription of a closing connection.
    pub fn leave(&self, conn: ConnId) {
        self.deflate.forget(conn);
        let Some(member) = self.members.borrow_mut().remove(&conn) else {
            return;
        };
        self.answers.borrow_mut().remove(&conn);
        self.closing.borrow_mut().remove(&conn);
        for channel in member.channels {
            self.drop_local(&channel, conn);
        }
    }

    /// The answer parts that reached `conn` since it last looked.
    pub fn take_answers(&self, conn: ConnId) -> Vec<ApiPart> {
        self.answers.borrow_mut().remove(&conn).unwrap_or_default()
    }

    /// The close code and reason `/api/disconnect` asked for `conn`.
    pub fn take_disconnect(&self, conn: ConnId) -> Option<(u16, String)> {
        self.closing.borrow_mut().remove(&conn)
    }

    /// Sends `query` to core `to` (a channel's owner: [`Hub::owner_of`]);
    /// the answer reaches `conn` on this core in the form `reply` asks.
    pub fn query(&self, conn: ConnId, to: usize, query: Query, reply: ReplyTo) {
        let msg = Msg::Query {
            query: Box::new(query),
            from: self.core,
            conn,
            reply,
        };
        self.dispatch(to, msg);
    }

    pub fn subscribe(
        &self,
        conn: ConnId,
        channel: &str,
        id: Option<u64>,
        since: Option<Since>,
    ) -> Result<(), Refusal> {
        let (channel, who, window) = {
            let mut members = self.members.borrow_mut();
            let member = members.get_mut(&conn).ok_or(ErrorCode::InvalidCommand)?;
            if member.channels.iter().any(|c| &**c == channel) {
                return Err(ErrorCode::AlreadySubscribed.into());
            }
            if member.channels.len() >= self.settings.max_subscriptions {
                return Err(Refusal::too_many_subscriptions(
                    self.settings.max_subscriptions,
                ));
            }
            let channel: Arc<str> = Arc::from(channel);
            member.channels.push(channel.clone());
            let window = shared_window(member.slot.deflate.params());
            (channel, member.who.clone(), window)
        };
        let deflate = {
            let mut local = self.local.borrow_mut();
            let entry = local.entry(channel.clone()).or_default();
            entry.pending.push(Pending {
                conn,
                then: None,
                window,
            });
            entry.windows.add(window);
            entry.windows.widest()
        };
        let owner = self.owner_of(&channel);
        self.dispatch(
            owner,
            Msg::Subscribe {
                channel,
                from: self.core,
                conn,
                id,
                since: since.map(Box::new),
                who,
                deflate,
            },
        );
        Ok(())
    }

    /// Ends `conn`'s subscription of `channel` and queues `reply` (the
    /// unsubscribe's answer) for it: at once, or, while the subscribe is still
    /// waiting for the owner, right after the subscribe's own reply.
    pub fn unsubscribe(&self, conn: ConnId, channel: &str, reply: Bytes) -> Result<(), ErrorCode> {
        let (removed, slot) = {
            let mut members = self.members.borrow_mut();
            let member = members.get_mut(&conn).ok_or(ErrorCode::InvalidCommand)?;
            let at = member
                .channels
                .iter()
                .position(|c| &**c == channel)
                .ok_or(ErrorCode::NotSubscribed)?;
            (member.channels.swap_remove(at), member.slot.clone())
        };
        {
            let mut local = self.local.borrow_mut();
            let waiting = local.get_mut(&removed).and_then(|entry| {
                entry
                    .pending
                    .iter_mut()
                    .find(|p| p.conn == conn && p.then.is_none())
            });
            if let Some(waiting) = waiting {
                waiting.then = Some(reply);
                return Ok(());
            }
        }
        self.drop_local(&removed, conn);
        self.queue(&slot, reply);
        Ok(())
    }

    /// Forwards a publish to its owner. `Err(Overloaded)` when the owner's inbox
    /// is full: the publish is not taken, and not acknowledged.
    pub fn publish(
        &self,
        conn: ConnId,
        channel: &str,
        data: Bytes,
        reply: ReplyTo,
    ) -> Result<(), Refusal> {
        if let Some(cluster) = &self.cluster {
            // Redis numbers it: no owner core on the way (see `cluster.rs`).
            return cluster.publish(channel, data, self.core, conn, reply);
        }
        let owner = self.owner_of(channel);
        let msg = Msg::Publish {
            channel: Arc::from(channel),
            data,
            from: self.core,
            conn,
            reply,
        };
        if owner == self.core {
            self.handle(msg);
            return Ok(());
        }
        // Refused rather than spilled while the owner's inbox is full (or
        // earlier messages to it still wait), so a flood cannot grow memory.
        self.port.try_send(owner, msg).map_err(|_| {
            bump(&self.stats.overloaded, 1);
            Refusal::overloaded(self.settings.spill_limit)
        })
    }

    fn drop_local(&self, channel: &Arc<str>, conn: ConnId) {
        let (now_empty, widest) = {
            let mut local = self.local.borrow_mut();
            let Some(entry) = local.get_mut(channel) else {
                return;
            };
            if let Some(slot) = entry.live.remove(&conn) {
                entry.windows.remove(shared_window(slot.deflate.params()));
            }
            let windows = &mut entry.windows;
            entry.pending.retain(|p| {
                if p.conn == conn {
                    windows.remove(p.window);
                }
                p.conn != conn
            });
            (entry.is_empty(), entry.windows.widest())
        };
        self.presence_leave(channel, conn, widest);
        if now_empty {
            self.release(channel);
        }
    }

    /// Tells `channel`'s owner that `conn` left it, and the widest shared
    /// deflate window this core has left for it.
    fn presence_leave(&self, channel: &Arc<str>, conn: ConnId, deflate: u8) {
        let msg = Msg::PresenceLeave {
            channel: channel.clone(),
            from: self.core,
            conn,
            deflate,
        };
        self.dispatch(self.owner_of(channel), msg);
    }

    /// Sends the answer `result` to `conn` on core `to`, as `reply` asks
    /// (behind what the disk engine holds: [`Hub::emit`]).
    fn answer_to(&self, to: usize, conn: ConnId, reply: ReplyTo, result: Result<Bytes, Refusal>) {
        if let Some(msg) = answer_msg(conn, reply, result) {
            self.emit(to, msg);
        }
    }

    /// Forgets a channel this core no longer has subscribers of, and tells
    /// its owner.
    fn release(&self, channel: &Arc<str>) {
        self.local.borrow_mut().remove(channel);
        let owner = self.owner_of(channel);
        self.dispatch(
            owner,
            Msg::Unsubscribe {
                channel: channel.clone(),
                from: self.core,
            },
        );
    }

    // ----- messages -----

    /// Sends `msg` to core `to`; to this core it is handled at once. Keeps
    /// per-target FIFO order through the bus's spill queue.
    fn dispatch(&self, to: usize, msg: Msg) {
        self.port.dispatch(to, msg, |msg| self.handle(msg));
    }

    /// Retries spilled messages in order; true when some are still waiting.
    pub fn retry_spill(&self) -> bool {
        self.port.retry_spill()
    }

    /// Handles up to `budget` inbox messages; returns how many.
    pub fn drain_inbox(&self, budget: usize) -> usize {
        drain::drain(&self.port, budget, |msg| self.handle(msg))
    }

    pub fn handle(&self, msg: Msg) {
        match msg {
            Msg::Publish {
                channel,
                data,
                from,
                conn,
                reply,
            } => {
                if let Some(cluster) = &self.cluster {
                    if let Err(refusal) = cluster.publish(&channel, data, from, conn, reply) {
                        self.answer_to(from, conn, reply, Err(refusal));
                    }
                    return;
                }
                match self.owner_publish(&channel, &data) {
                    Ok(offset) => self.emit_ack(from, conn, reply, &channel, offset),
                    Err(refusal) => self.answer_to(from, conn, reply, Err(refusal)),
                }
            }
            Msg::PublishReply { conn, reply } => self.send_to_conn(conn, reply),
            Msg::Answer { conn, part } => self.take_part(conn, *part),
            Msg::PresenceLeave {
                channel,
                from,
                conn,
                deflate,
            } => {
                self.owner_set_deflate(&channel, from, deflate);
                self.owner_presence_leave(&channel, from, conn)
            }
            Msg::Query {
                query,
                from,
                conn,
                reply,
            } => self.handle_query(*query, from, conn, reply),
            Msg::Subscribe {
                channel,
                from,
                conn,
                id,
                since,
                who,
                deflate,
            } if self.cluster.is_some() => {
                self.owner_presence_join(&channel, from, conn, who);
                let waiter = Waiter {
                    from,
                    conn,
                    id,
                    since: since.map(|s| *s),
                    at: Instant::now(),
                };
                self.remote_subscribe(channel, waiter, deflate);
            }
            Msg::Subscribe {
                channel,
                from,
                conn,
                id,
                since,
                who,
                deflate,
            } => {
                let subscribed = self.owner_subscribe(&channel, from, since.as_deref(), deflate);
                if subscribed.is_ok() {
                    self.owner_presence_join(&channel, from, conn, who);
                }
                let (reply, replay, ok) = match subscribed {
                    Ok((epoch, offset, resume)) => {
                        let (recovered, replay) = match resume {
                            Some(Resume::Recovered(frames)) => (true, frames),
                            Some(Resume::NotRecovered) | None => (false, Vec::new()),
                        };
                        (
                            subscribed_frame(id, &epoch, offset, recovered),
                            replay,
                            true,
                        )
                    }
                    Err(refusal) => (refusal.frame(id), Vec::new(), false),
                };
                self.emit_subscribe_reply(from, channel, conn, id, reply, replay, ok);
            }
            Msg::SubscribeReply {
                channel,
                conn,
                reply,
                replay,
                ok,
            } => self.subscribe_reply(channel, conn, reply, replay, ok),
            Msg::Unsubscribe { channel, from } if self.cluster.is_some() => {
                self.remote_unsubscribe(&channel, from)
            }
            Msg::Unsubscribe { channel, from } => {
                if let Some(owned) = self.owned.borrow_mut().get_mut(&channel) {
                    owned.set_core_subscribed(from, false, Instant::now());
                }
            }
            Msg::Deliver {
                channel,
                frame,
                packed,
            } => self.deliver(&channel, frame, packed),
            Msg::EnginePush { push } => self.remote_push(*push),
            Msg::EngineLive { channel } => {
                self.with_mirror(&channel, None, |m, out| m.on_live(out))
            }
            Msg::EngineHistory(answer) => {
                let HistoryAnswer {
                    channel,
                    gen,
                    purpose,
                    result,
                } = *answer;
                self.remote_history(&channel, gen, purpose, result)
            }
        }
    }

    /// This core's pub/sub figures for a scrape: its counters, and gauges
    /// read from its state now.
    pub fn snapshot(&self) -> PubsubSnapshot {
        let stats = &self.stats;
        let (channels, history_bytes) = self.owned_summary();
        let (mirrored, mirrored_bytes) = self.mirrored_summary();
        let (channels, history_bytes) = (channels + mirrored, history_bytes + mirrored_bytes);
        let subscriptions = self
            .members
            .borrow()
            .values()
            .map(|m| m.channels.len() as u64)
            .sum();
        PubsubSnapshot {
            publishes: stats.publishes.get(),
            deliveries: stats.deliveries.get(),
            slow_consumer_closes: stats.slow_consumer_closes.get(),
            publishes_refused: stats.overloaded.get(),
            evicted_channels: stats.evicted_channels.get(),
            presence_info_dropped: stats.presence_info_dropped.get(),
            deflate_compressions: self.deflate.compressions(),
            channels: channels as u64,
            subscriptions,
            history_bytes: history_bytes as u64,
            inbox_depth: self.port.depth() as u64,
            publish_fanout: stats.publish_fanout.snapshot(),
        }
    }

    fn owned_or_create<'a>(
        &self,
        owned: &'a mut HashMap<Arc<str>, OwnedChannel>,
        channel: &Arc<str>,
        now: Instant,
    ) -> Result<&'a mut OwnedChannel, Refusal> {
        if !owned.contains_key(channel) {
            let settings = &self.settings;
            if owned.len() >= settings.max_channels {
                return Err(Refusal::too_many_channels(
                    settings.max_channels,
                    settings.max_channels_total,
                    settings.workers,
                ));
            }
            let epoch = format!("{:016x}", fastrand::u64(..));
            owned.insert(
                channel.clone(),
                OwnedChannel::new(epoch, self.port.cores(), now),
            );
        }
        owned
            .get_mut(channel)
            .ok_or_else(|| ErrorCode::TooManyChannels.into())
    }

    /// Owner side of a publish: offset, one frame, history, fan-out to cores.
    fn owner_publish(&self, channel: &Arc<str>, data: &[u8]) -> Result<u64, Refusal> {
        if self.port.spilled() > self.settings.spill_limit {
            bump(&self.stats.overloaded, 1);
            return Err(Refusal::overloaded(self.settings.spill_limit));
        }
        let now = Instant::now();
        let (offset, frame, packed, targets) = {
            let mut owned = self.owned.borrow_mut();
            let ch = self.owned_or_create(&mut owned, channel, now)?;
            let offset = ch.next_offset();
            // `data` is the raw JSON the parser accepted: valid UTF-8.
            let data = std::str::from_utf8(data).map_err(|_| ErrorCode::InvalidCommand)?;
            self.store_append(channel, offset, ch.epoch(), data)?;
            let frame = push_frame(channel, offset, ch.epoch(), data);
            ch.append(frame.clone(), self.settings.history_size, now);
            let packed = self.deflate.shared_push(&frame, ch.deflate_widest());
            let targets: Vec<usize> = ch.subscriber_cores().collect();
            (offset, frame, packed, targets)
        };
        bump(&self.stats.publishes, 1);
        for core in targets {
            self.emit(
                core,
                Msg::Deliver {
                    channel: channel.clone(),
                    frame: frame.clone(),
                    packed: packed.clone(),
                },
            );
        }
        self.stats.publish_fanout.record(now.elapsed());
        Ok(offset)
    }

    /// Owner side of a subscribe: mark the core (and its widest shared
    /// deflate window), report the position and replay.
    fn owner_subscribe(
        &self,
        channel: &Arc<str>,
        from: usize,
        since: Option<&Since>,
        deflate: u8,
    ) -> Result<(String, u64, Option<Resume>), Refusal> {
        let now = Instant::now();
        let mut owned = self.owned.borrow_mut();
        let ch = self.owned_or_create(&mut owned, channel, now)?;
        ch.set_core_subscribed(from, true, now);
        ch.set_core_deflate(from, deflate);
        let resume = since.map(|since| ch.resume(since));
        Ok((ch.epoch().to_owned(), ch.last_offset(), resume))
    }

    /// Owner side: core `from`'s widest shared deflate window for
    /// `channel` is now `window` (a leave's word; see `deflate.rs`).
    fn owner_set_deflate(&self, channel: &Arc<str>, from: usize, window: u8) {
        if self.cluster.is_some() {
            if let Some(m) = self.mirrors.borrow_mut().get_mut(channel) {
                m.set_core_deflate(from, window);
            }
        } else if let Some(ch) = self.owned.borrow_mut().get_mut(channel) {
            ch.set_core_deflate(from, window);
        }
    }

    fn subscribe_reply(
        &self,
        channel: Arc<str>,
        conn: ConnId,
        reply: Bytes,
        replay: Vec<Bytes>,
        ok: bool,
    ) {
        let (slot, then, now_empty, widest) = {
            let mut local = self.local.borrow_mut();
            let Some(entry) = local.get_mut(&channel) else {
                return;
            };
            // The oldest waiting subscribe of `conn`: the owner answers in order.
            let Some(at) = entry.pending.iter().position(|p| p.conn == conn) else {
                return;
            };
            let Pending { then, window, .. } = entry.pending.remove(at);
            let slot = self.members.borrow().get(&conn).map(|m| m.slot.clone());
            if let (true, None, Some(slot)) = (ok, &then, &slot) {
                entry.live.insert(conn, slot.clone());
            } else {
                entry.windows.remove(window);
            }
            (slot, then, entry.is_empty(), entry.windows.widest())
        };
        if !ok && then.is_none() {
            // The owner refused: forget the subscription on this side too.
            if let Some(member) = self.members.borrow_mut().get_mut(&conn) {
                member.channels.retain(|c| *c != channel);
            }
        }
        if !ok || then.is_some() {
            // Unsubscribed (or refused) before the answer: not present any more.
            self.presence_leave(&channel, conn, widest);
        }
        if now_empty {
            self.release(&channel);
        }
        let Some(slot) = slot else { return };
        self.queue(&slot, reply);
        for frame in replay.into_iter().chain(then) {
            self.queue(&slot, frame);
        }
    }

    fn deliver(&self, channel: &Arc<str>, frame: Bytes, packed: Option<Bytes>) {
        let local = self.local.borrow();
        let Some(entry) = local.get(channel) else {
            return;
        };
        // Re-wrapped once for the core: every subscriber below shares it by a
        // plain `Rc` count instead of an atomic bump on the frame's count.
        let frame = Rc::new(frame);
        let packed = packed.map(Rc::new);
        for slot in entry.live.values() {
            let out = match slot.deflate.params() {
                None => Queued::shared(&frame),
                Some(params) => self.deflated_push(slot, &params, &frame, packed.as_ref()),
            };
            self.queue_as_is(slot, out);
        }
        bump(&self.stats.deliveries, entry.live.len() as u64);
    }

    /// The push `frame` as a deflate subscriber gets it: the compressed
    /// variant the owner made (`packed`) when its window fits, its own
    /// compressed copy (context takeover), or `frame` itself. Kept out of
    /// line so the loop over uncompressed subscribers stays as small as it
    /// was.
    #[cold]
    #[inline(never)]
    fn deflated_push(
        &self,
        slot: &Slot,
        params: &DeflateParams,
        frame: &Rc<Bytes>,
        packed: Option<&Rc<Bytes>>,
    ) -> Queued {
        if !params.server_no_context_takeover {
            // Compressed with the connection's own stream: its own bytes.
            return Queued::Own(self.deflate.for_slot(slot, Bytes::clone(frame)));
        }
        match packed {
            Some(packed) if params.window_fits(frame.len()) => Queued::shared(packed),
            _ => Queued::shared(frame),
        }
    }

    fn send_to_conn(&self, conn: ConnId, frame: Bytes) {
        let slot = self.members.borrow().get(&conn).map(|m| m.slot.clone());
        if let Some(slot) = slot {
            self.queue(&slot, frame);
        }
    }

    /// Queues a frame for one connection (compressed when it negotiated
    /// deflate and the frame is worth it), or marks it a slow consumer.
    fn queue(&self, slot: &Slot, frame: Bytes) {
        let frame = self.deflate.for_slot(slot, frame);
        self.queue_as_is(slot, Queued::Own(frame));
    }

    /// [`Hub::queue`] for a frame already in its final form.
    #[inline]
    fn queue_as_is(&self, slot: &Slot, frame: Queued) {
        let mut outbox = slot.outbox.borrow_mut();
        if outbox.len() + frame.len() > self.settings.max_outbound {
            drop(outbox);
            bump(&self.stats.slow_consumer_closes, 1);
            slot.kick(KICK_OVERFLOW);
            return;
        }
        outbox.push(frame);
        drop(outbox);
        slot.kick(KICK_OUTBOUND);
    }

    /// Trims history by age and evicts idle channels nobody subscribes to;
    /// on the Redis engine, retries and times out what waits on Redis.
    pub fn sweep(&self, now: Instant) {
        self.remote_tick(now);
        let ttl = self.settings.history_ttl;
        let mut owned = self.owned.borrow_mut();
        let before = owned.len();
        owned.retain(|_, ch| {
            ch.expire(ttl, now);
            !ch.is_evictable(ttl, now)
        });
        let evicted = (before - owned.len()) as u64;
        bump(&self.stats.evicted_channels, evicted);
    }
}

/// How often the Redis engine's waits and retries are looked at.
const REMOTE_TICK: Duration = Duration::from_millis(100);

/// The Redis engine's side of the owner core: each channel's [`Mirror`]
/// decides, the hub carries out its [`Action`]s in order.
impl Hub {
    fn mirrored_summary(&self) -> (usize, usize) {
        let mirrors = self.mirrors.borrow();
        (
            mirrors.len(),
            mirrors.values().map(|m| m.channel().history_bytes()).sum(),
        )
    }

    /// Runs `f` on `channel`'s mirror (of generation `gen` when given) and
    /// carries out what it asks for.
    fn with_mirror(
        &self,
        channel: &Arc<str>,
        gen: Option<u64>,
        f: impl FnOnce(&mut Mirror, &mut Vec<Action>),
    ) {
        let mut out = Vec::new();
        let found_gen = {
            let mut mirrors = self.mirrors.borrow_mut();
            let Some(mirror) = mirrors.get_mut(channel) else {
                return;
            };
            if gen.is_some_and(|g| g != mirror.gen) {
                return;
            }
            f(mirror, &mut out);
            mirror.gen
        };
        self.carry_out(channel, found_gen, out);
    }

    fn carry_out(&self, channel: &Arc<str>, gen: u64, actions: Vec<Action>) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        for action in actions {
            match action {
                Action::Fanout(frame) => {
                    bump(&self.stats.publishes, 1);
                    // A push enters the node once, here: compressed once
                    // here too, like the memory engine's publish.
                    let (targets, packed): (Vec<usize>, _) =
                        match self.mirrors.borrow().get(channel) {
                            Some(m) => (
                                m.channel().subscriber_cores().collect(),
                                self.deflate
                                    .shared_push(&frame, m.channel().deflate_widest()),
                            ),
                            None => (Vec::new(), None),
                        };
                    for core in targets {
                        let msg = Msg::Deliver {
                            channel: channel.clone(),
                            frame: frame.clone(),
                            packed: packed.clone(),
                        };
                        self.dispatch(core, msg);
                    }
                }
                Action::Sync(since) => {
                    let asked = cluster.history(channel, gen, since, ReadPurpose::Sync, self.core);
                    if asked.is_err() {
                        // Queue full: treated as a failed read, retried on the tick.
                        let result = Err(EngineError::Overloaded);
                        self.with_mirror(channel, Some(gen), |m, out| {
                            m.on_sync(result, Instant::now(), out)
                        });
                    }
                }
                Action::ReadFor(waiter) => {
                    let since = waiter.since.clone();
                    let purpose = ReadPurpose::For(waiter.clone());
                    if let Err(refusal) = cluster.history(channel, gen, since, purpose, self.core) {
                        self.with_mirror(channel, Some(gen), |m, out| {
                            m.on_read_for(waiter.clone(), Err(EngineError::Overloaded), out)
                        });
                        tracing::debug!(%channel, "history read refused: {}", refusal.message);
                    }
                }
                Action::Answer(waiter, answer) => self.answer(channel, waiter, answer),
                Action::Skipped(n) => {
                    cluster
                        .skipped
                        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }

    fn answer(
        &self,
        channel: &Arc<str>,
        waiter: Waiter,
        answer: Result<super::mirror::Answer, Refusal>,
    ) {
        let (reply, replay, ok) = match answer {
            Ok(a) => (
                subscribed_frame(waiter.id, &a.epoch, a.offset, a.recovered),
                a.replay,
                true,
            ),
            Err(refusal) => (refusal.frame(waiter.id), Vec::new(), false),
        };
        let msg = Msg::SubscribeReply {
            channel: channel.clone(),
            conn: waiter.conn,
            reply,
            replay,
            ok,
        };
        self.dispatch(waiter.from, msg);
    }

    fn remote_subscribe(&self, channel: Arc<str>, waiter: Waiter, deflate: u8) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let now = waiter.at;
        let created = {
            let mut mirrors = self.mirrors.borrow_mut();
            if mirrors.contains_key(&channel) {
                false
            } else {
                let gen = self.next_gen.get();
                self.next_gen.set(gen + 1);
                let mirror = Mirror::new(
                    channel.clone(),
                    gen,
                    self.port.cores(),
                    self.settings.history_size,
                    now,
                );
                mirrors.insert(channel.clone(), mirror);
                true
            }
        };
        if created {
            if let Err(e) = cluster.subscribe(&channel) {
                // The waiter times out `unavailable`; the mirror goes with
                // its last subscriber.
                tracing::warn!(%channel, "redis subscribe not queued: {e}");
            }
        }
        let from = waiter.from;
        self.with_mirror(&channel, None, |m, out| {
            m.set_core_subscribed(from, true, now);
            m.set_core_deflate(from, deflate);
            m.add_waiter(waiter, out);
        });
    }

    fn remote_unsubscribe(&self, channel: &Arc<str>, from: usize) {
        let unused = {
            let mut mirrors = self.mirrors.borrow_mut();
            let Some(mirror) = mirrors.get_mut(channel) else {
                return;
            };
            mirror.set_core_subscribed(from, false, Instant::now());
            mirror.is_unused()
        };
        if unused {
            self.mirrors.borrow_mut().remove(channel);
            if let Some(cluster) = &self.cluster {
                cluster.unsubscribe(channel);
            }
        }
    }

    fn remote_push(&self, push: Push) {
        if push.channel == CONTROL_CHANNEL {
            return self.control(&push.payload);
        }
        let channel: Arc<str> = match self.mirrors.borrow().get_key_value(push.channel.as_str()) {
            Some((name, _)) => name.clone(),
            None => return,
        };
        self.with_mirror(&channel, None, |m, out| m.on_push(push, out));
    }

    fn remote_history(
        &self,
        channel: &Arc<str>,
        gen: u64,
        purpose: ReadPurpose,
        result: Result<HistoryReply, EngineError>,
    ) {
        let known = self
            .mirrors
            .borrow()
            .get(channel)
            .is_some_and(|m| m.gen == gen);
        match purpose {
            ReadPurpose::Sync => self.with_mirror(channel, Some(gen), |m, out| {
                m.on_sync(result, Instant::now(), out)
            }),
            ReadPurpose::For(waiter) if known => self.with_mirror(channel, Some(gen), |m, out| {
                m.on_read_for(waiter, result, out)
            }),
            // The channel went meanwhile: still answer (the subscriber core
            // ignores it if the connection is gone too).
            ReadPurpose::For(waiter) => {
                let why = Refusal::unavailable("the channel was released meanwhile");
                self.answer(channel, waiter, Err(why));
            }
        }
    }

    fn remote_tick(&self, now: Instant) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let due = self
            .presence_refreshed
            .get()
            .is_none_or(|at| now.saturating_duration_since(at) >= cluster.presence_ttl / 3);
        if due {
            self.presence_refreshed.set(Some(now));
            let prefix = format!("{}-", cluster.node);
            for (channel, set) in self.presence.borrow().iter() {
                let stored = set.entries(&prefix).into_iter();
                let pairs = stored.map(|e| (e.client, e.who.encode_stored())).collect();
                cluster.presence_write(channel, PresenceOp::Refresh(pairs));
            }
            self.write_node_record(cluster);
        }
        let (timeout, ttl) = (cluster.wait_limit, self.settings.history_ttl);
        let names: Vec<Arc<str>> = self.mirrors.borrow().keys().cloned().collect();
        for channel in names {
            self.with_mirror(&channel, None, |m, out| m.on_tick(now, timeout, ttl, out));
        }
    }
}

/// The hub's task on its core: drain the inbox (`pubsub.inbox_batch` per
/// turn, so one flood of deliveries cannot starve the sockets that drain
/// it), retry spills, sweep history, sleep when idle.
pub async fn run(hub: Rc<Hub>) {
    if hub.store.is_some() {
        return durable::run(hub).await;
    }
    let ttl = hub.settings.history_ttl;
    let mut tick = (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    if hub.cluster.is_some() {
        // Waiting subscribes time out and failed reads retry on the tick.
        tick = tick.min(REMOTE_TICK);
    }
    let pace = drain::Pace {
        batch: hub.settings.inbox_batch,
        tick: Some(tick),
    };
    drain::run(&hub.port, pace, |msg| hub.handle(msg), |now| hub.sweep(now)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::ServerConfig;
    use crate::mailbox::Kicks;
    use crate::proto::v1::ok_frame;

    fn one_core_hub(tweak: impl FnOnce(&mut ServerConfig)) -> Hub {
        let mut config = ServerConfig::default();
        config.server.workers = 1;
        tweak(&mut config);
        let settings = Settings::from_config(&config);
        Hub::new(0, Arc::new(Mesh::new(1, 64)), settings, Rc::default())
    }

    const ONE: ConnId = ConnId::from_raw(1);

    #[test]
    fn idle_channels_without_subscribers_are_evicted_after_the_ttl() {
        let ttl = Duration::from_secs(60);
        let hub = one_core_hub(|c| c.pubsub.history_ttl = ttl);
        let slot = Rc::new(Slot::new(ONE, Rc::new(Kicks::default())));
        hub.join(slot.clone(), "");
        hub.publish(ONE, "gone", Bytes::from_static(b"1"), ReplyTo::Ws(None))
            .expect("publish");
        hub.subscribe(ONE, "kept", None, None).expect("subscribe");
        hub.publish(ONE, "kept", Bytes::from_static(b"2"), ReplyTo::Ws(None))
            .expect("publish");
        assert_eq!(hub.owned_summary().0, 2);
        let now = Instant::now();
        hub.sweep(now + ttl / 2);
        assert_eq!(hub.owned_summary().0, 2, "not idle long enough yet");
        hub.sweep(now + ttl * 2);
        let (channels, history_bytes) = hub.owned_summary();
        assert_eq!(
            channels, 1,
            "the subscribed channel stays, the idle one goes"
        );
        assert_eq!(history_bytes, 0, "history older than the TTL is dropped");
        assert_eq!(hub.stats.evicted_channels.get(), 1);
        // A leaving member releases its subscription, so the channel can go too.
        hub.leave(ONE);
        hub.sweep(now + ttl * 3);
        assert_eq!(hub.owned_summary().0, 0);
    }

    #[test]
    fn channel_cap_refuses_new_channels_only() {
        let hub = one_core_hub(|c| c.pubsub.max_channels = 1);
        let slot = Rc::new(Slot::new(ONE, Rc::new(Kicks::default())));
        hub.join(slot.clone(), "");
        hub.publish(ONE, "a", Bytes::from_static(b"1"), ReplyTo::Ws(Some(1)))
            .expect("publish");
        hub.publish(ONE, "b", Bytes::from_static(b"1"), ReplyTo::Ws(Some(2)))
            .expect("publish is routed");
        hub.publish(ONE, "a", Bytes::from_static(b"2"), ReplyTo::Ws(Some(3)))
            .expect("publish");
        assert_eq!(hub.stats.publishes.get(), 2);
        let replies: Vec<String> = std::iter::from_fn(|| slot.outbox.borrow_mut().pop_front())
            .map(|frame| String::from_utf8_lossy(&frame).into_owned())
            .collect();
        assert_eq!(replies.len(), 3, "{replies:?}");
        assert!(
            replies[0].contains(r#""id":1,"result":{"offset":1}"#),
            "{replies:?}"
        );
        assert!(
            replies[1].contains(r#""id":2,"error":{"code":"too_many_channels""#),
            "{replies:?}"
        );
        assert!(
            replies[2].contains(r#""id":3,"result":{"offset":2}"#),
            "{replies:?}"
        );
    }

    /// Replies queued for `slot`, as text.
    fn replies(slot: &Slot) -> Vec<String> {
        std::iter::from_fn(|| slot.outbox.borrow_mut().pop_front())
            .map(|frame| String::from_utf8_lossy(&frame).into_owned())
            .collect()
    }

    /// Two cores' hubs on one mesh (inboxes of `inbox` messages), and a
    /// channel core 1 owns.
    fn two_cores(config: ServerConfig, inbox: usize) -> (Vec<Hub>, String) {
        let settings = Settings::from_config(&config);
        let mesh = Arc::new(Mesh::new(2, inbox));
        let hubs = (0..2)
            .map(|core| Hub::new(core, mesh.clone(), settings.clone(), Rc::default()))
            .collect();
        let channel = (0..)
            .map(|i| format!("room:{i}"))
            .find(|c| owner_of(c, 2) == 1)
            .expect("some channel is owned by core 1");
        (hubs, channel)
    }

    #[test]
    fn pipelined_subscribe_unsubscribe_subscribe_to_another_core_is_answered_in_order() {
        let (hubs, channel) = two_cores(ServerConfig::default(), 64);
        let slot = Rc::new(Slot::new(ONE, Rc::new(Kicks::default())));
        hubs[0].join(slot.clone(), "");
        hubs[0]
            .subscribe(ONE, &channel, Some(1), None)
            .expect("subscribe");
        hubs[0]
            .unsubscribe(ONE, &channel, ok_frame(Some(2)))
            .expect("unsubscribe");
        hubs[0]
            .subscribe(ONE, &channel, Some(3), None)
            .expect("subscribe again");
        assert!(
            replies(&slot).is_empty(),
            "nothing is answered before the owner"
        );
        hubs[1].drain_inbox(64);
        hubs[0].drain_inbox(64);
        let got = replies(&slot);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].contains(r#""id":1,"result":{"epoch""#), "{got:?}");
        assert!(got[1].ends_with(r#"{"id":2,"result":{}}"#), "{got:?}");
        assert!(got[2].contains(r#""id":3,"result":{"epoch""#), "{got:?}");
        // Only the last subscribe is live: one push reaches the connection once.
        hubs[1]
            .publish(ONE, &channel, Bytes::from_static(b"7"), ReplyTo::Ws(None))
            .expect("publish");
        hubs[0].drain_inbox(64);
        let got = replies(&slot);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains(r#""data":7"#), "{got:?}");
        // Unsubscribed for good: the owner stops sending to this core.
        hubs[0]
            .unsubscribe(ONE, &channel, ok_frame(Some(4)))
            .expect("unsubscribe");
        hubs[1].drain_inbox(64);
        hubs[1]
            .publish(ONE, &channel, Bytes::from_static(b"8"), ReplyTo::Ws(None))
            .expect("publish");
        assert_eq!(
            hubs[0].drain_inbox(64),
            0,
            "no delivery to an unsubscribed core"
        );
        let got = replies(&slot);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].ends_with(r#"{"id":4,"result":{}}"#), "{got:?}");
    }

    #[test]
    fn api_publishes_are_answered_in_parts_and_refused_when_the_owner_inbox_is_full() {
        let mut config = ServerConfig::default();
        config.pubsub.inbox_capacity = 16;
        let (hubs, channel) = two_cores(config, 16);
        let slot = Rc::new(Slot::new(ONE, Rc::new(Kicks::default())));
        hubs[0].join_api(slot.clone());
        // Core 1 does not drain: its inbox takes 16, the 17th is refused.
        let results: Vec<Result<(), Refusal>> = (0..17)
            .map(|i| hubs[0].publish(ONE, &channel, Bytes::from_static(b"1"), ReplyTo::Api(i)))
            .collect();
        assert!(results[..16].iter().all(Result::is_ok));
        let refused = results[16].as_ref().expect_err("the inbox is full");
        assert_eq!(refused.code, ErrorCode::Overloaded);
        assert!(
            refused.message.contains("pubsub.inbox_capacity = 16"),
            "{}",
            refused.message
        );
        hubs[1].drain_inbox(64);
        hubs[0].drain_inbox(64);
        assert_eq!(slot.take_kicks(), crate::mailbox::KICK_ANSWER);
        let mut parts = hubs[0].take_answers(ONE);
        parts.sort_by_key(|p| p.index);
        assert_eq!(parts.len(), 16);
        for (i, part) in parts.iter().enumerate() {
            let json = part.result.as_ref().expect("published");
            let v: serde_json::Value = serde_json::from_slice(json).expect("json");
            assert_eq!(v["offset"], i as u64 + 1, "{v}");
            assert_eq!(v["epoch"].as_str().map(str::len), Some(16));
        }
        assert!(hubs[0].take_answers(ONE).is_empty(), "taken once");
    }

    /// Compressed pushes across two cores (`hub/tests/deflate.rs`).
    mod deflate;

    /// One shared frame per core for a push (`hub/tests/sharing.rs`).
    mod sharing;

    /// Every inbox slot is as large as the largest message: the Redis
    /// engine's messages are boxed so the memory engine's inboxes do not grow.
    #[test]
    fn engine_messages_do_not_grow_the_inbox_slots() {
        assert!(
            std::mem::size_of::<Msg>() <= 96,
            "{}",
            std::mem::size_of::<Msg>()
        );
    }

    #[test]
    fn owner_is_stable_and_spreads() {
        assert_eq!(owner_of("room:1", 4), owner_of("room:1", 4));
        let mut seen = [0usize; 4];
        for i in 0..1000 {
            seen[owner_of(&format!("room:{i}"), 4)] += 1;
        }
        assert!(seen.iter().all(|n| *n > 150), "{seen:?}");
    }
}
