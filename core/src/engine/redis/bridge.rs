//! The command bridge: one thread per node that owns a Redis connection and
//! runs every publish and history read the node's cores ask for.
//!
//! Cores never block on Redis. They hand a request and a completion callback
//! to [`Bridge::publish`] / [`Bridge::history`], which only push onto a
//! bounded queue (`flume`, capacity `queue_capacity`; full → `Overloaded`
//! at once). The bridge thread takes everything queued since its last round
//! trip (up to `pipeline_batch`), writes it as ONE pipeline, reads the
//! replies in order and calls each callback from the bridge thread. A
//! callback must therefore be cheap and non-blocking: typically it pushes the
//! result onto the owning core's cross-core queue and wakes it.
//!
//! Guarantees:
//! - Every accepted request's callback runs exactly once, with `Ok` only if
//!   Redis replied with the result (never a false acknowledgement).
//! - Requests from one thread are applied in the order they were queued
//!   (one FIFO queue, one connection, one pipeline in order), so one core's
//!   publishes to a channel get increasing offsets in that order.
//! - While Redis is unreachable, requests fail fast with `Unavailable`:
//!   after a failed connect the bridge does not retry before a jittered
//!   backoff, and a connection that broke with requests in flight answers
//!   those `Unavailable` (they may or may not have been applied).
//! - While idle, the bridge pings every `ping_interval` and reconnects in the
//!   background, so the first publish after a Redis restart finds a live
//!   connection; [`BridgeStats::connected`] feeds `/readyz` later.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::Value;

use super::backoff::Backoff;
use super::conn::{Conn, ReadError};
use super::error::EngineError;
use super::history::{recover, HistoryReply};
use super::keys::Keys;
use super::script::{
    new_epoch, parse_nodes, parse_presence, parse_published, parse_snapshot, NodeRecord, Published,
    Script, Snapshot, HISTORY_LUA, NODES_LUA, PRESENCE_LUA, PUBLISH_LUA,
};
use super::settings::RedisSettings;
use crate::proto::v1::Since;

/// The completion a caller supplies; called once, on the bridge thread.
pub type Done<T> = Box<dyn FnOnce(Result<T, EngineError>) + Send>;

enum Request {
    Publish {
        channel: String,
        payload: Bytes,
        done: Done<Published>,
    },
    History {
        channel: String,
        since: Option<Since>,
        done: Done<HistoryReply>,
    },
    /// A raw read for the `history` command: everything kept from offset
    /// `first` on.
    Read {
        channel: String,
        first: u64,
        done: Done<Snapshot>,
    },
    /// A message for every node on `channel`'s pub/sub name, shaped as a
    /// push of offset 0 (`0:0:<payload>`); nothing is stored.
    Broadcast { channel: String, payload: Bytes },
    Presence {
        channel: String,
        op: PresenceOp,
        /// Only reads have a completion; writes are best effort (a lost
        /// leave is repaired by the entry's expiry, a lost join by the next
        /// refresh, which re-adds what its node holds).
        done: Option<Done<Vec<(String, String)>>>,
    },
    Nodes {
        op: NodesOp,
        /// Only reads have a completion; a lost write is the next one's.
        done: Option<Done<Vec<NodeRecord>>>,
    },
}

/// A node core's record written, or every live one read (`nodes.lua`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodesOp {
    /// `member`'s record and its whole set of `(channel, subscribers)`.
    Write {
        member: String,
        record: String,
        channels: Vec<(String, u64)>,
    },
    /// Every live member's record, with its channel counts whose names
    /// start with `prefix` when `channels`.
    Read { channels: bool, prefix: String },
}

/// A presence change or read (`presence.lua`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceOp {
    /// `(member, user)` pairs that subscribed.
    Join(Vec<(String, String)>),
    /// Members that left.
    Leave(Vec<String>),
    /// `(member, user)` pairs still here: their expiry moves on (and an
    /// entry a lost join never wrote is written).
    Refresh(Vec<(String, String)>),
    /// Every member not expired, with its user.
    Read,
}

impl Request {
    fn fail(self, err: EngineError) {
        match self {
            Request::Publish { done, .. } => done(Err(err)),
            Request::History { done, .. } => done(Err(err)),
            Request::Read { done, .. } => done(Err(err)),
            Request::Broadcast { .. } => {}
            Request::Presence { done, .. } => {
                if let Some(done) = done {
                    done(Err(err))
                }
            }
            Request::Nodes { done, .. } => {
                if let Some(done) = done {
                    done(Err(err))
                }
            }
        }
    }
}

/// Counters the bridge thread writes and anyone may read (metrics, tests).
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// True while the bridge holds a logged-in connection.
    pub connected: AtomicBool,
    /// Pipelines written (round trips), including retries after `NOSCRIPT`.
    pub round_trips: AtomicU64,
    /// Requests answered `Unavailable`.
    pub unavailable: AtomicU64,
    /// Successful connects after the first.
    pub reconnects: AtomicU64,
    /// Why the connection was lost or the last connect failed, while
    /// `connected` is false (for `/readyz`); empty while connected.
    pub last_error: std::sync::Mutex<String>,
}

impl BridgeStats {
    /// `None` while connected, else why not.
    pub fn down_reason(&self) -> Option<String> {
        if self.connected.load(Ordering::Relaxed) {
            return None;
        }
        let reason = self
            .last_error
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        Some(if reason.is_empty() {
            "not connected yet".into()
        } else {
            reason
        })
    }

    fn set_last_error(&self, reason: &str) {
        if let Ok(mut last) = self.last_error.lock() {
            reason.clone_into(&mut last);
        }
    }
}

/// Handle held by the cores. Dropping it stops the thread after the queue
/// drains (queued requests are still answered).
pub struct Bridge {
    tx: Option<flume::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<BridgeStats>,
}

impl Bridge {
    /// Connects once on the calling thread, so a wrong URL or an unreachable
    /// server is refused at start-up with the redacted URL and the reason,
    /// then starts the bridge thread.
    pub fn connect(settings: RedisSettings) -> Result<Self, EngineError> {
        let mut conn = Conn::connect(&settings)?;
        load_scripts(&mut conn).map_err(|reason| EngineError::Unavailable {
            url: settings.url.redacted().to_string(),
            reason,
        })?;
        Ok(Self::spawn(settings, Some(conn)))
    }

    /// Starts without a connection: requests fail `Unavailable` until the
    /// background reconnect succeeds (the "start degraded" mode).
    pub fn start_degraded(settings: RedisSettings) -> Self {
        Self::spawn(settings, None)
    }

    fn spawn(settings: RedisSettings, conn: Option<Conn>) -> Self {
        let (tx, rx) = flume::bounded(settings.queue_capacity.max(1));
        let stats = Arc::new(BridgeStats::default());
        stats.connected.store(conn.is_some(), Ordering::Relaxed);
        let worker = Worker::new(settings, conn, rx, stats.clone());
        let thread = std::thread::Builder::new()
            .name("ringcast-redis".into())
            .spawn(move || worker.run())
            .expect("spawning the redis bridge thread");
        Self {
            tx: Some(tx),
            thread: Some(thread),
            stats,
        }
    }

    pub fn stats(&self) -> &Arc<BridgeStats> {
        &self.stats
    }

    /// Queues a publish. `Ok(())` means `done` will be called exactly once;
    /// on `Err` it is dropped uncalled.
    pub fn publish(
        &self,
        channel: &str,
        payload: Bytes,
        done: Done<Published>,
    ) -> Result<(), EngineError> {
        self.enqueue(Request::Publish {
            channel: channel.to_string(),
            payload,
            done,
        })
    }

    /// Queues a history read: epoch and top offset of `channel` (creating its
    /// epoch if it has none) and, with `since`, the recovery.
    pub fn history(
        &self,
        channel: &str,
        since: Option<Since>,
        done: Done<HistoryReply>,
    ) -> Result<(), EngineError> {
        self.enqueue(Request::History {
            channel: channel.to_string(),
            since,
            done,
        })
    }

    /// Queues a history read of everything kept from offset `first` on,
    /// with the channel's epoch and top offset (the `history` command).
    pub fn read(&self, channel: &str, first: u64, done: Done<Snapshot>) -> Result<(), EngineError> {
        self.enqueue(Request::Read {
            channel: channel.to_string(),
            first,
            done,
        })
    }

    /// Queues a message for every node subscribed to `channel` (best effort).
    pub fn broadcast(&self, channel: &str, payload: Bytes) -> Result<(), EngineError> {
        self.enqueue(Request::Broadcast {
            channel: channel.to_string(),
            payload,
        })
    }

    /// Queues a presence change, or a read (with `done`).
    pub fn presence(
        &self,
        channel: &str,
        op: PresenceOp,
        done: Option<Done<Vec<(String, String)>>>,
    ) -> Result<(), EngineError> {
        self.enqueue(Request::Presence {
            channel: channel.to_string(),
            op,
            done,
        })
    }

    /// Queues a node record write, or a read of every live one (with `done`).
    pub fn nodes(
        &self,
        op: NodesOp,
        done: Option<Done<Vec<NodeRecord>>>,
    ) -> Result<(), EngineError> {
        self.enqueue(Request::Nodes { op, done })
    }

    fn enqueue(&self, request: Request) -> Result<(), EngineError> {
        let tx = self.tx.as_ref().ok_or(EngineError::Closed)?;
        tx.try_send(request).map_err(|e| match e {
            flume::TrySendError::Full(_) => EngineError::Overloaded,
            flume::TrySendError::Disconnected(_) => EngineError::Closed,
        })
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The bridge thread's state.
struct Worker {
    settings: RedisSettings,
    keys: Keys,
    publish: Script,
    history: Script,
    presence: Script,
    nodes: Script,
    conn: Option<Conn>,
    rx: flume::Receiver<Request>,
    stats: Arc<BridgeStats>,
    backoff: Backoff,
    /// No connect attempt before this instant (after a failure).
    retry_at: Option<Instant>,
    /// Why the last connect failed, for the `Unavailable` answers.
    last_error: String,
    /// Last time the connection was seen alive.
    last_alive: Instant,
    ever_connected: bool,
}

impl Worker {
    fn new(
        settings: RedisSettings,
        conn: Option<Conn>,
        rx: flume::Receiver<Request>,
        stats: Arc<BridgeStats>,
    ) -> Self {
        Self {
            keys: Keys::new(&settings.key_prefix),
            publish: Script::new(PUBLISH_LUA),
            history: Script::new(HISTORY_LUA),
            presence: Script::new(PRESENCE_LUA),
            nodes: Script::new(NODES_LUA),
            backoff: Backoff::new(settings.backoff_base, settings.backoff_max),
            ever_connected: conn.is_some(),
            conn,
            rx,
            stats,
            retry_at: None,
            last_error: "not connected yet".into(),
            last_alive: Instant::now(),
            settings,
        }
    }

    fn run(mut self) {
        let mut batch = Vec::with_capacity(self.settings.pipeline_batch.max(1));
        loop {
            let wait = self.idle_wait();
            match self.rx.recv_timeout(wait) {
                Ok(first) => batch.push(first),
                Err(flume::RecvTimeoutError::Timeout) => {
                    self.on_idle();
                    continue;
                }
                Err(flume::RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < self.settings.pipeline_batch.max(1) {
                match self.rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.ensure_connected();
            if self.conn.is_some() {
                self.run_batch(&mut batch);
            } else {
                let err = self.unavailable(self.last_error.clone());
                for r in batch.drain(..) {
                    self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
                    r.fail(err.clone());
                }
            }
        }
    }

    fn unavailable(&self, reason: String) -> EngineError {
        EngineError::Unavailable {
            url: self.settings.url.redacted().to_string(),
            reason,
        }
    }

    /// How long to wait for a request before doing idle work.
    fn idle_wait(&self) -> Duration {
        match (&self.conn, self.retry_at) {
            (None, Some(at)) => at.saturating_duration_since(Instant::now()),
            (None, None) => Duration::ZERO,
            (Some(_), _) => self
                .settings
                .ping_interval
                .saturating_sub(self.last_alive.elapsed()),
        }
    }

    /// Nothing to do: reconnect in the background, or check the connection.
    fn on_idle(&mut self) {
        if self.conn.is_none() {
            self.ensure_connected();
            return;
        }
        if self.last_alive.elapsed() < self.settings.ping_interval {
            return;
        }
        let mut ping = Vec::new();
        redis::cmd("PING").write_packed_command(&mut ping);
        let result = self.conn.as_mut().map(|c| {
            c.send(&ping)?;
            c.read().map_err(read_reason)
        });
        match result {
            Some(Ok(_)) => self.last_alive = Instant::now(),
            Some(Err(reason)) => self.drop_connection(reason),
            None => {}
        }
    }

    fn ensure_connected(&mut self) {
        if self.conn.is_some() || self.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let connected = Conn::connect(&self.settings).and_then(|mut conn| {
            load_scripts(&mut conn).map_err(|reason| self.unavailable(reason))?;
            Ok(conn)
        });
        match connected {
            Ok(conn) => {
                self.conn = Some(conn);
                self.retry_at = None;
                self.backoff.reset();
                self.last_alive = Instant::now();
                self.stats.set_last_error("");
                self.stats.connected.store(true, Ordering::Relaxed);
                if self.ever_connected {
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                self.ever_connected = true;
                tracing::info!(url = %self.settings.url, "redis bridge connected");
            }
            Err(err) => {
                self.last_error = match err {
                    EngineError::Unavailable { reason, .. } => reason,
                    other => other.to_string(),
                };
                self.stats.set_last_error(&self.last_error);
                self.retry_at = Some(Instant::now() + self.backoff.next_delay());
            }
        }
    }

    fn drop_connection(&mut self, reason: String) {
        tracing::warn!(url = %self.settings.url, %reason, "redis bridge connection lost");
        self.conn = None;
        self.stats.set_last_error(&reason);
        self.stats.connected.store(false, Ordering::Relaxed);
        self.last_error = reason;
        // Try again at the next request or idle turn: a server that restarted
        // is often back at once; the backoff applies from the next failure.
        self.retry_at = None;
    }

    /// Encodes one request's script invocation.
    fn encode(&self, request: &Request, by_source: bool, out: &mut Vec<u8>) {
        let major = self.conn.as_ref().map_or(7, |c| c.version_major);
        match request {
            Request::Publish {
                channel, payload, ..
            } => {
                let (meta, history) = (self.keys.meta(channel), self.keys.history(channel));
                let mut cmd = self.publish.invocation(by_source, [&meta, &history]);
                cmd.arg(new_epoch())
                    .arg(&payload[..])
                    .arg(self.settings.history_size)
                    .arg(whole_secs(self.settings.history_ttl))
                    .arg(whole_secs(self.settings.meta_ttl))
                    .arg(self.keys.pubsub(channel))
                    .arg(if major >= 7 { "spublish" } else { "publish" });
                cmd.write_packed_command(out);
            }
            Request::History { channel, since, .. } => {
                let (meta, history) = (self.keys.meta(channel), self.keys.history(channel));
                let mut cmd = self.history.invocation(by_source, [&meta, &history]);
                let first = since
                    .as_ref()
                    .map_or(String::new(), |s| s.offset.saturating_add(1).to_string());
                cmd.arg(new_epoch())
                    .arg(whole_secs(self.settings.meta_ttl))
                    .arg(first)
                    .arg(whole_secs(self.settings.history_ttl) * 1000);
                cmd.write_packed_command(out);
            }
            Request::Read { channel, first, .. } => {
                let (meta, history) = (self.keys.meta(channel), self.keys.history(channel));
                let mut cmd = self.history.invocation(by_source, [&meta, &history]);
                cmd.arg(new_epoch())
                    .arg(whole_secs(self.settings.meta_ttl))
                    .arg(first.max(&1).to_string())
                    .arg(whole_secs(self.settings.history_ttl) * 1000);
                cmd.write_packed_command(out);
            }
            Request::Broadcast { channel, payload } => {
                let command = if major >= 7 { "SPUBLISH" } else { "PUBLISH" };
                let mut wire = b"0:0:".to_vec();
                wire.extend_from_slice(payload);
                redis::cmd(command)
                    .arg(self.keys.pubsub(channel))
                    .arg(wire)
                    .write_packed_command(out);
            }
            Request::Presence { channel, op, .. } => {
                let (set, users) = (
                    self.keys.presence(channel),
                    self.keys.presence_users(channel),
                );
                let mut cmd = self.presence.invocation(by_source, [&set, &users]);
                let ttl_ms = self.settings.presence_ttl.as_millis().max(1) as u64;
                match op {
                    PresenceOp::Join(pairs) | PresenceOp::Refresh(pairs) => {
                        // A refresh re-joins: the same write, with a new expiry.
                        cmd.arg("join").arg(ttl_ms);
                        for (member, user) in pairs {
                            cmd.arg(member).arg(user);
                        }
                    }
                    PresenceOp::Leave(members) => {
                        cmd.arg("leave").arg(ttl_ms).arg(members);
                    }
                    PresenceOp::Read => {
                        cmd.arg("read").arg(ttl_ms);
                    }
                }
                cmd.write_packed_command(out);
            }
            Request::Nodes { op, .. } => {
                let (set, records, counts) = self.keys.nodes();
                let mut cmd = self.nodes.invocation(by_source, [&set, &records]);
                let ttl_ms = self.settings.presence_ttl.as_millis().max(1) as u64;
                match op {
                    NodesOp::Write {
                        member,
                        record,
                        channels,
                    } => {
                        cmd.arg("write").arg(ttl_ms).arg(&counts);
                        cmd.arg(member).arg(record);
                        for (channel, n) in channels {
                            cmd.arg(channel).arg(*n);
                        }
                    }
                    NodesOp::Read { channels, prefix } => {
                        cmd.arg("read").arg(ttl_ms).arg(&counts);
                        cmd.arg(if *channels { "1" } else { "0" }).arg(prefix);
                    }
                }
                cmd.write_packed_command(out);
            }
        }
    }

    /// One round trip for the whole batch, then one more for the requests
    /// that met `NOSCRIPT` (sent as `EVAL`).
    fn run_batch(&mut self, batch: &mut Vec<Request>) {
        let mut pending: Vec<Option<Request>> = batch.drain(..).map(Some).collect();
        let mut by_source = false;
        loop {
            let mut out = Vec::with_capacity(pending.len() * 128);
            for r in pending.iter().flatten() {
                self.encode(r, by_source, &mut out);
            }
            let mut retry = Vec::new();
            if let Err(reason) = self.round_trip(&out, &mut pending, &mut retry) {
                let err = self.unavailable(reason.clone());
                // Marked down before anyone hears `unavailable`: a client
                // that asks `/readyz` right after its refusal sees 503.
                self.drop_connection(reason);
                for r in pending.iter_mut().filter_map(Option::take) {
                    self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
                    r.fail(err.clone());
                }
                for r in retry {
                    self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
                    r.fail(err.clone());
                }
                return;
            }
            if retry.is_empty() || by_source {
                // `EVAL` cannot meet NOSCRIPT; anything left is answered.
                for r in retry {
                    r.fail(EngineError::Protocol("NOSCRIPT after EVAL".into()));
                }
                return;
            }
            pending = retry.into_iter().map(Some).collect();
            by_source = true;
        }
    }

    /// Writes `out`, reads one reply per request in `pending` and answers it
    /// (taking it out), except `NOSCRIPT` replies, whose requests go to
    /// `retry`. `Err` if the connection broke; untaken requests remain.
    fn round_trip(
        &mut self,
        out: &[u8],
        pending: &mut [Option<Request>],
        retry: &mut Vec<Request>,
    ) -> Result<(), String> {
        let conn = self.conn.as_mut().ok_or("not connected")?;
        self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
        conn.send(out)?;
        for slot in pending.iter_mut().filter(|slot| slot.is_some()) {
            let reply = conn.read().map_err(read_reason)?;
            let Some(request) = slot.take() else { continue };
            if let Value::ServerError(e) = &reply {
                if e.code() == "NOSCRIPT" {
                    retry.push(request);
                    continue;
                }
            }
            match request {
                Request::Publish { done, .. } => done(parse_published(&reply)),
                Request::History { since, done, .. } => {
                    done(parse_snapshot(&reply).map(|snap| recover(snap, since.as_ref())))
                }
                Request::Read { done, .. } => done(parse_snapshot(&reply)),
                Request::Broadcast { .. } => {}
                Request::Presence { done, .. } => {
                    if let Some(done) = done {
                        done(parse_presence(&reply))
                    }
                }
                Request::Nodes { done, .. } => {
                    if let Some(done) = done {
                        done(parse_nodes(&reply))
                    }
                }
            }
        }
        self.last_alive = Instant::now();
        Ok(())
    }
}

/// `SCRIPT LOAD` every script, so the first publish on a fresh connection is
/// an `EVALSHA` like every other. (A restarted server has an empty script
/// cache; without this the first batch would meet `NOSCRIPT`.)
fn load_scripts(conn: &mut Conn) -> Result<(), String> {
    let mut out = Vec::new();
    let sources = [PUBLISH_LUA, HISTORY_LUA, PRESENCE_LUA, NODES_LUA];
    for source in sources {
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(source)
            .write_packed_command(&mut out);
    }
    conn.send(&out)?;
    for _ in sources {
        if let Value::ServerError(e) = conn.read().map_err(read_reason)? {
            return Err(format!("SCRIPT LOAD refused: {e}"));
        }
    }
    Ok(())
}

fn read_reason(e: ReadError) -> String {
    match e {
        ReadError::Timeout => "no reply within command_timeout".into(),
        ReadError::Broken(reason) => reason,
    }
}

/// Redis expiries are whole seconds; never 0 (which would mean "expire now").
fn whole_secs(d: Duration) -> u64 {
    d.as_secs().max(1)
}
