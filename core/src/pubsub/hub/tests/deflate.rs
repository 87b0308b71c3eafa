//! permessage-deflate across cores: a push is compressed once, on its
//! owner, only while some subscriber takes it (`pubsub/deflate.rs`).

use super::*;
use crate::proto::deflate::MessageInflater;
use crate::proto::frame::{FrameHeader, RSV1};

/// The frames queued for `slot`, emptying its outbox.
fn frames(slot: &Slot) -> Vec<Bytes> {
    std::iter::from_fn(|| slot.outbox.borrow_mut().pop_front()).collect()
}

/// A `/ws` connection `id` on `hub` with `deflate` negotiated (as the
/// handshake sets it: before any subscribe).
fn deflate_member(hub: &Hub, id: u64, deflate: Option<DeflateParams>) -> Rc<Slot> {
    let slot = Rc::new(Slot::new(ConnId::from_raw(id), Rc::new(Kicks::default())));
    hub.join(slot.clone(), "");
    if let Some(params) = deflate {
        slot.deflate.set_params(params);
    }
    slot
}

const SHARES: DeflateParams = DeflateParams {
    server_no_context_takeover: true,
    client_no_context_takeover: true,
    server_max_window_bits: 15,
};

/// Whether `frame` is compressed (RSV1), and its payload, inflated on its
/// own (no context from earlier messages).
fn opened(frame: &[u8]) -> (bool, Vec<u8>) {
    opened_with(frame, &mut MessageInflater::new())
}

/// [`opened`] with the inflater of a connection that keeps context.
fn opened_with(frame: &[u8], inflater: &mut MessageInflater) -> (bool, Vec<u8>) {
    let (header, at) = FrameHeader::parse(frame).expect("valid").expect("whole");
    if header.rsv & RSV1 == 0 {
        return (false, frame[at..].to_vec());
    }
    inflater
        .inflate_message(&frame[at..], 1 << 20)
        .expect("inflates");
    (true, inflater.out.clone())
}

/// A chat message with at least `len` bytes of text, as JSON.
fn chat(len: usize) -> Bytes {
    let mut text = String::new();
    for word in ["hello", "room", "lunch", "at", "noon", "?"].iter().cycle() {
        if text.len() >= len {
            break;
        }
        text.push_str(word);
        text.push(' ');
    }
    Bytes::from(format!(
        r#"{{"user":"ann","room":"lobby","text":"{text}"}}"#
    ))
}

/// Subscribes each `(hub, slot)` to `channel` (owned by core 1); returns
/// their replies, in that order.
fn subscribe_all(hubs: &[Hub], channel: &str, subs: &[(usize, &Rc<Slot>)]) -> Vec<Bytes> {
    for (core, slot) in subs {
        hubs[*core]
            .subscribe(slot.id(), channel, None, None)
            .expect("subscribe");
    }
    hubs[1].drain_inbox(64);
    hubs[0].drain_inbox(64);
    subs.iter()
        .map(|(_, slot)| {
            let mut got = frames(slot);
            assert_eq!(got.len(), 1, "the subscribe reply");
            got.remove(0)
        })
        .collect()
}

fn compressions(hubs: &[Hub]) -> [u64; 2] {
    [
        hubs[0].deflate().compressions(),
        hubs[1].deflate().compressions(),
    ]
}

#[test]
fn deflate_subscribers_on_two_cores_share_one_compression_made_by_the_owner() {
    let mut config = ServerConfig::default();
    config.deflate.enabled = true;
    let (hubs, channel) = two_cores(config, 64);
    let narrow = DeflateParams {
        server_max_window_bits: 9,
        ..SHARES
    };
    let own = DeflateParams {
        server_no_context_takeover: false,
        ..SHARES
    };
    // Core 0: one that shares, one plain, one with a 2^9 window, one
    // that keeps context. Core 1 (the owner): one that shares, one plain.
    let a = deflate_member(&hubs[0], 1, Some(SHARES));
    let b = deflate_member(&hubs[0], 2, None);
    let narrow_sub = deflate_member(&hubs[0], 3, Some(narrow));
    let own_sub = deflate_member(&hubs[0], 4, Some(own));
    let c = deflate_member(&hubs[1], 5, Some(SHARES));
    let d = deflate_member(&hubs[1], 6, None);
    let publisher = deflate_member(&hubs[1], 7, None);
    let replies = subscribe_all(
        &hubs,
        &channel,
        &[
            (0, &a),
            (0, &b),
            (0, &narrow_sub),
            (0, &own_sub),
            (1, &c),
            (1, &d),
        ],
    );
    // The context-keeping connection's stream began with its reply.
    let mut own_inflater = MessageInflater::new();
    opened_with(&replies[3], &mut own_inflater);
    let before = compressions(&hubs);
    const MESSAGES: u64 = 3;
    for i in 0..MESSAGES {
        // Over 2^9 bytes: too large for the narrow window.
        let data = chat(600 + i as usize);
        hubs[1]
            .publish(publisher.id(), &channel, data.clone(), ReplyTo::Nobody)
            .expect("publish");
        hubs[0].drain_inbox(64);
        let [a, b, narrow_sub, own_sub, c, d] = [&a, &b, &narrow_sub, &own_sub, &c, &d].map(|s| {
            let mut got = frames(s);
            assert_eq!(got.len(), 1, "one push each");
            got.remove(0)
        });
        assert_eq!(a, c, "byte-identical on both cores");
        assert_eq!(a.as_ptr(), c.as_ptr(), "the owner's one copy");
        assert!(a.len() < b.len() / 2, "{} vs {}", a.len(), b.len());
        let (packed, payload) = opened(&a);
        assert!(packed);
        let (plain, expected) = opened(&b);
        assert!(!plain);
        assert!(
            expected.ends_with(
                &format!(r#""data":{}}}"#, std::str::from_utf8(&data).expect("utf-8")).into_bytes()
            ),
            "{}",
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(payload, expected);
        assert_eq!(d.as_ptr(), b.as_ptr(), "the plain frame is shared too");
        assert_eq!(narrow_sub.as_ptr(), b.as_ptr(), "window too small: plain");
        assert_eq!(
            opened_with(&own_sub, &mut own_inflater),
            (true, expected),
            "its own stream"
        );
    }
    let after = compressions(&hubs);
    assert_eq!(
        after[1] - before[1],
        MESSAGES,
        "one compression per message on the owner"
    );
    assert_eq!(
        after[0] - before[0],
        MESSAGES,
        "core 0 compresses only for the connection that keeps context"
    );
    let snapshot = hubs[1].snapshot();
    assert_eq!(snapshot.deflate_compressions, after[1]);
}

#[test]
fn the_owner_stops_compressing_when_the_last_deflate_subscriber_leaves() {
    let mut config = ServerConfig::default();
    config.deflate.enabled = true;
    let (hubs, channel) = two_cores(config, 64);
    let a = deflate_member(&hubs[0], 1, Some(SHARES));
    let b = deflate_member(&hubs[0], 2, None);
    let a2 = deflate_member(&hubs[0], 3, Some(SHARES));
    let d = deflate_member(&hubs[1], 4, None);
    let publisher = deflate_member(&hubs[1], 5, None);
    subscribe_all(&hubs, &channel, &[(0, &a), (0, &b), (0, &a2), (1, &d)]);
    let publish = |n: usize| {
        hubs[1]
            .publish(publisher.id(), &channel, chat(200 + n), ReplyTo::Nobody)
            .expect("publish");
        hubs[0].drain_inbox(64);
    };
    let owner = || hubs[1].deflate().compressions();
    let start = owner();
    publish(0);
    assert_eq!(owner(), start + 1);
    assert!(opened(&frames(&a)[0]).0);
    // One of two leaves (unsubscribe): still compressed, for the other.
    hubs[0]
        .unsubscribe(a.id(), &channel, ok_frame(None))
        .expect("unsubscribe");
    hubs[1].drain_inbox(64);
    publish(1);
    assert_eq!(owner(), start + 2);
    assert!(opened(&frames(&a2)[0]).0);
    // The last one closes: core 0 keeps a plain subscriber, so it stays
    // subscribed, but nobody takes compressed pushes any more.
    hubs[0].leave(a2.id());
    hubs[1].drain_inbox(64);
    // (Core 0 compressed the deflate subscribers' replies: not pushes.)
    let core0 = hubs[0].deflate().compressions();
    for n in 2..5 {
        publish(n);
    }
    assert_eq!(owner(), start + 2, "no compression for plain subscribers");
    assert_eq!(hubs[0].deflate().compressions(), core0);
    let got = frames(&b);
    assert_eq!(got.len(), 5, "every push");
    assert!(got.iter().all(|f| !opened(f).0));
    assert_eq!(frames(&d).len(), 5);
    // A deflate subscriber comes back: compressed again.
    let again = deflate_member(&hubs[0], 6, Some(SHARES));
    subscribe_all(&hubs, &channel, &[(0, &again)]);
    publish(5);
    assert_eq!(owner(), start + 3);
    assert!(opened(&frames(&again)[0]).0);
}

#[test]
fn a_push_under_min_size_goes_out_plain_with_no_compression() {
    let mut config = ServerConfig::default();
    config.deflate.enabled = true;
    config.deflate.min_size = 200;
    let (hubs, channel) = two_cores(config, 64);
    let a = deflate_member(&hubs[0], 1, None);
    let c = deflate_member(&hubs[1], 2, Some(SHARES));
    let publisher = deflate_member(&hubs[1], 3, None);
    subscribe_all(&hubs, &channel, &[(0, &a), (1, &c)]);
    // Under deflate.min_size (64 bytes): plain for everyone.
    hubs[1]
        .publish(
            publisher.id(),
            &channel,
            Bytes::from_static(b"1"),
            ReplyTo::Nobody,
        )
        .expect("publish");
    hubs[0].drain_inbox(64);
    assert!(!opened(&frames(&c)[0]).0);
    assert!(!opened(&frames(&a)[0]).0);
    assert_eq!(compressions(&hubs), [0, 0], "the replies too are small");
}
