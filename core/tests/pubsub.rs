//! Pub/sub over real sockets with two workers: cross-core delivery, order and
//! exactly-once, resume under concurrent publishing, slow consumers, bad commands.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::ws::{channel_owned_by, one_per_worker, Ws};
use common::{start, Frame, DRIVERS};
use ringcast::proto::frame::OpCode;
use serde_json::{json, Value};

fn two_workers(
    epoll: common::Driver,
    tweak: impl FnOnce(&mut ringcast::config::ServerConfig),
) -> ringcast::server::ServerHandle {
    start(epoll, |c| {
        c.server.workers = 2;
        // Tests publish in tight loops; the rate limit has its own test.
        c.limits.command_rate = 1_000_000;
        c.limits.command_burst = 1_000_000;
        tweak(c);
    })
}

#[test]
fn publish_reaches_subscribers_on_both_cores_for_either_owner() {
    for epoll in DRIVERS {
        let server = two_workers(epoll, |_| {});
        let [mut w0, mut w1] = one_per_worker(server.local_addr());
        for owner in [0, 1] {
            let channel = channel_owned_by(&mut w0, owner, "cross");
            for sub in [&mut w0, &mut w1] {
                let reply = sub.call(json!({"op":"subscribe","channel":channel}));
                assert_eq!(reply["result"]["offset"], json!(0), "{reply}");
                assert_eq!(reply["result"]["recovered"], json!(false));
            }
            let mut publisher = Ws::connect(server.local_addr());
            for i in 1..=5u64 {
                let reply =
                    publisher.call(json!({"op":"publish","channel":channel,"data":{"n":i}}));
                assert_eq!(reply["result"]["offset"], json!(i), "{reply}");
            }
            for sub in [&mut w0, &mut w1] {
                let mut epoch = None;
                for i in 1..=5u64 {
                    let push = sub.next_push();
                    assert_eq!(push["channel"], json!(channel));
                    assert_eq!(push["offset"], json!(i));
                    assert_eq!(push["data"], json!({"n": i}));
                    let e = push["epoch"].as_str().expect("epoch").to_owned();
                    assert_eq!(epoch.get_or_insert(e.clone()), &e, "one epoch per channel");
                }
            }
        }
    }
}

#[test]
fn many_publishers_many_subscribers_every_offset_once_in_order() {
    for epoll in DRIVERS {
        const PUBLISHERS: u64 = 4;
        const EACH: u64 = 250;
        let server = two_workers(epoll, |_| {});
        let addr = server.local_addr();
        let channels = ["order:a", "order:b"];
        let mut subs: Vec<(Ws, &str)> = Vec::new();
        for i in 0..8 {
            let mut ws = Ws::connect(addr);
            let channel = channels[i % 2];
            let reply = ws.call(json!({"op":"subscribe","channel":channel}));
            assert!(reply.get("result").is_some(), "{reply}");
            subs.push((ws, channel));
        }
        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|p| {
                std::thread::spawn(move || {
                    let mut ws = Ws::connect(addr);
                    for seq in 0..EACH {
                        let channel = channels[(seq % 2) as usize];
                        let reply = ws.call(
                            json!({"op":"publish","channel":channel,"data":{"p":p,"seq":seq}}),
                        );
                        assert!(reply["result"]["offset"].is_u64(), "{reply}");
                    }
                })
            })
            .collect();
        for p in publishers {
            p.join().expect("publisher");
        }
        let per_channel = PUBLISHERS * EACH / 2;
        for (ws, channel) in &mut subs {
            let mut last_seq: HashMap<u64, u64> = HashMap::new();
            for offset in 1..=per_channel {
                let push = ws.next_push();
                assert_eq!(push["channel"], json!(channel));
                assert_eq!(
                    push["offset"],
                    json!(offset),
                    "gap or duplicate on {channel}"
                );
                let (p, seq) = (
                    push["data"]["p"].as_u64().expect("p"),
                    push["data"]["seq"].as_u64().expect("seq"),
                );
                if let Some(prev) = last_seq.insert(p, seq) {
                    assert!(seq > prev, "publisher {p} reordered: {prev} then {seq}");
                }
            }
        }
    }
}

#[test]
fn resume_under_concurrent_publishing_has_no_gap_and_no_duplicate() {
    for epoll in DRIVERS {
        let server = two_workers(epoll, |c| c.pubsub.history_size = 10_000);
        let addr = server.local_addr();
        let channel = "resume:1";
        let mut sub = Ws::connect(addr);
        sub.call(json!({"op":"subscribe","channel":channel}));
        let publisher = std::thread::spawn(move || {
            let mut ws = Ws::connect(addr);
            for n in 0..600u64 {
                ws.call(json!({"op":"publish","channel":channel,"data":n}));
            }
        });
        let mut seen = Vec::new();
        let mut epoch = String::new();
        for _ in 0..50 {
            let push = sub.next_push();
            epoch = push["epoch"].as_str().expect("epoch").to_owned();
            seen.push(push["offset"].as_u64().expect("offset"));
        }
        // The network drops: reconnect while publishing goes on, resume after the last seen.
        drop(sub);
        std::thread::sleep(Duration::from_millis(20));
        let mut sub = Ws::connect(addr);
        let last = *seen.last().expect("saw some");
        let reply = sub.call(
            json!({"op":"subscribe","channel":channel,"since":{"epoch":epoch,"offset":last}}),
        );
        assert_eq!(reply["result"]["recovered"], json!(true), "{reply}");
        assert_eq!(reply["result"]["epoch"], json!(epoch));
        publisher.join().expect("publisher");
        while *seen.last().expect("some") < 600 {
            seen.push(sub.next_push()["offset"].as_u64().expect("offset"));
        }
        let expected: Vec<u64> = (1..=600).collect();
        assert_eq!(
            seen, expected,
            "union of before and after the reconnect is contiguous, no duplicate"
        );
    }
}

#[test]
fn resume_that_cannot_be_served_says_recovered_false() {
    for epoll in DRIVERS {
        let server = two_workers(epoll, |c| c.pubsub.history_size = 5);
        let mut ws = Ws::connect(server.local_addr());
        for n in 0..20 {
            ws.call(json!({"op":"publish","channel":"short","data":n}));
        }
        let info = ws.call(json!({"op":"subscribe","channel":"short"}));
        let epoch = info["result"]["epoch"].clone();
        assert_eq!(info["result"]["offset"], json!(20));
        ws.call(json!({"op":"unsubscribe","channel":"short"}));
        let too_old =
            ws.call(json!({"op":"subscribe","channel":"short","since":{"epoch":epoch,"offset":3}}));
        assert_eq!(
            too_old["result"],
            json!({"epoch":epoch,"offset":20,"recovered":false})
        );
        ws.call(json!({"op":"unsubscribe","channel":"short"}));
        let other_epoch = ws
            .call(json!({"op":"subscribe","channel":"short","since":{"epoch":"feed","offset":19}}));
        assert_eq!(other_epoch["result"]["recovered"], json!(false));
        ws.call(json!({"op":"unsubscribe","channel":"short"}));
        // Within the kept history it works, and replays 16..=20.
        let ok = ws
            .call(json!({"op":"subscribe","channel":"short","since":{"epoch":epoch,"offset":15}}));
        assert_eq!(ok["result"]["recovered"], json!(true));
        let replayed: Vec<Value> = (0..5).map(|_| ws.next_push()["offset"].clone()).collect();
        assert_eq!(
            replayed,
            vec![json!(16), json!(17), json!(18), json!(19), json!(20)]
        );
    }
}

#[test]
fn slow_subscriber_is_closed_and_healthy_one_keeps_everything() {
    for epoll in DRIVERS {
        let server = two_workers(epoll, |c| c.limits.max_outbound_bytes = 64 * 1024);
        let addr = server.local_addr();
        let channel = "slow:1";
        let mut slow = Ws::connect(addr);
        slow.call(json!({"op":"subscribe","channel":channel}));
        let mut healthy = Ws::connect(addr);
        healthy.call(json!({"op":"subscribe","channel":channel}));
        let mut publisher = Ws::connect(addr);
        let blob = "x".repeat(16 * 1024);
        let total = 2000u64; // 32 MB towards a subscriber that never reads
                             // Every publish is acknowledged and reaches the healthy subscriber while
                             // the slow one holds nothing up (how fast is a benchmark's question).
        for n in 1..=total {
            let reply = publisher.call(json!({"op":"publish","channel":channel,"data":blob}));
            assert_eq!(reply["result"]["offset"], json!(n));
            let push = healthy.next_push();
            assert_eq!(push["offset"], json!(n), "healthy subscriber has no gap");
        }
        // The slow one was closed with 1008 after what fit in its queue.
        let mut close = None;
        while let Some(frame) = slow.client.recv() {
            if let Frame::Close(c) = frame {
                close = c;
                break;
            }
        }
        let (code, reason) = close.expect("a close frame");
        assert_eq!(code, 1008);
        assert!(reason.contains("slow consumer"), "{reason}");
    }
}

#[test]
fn bad_commands_get_error_replies_and_the_connection_stays_usable() {
    for epoll in DRIVERS {
        let server = two_workers(epoll, |c| c.pubsub.max_subscriptions_per_connection = 3);
        let mut ws = Ws::connect(server.local_addr());
        let code = |v: &Value| v["error"]["code"].as_str().unwrap_or("<none>").to_owned();
        ws.send(json!("not an object"));
        assert_eq!(code(&ws.recv()), "invalid_json");
        ws.client.send(OpCode::Text, true, b"{nope");
        assert_eq!(code(&ws.recv()), "invalid_json");
        assert_eq!(code(&ws.call(json!({"op":"dance"}))), "unknown_op");
        assert_eq!(code(&ws.call(json!({"op":"subscribe"}))), "invalid_command");
        assert_eq!(
            code(&ws.call(json!({"op":"publish","channel":"a"}))),
            "invalid_command"
        );
        assert_eq!(
            code(&ws.call(json!({"op":"subscribe","channel":"x".repeat(10_000)}))),
            "invalid_channel"
        );
        assert_eq!(
            code(&ws.call(json!({"op":"subscribe","channel":"has space"}))),
            "invalid_channel"
        );
        assert_eq!(
            code(&ws.call(json!({"op":"unsubscribe","channel":"never"}))),
            "not_subscribed"
        );
        let nested = format!("{}1{}", "[".repeat(30_000), "]".repeat(30_000));
        ws.client.send(
            OpCode::Text,
            true,
            format!(r#"{{"id":99,"op":"subscribe","channel":"a","since":{nested}}}"#).as_bytes(),
        );
        let reply = ws.recv();
        assert_eq!(
            (reply["id"].clone(), code(&reply)),
            (json!(99), "invalid_command".into())
        );
        for c in ["s1", "s2", "s3"] {
            assert!(ws
                .call(json!({"op":"subscribe","channel":c}))
                .get("result")
                .is_some());
        }
        assert_eq!(
            code(&ws.call(json!({"op":"subscribe","channel":"s1"}))),
            "already_subscribed"
        );
        assert_eq!(
            code(&ws.call(json!({"op":"subscribe","channel":"s4"}))),
            "too_many_subscriptions"
        );
        ws.client.send(OpCode::Binary, true, b"\x01\x02");
        assert_eq!(code(&ws.recv()), "binary_not_supported");
        // Still fully usable.
        let reply = ws.call(json!({"op":"publish","channel":"s1","data":[1,{"a":null}]}));
        assert_eq!(reply["result"]["offset"], json!(1));
        assert_eq!(ws.next_push()["data"], json!([1, {"a": null}]));
    }
}

#[test]
fn limits_on_publish_size_rate_and_channel_count() {
    for epoll in DRIVERS {
        let server = two_workers(epoll, |c| {
            c.pubsub.max_publish_bytes = 100;
            c.limits.command_rate = 1;
            c.limits.command_burst = 5;
            c.pubsub.max_channels = 2;
        });
        let mut ws = Ws::connect(server.local_addr());
        let code = |v: &Value| v["error"]["code"].as_str().unwrap_or("<none>").to_owned();
        // Every refusal's message names the key that refused it and its value.
        let said = |v: &Value| {
            let error = &v["error"];
            format!(
                "{}: {}",
                error["code"].as_str().unwrap_or("<none>"),
                error["message"]
            )
        };
        assert_eq!(
            said(&ws.call(json!({"op":"publish","channel":"a","data":"x".repeat(200)}))),
            "publish_too_large: \"data is 202 bytes, over pubsub.max_publish_bytes = 100\""
        );
        // One channel per worker: a second channel with the same owner is refused.
        let first = channel_owned_by(&mut Ws::connect(server.local_addr()), 0, "cap");
        assert!(ws
            .call(json!({"op":"publish","channel":first,"data":1}))
            .get("result")
            .is_some());
        let mut probe = Ws::connect(server.local_addr());
        let second = (0..1000)
            .map(|i| format!("cap2:{i}"))
            .find(|c| probe.call(json!({"op":"info","channel":c}))["result"]["owner"] == json!(0))
            .expect("channel");
        assert_eq!(
            said(&ws.call(json!({"op":"publish","channel":second,"data":1}))),
            "too_many_channels: \"this channel's owner core holds 1 channels, its share of \
         pubsub.max_channels = 2 over 2 workers\""
        );
        // Three commands so far; two more spend the burst of 5, the next is rate limited.
        let _ = ws.call(json!({"op":"info"}));
        let _ = ws.call(json!({"op":"info"}));
        let limited = ws.call(json!({"op":"info"}));
        assert_eq!(code(&limited), "rate_limited");
        assert_eq!(
            said(&limited),
            "rate_limited: \"over limits.command_rate = 1 per second (limits.command_burst = 5)\""
        );
    }
}
