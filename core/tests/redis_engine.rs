//! The Redis engine against a real `redis-server` started here on a free
//! loopback port (`.ci/run` installs Debian's `redis-server`): offsets across
//! two bridges ("nodes"), history and resume, epochs, cross-node delivery,
//! Redis killed and restarted, a wrong URL, and Redis commands per publish.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast::engine::redis::bridge::{Bridge, Done};
use ringcast::engine::redis::error::EngineError;
use ringcast::engine::redis::history::{HistoryReply, Recovery};
use ringcast::engine::redis::push::Push;
use ringcast::engine::redis::script::Published;
use ringcast::engine::redis::settings::RedisSettings;
use ringcast::engine::redis::subscriber::{PushSink, Subscriber};
use ringcast::proto::v1::Since;

#[path = "support/redis.rs"]
mod redis_server;
use redis_server::{free_port, RedisServer, WAIT};

fn publish(bridge: &Bridge, channel: &str, payload: &str) -> Result<Published, EngineError> {
    let (tx, rx) = mpsc::channel();
    let done: Done<Published> = Box::new(move |r| {
        let _ = tx.send(r);
    });
    bridge.publish(channel, Bytes::from(payload.to_string()), done)?;
    rx.recv_timeout(WAIT).expect("the bridge answers")
}

fn history(bridge: &Bridge, channel: &str, since: Option<(&str, u64)>) -> HistoryReply {
    let (tx, rx) = mpsc::channel();
    let since = since.map(|(epoch, offset)| Since {
        epoch: epoch.into(),
        offset,
    });
    let done: Done<HistoryReply> = Box::new(move |r| {
        let _ = tx.send(r);
    });
    bridge.history(channel, since, done).expect("queued");
    rx.recv_timeout(WAIT)
        .expect("the bridge answers")
        .expect("history read")
}

fn entries(range: std::ops::RangeInclusive<u64>) -> Option<Recovery> {
    Some(Recovery::Recovered(
        range.map(|o| (o, Bytes::from(format!("m{o}")))).collect(),
    ))
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Push(Push),
    Subscribed(String),
    Recover(Vec<String>),
}

/// Records what a subscriber reports, for the test to wait on.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl PushSink for Recorder {
    fn push(&self, push: Push) {
        self.events
            .lock()
            .expect("recorder lock")
            .push(Event::Push(push));
    }
    fn subscribed(&self, channel: &str) {
        self.events
            .lock()
            .expect("test step")
            .push(Event::Subscribed(channel.to_string()));
    }
    fn recover(&self, channels: Vec<String>) {
        self.events
            .lock()
            .expect("recorder lock")
            .push(Event::Recover(channels));
    }
}

impl Recorder {
    fn wait_for(&self, what: &str, done: impl Fn(&[Event]) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.events.lock().expect("recorder lock")) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn pushes(&self, channel: &str) -> Vec<Push> {
        let events = self.events.lock().expect("recorder lock");
        let pushes = events.iter().filter_map(|e| match e {
            Event::Push(p) if p.channel == channel => Some(p.clone()),
            _ => None,
        });
        pushes.collect()
    }
}

#[test]
fn offsets_are_gapless_across_two_nodes_publishing_concurrently() {
    let redis = RedisServer::start();
    let nodes = [
        Arc::new(Bridge::connect(redis.settings()).expect("bridge connects")),
        Arc::new(Bridge::connect(redis.settings()).expect("bridge connects")),
    ];
    const PER_THREAD: u64 = 300;
    let (tx, rx) = mpsc::channel::<(usize, u64, Result<Published, EngineError>)>();
    let mut threads = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for t in 0..2 {
            let (node, tx) = (node.clone(), tx.clone());
            let id = n * 2 + t;
            threads.push(std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let tx = tx.clone();
                    let done: Done<Published> = Box::new(move |r| {
                        let _ = tx.send((id, i, r));
                    });
                    // Queue without waiting: the bridges batch.
                    node.publish("race", Bytes::from(format!("{id}:{i}")), done)
                        .expect("queued");
                }
            }));
        }
    }
    drop(tx);
    for t in threads {
        t.join().expect("test step");
    }
    let mut by_thread: HashMap<usize, Vec<(u64, u64)>> = HashMap::new();
    let mut epochs = std::collections::HashSet::new();
    for _ in 0..4 * PER_THREAD {
        let (id, i, r) = rx.recv_timeout(WAIT).expect("every publish answered");
        let published = r.expect("publish succeeds");
        epochs.insert(published.epoch);
        by_thread.entry(id).or_default().push((i, published.offset));
    }
    assert_eq!(epochs.len(), 1, "one epoch for the channel");
    let mut all: Vec<u64> = by_thread.values().flatten().map(|(_, o)| *o).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=4 * PER_THREAD).collect::<Vec<_>>(),
        "gapless, no duplicate"
    );
    for (id, mut acks) in by_thread {
        acks.sort_unstable();
        assert!(
            acks.windows(2).all(|w| w[0].1 < w[1].1),
            "thread {id}: offsets follow the order it published in"
        );
    }
    let batched = nodes
        .iter()
        .map(|n| {
            n.stats()
                .round_trips
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum::<u64>();
    assert!(batched < 4 * PER_THREAD, "{batched} round trips: pipelined");
}

#[test]
fn history_replays_what_came_after_since() {
    let redis = RedisServer::start();
    let mut settings = redis.settings();
    settings.history_size = 5;
    let bridge = Bridge::connect(settings).expect("bridge connects");
    let fresh = history(&bridge, "h", None);
    assert_eq!((fresh.top, fresh.recovery), (0, None));
    for o in 1..=10 {
        let p = publish(&bridge, "h", &format!("m{o}")).expect("publish succeeds");
        assert_eq!(p.offset, o);
        assert_eq!(p.epoch, fresh.epoch, "the epoch the first read created");
    }
    let e = fresh.epoch.as_str();
    let read = |since| history(&bridge, "h", Some((e, since))).recovery;
    assert_eq!(read(7), entries(8..=10));
    assert_eq!(read(5), entries(6..=10), "the oldest kept is 6");
    assert_eq!(read(10), Some(Recovery::Recovered(Vec::new())));
    assert_eq!(read(4), Some(Recovery::NotRecovered), "trimmed by MAXLEN");
    assert_eq!(read(11), Some(Recovery::NotRecovered), "from the future");
    let other = history(&bridge, "h", Some(("0123", 7)));
    assert_eq!(other.recovery, Some(Recovery::NotRecovered));
    assert_eq!(other.top, 10);
}

#[test]
fn history_entries_expire_by_age() {
    let redis = RedisServer::start();
    let mut settings = redis.settings();
    settings.history_ttl = Duration::from_secs(1);
    let bridge = Bridge::connect(settings).expect("bridge connects");
    let first = publish(&bridge, "old", "m1").expect("publish succeeds");
    std::thread::sleep(Duration::from_millis(1100));
    publish(&bridge, "old", "m2").expect("publish succeeds");
    let e = first.epoch.as_str();
    let read = |since| history(&bridge, "old", Some((e, since))).recovery;
    assert_eq!(read(0), Some(Recovery::NotRecovered), "m1 aged out");
    assert_eq!(read(1), entries(2..=2));
}

#[test]
fn flushall_changes_the_epoch_and_resume_is_not_recovered() {
    let redis = RedisServer::start();
    let bridge = Bridge::connect(redis.settings()).expect("bridge connects");
    let before = publish(&bridge, "f", "m1").expect("publish succeeds");
    publish(&bridge, "f", "m2").expect("publish succeeds");
    redis.cmd::<()>(&mut redis::cmd("FLUSHALL"));
    let after = history(&bridge, "f", Some((&before.epoch, 2)));
    assert_ne!(after.epoch, before.epoch);
    assert_eq!(
        (after.top, after.recovery),
        (0, Some(Recovery::NotRecovered))
    );
    let next = publish(&bridge, "f", "m1").expect("publish succeeds");
    assert_eq!((next.offset, next.epoch), (1, after.epoch));

    // An emptied script cache: the bridge falls back to EVAL, once. (Redis
    // counts the refused EVALSHA too: two EVALSHA, one EVAL.)
    redis.cmd::<()>(redis::cmd("SCRIPT").arg("FLUSH"));
    redis.cmd::<()>(redis::cmd("CONFIG").arg("RESETSTAT"));
    assert_eq!(
        publish(&bridge, "f", "m2")
            .expect("publish succeeds")
            .offset,
        2
    );
    assert_eq!(
        publish(&bridge, "f", "m3")
            .expect("publish succeeds")
            .offset,
        3
    );
    let stats = commands(&redis);
    assert_eq!(
        (stats.get("eval"), stats.get("evalsha")),
        (Some(&1), Some(&2)),
        "{stats:?}"
    );
}

#[test]
fn a_subscriber_on_node_b_gets_node_a_publishes_in_order_exactly_once() {
    let redis = RedisServer::start();
    let node_a = Bridge::connect(redis.settings()).expect("bridge connects");
    let sink = Arc::new(Recorder::default());
    let node_b = Subscriber::start(redis.settings(), sink.clone());
    node_b.subscribe("live").expect("test step");
    sink.wait_for("the subscription", |ev| {
        ev.contains(&Event::Subscribed("live".into()))
    });
    const N: u64 = 200;
    for i in 1..=N {
        publish(&node_a, "live", &format!("m{i}")).expect("publish succeeds");
        publish(&node_a, "elsewhere", "x").expect("publish succeeds");
    }
    sink.wait_for("every push", |ev| {
        ev.iter()
            .filter(|e| matches!(e, Event::Push(p) if p.channel == "live"))
            .count()
            >= N as usize
    });
    // A little longer: a duplicate would arrive now.
    std::thread::sleep(Duration::from_millis(100));
    let pushes = sink.pushes("live");
    let offsets: Vec<u64> = pushes.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, (1..=N).collect::<Vec<_>>());
    assert!(pushes.iter().all(|p| p.payload == format!("m{}", p.offset)));
    assert!(sink.pushes("elsewhere").is_empty(), "not subscribed");
    node_b.unsubscribe("live").expect("test step");
    // After SUNSUBSCRIBE has been sent, nothing more arrives.
    let deadline = Instant::now() + WAIT;
    loop {
        let subs: i64 = redis
            .cmd::<Vec<(String, i64)>>(redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg("rc:{live}:p"))
            .first()
            .map_or(0, |(_, n)| *n);
        if subs == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "unsubscribe reached redis");
        std::thread::sleep(Duration::from_millis(5));
    }
    publish(&node_a, "live", "late").expect("publish succeeds");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(sink.pushes("live").len(), N as usize);
}

#[test]
fn redis_restart_fails_publishes_then_recovers_and_resubscribes() {
    let mut redis = RedisServer::start();
    let bridge = Bridge::connect(redis.settings()).expect("bridge connects");
    let sink = Arc::new(Recorder::default());
    let subscriber = Subscriber::start(redis.settings(), sink.clone());
    subscriber.subscribe("r").expect("test step");
    sink.wait_for("the subscription", |ev| {
        ev.contains(&Event::Subscribed("r".into()))
    });
    let before = publish(&bridge, "r", "before").expect("publish succeeds");

    redis.kill();
    for _ in 0..3 {
        match publish(&bridge, "r", "while down") {
            Err(EngineError::Unavailable { url, .. }) => assert_eq!(url, redis.url()),
            other => panic!("expected Unavailable while redis is down, got {other:?}"),
        }
    }

    redis.spawn();
    let deadline = Instant::now() + WAIT;
    let after = loop {
        match publish(&bridge, "r", "after") {
            Ok(p) => break p,
            Err(EngineError::Unavailable { .. }) => {
                assert!(Instant::now() < deadline, "the bridge reconnects");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    };
    assert_ne!(after.epoch, before.epoch, "restarted empty: a new epoch");
    assert_eq!(after.offset, 1);

    sink.wait_for("the recovery report", |ev| {
        ev.contains(&Event::Recover(vec!["r".into()]))
    });
    // Live again after the re-subscription.
    let live = publish(&bridge, "r", "live again").expect("publish succeeds");
    sink.wait_for("the push after the restart", |ev| {
        ev.iter().any(
            |e| matches!(e, Event::Push(p) if p.offset == live.offset && p.epoch == live.epoch),
        )
    });
}

#[test]
fn a_wrong_url_names_the_redacted_url_and_the_reason() {
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("test step")
        .port();
    let url = format!("redis://app:hunter2@127.0.0.1:{closed_port}/0");
    let err = match Bridge::connect(RedisSettings::new(&url).expect("bridge connects")) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("nothing listens on port {closed_port}"),
    };
    assert!(
        err.contains(&format!("redis://app:***@127.0.0.1:{closed_port}/0")),
        "{err}"
    );
    assert!(err.contains("refused"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    // A server that refuses the password: the reason is Redis's own.
    let redis = RedisServer::start();
    let url = format!("redis://:hunter2@127.0.0.1:{}/0", redis.port);
    let err = match Bridge::connect(RedisSettings::new(&url).expect("bridge connects")) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("AUTH without a configured password must fail"),
    };
    assert!(
        err.contains("login refused") && !err.contains("hunter2"),
        "{err}"
    );

    let err = RedisSettings::new("http://u:hunter2@h/0")
        .expect_err("must fail")
        .to_string();
    assert!(err.contains("scheme") && !err.contains("hunter2"), "{err}");
}

#[test]
fn a_pubsub_connection_cut_by_redis_is_resubscribed_and_reported() {
    // What Redis does to a subscriber over its output buffer limit.
    let redis = RedisServer::start();
    let bridge = Bridge::connect(redis.settings()).expect("bridge connects");
    let sink = Arc::new(Recorder::default());
    let subscriber = Subscriber::start(redis.settings(), sink.clone());
    for c in ["k1", "k2", "k3"] {
        subscriber.subscribe(c).expect("queued");
    }
    sink.wait_for("three subscriptions", |ev| {
        ev.iter()
            .filter(|e| matches!(e, Event::Subscribed(_)))
            .count()
            == 3
    });
    let killed: i64 = redis.cmd(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"));
    assert!(killed >= 1, "at least one pub/sub connection was cut");
    sink.wait_for("the recovery report", |ev| {
        let mut reported: Vec<&String> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Recover(channels) => Some(channels),
                _ => None,
            })
            .flatten()
            .collect();
        reported.sort();
        reported.dedup();
        // Every channel was on a cut connection (a connection with no
        // channel is not in pub/sub mode and was not cut).
        reported == ["k1", "k2", "k3"]
    });
    let p = publish(&bridge, "k2", "after").expect("publish succeeds");
    sink.wait_for("a push after the cut", |ev| {
        ev.iter().any(
            |e| matches!(e, Event::Push(push) if push.channel == "k2" && push.offset == p.offset),
        )
    });
}

#[test]
fn binary_payloads_survive_history_and_pushes() {
    let redis = RedisServer::start();
    let bridge = Bridge::connect(redis.settings()).expect("bridge connects");
    let sink = Arc::new(Recorder::default());
    let subscriber = Subscriber::start(redis.settings(), sink.clone());
    subscriber.subscribe("bin").expect("queued");
    sink.wait_for("the subscription", |ev| {
        ev.contains(&Event::Subscribed("bin".into()))
    });
    let payload = Bytes::from_static(b"1:ab:\r\n\0\xff{\"x\":\"\xe2\x82\xac\"}\r\n");
    let (tx, rx) = mpsc::channel();
    let done: Done<Published> = Box::new(move |r| {
        let _ = tx.send(r);
    });
    bridge
        .publish("bin", payload.clone(), done)
        .expect("queued");
    let published = rx.recv_timeout(WAIT).expect("answer").expect("published");
    sink.wait_for("the push", |ev| {
        ev.iter().any(|e| matches!(e, Event::Push(_)))
    });
    assert_eq!(sink.pushes("bin")[0].payload, payload);
    let replay = history(&bridge, "bin", Some((&published.epoch, 0)));
    assert_eq!(
        replay.recovery,
        Some(Recovery::Recovered(vec![(1, payload)]))
    );
}

#[test]
fn a_full_queue_is_overloaded_and_every_accepted_request_is_answered_once() {
    let redis = RedisServer::start();
    let mut settings = redis.settings();
    settings.queue_capacity = 4;
    let bridge = Bridge::connect(settings).expect("bridge connects");
    let (tx, rx) = mpsc::channel();
    let (mut accepted, mut overloaded) = (0, 0);
    for i in 0..2000 {
        let tx = tx.clone();
        let done: Done<Published> = Box::new(move |r| {
            let _ = tx.send(r.map(|p| p.offset));
        });
        match bridge.publish("q", Bytes::from(format!("m{i}")), done) {
            Ok(()) => accepted += 1,
            Err(EngineError::Overloaded) => overloaded += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    drop(tx);
    assert!(
        overloaded > 0,
        "a queue of 4 overflows under 2000 quick publishes"
    );
    let mut offsets: Vec<u64> = (0..accepted)
        .map(|_| {
            let r = rx
                .recv_timeout(WAIT)
                .expect("every accepted publish answered");
            r.expect("accepted publishes succeed")
        })
        .collect();
    // Rejected callbacks were dropped uncalled, answered ones ran once: with
    // every sender gone, nothing more can arrive.
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    offsets.sort_unstable();
    assert_eq!(
        offsets,
        (1..=accepted).collect::<Vec<u64>>(),
        "each answered once"
    );
}

#[test]
fn rediss_with_a_private_ca() {
    let dir = std::env::temp_dir().join(format!("ringcast-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).expect("cert.pem");
    std::fs::write(&key_file, cert.key_pair.serialize_pem()).expect("key.pem");
    let tls_port = free_port();
    let path = |p: &std::path::Path| p.display().to_string();
    let redis = RedisServer::start_with(vec![
        "--tls-port".into(),
        tls_port.to_string(),
        "--tls-cert-file".into(),
        path(&cert_file),
        "--tls-key-file".into(),
        path(&key_file),
        "--tls-ca-cert-file".into(),
        path(&cert_file),
        "--tls-auth-clients".into(),
        "no".into(),
    ]);
    let url = format!("rediss://localhost:{tls_port}/0");
    let mut settings = RedisSettings::new(&url).expect("valid url");
    settings.tls_ca_file = Some(cert_file.clone());
    let bridge = Bridge::connect(settings.clone()).expect("TLS connect with the private CA");
    assert_eq!(
        publish(&bridge, "t", "m1")
            .expect("publish over TLS")
            .offset,
        1
    );
    let sink = Arc::new(Recorder::default());
    let subscriber = Subscriber::start(settings, sink.clone());
    subscriber.subscribe("t").expect("queued");
    sink.wait_for("the subscription over TLS", |ev| {
        ev.contains(&Event::Subscribed("t".into()))
    });
    publish(&bridge, "t", "m2").expect("publish over TLS");
    sink.wait_for("a push over TLS", |ev| {
        ev.iter()
            .any(|e| matches!(e, Event::Push(p) if p.offset == 2))
    });

    // Without the CA (OS store only) the server is not trusted.
    let err = match Bridge::connect(RedisSettings::new(&url).expect("valid url")) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a self-signed server must not be trusted by the OS store"),
    };
    assert!(err.contains("tls handshake"), "{err}");
    drop((subscriber, bridge, redis));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sum of `calls` over `INFO commandstats`, without the commands the
/// measurement itself and idle health checks issue.
fn commands(redis: &RedisServer) -> HashMap<String, u64> {
    let info: String = redis.cmd(redis::cmd("INFO").arg("commandstats"));
    let mut out = HashMap::new();
    for line in info.lines() {
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        if matches!(
            name,
            "info" | "ping" | "config|resetstat" | "hello" | "client|setinfo"
        ) {
            continue;
        }
        let calls = rest
            .split(',')
            .find_map(|kv| kv.strip_prefix("calls="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        out.insert(name.to_string(), calls);
    }
    out
}

#[test]
fn redis_commands_per_publish_do_not_grow_with_subscribers() {
    let redis = RedisServer::start();
    let bridge = Bridge::connect(redis.settings()).expect("bridge connects");
    const N: u64 = 50;
    // The channel's first publish also creates its epoch (HSET, DEL): not
    // part of the steady state measured here.
    publish(&bridge, "count", "first").expect("publish succeeds");
    let mut per_publish = Vec::new();
    let mut subscribers = Vec::new();
    for subscriber_nodes in [0usize, 1, 4] {
        while subscribers.len() < subscriber_nodes {
            let sink = Arc::new(Recorder::default());
            let s = Subscriber::start(redis.settings(), sink.clone());
            s.subscribe("count").expect("test step");
            sink.wait_for("the subscription", |ev| {
                ev.contains(&Event::Subscribed("count".into()))
            });
            subscribers.push((s, sink));
        }
        redis.cmd::<()>(redis::cmd("CONFIG").arg("RESETSTAT"));
        for i in 0..N {
            publish(&bridge, "count", &format!("m{i}")).expect("publish succeeds");
        }
        let stats = commands(&redis);
        let total: u64 = stats.values().sum();
        assert_eq!(stats.get("evalsha"), Some(&N), "{stats:?}");
        assert_eq!(total % N, 0, "the same work for every publish: {stats:?}");
        per_publish.push(total / N);
        for (_, sink) in &subscribers {
            sink.wait_for("every push", |ev| {
                ev.iter().filter(|e| matches!(e, Event::Push(_))).count() >= N as usize
            });
        }
        for (_, sink) in &subscribers {
            sink.events.lock().expect("recorder lock").clear();
        }
    }
    println!("redis commands per publish (0, 1, 4 subscriber nodes): {per_publish:?}");
    assert!(
        per_publish.iter().all(|n| *n == per_publish[0]),
        "{per_publish:?}"
    );
    assert_eq!(
        per_publish[0], 8,
        "EVALSHA and the 7 commands of publish.lua"
    );
}
