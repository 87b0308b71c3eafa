//! The server API over real sockets: publishes that reach `/ws` subscribers
//! through the owner core with the right offsets, every refusal's status,
//! key rotation, disconnect by user, history, channels, presence (with the
//! token's info, an oversize one dropped), info, the API's own listener, a
//! slow API client that cannot hold up WebSockets, 429 from a full owner
//! inbox with history equal to what was acknowledged, an API publish read
//! back after a disk-engine restart, and on the Redis engine every live
//! node in `/api/info` and `/api/channels`.

mod common;
#[path = "support/redis.rs"]
mod redis_server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::ws::{channel_owned_by, one_per_worker, Ws};
use common::{raw, read_head, start, Frame};
use ringcast::auth::{AuthMode, KeySource, Secret};
use ringcast::config::proxy::TrustedProxies;
use ringcast::config::ServerConfig;
use serde_json::{json, Value};

const KEY: &str = "test-api-key-0123456789";

/// A keep-alive HTTP/1.1 client of the server API.
struct Api {
    stream: TcpStream,
    key: Option<String>,
}

/// A response: status, head, JSON body.
struct Reply {
    status: u16,
    head: String,
    body: Value,
}

impl Api {
    fn connect(addr: SocketAddr, key: Option<&str>) -> Api {
        Api {
            stream: raw(addr),
            key: key.map(str::to_owned),
        }
    }

    fn head(&self, method: &str, path: &str, body: &[u8]) -> String {
        let auth = match &self.key {
            Some(key) => format!("Authorization: apikey {key}\r\n"),
            None => String::new(),
        };
        format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
    }

    fn send(&mut self, method: &str, path: &str, body: &[u8]) {
        let head = self.head(method, path, body);
        self.stream.write_all(head.as_bytes()).expect("write head");
        self.stream.write_all(body).expect("write body");
    }

    fn read(&mut self) -> Reply {
        let head = read_head(&mut self.stream);
        let status = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("Content-Length");
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).expect("body");
        // The API answers JSON; a path the API does not serve gets the
        // server's plain-text 404.
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        Reply { status, head, body }
    }

    fn post(&mut self, path: &str, body: Value) -> Reply {
        self.send("POST", path, body.to_string().as_bytes());
        self.read()
    }

    fn ok(&mut self, path: &str, body: Value) -> Value {
        let reply = self.post(path, body);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert!(
            reply.head.contains("Connection: keep-alive"),
            "{}",
            reply.head
        );
        reply.body
    }
}

fn with_api(tweak: impl FnOnce(&mut ServerConfig)) -> ringcast::server::ServerHandle {
    start(false, |c| {
        c.server.workers = 2;
        c.api.key = Secret::new(KEY);
        c.limits.command_rate = 1_000_000;
        c.limits.command_burst = 1_000_000;
        // Test clients do not answer the shutdown's close: do not wait long.
        c.timeouts.drain_timeout = Duration::from_millis(300);
        tweak(c);
    })
}

/// Publishes pipelined in one write on a keep-alive API connection, on
/// every driver: later requests arrive while the first waits for its owner
/// core's answer (a multishot receive delivers them anyway), and every one
/// is answered, in order.
#[test]
fn pipelined_api_requests_are_all_answered_in_order() {
    for driver in common::DRIVERS {
        let server = start(driver, |c| {
            c.server.workers = 2;
            c.api.key = Secret::new(KEY);
            c.limits.command_rate = 1_000_000;
            c.limits.command_burst = 1_000_000;
            c.timeouts.drain_timeout = Duration::from_millis(300);
        });
        let addr = server.local_addr();
        let mut ws = Ws::connect(addr);
        let channels = [
            channel_owned_by(&mut ws, 0, "piped"),
            channel_owned_by(&mut ws, 1, "piped"),
        ];
        let mut api = Api::connect(addr, Some(KEY));
        let mut bytes = Vec::new();
        for n in 0..8 {
            let body = json!({"channel":channels[n % 2],"data":n}).to_string();
            bytes.extend_from_slice(api.head("POST", "/api/publish", body.as_bytes()).as_bytes());
            bytes.extend_from_slice(body.as_bytes());
        }
        api.stream.write_all(&bytes).expect("write");
        for n in 0..8u64 {
            let reply = api.read();
            assert_eq!(reply.status, 200, "{driver}: request {n}: {}", reply.body);
            assert_eq!(reply.body["offset"], n / 2 + 1, "{driver}: request {n}");
        }
        server.join();
    }
}

#[test]
fn publish_through_the_api_reaches_subscribers_with_the_next_offset() {
    let server = with_api(|_| {});
    let addr = server.local_addr();
    let mut ws = Ws::connect(addr);
    let mut api = Api::connect(addr, Some(KEY));
    for owner in [0, 1] {
        let channel = channel_owned_by(&mut ws, owner, "room");
        let sub = ws.call(json!({"op":"subscribe","channel":channel}));
        let epoch = sub["result"]["epoch"].clone();
        let first = ws.call(json!({"op":"publish","channel":channel,"data":"by ws"}));
        assert_eq!(first["result"]["offset"], 1);
        assert_eq!(ws.next_push()["offset"], 1);
        // Several on one keep-alive connection: offsets continue the WebSocket's.
        for n in 2..=6u64 {
            let reply = api.ok(
                "/api/publish",
                json!({"channel":channel,"data":{"n":n,"s":"é\"x"}}),
            );
            assert_eq!(reply, json!({"offset":n,"epoch":epoch}));
            let push = ws.next_push();
            assert_eq!(push["channel"], json!(channel));
            assert_eq!(push["offset"], n);
            assert_eq!(push["epoch"], epoch);
            assert_eq!(push["data"], json!({"n":n,"s":"é\"x"}));
        }
    }
    // Broadcast: one publish per channel, each with its own offset.
    let a = channel_owned_by(&mut ws, 0, "room");
    let b = channel_owned_by(&mut ws, 1, "room");
    let reply = api.ok(
        "/api/broadcast",
        json!({"channels":[a,b,"fresh:1"],"data":7}),
    );
    let offsets: Vec<Value> = reply["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["offset"].clone())
        .collect();
    assert_eq!(offsets, [json!(7), json!(7), json!(1)], "{reply}");
    let pushes = [ws.next_push(), ws.next_push()];
    assert!(
        pushes.iter().all(|p| p["data"] == 7 && p["offset"] == 7),
        "{pushes:?}"
    );
    server.join();
}

#[test]
fn every_refusal_has_its_status_and_a_json_error() {
    let server = with_api(|c| {
        c.pubsub.max_publish_bytes = 100;
        c.api.max_body_bytes = 4096;
    });
    let addr = server.local_addr();
    let code = |r: &Reply| r.body["error"]["code"].as_str().unwrap_or("").to_owned();
    // Missing and wrong keys: 401, on a connection that stays usable.
    let mut nokey = Api::connect(addr, None);
    let r = nokey.post("/api/publish", json!({"channel":"a","data":1}));
    assert_eq!((r.status, code(&r)), (401, "unauthorized".into()));
    let mut wrong = Api::connect(addr, Some("test-api-key-012345678"));
    let r = wrong.post("/api/publish", json!({"channel":"a","data":1}));
    assert_eq!(r.status, 401);
    assert!(r.head.contains("Connection: close"), "{}", r.head);
    let mut api = Api::connect(addr, Some(KEY));
    let r = api.post("/api/nothing", json!({}));
    assert_eq!((r.status, code(&r)), (404, "not_found".into()));
    let mut api = Api::connect(addr, Some(KEY));
    api.send("GET", "/api/info", b"");
    let r = api.read();
    assert_eq!((r.status, code(&r)), (405, "method_not_allowed".into()));
    // Bad bodies are answered and the connection stays open.
    let mut api = Api::connect(addr, Some(KEY));
    api.send("POST", "/api/publish", b"{not json");
    let r = api.read();
    assert_eq!((r.status, code(&r)), (400, "invalid_json".into()));
    let r = api.post("/api/publish", json!({"channel":"a b","data":1}));
    assert_eq!((r.status, code(&r)), (400, "invalid_channel".into()));
    assert!(r.body["error"]["message"]
        .as_str()
        .expect("message")
        .starts_with("channel: "));
    let r = api.post("/api/publish", json!({"channel":7,"data":1}));
    assert_eq!(r.body["error"]["message"], "channel: expected a string");
    let r = api.post("/api/publish", json!({"channel":"a"}));
    assert_eq!(r.body["error"]["message"], "data: expected any JSON value");
    let r = api.post(
        "/api/publish",
        json!({"channel":"a","data":"x".repeat(200)}),
    );
    assert_eq!((r.status, code(&r)), (413, "publish_too_large".into()));
    let r = api.post("/api/disconnect", json!({"user":"u","code":1000}));
    assert_eq!(r.status, 400);
    let r = api.post("/api/broadcast", json!({"channels":[],"data":1}));
    assert_eq!(r.status, 400);
    assert_eq!(
        api.ok("/api/publish", json!({"channel":"a","data":1}))["offset"],
        1
    );
    // A 10 MB body is refused on its Content-Length, before it is read.
    let mut big = Api::connect(addr, Some(KEY));
    let head = format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: apikey {KEY}\r\nContent-Length: {}\r\n\r\n",
        10 << 20
    );
    big.stream.write_all(head.as_bytes()).expect("head");
    let _ = big.stream.write_all(&vec![b' '; 64 << 10]);
    let r = big.read();
    assert_eq!((r.status, code(&r)), (413, "body_too_large".into()));
    assert!(r.head.contains("Connection: close"), "{}", r.head);
    server.join();

    // No key configured: the API does not exist.
    let server = start(false, |_| {});
    let mut api = Api::connect(server.local_addr(), Some(KEY));
    let r = api.post("/api/publish", json!({"channel":"a","data":1}));
    assert_eq!(r.status, 404);
    server.join();
}

#[test]
fn keys_rotate_through_the_list_and_the_file() {
    let dir = std::env::temp_dir().join(format!("ringcast-api-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("keys");
    std::fs::write(&file, "# rotated in\nnew-key\n").expect("write");
    let server = with_api(|c| {
        c.api.key = Secret::new("old-key");
        c.api.key_file = file.clone();
    });
    let addr = server.local_addr();
    for key in ["old-key", "new-key"] {
        let mut api = Api::connect(addr, Some(key));
        assert_eq!(
            api.ok("/api/publish", json!({"channel":"k","data":key}))["epoch"]
                .as_str()
                .map(str::len),
            Some(16)
        );
    }
    server.join();
    // The old key removed: refused.
    let server = with_api(|c| {
        c.api.key = Secret::new("");
        c.api.key_file = file.clone();
    });
    let mut old = Api::connect(server.local_addr(), Some("old-key"));
    assert_eq!(old.post("/api/info", json!({})).status, 401);
    let mut new = Api::connect(server.local_addr(), Some("new-key"));
    assert_eq!(new.ok("/api/info", json!({}))["workers"], 2);
    server.join();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn history_channels_presence_and_info() {
    let server = with_api(|_| {});
    let addr = server.local_addr();
    let mut api = Api::connect(addr, Some(KEY));
    for n in 1..=5 {
        api.ok("/api/publish", json!({"channel":"log:1","data":{"n":n}}));
    }
    let h = api.ok("/api/history", json!({"channel":"log:1","limit":3}));
    let ns: Vec<Value> = h["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["data"]["n"].clone())
        .collect();
    assert_eq!(ns, [json!(3), json!(4), json!(5)], "{h}");
    assert_eq!(
        (h["offset"].clone(), h["complete"].clone()),
        (json!(5), json!(true))
    );
    let h = api.ok(
        "/api/history",
        json!({"channel":"log:1","since":{"offset":1},"limit":2}),
    );
    let offsets: Vec<Value> = h["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["offset"].clone())
        .collect();
    assert_eq!(offsets, [json!(2), json!(3)]);
    let epoch = h["epoch"].clone();
    let h = api.ok(
        "/api/history",
        json!({"channel":"log:1","since":{"epoch":"other","offset":1}}),
    );
    assert_eq!(
        h["complete"], false,
        "another epoch's offsets mean nothing here"
    );
    let h = api.ok(
        "/api/history",
        json!({"channel":"log:1","since":{"epoch":epoch,"offset":4}}),
    );
    assert_eq!(h["messages"].as_array().map(Vec::len), Some(1));
    let none = api.ok("/api/history", json!({"channel":"never:1"}));
    assert_eq!(none["messages"], json!([]));

    // Two subscribers of one room (one per worker when the kernel spreads them).
    let mut a = Ws::connect(addr);
    let mut b = Ws::connect(addr);
    a.call(json!({"op":"subscribe","channel":"room:9"}));
    b.call(json!({"op":"subscribe","channel":"room:9"}));
    b.call(json!({"op":"subscribe","channel":"other:1"}));
    let channels = api.ok("/api/channels", json!({"prefix":"room:"}));
    assert_eq!(channels, json!({"channels":{"room:9":2}}));
    let all = api.ok("/api/channels", json!({}));
    assert_eq!(all["channels"]["other:1"], 1);
    let presence = api.ok("/api/presence", json!({"channel":"room:9"}));
    assert_eq!(
        (presence["clients"].clone(), presence["users"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(presence["presence"].as_object().map(|o| o.len()), Some(2));
    let stats = api.ok("/api/presence_stats", json!({"channel":"room:9"}));
    assert_eq!(stats, json!({"clients":2,"users":1}));
    b.call(json!({"op":"unsubscribe","channel":"room:9"}));
    // The leave travels to the owner core beside the unsubscribe's reply:
    // presence shows it within a few round trips.
    let left = (0..1000)
        .any(|_| api.ok("/api/presence_stats", json!({"channel":"room:9"}))["clients"] == 1);
    assert!(left, "the unsubscribe reached presence");
    let info = api.ok("/api/info", json!({}));
    assert_eq!(info["clients"], 2, "{info}");
    assert_eq!(info["engine"]["kind"], "memory");
    assert_eq!(info["per_worker"].as_array().map(Vec::len), Some(2));
    server.join();
}

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

fn token(sub: &str) -> String {
    token_with(sub, json!({}))
}

/// A token for `sub` with `extra` claims (`info`).
fn token_with(sub: &str, extra: Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut claims = json!({"sub": sub, "exp": now + 600, "subs": ["*"], "pubs": ["*"]});
    for (k, v) in extra.as_object().expect("object") {
        claims[k] = v.clone();
    }
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("token")
}

#[test]
fn presence_shows_the_tokens_info_and_an_oversize_one_is_dropped_not_refused() {
    let server = with_api(|c| {
        c.auth.mode = AuthMode::Jwt;
        c.auth.key = KeySource::Secret(Secret::new(SECRET));
        c.pubsub.presence_push_prefixes = vec!["".into()];
        c.pubsub.max_presence_info_bytes = 64;
    });
    let addr = server.local_addr();
    let info = json!({"device":"phone","name":"Ann"});
    let ann_token = token_with("ann", json!({ "info": info }));
    let mut ann = Ws::connect_to(addr, &format!("/ws?token={ann_token}"));
    // 65 bytes of JSON: one over the cap. The connection is still served.
    let big = json!("x".repeat(63));
    let bob_token = token_with("bob", json!({ "info": big }));
    let mut bob = Ws::connect_to(addr, &format!("/ws?token={bob_token}"));
    bob.call(json!({"op":"subscribe","channel":"room:i"}));
    ann.call(json!({"op":"subscribe","channel":"room:i"}));
    let join = bob.next_push();
    assert_eq!(join["join"]["user"], "ann", "{join}");
    assert_eq!(join["join"]["info"], info, "the join push carries the info");
    let listed = ann.call(json!({"op":"presence","channel":"room:i"}));
    let mut entries: Vec<Value> = listed["result"]["presence"]
        .as_object()
        .expect("listed")
        .values()
        .cloned()
        .collect();
    entries.sort_by_key(|e| e["user"].to_string());
    assert_eq!(
        entries,
        [json!({"user":"ann","info":info}), json!({"user":"bob"})],
        "bob's oversize info is dropped: {listed}"
    );
    let mut api = Api::connect(addr, Some(KEY));
    let listed = api.ok("/api/presence", json!({"channel":"room:i"}));
    let infos: Vec<&Value> = listed["presence"]
        .as_object()
        .expect("listed")
        .values()
        .filter_map(|e| e.get("info"))
        .collect();
    assert_eq!(infos, [&info], "{listed}");
    let metrics = common::http(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let dropped: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("ringcast_presence_info_dropped_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(dropped, 1, "counted once");
    server.join();
}

#[test]
fn disconnect_closes_every_connection_of_the_user_on_every_worker() {
    let server = with_api(|c| {
        c.auth.mode = AuthMode::Jwt;
        c.auth.key = KeySource::Secret(Secret::new(SECRET));
    });
    let addr = server.local_addr();
    let alice = format!("/ws?token={}", token("alice"));
    // Alice on both workers (the kernel spreads connections).
    let mut alices: Vec<Ws> = Vec::new();
    let mut seen = [false; 2];
    for _ in 0..200 {
        let mut ws = Ws::connect_to(addr, &alice);
        let w = ws.worker() as usize;
        if !seen[w] {
            seen[w] = true;
            alices.push(ws);
        }
        if seen == [true, true] {
            break;
        }
    }
    assert_eq!(alices.len(), 2, "an alice on each worker");
    let mut bob = Ws::connect_to(addr, &format!("/ws?token={}", token("bob")));
    let mut api = Api::connect(addr, Some(KEY));
    let reply = api.ok(
        "/api/disconnect",
        json!({"user":"alice","code":4005,"reason":"banned"}),
    );
    assert_eq!(reply, json!({"disconnected":2}));
    for ws in &mut alices {
        assert_eq!(
            ws.client.recv(),
            Some(Frame::Close(Some((4005, "banned".into()))))
        );
    }
    assert!(bob.worker() < 2, "bob stays connected");
    assert_eq!(
        api.ok("/api/disconnect", json!({"user":"carol"})),
        json!({"disconnected":0})
    );
    server.join();
}

#[test]
fn own_listener_and_allow_list() {
    let server = with_api(|c| c.api.listen = Some("127.0.0.1:0".parse().expect("addr")));
    let api_addr = server.api_addr().expect("the API's own port");
    assert_ne!(api_addr, server.local_addr());
    let mut main = Api::connect(server.local_addr(), Some(KEY));
    assert_eq!(
        main.post("/api/info", json!({})).status,
        404,
        "not on the main port"
    );
    let mut api = Api::connect(api_addr, Some(KEY));
    assert_eq!(api.ok("/api/info", json!({}))["workers"], 2);
    server.join();

    let server = with_api(|c| {
        c.api.allowed_clients = TrustedProxies::parse(&["10.0.0.0/8"]).expect("list");
    });
    let mut api = Api::connect(server.local_addr(), Some(KEY));
    assert_eq!(api.post("/api/info", json!({})).status, 403);
    server.join();
}

#[test]
fn a_slow_api_client_holds_up_neither_websockets_nor_other_api_clients() {
    let server = with_api(|c| c.api.max_connections = 2);
    let addr = server.local_addr();
    // Slowloris: a request head that never ends, and a body that never comes.
    let mut slow_head = raw(addr);
    slow_head
        .write_all(b"POST /api/publish HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let mut slow_body = Api::connect(addr, Some(KEY));
    let head = format!("POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: apikey {KEY}\r\nContent-Length: 100\r\n\r\n{{");
    slow_body.stream.write_all(head.as_bytes()).expect("write");
    let mut ws = Ws::connect(addr);
    ws.call(json!({"op":"subscribe","channel":"live"}));
    let mut api = Api::connect(addr, Some(KEY));
    assert_eq!(
        api.ok("/api/publish", json!({"channel":"live","data":1}))["offset"],
        1
    );
    assert_eq!(ws.next_push()["data"], 1);
    // Past api.max_connections (the slow body and `api` hold both): 503.
    let mut over = Api::connect(addr, Some(KEY));
    let r = over.post("/api/info", json!({}));
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.head.contains("Retry-After: 1"), "{}", r.head);
    drop(slow_head);
    server.join();
}

#[test]
fn the_request_timeout_closes_a_request_that_never_completes() {
    let server = with_api(|c| {
        c.api.request_timeout = Duration::from_millis(300);
        c.timeouts.timer_tick = Duration::from_millis(50);
    });
    let mut api = Api::connect(server.local_addr(), Some(KEY));
    assert_eq!(api.ok("/api/info", json!({}))["workers"], 2);
    let mut slow = api.stream;
    slow.write_all(b"POST /api/info HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let mut rest = Vec::new();
    let started = std::time::Instant::now();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "no answer is owed to a request never finished"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    server.join();
}

#[test]
fn presence_pushes_come_once_per_subscription_across_workers_and_ws_reads_history() {
    let server = with_api(|c| c.pubsub.presence_push_prefixes = vec!["chat:".into()]);
    let addr = server.local_addr();
    let [mut a, mut b] = one_per_worker(addr);
    let mut api = Api::connect(addr, Some(KEY));
    for owner in [0, 1] {
        // The channel's owner is each worker in turn: joins cross cores both ways.
        let channel = channel_owned_by(&mut a, owner, "chat");
        a.call(json!({"op":"subscribe","channel":channel}));
        b.call(json!({"op":"subscribe","channel":channel}));
        let join = a.next_push();
        assert_eq!(join["channel"], json!(channel));
        let client = join["join"]["client"].clone();
        assert!(
            client.as_str().is_some_and(|c| c.starts_with("1-")),
            "{join}"
        );
        b.call(json!({"op":"unsubscribe","channel":channel}));
        assert_eq!(
            a.next_push(),
            json!({"channel":channel,"leave":{"client":client,"user":""}})
        );
        // A third connection that subscribes and then goes away.
        let mut c = Ws::connect(addr);
        c.call(json!({"op":"subscribe","channel":channel}));
        let joined = a.next_push()["join"]["client"].clone();
        drop(c);
        assert_eq!(a.next_push()["leave"]["client"], joined);
        // Nothing more about them: the next push is this publish.
        let published = api.ok("/api/publish", json!({"channel":channel,"data":"after"}));
        let push = a.next_push();
        assert_eq!(push["offset"], published["offset"], "{push}");
        assert!(
            b.pushes.is_empty(),
            "b got no join of its own: {:?}",
            b.pushes
        );
        let presence = a.call(json!({"op":"presence","channel":channel}));
        assert_eq!(presence["result"]["clients"], 1, "{presence}");
        a.call(json!({"op":"unsubscribe","channel":channel}));
    }
    // History on /ws: the backlog without subscribing.
    for n in 1..=3 {
        api.ok("/api/publish", json!({"channel":"feed:1","data":n}));
    }
    let h = b.call(json!({"op":"history","channel":"feed:1","limit":2}));
    let data: Vec<Value> = h["result"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["data"].clone())
        .collect();
    assert_eq!(data, [json!(2), json!(3)], "{h}");
    let h = b.call(json!({"op":"history","channel":"feed:1","since":{"offset":2}}));
    assert_eq!(h["result"]["messages"][0]["offset"], 3);
    let bad = b.call(json!({"op":"history","channel":"feed:1","since":"yesterday"}));
    assert_eq!(bad["error"]["code"], "invalid_command");
    server.join();
}

#[test]
fn on_the_redis_engine_an_api_publish_on_one_node_reaches_subscribers_of_another() {
    let redis = redis_server::RedisServer::start();
    let node = |redis: &redis_server::RedisServer| {
        with_api(|c| {
            c.engine.kind = ringcast::config::EngineKind::Redis;
            c.engine.url = ringcast::config::redis_url::RedisUrl::parse(&redis.url()).expect("url");
        })
    };
    let (a, b) = (node(&redis), node(&redis));
    let mut ws = Ws::connect(b.local_addr());
    let sub = ws.call(json!({"op":"subscribe","channel":"news:1"}));
    assert_eq!(sub["result"]["offset"], 0, "{sub}");
    let mut api = Api::connect(a.local_addr(), Some(KEY));
    for n in 1..=3u64 {
        let reply = api.ok("/api/publish", json!({"channel":"news:1","data":{"n":n}}));
        assert_eq!(reply, json!({"offset":n,"epoch":sub["result"]["epoch"]}));
        let push = ws.next_push();
        assert_eq!(
            (push["offset"].clone(), push["data"]["n"].clone()),
            (json!(n), json!(n))
        );
    }
    let info = api.ok("/api/info", json!({}));
    assert_eq!(info["engine"]["kind"], "redis");
    assert_eq!(info["engine"]["connected"], true);
    assert_eq!(
        info["engine"]["node"].as_str().map(str::len),
        Some(8),
        "{info}"
    );
    // History comes from Redis: the same on either node.
    let mut api_b = Api::connect(b.local_addr(), Some(KEY));
    let h = api_b.ok("/api/history", json!({"channel":"news:1","limit":2}));
    let offsets: Vec<Value> = h["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["offset"].clone())
        .collect();
    assert_eq!(offsets, [json!(2), json!(3)], "{h}");
    assert_eq!(
        (h["offset"].clone(), h["complete"].clone()),
        (json!(3), json!(true))
    );
    assert_eq!(h["messages"][1]["data"], json!({"n":3}));
    assert_eq!(h["messages"][1]["epoch"], sub["result"]["epoch"]);
    let epoch = sub["result"]["epoch"].clone();
    let h = ws.call(json!({"op":"history","channel":"news:1","since":{"epoch":epoch,"offset":1}}));
    assert_eq!(
        h["result"]["messages"].as_array().map(Vec::len),
        Some(2),
        "{h}"
    );
    assert_eq!(h["result"]["complete"], true);
    let h = api_b.ok(
        "/api/history",
        json!({"channel":"news:1","since":{"epoch":"other","offset":1}}),
    );
    assert_eq!(h["complete"], false);
    a.join();
    b.join();
}

#[test]
fn the_cli_publishes_and_reads_through_the_api() {
    let server = with_api(|_| {});
    let url = format!("http://{}", server.local_addr());
    let cli = |args: &[&str], key: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .arg("api")
            .args(["--url", &url])
            .args(args)
            .env("RINGCAST_API_KEY", key)
            .output()
            .expect("ringcast runs")
    };
    let out = cli(&["publish", "cli:1", r#"{"x":1}"#], KEY);
    assert!(out.status.success(), "{out:?}");
    let published: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(published["offset"], 1);
    let out = cli(&["publish", "cli:1", "plain text"], KEY);
    assert!(out.status.success(), "{out:?}");
    let out = cli(&["history", "cli:1", "--limit", "5"], KEY);
    let history: Value = serde_json::from_slice(&out.stdout).expect("json");
    let data: Vec<Value> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["data"].clone())
        .collect();
    assert_eq!(data, [json!({"x":1}), json!("plain text")]);
    let out = cli(&["presence", "cli:1", "--stats"], KEY);
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).expect("json"),
        json!({"clients":0,"users":0})
    );
    let refused = cli(&["info"], "wrong");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("HTTP 401"),
        "{refused:?}"
    );
    server.join();
}

#[test]
fn a_draining_server_answers_503_and_closes_idle_api_connections() {
    let server = with_api(|c| c.timeouts.drain_timeout = Duration::from_secs(3));
    let addr = server.local_addr();
    // A WebSocket that never answers the shutdown's close keeps the drain going.
    let _ws = Ws::connect(addr);
    let mut idle = Api::connect(addr, Some(KEY));
    assert_eq!(idle.ok("/api/info", json!({}))["workers"], 2);
    server.shutdown();
    let mut rest = Vec::new();
    let _ = idle.stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "an idle API connection is closed at once");
    let mut late = Api::connect(addr, Some(KEY));
    let r = late.post("/api/publish", json!({"channel":"a","data":1}));
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "draining");
    assert!(r.head.contains("Retry-After: 1"), "{}", r.head);
    server.join();
}

#[test]
fn on_the_redis_engine_presence_spans_nodes_and_a_killed_node_leaves_it_within_the_ttl() {
    let redis = redis_server::RedisServer::start();
    let ttl = Duration::from_millis(900);
    let a = with_api(|c| {
        c.engine.kind = ringcast::config::EngineKind::Redis;
        c.engine.url = ringcast::config::redis_url::RedisUrl::parse(&redis.url()).expect("url");
        c.engine.presence_ttl = ttl;
    });
    let url = format!("engine.redis_url={}", redis.url());
    let mut b = common::Served::start(
        "api-presence-b",
        &[
            "--set",
            "engine.kind=redis",
            "--set",
            &url,
            "--set",
            "engine.redis_presence_ttl=900ms",
        ],
    );
    let mut on_a = Ws::connect(a.local_addr());
    on_a.call(json!({"op":"subscribe","channel":"room:x"}));
    let mut on_b: Vec<Ws> = (0..2).map(|_| Ws::connect(b.addr)).collect();
    for ws in &mut on_b {
        ws.call(json!({"op":"subscribe","channel":"room:x"}));
    }
    let mut api = Api::connect(a.local_addr(), Some(KEY));
    let clients = |api: &mut Api| {
        api.ok("/api/presence_stats", json!({"channel":"room:x"}))["clients"]
            .as_u64()
            .expect("clients")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while clients(&mut api) != 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "both nodes' subscribers in presence"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // /api/channels and /api/info speak for every live node: B's counts
    // come from the record each of its cores refreshes in Redis.
    let room = |api: &mut Api| api.ok("/api/channels", json!({"prefix":"room:"}));
    while room(&mut api) != json!({"channels":{"room:x":3}}) {
        assert!(
            std::time::Instant::now() < deadline,
            "B's subscribers in /api/channels: {}",
            room(&mut api)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let info = api.ok("/api/info", json!({}));
    let nodes = info["nodes"].as_array().expect("nodes").clone();
    assert_eq!(nodes.len(), 2, "{info}");
    assert_eq!(nodes[0]["node"], info["engine"]["node"], "this node first");
    assert_eq!(nodes[0]["clients"], 1);
    assert_eq!(nodes[1]["address"], b.addr.to_string(), "{info}");
    assert_eq!(nodes[1]["workers"], 1, "{info}");
    assert_eq!(
        (nodes[1]["clients"].clone(), nodes[1]["channels"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(nodes[1]["version"], info["version"]);
    assert!(nodes[1]["started"].as_u64().is_some_and(|t| t > 0));
    // Refreshes keep the entries past several ttls.
    std::thread::sleep(ttl * 3);
    assert_eq!(clients(&mut api), 3, "refreshed entries stay");
    assert_eq!(
        api.ok("/api/info", json!({}))["nodes"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "refreshed records stay"
    );
    let listed = api.ok("/api/presence", json!({"channel":"room:x"}));
    assert_eq!(
        listed["presence"].as_object().map(|o| o.len()),
        Some(3),
        "{listed}"
    );
    b.kill();
    let killed = std::time::Instant::now();
    while clients(&mut api) != 1 {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "the killed node's entries expire"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let nodes = |api: &mut Api| api.ok("/api/info", json!({}))["nodes"].clone();
    while nodes(&mut api).as_array().map(Vec::len) != Some(1) {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "the killed node's record expires"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let gone = killed.elapsed();
    assert!(
        gone <= ttl + Duration::from_millis(500),
        "gone after {gone:?}, ttl {ttl:?}"
    );
    assert_eq!(room(&mut api), json!({"channels":{"room:x":1}}));
    // This node's unsubscribe leaves at once.
    on_a.call(json!({"op":"unsubscribe","channel":"room:x"}));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while clients(&mut api) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the unsubscribe leaves presence"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(on_b);
    a.join();
}

#[test]
fn on_the_redis_engine_disconnect_reaches_the_users_connections_on_every_node() {
    let redis = redis_server::RedisServer::start();
    let node = || {
        with_api(|c| {
            c.engine.kind = ringcast::config::EngineKind::Redis;
            c.engine.url = ringcast::config::redis_url::RedisUrl::parse(&redis.url()).expect("url");
            c.auth.mode = AuthMode::Jwt;
            c.auth.key = KeySource::Secret(Secret::new(SECRET));
        })
    };
    let (a, b) = (node(), node());
    let alice = format!("/ws?token={}", token("alice"));
    let mut on_a = Ws::connect_to(a.local_addr(), &alice);
    let mut on_b = Ws::connect_to(b.local_addr(), &alice);
    let bob_token = token_with("bob", json!({"info":{"team":"blue"}}));
    let mut bob_on_b = Ws::connect_to(b.local_addr(), &format!("/ws?token={bob_token}"));
    let mut api = Api::connect(a.local_addr(), Some(KEY));
    // Presence through Redis carries the token's info to the other node.
    // (Node b writes it on its own Redis connection: wait for it.)
    bob_on_b.call(json!({"op":"subscribe","channel":"team:1"}));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let listed = api.ok("/api/presence", json!({"channel":"team:1"}));
        let entries: Vec<Value> = listed["presence"]
            .as_object()
            .map(|o| o.values().cloned().collect())
            .unwrap_or_default();
        if !entries.is_empty() {
            assert_eq!(entries, [json!({"user":"bob","info":{"team":"blue"}})]);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "bob in presence");
        std::thread::sleep(Duration::from_millis(10));
    }
    let reply = api.ok(
        "/api/disconnect",
        json!({"user":"alice","code":4005,"reason":"banned"}),
    );
    assert_eq!(reply, json!({"disconnected":1}), "this node's count");
    for ws in [&mut on_a, &mut on_b] {
        assert_eq!(
            ws.client.recv(),
            Some(Frame::Close(Some((4005, "banned".into()))))
        );
    }
    assert!(bob_on_b.worker() < 2, "bob stays connected");
    a.join();
    b.join();
}

#[test]
fn a_full_owner_inbox_is_429_with_retry_after_and_every_acknowledged_publish_is_in_history() {
    // The smallest inbox, drained one message per turn: concurrent API
    // publishes from one worker to a channel the other owns overflow it.
    let server = with_api(|c| {
        c.pubsub.inbox_capacity = 16;
        c.pubsub.inbox_batch = 1;
        c.pubsub.history_size = 10_000;
        c.api.max_connections = 128;
    });
    let addr = server.local_addr();
    let mut ws = Ws::connect(addr);
    let channels = [
        channel_owned_by(&mut ws, 0, "flood"),
        channel_owned_by(&mut ws, 1, "flood"),
    ];
    let mut conns: Vec<Api> = (0..96).map(|_| Api::connect(addr, Some(KEY))).collect();
    // channel index → data `n` of every acknowledged publish, by offset.
    let mut acked: [std::collections::BTreeMap<u64, u64>; 2] = Default::default();
    let (mut refused, mut n) = (0, 0u64);
    let started = std::time::Instant::now();
    // Rounds of one publish per connection, all written before any is read,
    // until some were refused (bounded in rounds and time).
    for _round in 0..40 {
        let mut sent = Vec::with_capacity(conns.len());
        for (i, api) in conns.iter_mut().enumerate() {
            n += 1;
            let body = json!({"channel": channels[i % 2], "data": {"n": n}});
            api.send("POST", "/api/publish", body.to_string().as_bytes());
            sent.push((i % 2, n));
        }
        for (api, (ch, n)) in conns.iter_mut().zip(sent) {
            let reply = api.read();
            match reply.status {
                200 => {
                    let offset = reply.body["offset"].as_u64().expect("offset");
                    assert_eq!(acked[ch].insert(offset, n), None, "offset {offset} twice");
                }
                429 => {
                    assert_eq!(reply.body["error"]["code"], "overloaded", "{}", reply.body);
                    assert!(reply.head.contains("Retry-After: 1"), "{}", reply.head);
                    refused += 1;
                }
                other => panic!("publish answered {other}: {}", reply.body),
            }
        }
        if refused > 0 || started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    assert!(refused > 0, "no 429 in {n} publishes");
    // Nothing acknowledged is lost, nothing refused is stored: history is
    // exactly the acknowledged publishes, in offset order.
    let mut api = Api::connect(addr, Some(KEY));
    for (ch, acked) in channels.iter().zip(&acked) {
        let h = api.ok("/api/history", json!({"channel": ch}));
        let kept: std::collections::BTreeMap<u64, u64> = h["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| {
                (
                    m["offset"].as_u64().expect("offset"),
                    m["data"]["n"].as_u64().expect("n"),
                )
            })
            .collect();
        assert_eq!(&kept, acked, "{ch}: history is what was acknowledged");
        assert_eq!(h["complete"], true);
    }
    server.join();
}

#[test]
fn on_the_disk_engine_an_api_publish_is_in_history_after_a_restart() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("api-disk-restart");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("store dir");
    let node = || {
        with_api(|c| {
            c.engine.kind = ringcast::config::EngineKind::Disk;
            c.store.data_path = dir.clone();
            c.store.segment_size = 64 << 10;
            c.store.min_free = 0;
        })
    };
    let server = node();
    let mut api = Api::connect(server.local_addr(), Some(KEY));
    let published = api.ok(
        "/api/publish",
        json!({"channel":"log:d","data":{"kept":true}}),
    );
    assert_eq!(published["offset"], 1, "{published}");
    assert_eq!(api.ok("/api/info", json!({}))["engine"]["kind"], "disk");
    drop(api);
    server.join();
    let server = node();
    let mut api = Api::connect(server.local_addr(), Some(KEY));
    let h = api.ok("/api/history", json!({"channel":"log:d"}));
    assert_eq!(h["epoch"], published["epoch"], "{h}");
    assert_eq!(h["offset"], 1);
    assert_eq!(h["messages"].as_array().map(Vec::len), Some(1), "{h}");
    assert_eq!(h["messages"][0]["data"], json!({"kept":true}));
    let next = api.ok("/api/publish", json!({"channel":"log:d","data":2}));
    assert_eq!(next["offset"], 2, "offsets go on after the restart");
    server.join();
}
