//! Authentication and admission at the handshake and on `/ws`, over real
//! sockets: JWT (HS256) from the query or a header, channel permissions,
//! refresh, expiry (close 4001), the Origin allow-list and the per-IP cap.

mod common;

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{http, raw, read_head, start, upgrade_request, Client, Frame};
use ringcast::admission::OriginPolicy;
use ringcast::auth::{AuthMode, KeySource, Secret};
use ringcast::proto::frame::OpCode;
use serde_json::{json, Value};

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn token(sub: &str, exp_in: u64, subs: &[&str], pubs: &[&str]) -> String {
    let claims = json!({"sub": sub, "exp": now() + exp_in, "subs": subs, "pubs": pubs});
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("token")
}

fn secured(
    tweak: impl FnOnce(&mut ringcast::config::ServerConfig),
) -> ringcast::server::ServerHandle {
    start(false, |c| {
        c.auth.mode = AuthMode::Jwt;
        c.auth.key = KeySource::Secret(Secret::new(SECRET));
        c.auth.leeway = Duration::ZERO;
        c.timeouts.timer_tick = Duration::from_millis(50);
        tweak(c);
    })
}

fn ws_with(
    addr: std::net::SocketAddr,
    path_and_query: &str,
    extra: &str,
) -> Result<Client, String> {
    let mut stream = raw(addr);
    let request = upgrade_request(path_and_query).replace("\r\n\r\n", &format!("\r\n{extra}\r\n"));
    stream.write_all(request.as_bytes()).expect("write");
    let head = read_head(&mut stream);
    if head.starts_with("HTTP/1.1 101") {
        Ok(Client::from_stream(stream))
    } else {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut rest);
        Err(format!("{head}{rest}"))
    }
}

fn call(client: &mut Client, command: Value) -> Value {
    client.send(OpCode::Text, true, command.to_string().as_bytes());
    loop {
        match client.recv() {
            Some(Frame::Text(t)) => {
                let v: Value = serde_json::from_str(&t).expect("json");
                if v.get("id") == command.get("id") {
                    return v;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn missing_or_bad_tokens_get_401_with_a_reason() {
    let server = secured(|_| {});
    let addr = server.local_addr();
    let refused = ws_with(addr, "/ws", "").err().expect("refused");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(refused.contains("WWW-Authenticate: Bearer"), "{refused}");
    assert!(refused.contains("missing token"), "{refused}");
    let forged = token("u1", 60, &["*"], &["*"]).replace('.', ".x");
    let refused = ws_with(addr, &format!("/ws?token={forged}"), "")
        .err()
        .expect("refused");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let expired = {
        let claims = json!({"sub": "u1", "exp": now() - 10});
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("token")
    };
    let refused = ws_with(addr, &format!("/ws?token={expired}"), "")
        .err()
        .expect("refused");
    assert!(refused.contains("expired"), "{refused}");
    // The header works as well as the query; /echo needs no token.
    let good = token("u1", 60, &["*"], &["*"]);
    assert!(ws_with(addr, "/ws", &format!("Authorization: Bearer {good}\r\n")).is_ok());
    assert!(ws_with(addr, "/echo", "").is_ok());
}

#[test]
fn claims_decide_which_channels_a_user_may_use_and_refresh_keeps_the_user() {
    let server = secured(|_| {});
    let t = token("alice", 60, &["room:*", "user:{sub}"], &["room:1"]);
    let mut ws = ws_with(server.local_addr(), &format!("/ws?token={t}"), "").expect("upgraded");
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or("ok").to_owned();
    assert_eq!(
        code(&call(
            &mut ws,
            json!({"id":1,"op":"subscribe","channel":"room:2"})
        )),
        "ok"
    );
    assert_eq!(
        code(&call(
            &mut ws,
            json!({"id":2,"op":"subscribe","channel":"user:alice"})
        )),
        "ok"
    );
    assert_eq!(
        code(&call(
            &mut ws,
            json!({"id":3,"op":"subscribe","channel":"user:bob"})
        )),
        "forbidden"
    );
    assert_eq!(
        code(&call(
            &mut ws,
            json!({"id":4,"op":"publish","channel":"room:1","data":1})
        )),
        "ok"
    );
    assert_eq!(
        code(&call(
            &mut ws,
            json!({"id":5,"op":"publish","channel":"room:2","data":1})
        )),
        "forbidden"
    );
    let fresh = token("alice", 600, &["room:*"], &["room:*"]);
    let reply = call(&mut ws, json!({"id":6,"op":"refresh","token":fresh}));
    assert!(
        reply["result"]["expires_at"]
            .as_u64()
            .is_some_and(|at| at > now() + 500),
        "{reply}"
    );
    // The new grants apply at once.
    assert_eq!(
        code(&call(
            &mut ws,
            json!({"id":7,"op":"publish","channel":"room:2","data":1})
        )),
        "ok"
    );
    let mallory = token("mallory", 600, &["*"], &["*"]);
    let reply = call(&mut ws, json!({"id":8,"op":"refresh","token":mallory}));
    assert_eq!(code(&reply), "unauthorized");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("another user")),
        "{reply}"
    );
}

#[test]
fn a_token_that_expires_without_refresh_closes_with_4001() {
    let server = secured(|_| {});
    let t = token("shortlived", 2, &["*"], &["*"]);
    let mut ws = ws_with(server.local_addr(), &format!("/ws?token={t}"), "").expect("upgraded");
    // The close names the expiry; the client's read timeout bounds the wait.
    let close = loop {
        match ws.recv() {
            Some(Frame::Close(c)) => break c,
            Some(Frame::Ping(p)) => ws.send(OpCode::Pong, true, &p),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(close, Some((4001, "token expired".into())));
}

#[test]
fn origin_allow_list_and_per_ip_cap() {
    let server = start(false, |c| {
        c.admission.allowed_origins =
            OriginPolicy::parse(&["https://app.example.com"]).expect("valid origin");
        c.limits.max_connections_per_ip = 2;
    });
    let addr = server.local_addr();
    let refused = ws_with(addr, "/echo", "Origin: https://evil.example.net\r\n")
        .err()
        .expect("refused");
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    let a = ws_with(addr, "/echo", "Origin: https://app.example.com\r\n").expect("allowed origin");
    let b = ws_with(addr, "/echo", "").expect("no Origin header (not a browser)");
    let third = ws_with(addr, "/echo", "")
        .err()
        .expect("over the per-IP cap");
    assert!(third.starts_with("HTTP/1.1 503"), "{third}");
    assert!(third.contains("Retry-After: "), "{third}");
    drop((a, b));
    // Closing frees the slots (the server notices the close within a moment).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match ws_with(addr, "/echo", "") {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                assert!(e.starts_with("HTTP/1.1 503"), "{e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("slots never freed: {e}"),
        }
    }
    assert!(http(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 200"));
}
