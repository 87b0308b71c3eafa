//! A push reaches a core's subscribers as one frame shared by `Rc`
//! (`mailbox::Queued::Shared`), and each of them still sends it whole and
//! in order, at its own pace.

use std::io::IoSlice;

use super::*;
use crate::mailbox::MAX_IOVECS;
use crate::proto::frame::FrameHeader;
use crate::sys::Transfer;

/// The frames in `stream`, whole, as (header length, frame bytes).
fn split(mut stream: &[u8]) -> Vec<(usize, &[u8])> {
    let mut frames = Vec::new();
    while !stream.is_empty() {
        let (header, at) = FrameHeader::parse(stream).expect("valid").expect("whole");
        let (frame, rest) = stream.split_at(at + header.payload_len as usize);
        frames.push((at, frame));
        stream = rest;
    }
    frames
}

#[test]
fn a_push_is_one_rc_for_every_local_subscriber_and_each_sends_it_in_order() {
    const N: usize = 8;
    let hub = one_core_hub(|_| {});
    let kicks = Rc::new(Kicks::default());
    let slots: Vec<Rc<Slot>> = (1..=N as u64)
        .map(|id| {
            let slot = Rc::new(Slot::new(ConnId::from_raw(id), kicks.clone()));
            hub.join(slot.clone(), "");
            hub.subscribe(slot.id(), "room", None, None)
                .expect("subscribe");
            slot
        })
        .collect();
    let publisher = Rc::new(Slot::new(ConnId::from_raw(100), kicks.clone()));
    hub.join(publisher.clone(), "");
    for data in [r#""one""#, r#""two""#] {
        hub.publish(publisher.id(), "room", Bytes::from(data), ReplyTo::Nobody)
            .expect("publish");
    }

    let mut pushes = Vec::new();
    let mut shared = Vec::new();
    let mut streams = Vec::new();
    for (k, slot) in slots.iter().enumerate() {
        let mut outbox = slot.outbox.borrow_mut();
        // Queued: the subscribe reply (this connection's own), then the pushes.
        let mut out = Vec::new();
        let head = {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            assert_eq!(outbox.slices_into(&mut slices), 3);
            pushes.push([slices[1].as_ptr(), slices[2].as_ptr()]);
            // A partial send: the reply and `k` bytes of the first push.
            let head = slices[0].len() + k;
            out.extend(slices.iter().flat_map(|s| s.iter()).take(head));
            head
        };
        assert_eq!(outbox.consume(head), 1, "the reply went out whole");
        match outbox.front() {
            Some(Queued::Shared { frame, sent }) => {
                assert_eq!(*sent, k);
                assert_eq!(Rc::strong_count(frame), N, "one Rc for the core's {N}");
                shared.push(Rc::as_ptr(frame));
            }
            _ => panic!("subscriber {k}: the push is not shared"),
        }
        streams.push(out);
    }
    for (k, (slot, out)) in slots.iter().zip(&mut streams).enumerate() {
        // The rest in sends of 1, 6, 11, ... bytes.
        let chunk = 1 + 5 * k;
        slot.outbox
            .borrow_mut()
            .flush_with(|slices| {
                let mut left = chunk;
                for slice in slices {
                    let take = left.min(slice.len());
                    out.extend_from_slice(&slice[..take]);
                    left -= take;
                    if left == 0 {
                        break;
                    }
                }
                Ok(Transfer::Done(chunk - left))
            })
            .expect("flush");
        assert!(slot.outbox.borrow().is_empty());
    }
    assert!(
        shared.iter().all(|p| *p == shared[0]),
        "the same Rc in every outbox"
    );
    assert!(
        pushes.iter().all(|p| *p == pushes[0]),
        "every outbox points at the same bytes"
    );
    for (k, stream) in streams.iter().enumerate() {
        let frames = split(stream);
        assert_eq!(frames.len(), 3, "subscriber {k}");
        let text = |i: usize| {
            let (at, frame) = frames[i];
            String::from_utf8_lossy(&frame[at..]).into_owned()
        };
        assert!(text(0).contains(r#""result""#), "{}", text(0));
        assert!(text(1).ends_with(r#""data":"one"}"#), "{}", text(1));
        assert!(text(2).ends_with(r#""data":"two"}"#), "{}", text(2));
        assert_eq!(
            frames[1..],
            split(&streams[0])[1..],
            "the same push bytes for all"
        );
    }
}
