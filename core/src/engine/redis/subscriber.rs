//! The subscriber side: a few Redis pub/sub connections per node, channels
//! hashed onto them, pushes handed to a caller-supplied [`PushSink`].
//!
//! A node subscribes a channel in Redis once, however many local clients
//! follow it: the caller calls [`Subscriber::subscribe`] for the first local
//! subscriber and [`Subscriber::unsubscribe`] when the last one leaves.
//! Each of the `subscriber_connections` connections is served by its own
//! thread; a channel always maps to the same connection (stable hash), so
//! its pushes arrive in the order Redis ran the publishes, i.e. in offset
//! order. `SSUBSCRIBE`/`smessage` on Redis ≥ 7 (sharded pub/sub, what
//! `publish.lua` sends with `SPUBLISH`), `SUBSCRIBE`/`message` before.
//!
//! The sink is called on the connection's thread and must not block:
//! - [`PushSink::subscribed`] when Redis confirmed a subscription. Pushes
//!   published after this moment will arrive, so this is when the caller may
//!   read history to fill what came before (see the ordering argument in
//!   `mod.rs`). It may come more than once for a channel (unsubscribe and
//!   subscribe again quickly); callers treat it as idempotent.
//! - [`PushSink::push`] for each message of a subscribed channel.
//! - [`PushSink::recover`] after a reconnect, once Redis confirmed the
//!   re-subscription of channels that were live before: anything published
//!   while the connection was down was not delivered, so the caller reads
//!   their history from the last offset it delivered. (The same happens when
//!   Redis cuts a slow subscriber, `client-output-buffer-limit pubsub`.)
//!   Likewise for a channel whose subscription Redis dropped by itself (a
//!   `sunsubscribe` nobody asked for: its cluster slot moved); it is
//!   subscribed again first.
//! - [`PushSink::disconnected`] when a connection is lost.
//!
//! Between pushes the thread waits at most 20 ms for the socket, then looks
//! at its control queue: a subscribe request waits at most that long before
//! it is sent. Idle connections `PING` every `ping_interval`; no answer
//! within `command_timeout` counts as a lost connection.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis::Value;

use super::backoff::Backoff;
use super::conn::{Conn, ReadError};
use super::error::EngineError;
use super::keys::Keys;
use super::push::Push;
use super::settings::RedisSettings;

/// How long a connection thread waits on its socket before looking at its
/// control queue again.
const POLL: Duration = Duration::from_millis(20);

/// Values read per turn at most, so a flood of pushes cannot starve
/// subscribe requests.
const READS_PER_TURN: usize = 1024;

/// Where pushes and subscription events go. Called from connection threads.
pub trait PushSink: Send + Sync + 'static {
    fn push(&self, push: Push);
    fn subscribed(&self, channel: &str);
    fn recover(&self, channels: Vec<String>);
    fn disconnected(&self, _reason: &str) {}
}

/// Counters the connection threads write.
#[derive(Debug, Default)]
pub struct SubscriberStats {
    pub pushes: AtomicU64,
    /// Successful connects after a lost connection.
    pub reconnects: AtomicU64,
    /// Lost connections.
    pub disconnects: AtomicU64,
}

enum Control {
    Subscribe(String),
    Unsubscribe(String),
}

struct ShardHandle {
    tx: Option<flume::Sender<Control>>,
    thread: Option<JoinHandle<()>>,
}

/// Handle to the node's pub/sub connections. Dropping it closes them.
pub struct Subscriber {
    shards: Vec<ShardHandle>,
    stats: Arc<SubscriberStats>,
}

impl Subscriber {
    /// Starts the connection threads; they connect in the background and
    /// report through the sink.
    pub fn start(settings: RedisSettings, sink: Arc<dyn PushSink>) -> Self {
        let stats = Arc::new(SubscriberStats::default());
        let shards = (0..settings.subscriber_connections.max(1))
            .map(|i| {
                let (tx, rx) = flume::bounded(settings.queue_capacity.max(1));
                let shard = Shard::new(settings.clone(), sink.clone(), rx, stats.clone());
                let thread = std::thread::Builder::new()
                    .name(format!("ringcast-redis-sub{i}"))
                    .spawn(move || shard.run())
                    .expect("spawning a redis subscriber thread");
                ShardHandle {
                    tx: Some(tx),
                    thread: Some(thread),
                }
            })
            .collect();
        Self { shards, stats }
    }

    pub fn stats(&self) -> &Arc<SubscriberStats> {
        &self.stats
    }

    /// Subscribes `channel` in Redis (first local subscriber).
    pub fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.send(channel, Control::Subscribe(channel.to_string()))
    }

    /// Unsubscribes `channel` in Redis (last local subscriber gone).
    pub fn unsubscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.send(channel, Control::Unsubscribe(channel.to_string()))
    }

    fn send(&self, channel: &str, control: Control) -> Result<(), EngineError> {
        // DefaultHasher::new() has fixed keys: the same channel always maps
        // to the same connection, which keeps its pushes in order.
        let mut h = DefaultHasher::new();
        channel.hash(&mut h);
        let shard = &self.shards[(h.finish() % self.shards.len() as u64) as usize];
        let tx = shard.tx.as_ref().ok_or(EngineError::Closed)?;
        tx.try_send(control).map_err(|e| match e {
            flume::TrySendError::Full(_) => EngineError::Overloaded,
            flume::TrySendError::Disconnected(_) => EngineError::Closed,
        })
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        for shard in &mut self.shards {
            drop(shard.tx.take());
        }
        for shard in &mut self.shards {
            if let Some(thread) = shard.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// One connection thread's state.
struct Shard {
    settings: RedisSettings,
    keys: Keys,
    sink: Arc<dyn PushSink>,
    rx: flume::Receiver<Control>,
    stats: Arc<SubscriberStats>,
    conn: Option<Conn>,
    backoff: Backoff,
    retry_at: Option<Instant>,
    ever_connected: bool,
    /// Channels the node wants, whether or not Redis confirmed them yet.
    wanted: HashSet<String>,
    /// Confirmed on the current connection.
    live: HashSet<String>,
    /// Were live on a connection that broke: report for recovery once the
    /// new connection confirms them.
    to_recover: HashSet<String>,
    /// Unsubscribes sent and not yet confirmed, per channel: a confirmation
    /// beyond these is Redis dropping the subscription itself (a cluster
    /// slot moved), handled like a lost connection for that channel.
    unsub_sent: HashMap<String, u32>,
    last_alive: Instant,
    ping_sent: Option<Instant>,
}

enum Turn {
    Continue,
    Stop,
}

impl Shard {
    fn new(
        settings: RedisSettings,
        sink: Arc<dyn PushSink>,
        rx: flume::Receiver<Control>,
        stats: Arc<SubscriberStats>,
    ) -> Self {
        Self {
            keys: Keys::new(&settings.key_prefix),
            backoff: Backoff::new(settings.backoff_base, settings.backoff_max),
            settings,
            sink,
            rx,
            stats,
            conn: None,
            retry_at: None,
            ever_connected: false,
            wanted: HashSet::new(),
            live: HashSet::new(),
            to_recover: HashSet::new(),
            unsub_sent: HashMap::new(),
            last_alive: Instant::now(),
            ping_sent: None,
        }
    }

    fn run(mut self) {
        loop {
            if let Turn::Stop = self.handle_control() {
                return;
            }
            if self.conn.is_none() {
                self.try_connect();
                continue;
            }
            self.read_pushes();
            self.check_alive();
        }
    }

    fn sharded(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.version_major >= 7)
    }

    /// Applies queued subscribe/unsubscribe requests; while connected they go
    /// to Redis as one command each way. Without a connection this is also
    /// where the thread waits for the next reconnect attempt.
    fn handle_control(&mut self) -> Turn {
        let mut batch = Vec::new();
        if self.conn.is_none() {
            let wait = self.retry_at.map_or(Duration::ZERO, |at| {
                at.saturating_duration_since(Instant::now())
            });
            match self.rx.recv_timeout(wait) {
                Ok(c) => batch.push(c),
                Err(flume::RecvTimeoutError::Timeout) => {}
                Err(flume::RecvTimeoutError::Disconnected) => return Turn::Stop,
            }
        }
        loop {
            match self.rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(flume::TryRecvError::Empty) => break,
                Err(flume::TryRecvError::Disconnected) => return Turn::Stop,
            }
        }
        let (mut sub, mut unsub) = (Vec::new(), Vec::new());
        for control in batch {
            match control {
                Control::Subscribe(c) => {
                    if self.wanted.insert(c.clone()) {
                        unsub.retain(|u| *u != c);
                        sub.push(c);
                    }
                }
                Control::Unsubscribe(c) => {
                    if self.wanted.remove(&c) {
                        self.to_recover.remove(&c);
                        sub.retain(|s| *s != c);
                        unsub.push(c);
                    }
                }
            }
        }
        if self.conn.is_some() {
            let (s, u) = if self.sharded() {
                ("SSUBSCRIBE", "SUNSUBSCRIBE")
            } else {
                ("SUBSCRIBE", "UNSUBSCRIBE")
            };
            let mut out = Vec::new();
            for c in &unsub {
                *self.unsub_sent.entry(c.clone()).or_default() += 1;
            }
            for (name, channels) in [(s, &sub), (u, &unsub)] {
                if !channels.is_empty() {
                    let mut cmd = redis::cmd(name);
                    for c in channels {
                        cmd.arg(self.keys.pubsub(c));
                    }
                    cmd.write_packed_command(&mut out);
                }
            }
            if !out.is_empty() {
                self.send(&out);
            }
        }
        Turn::Continue
    }

    fn send(&mut self, bytes: &[u8]) {
        let result = match self.conn.as_mut() {
            Some(conn) => conn.send(bytes),
            None => return,
        };
        if let Err(reason) = result {
            self.lost(reason);
        }
    }

    fn try_connect(&mut self) {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let conn = match Conn::connect(&self.settings) {
            Ok(conn) => conn,
            Err(err) => {
                tracing::debug!(%err, "redis subscriber connect failed");
                self.retry_at = Some(Instant::now() + self.backoff.next_delay());
                return;
            }
        };
        if let Err(reason) = conn.set_read_timeout(POLL) {
            tracing::debug!(%reason, "redis subscriber connect failed");
            self.retry_at = Some(Instant::now() + self.backoff.next_delay());
            return;
        }
        self.conn = Some(conn);
        self.backoff.reset();
        self.retry_at = None;
        self.last_alive = Instant::now();
        self.ping_sent = None;
        if self.ever_connected {
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        self.ever_connected = true;
        let wanted = &self.wanted;
        self.to_recover.retain(|c| wanted.contains(c));
        if !self.wanted.is_empty() {
            let name = if self.sharded() {
                "SSUBSCRIBE"
            } else {
                "SUBSCRIBE"
            };
            let mut cmd = redis::cmd(name);
            for c in &self.wanted {
                cmd.arg(self.keys.pubsub(c));
            }
            let packed = cmd.get_packed_command();
            self.send(&packed);
        }
    }

    fn lost(&mut self, reason: String) {
        tracing::warn!(url = %self.settings.url, %reason, "redis subscriber connection lost");
        self.conn = None;
        self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        self.to_recover.extend(self.live.drain());
        self.unsub_sent.clear();
        self.retry_at = Some(Instant::now() + self.backoff.next_delay());
        self.sink.disconnected(&reason);
    }

    fn read_pushes(&mut self) {
        let (mut ready, mut resubscribe) = (Vec::new(), Vec::new());
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.conn.as_mut() else {
                break;
            };
            match conn.read() {
                Ok(value) => {
                    self.last_alive = Instant::now();
                    self.handle_value(value, &mut ready, &mut resubscribe);
                }
                Err(ReadError::Timeout) => break,
                Err(ReadError::Broken(reason)) => {
                    self.lost(reason);
                    break;
                }
            }
        }
        if !ready.is_empty() {
            self.sink.recover(ready);
        }
        if !resubscribe.is_empty() && self.conn.is_some() {
            let name = if self.sharded() {
                "SSUBSCRIBE"
            } else {
                "SUBSCRIBE"
            };
            let mut cmd = redis::cmd(name);
            for c in &resubscribe {
                cmd.arg(self.keys.pubsub(c));
            }
            let packed = cmd.get_packed_command();
            self.send(&packed);
        }
    }

    fn handle_value(
        &mut self,
        value: Value,
        ready: &mut Vec<String>,
        resubscribe: &mut Vec<String>,
    ) {
        let items = match value {
            Value::Array(items) => items,
            Value::SimpleString(s) if s.eq_ignore_ascii_case("pong") => {
                self.ping_sent = None;
                return;
            }
            Value::ServerError(e) => {
                tracing::warn!(error = %e, "redis refused a subscriber command");
                return;
            }
            _ => return,
        };
        let text = |v: Option<&Value>| match v {
            Some(Value::BulkString(b)) => std::str::from_utf8(b).ok().map(str::to_string),
            _ => None,
        };
        let (Some(kind), Some(name)) = (text(items.first()), text(items.get(1))) else {
            return;
        };
        if kind.eq_ignore_ascii_case("pong") {
            self.ping_sent = None;
            return;
        }
        let Some(channel) = self.keys.channel_of(&name).map(str::to_string) else {
            return;
        };
        match kind.as_str() {
            "smessage" | "message" => {
                if !self.wanted.contains(&channel) {
                    return;
                }
                let Some(Value::BulkString(wire)) = items.get(2) else {
                    return;
                };
                match Push::parse(&channel, wire) {
                    Some(push) => {
                        self.stats.pushes.fetch_add(1, Ordering::Relaxed);
                        self.sink.push(push);
                    }
                    None => tracing::warn!(%channel, "malformed push on redis pub/sub"),
                }
            }
            "ssubscribe" | "subscribe" => {
                if !self.wanted.contains(&channel) {
                    return;
                }
                self.live.insert(channel.clone());
                if self.to_recover.remove(&channel) {
                    ready.push(channel);
                } else {
                    self.sink.subscribed(&channel);
                }
            }
            "sunsubscribe" | "unsubscribe" => {
                let was_live = self.live.remove(&channel);
                match self.unsub_sent.get_mut(&channel) {
                    Some(n) if *n > 1 => *n -= 1,
                    Some(_) => {
                        self.unsub_sent.remove(&channel);
                    }
                    None if self.wanted.contains(&channel) => {
                        // Not ours: Redis dropped the subscription.
                        if was_live {
                            self.to_recover.insert(channel.clone());
                        }
                        resubscribe.push(channel);
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }

    /// Pings an idle connection; a ping unanswered for `command_timeout`
    /// means the connection is gone even if the socket says nothing.
    fn check_alive(&mut self) {
        if self.conn.is_none() {
            return;
        }
        if let Some(sent) = self.ping_sent {
            if sent.elapsed() > self.settings.command_timeout {
                self.lost("no PING reply within command_timeout".into());
            }
            return;
        }
        if self.last_alive.elapsed() >= self.settings.ping_interval {
            self.ping_sent = Some(Instant::now());
            let packed = redis::cmd("PING").get_packed_command();
            self.send(&packed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{mpsc, Mutex};

    struct Events(Mutex<mpsc::Sender<String>>);

    impl PushSink for Events {
        fn push(&self, push: Push) {
            self.send(format!("push {} {}", push.channel, push.offset));
        }
        fn subscribed(&self, channel: &str) {
            self.send(format!("subscribed {channel}"));
        }
        fn recover(&self, channels: Vec<String>) {
            self.send(format!("recover {}", channels.join(",")));
        }
    }

    impl Events {
        fn send(&self, event: String) {
            if let Ok(tx) = self.0.lock() {
                let _ = tx.send(event);
            }
        }
    }

    /// Reads from the fake server's socket until `needle` has arrived.
    fn read_until(s: &mut TcpStream, needle: &[u8]) {
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        while !seen.windows(needle.len()).any(|w| w == needle) {
            let n = s.read(&mut buf).expect("client bytes");
            assert!(n > 0, "client closed before sending {needle:?}");
            seen.extend_from_slice(&buf[..n]);
        }
    }

    fn bulk(s: &str) -> String {
        format!("${}\r\n{s}\r\n", s.len())
    }

    /// A Redis that drops a subscription by itself (as a cluster does when
    /// the channel's slot moves): the subscriber subscribes again and
    /// reports the channel for recovery, on the same connection.
    #[test]
    fn a_subscription_dropped_by_redis_is_renewed_and_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            read_until(&mut s, b"server\r\n");
            s.write_all(bulk("redis_version:7.0.0\r\n").as_bytes())
                .expect("info");
            let confirm = |kind: &str| format!("*3\r\n{}{}:1\r\n", bulk(kind), bulk("rc:{c}:p"));
            read_until(&mut s, b"SSUBSCRIBE");
            s.write_all(confirm("ssubscribe").as_bytes())
                .expect("confirm");
            s.write_all(confirm("sunsubscribe").as_bytes())
                .expect("drop");
            read_until(&mut s, b"SSUBSCRIBE");
            s.write_all(confirm("ssubscribe").as_bytes())
                .expect("confirm");
            let push = format!(
                "*3\r\n{}{}{}",
                bulk("smessage"),
                bulk("rc:{c}:p"),
                bulk("7:ab:x")
            );
            s.write_all(push.as_bytes()).expect("push");
            // Hold the connection until the client goes away.
            let _ = s.read(&mut [0u8; 64]);
        });
        let mut settings =
            RedisSettings::new(&format!("redis://127.0.0.1:{port}")).expect("valid url");
        settings.subscriber_connections = 1;
        settings.ping_interval = Duration::from_secs(60);
        let (tx, rx) = mpsc::channel();
        let subscriber = Subscriber::start(settings, Arc::new(Events(Mutex::new(tx))));
        subscriber.subscribe("c").expect("queued");
        let mut events = Vec::new();
        for _ in 0..3 {
            events.push(rx.recv_timeout(Duration::from_secs(10)).expect("an event"));
        }
        assert_eq!(events, ["subscribed c", "recover c", "push c 7"]);
        assert_eq!(subscriber.stats().disconnects.load(Ordering::Relaxed), 0);
        drop(subscriber);
        server.join().expect("fake server");
    }
}
