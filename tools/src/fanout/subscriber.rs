//! One fan-out subscriber: its state across reconnects ([`Sub`]), the task
//! that connects, subscribes and — after a storm drop — reconnects and
//! resubscribes with `since` ([`sub_task`]), and the handler that checks
//! every delivery's offset (v1) or sequence number (broadcast) and records
//! its latency.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use ringcast::proto::frame::OpCode;

use super::{FanThread, Protocol, READ_BUF, RETRY_PAUSE, SUBSCRIBE_ID};
use crate::gaps::{Seen, SeqTracker};
use crate::link::{self, Handler, Link, LinkEnd, DEFAULT_MAX_BACKLOG};
use crate::stamp::parse_broadcast_header;
use crate::stats::{Counter, Metric};
use crate::v1::{
    encode_subscribe_into, parse_server_message, parse_subscribed, plain_string, ServerMessage,
};

/// One subscriber, across reconnects.
pub(super) struct Sub {
    pub(super) index: u64,
    pub(super) channel: usize,
    /// Ringcast: offsets on the channel; `None` until the first subscribe reply.
    pub(super) offsets: Cell<Option<SeqTracker>>,
    pub(super) first_offset: Cell<u64>,
    pub(super) epoch: RefCell<String>,
    /// Broadcast: sequence numbers per publisher.
    pub(super) seqs: RefCell<Vec<SeqTracker>>,
    pub(super) link: RefCell<Option<Rc<Link>>>,
    /// The first setup (connect + subscribe) is not over yet.
    pub(super) setup_pending: Cell<bool>,
    pub(super) setup_started: Cell<Instant>,
    /// Storm: when this subscriber was dropped (ns since the time base).
    pub(super) dropped_ns: Cell<Option<u64>>,
    /// Storm: no message seen since the reconnect.
    pub(super) awaiting_first: Cell<bool>,
}

impl FanThread {
    /// The subscriber's first setup is over (subscribed, or failed).
    pub(super) fn setup_over(&self, sub: &Sub) {
        if sub.setup_pending.replace(false) {
            self.tally.setup_done();
        }
    }

    pub(super) fn sub_by_slot(&self, slot: usize) -> Rc<Sub> {
        Rc::clone(&self.subs[slot])
    }

    /// Sends a subscribe on `link`, resuming from what `sub` saw when asked.
    pub(super) fn subscribe(&self, sub: &Sub, link: &Link) {
        let resume = match (self.cfg.storm, sub.offsets.get()) {
            (Some(plan), Some(t)) if plan.resume => Some(t.next().saturating_sub(1)),
            _ => None,
        };
        let epoch = sub.epoch.borrow();
        let channel = &self.channels[sub.channel];
        let mut scratch = self.scratch.borrow_mut();
        scratch.clear();
        encode_subscribe_into(
            &mut scratch,
            SUBSCRIBE_ID,
            channel,
            resume.map(|offset| (epoch.as_str(), offset)),
        );
        if let Err(e) = link.send(OpCode::Text, &scratch) {
            self.ctx.stats().error(e.cause());
        }
    }

    /// A delivery stamped `stamp` arrived at `now_ns` (recorded when the
    /// window is known and measures it).
    pub(super) fn delivered(&self, sub: &Sub, stamp: u64, now_ns: u64) {
        let mut stats = self.ctx.stats();
        stats.add(Counter::Received, 1);
        if self.window.get().is_some_and(|w| w.measures(stamp)) {
            stats.add(Counter::ReceivedInWindow, 1);
            stats.record(Metric::Latency, now_ns.saturating_sub(stamp) / 1000);
        }
        if sub.awaiting_first.replace(false) {
            if let Some(dropped) = sub.dropped_ns.get() {
                stats.record(Metric::Resume, now_ns.saturating_sub(dropped) / 1000);
            }
        }
        self.last_delivery.set(Instant::now());
    }
}

/// One subscriber: connect, subscribe, receive; after a storm drop, again.
pub(super) async fn sub_task(t: Rc<FanThread>, slot: usize) {
    let sub = t.sub_by_slot(slot);
    let ctx = Rc::clone(&t.ctx);
    loop {
        sub.setup_started.set(Instant::now());
        let conn = match ctx.dial(sub.index).await {
            Ok(c) => c,
            Err(e) => {
                ctx.stats().error(&format!("connect: {}", e.cause()));
                if sub.setup_pending.get() {
                    t.setup_over(&sub);
                    break;
                }
                if t.closing.get() || ctx.run.stopped() {
                    break;
                }
                ctx.wait_until(Instant::now() + RETRY_PAUSE, false).await;
                continue;
            }
        };
        let (link, reader) = link::start(conn, DEFAULT_MAX_BACKLOG);
        sub.link.replace(Some(Rc::clone(&link)));
        // After a drop, the next message on *this* connection is the resume;
        // anything the old connection still had buffered does not count.
        sub.awaiting_first.set(sub.dropped_ns.get().is_some());
        match t.cfg.protocol {
            Protocol::Ringcast => t.subscribe(&sub, &link),
            Protocol::Broadcast => {
                ctx.stats().record(
                    Metric::Setup,
                    sub.setup_started.get().elapsed().as_micros() as u64,
                );
                t.setup_over(&sub);
            }
        }
        let mut handler = SubHandler {
            t: Rc::clone(&t),
            sub: Rc::clone(&sub),
        };
        let end = ctx
            .read_until_end(reader, &link, &mut handler, READ_BUF)
            .await;
        sub.link.replace(None);
        if sub.setup_pending.get() {
            ctx.stats()
                .error(&format!("subscribe: no reply ({})", end.cause()));
            t.setup_over(&sub);
            break;
        }
        if end == LinkEnd::Dropped && !t.closing.get() && !ctx.run.stopped() {
            if let Some(plan) = t.cfg.storm {
                if !plan.reconnect_delay.is_zero() {
                    ctx.wait_until(Instant::now() + plan.reconnect_delay, false)
                        .await;
                }
            }
            continue;
        }
        if !end.is_clean() {
            ctx.stats().error(&format!("subscriber: {}", end.cause()));
        }
        break;
    }
    t.tally.end();
}

struct SubHandler {
    t: Rc<FanThread>,
    sub: Rc<Sub>,
}

impl SubHandler {
    fn bad(&self, why: &str) {
        let mut stats = self.t.ctx.stats();
        stats.add(Counter::BadMessages, 1);
        stats.error(why);
    }

    fn on_v1(&mut self, text: &str, now_ns: u64) {
        let (t, sub) = (&self.t, &self.sub);
        match parse_server_message(text) {
            Some(ServerMessage::Push {
                offset,
                epoch,
                data,
                ..
            }) => {
                let mut offsets = sub
                    .offsets
                    .get()
                    .unwrap_or_else(|| SeqTracker::expecting(offset));
                if *sub.epoch.borrow() != epoch {
                    t.ctx.stats().add(Counter::EpochChanges, 1);
                    sub.epoch.replace(epoch.to_string());
                    offsets = SeqTracker::expecting(offset);
                }
                let seen = offsets.observe(offset);
                sub.offsets.set(Some(offsets));
                if !self.is_new(seen) {
                    return;
                }
                match plain_string(data).and_then(parse_broadcast_header) {
                    Some((stamp, _, _)) => t.delivered(sub, stamp, now_ns),
                    None => self.bad("push data is not a generator payload"),
                }
            }
            Some(ServerMessage::Reply {
                id: Some(SUBSCRIBE_ID),
                result,
            }) => match parse_subscribed(result) {
                Some(s) => self.on_subscribed(s.epoch, s.offset, s.recovered, now_ns),
                None => self.bad("bad subscribe reply"),
            },
            Some(ServerMessage::Error { code, .. }) => {
                t.ctx.stats().error(&format!("subscribe: {code}"));
                t.setup_over(sub);
            }
            Some(ServerMessage::Reply { .. }) => self.bad("reply to an unknown id"),
            None => self.bad("not a v1 message"),
        }
    }

    fn on_subscribed(&self, epoch: &str, offset: u64, recovered: bool, now_ns: u64) {
        let (t, sub) = (&self.t, &self.sub);
        let mut stats = t.ctx.stats();
        match sub.offsets.get() {
            None => {
                // The first subscribe: the stream starts after `offset`.
                sub.offsets.set(Some(SeqTracker::expecting(offset + 1)));
                sub.first_offset.set(offset);
                sub.epoch.replace(epoch.to_string());
                stats.record(
                    Metric::Setup,
                    sub.setup_started.get().elapsed().as_micros() as u64,
                );
                drop(stats);
                t.setup_over(sub);
            }
            Some(seen) => {
                // A resubscribe after a drop.
                stats.add(Counter::Resubscribed, 1);
                if let Some(dropped) = sub.dropped_ns.get() {
                    stats.record(Metric::Resubscribe, now_ns.saturating_sub(dropped) / 1000);
                }
                if recovered {
                    stats.add(Counter::Recovered, 1);
                    return;
                }
                stats.add(Counter::NotRecovered, 1);
                if *sub.epoch.borrow() == epoch {
                    // Everything between what we saw and the reply is gone.
                    stats.add(Counter::Missed, offset.saturating_sub(seen.next() - 1));
                } else {
                    stats.add(Counter::EpochChanges, 1);
                    sub.epoch.replace(epoch.to_string());
                }
                sub.offsets.set(Some(SeqTracker::expecting(offset + 1)));
            }
        }
    }

    /// Counts a gap or a duplicate; whether the message is new, so to be
    /// delivered (a duplicate is not).
    fn is_new(&self, seen: Seen) -> bool {
        let mut stats = self.t.ctx.stats();
        match seen {
            Seen::InOrder => true,
            Seen::Gap(n) => {
                stats.add(Counter::Gaps, n);
                true
            }
            Seen::Duplicate => {
                stats.add(Counter::Duplicates, 1);
                false
            }
        }
    }

    fn on_broadcast(&mut self, data: &[u8], now_ns: u64) {
        let (t, sub) = (&self.t, &self.sub);
        let Some((stamp, publisher, seq)) = parse_broadcast_header(data) else {
            self.bad("not a generator payload");
            return;
        };
        let seen = match sub.seqs.borrow_mut().get_mut(publisher as usize) {
            Some(tracker) => tracker.observe(seq),
            None => {
                self.bad("unknown publisher");
                return;
            }
        };
        if !self.is_new(seen) {
            return;
        }
        t.delivered(sub, stamp, now_ns);
    }
}

impl Handler for SubHandler {
    fn on_message(&mut self, _link: &Link, data: &[u8], text: bool, now_ns: u64) {
        match self.t.cfg.protocol {
            Protocol::Ringcast => match std::str::from_utf8(data) {
                Ok(s) if text => self.on_v1(s, now_ns),
                _ => self.bad("binary frame on a v1 connection"),
            },
            Protocol::Broadcast => self.on_broadcast(data, now_ns),
        }
    }

    fn on_ping(&mut self) {
        self.t.ctx.stats().add(Counter::Pings, 1);
    }
}
