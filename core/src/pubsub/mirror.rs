//! A Redis-engine channel as its owner core sees it: the local mirror of
//! the channel's sequence in Redis, fed by pushes, and the subscribe
//! requests waiting on it. Sans-IO: every input is a method, every output an
//! [`Action`] the hub carries out in order (`hub.rs`); the timeouts take
//! `now` as an argument.
//!
//! # What the mirror keeps
//!
//! An [`OwnedChannel`] whose epoch is Redis's epoch for the channel and
//! whose `last_offset` is `delivered`: the last offset fanned out to this
//! node's subscriber cores. Its history is the last `pubsub.history_size`
//! pushes fanned out, so a resume that falls inside it costs no round trip.
//!
//! # Phases
//!
//! - `Subscribing`: the hub asked the node's subscriber to subscribe the
//!   channel in Redis; nothing is known yet. Pushes are held.
//! - `Syncing`: Redis confirmed the subscription (or re-confirmed it after a
//!   lost connection, or a push showed a gap or a new epoch); a history read
//!   from `delivered` is in flight. Pushes are held.
//! - `Live`: pushes with offset `delivered + 1` fan out at once.
//!
//! # Why nothing is lost, duplicated or reordered
//!
//! Redis runs commands one at a time and each publish script atomically,
//! so a publish is entirely before or after the subscription's
//! confirmation, and before or after any history read. A sync read is sent
//! only after the confirmation arrived: a publish it does not see (offset
//! above its top `T`) ran after the confirmation, so its push will arrive.
//! After the read the mirror holds every offset up to `T` (fanned out from
//! the read's entries), drops held pushes `≤ delivered` and fans out the
//! rest in order; a push beyond `delivered + 1` is a gap (a lost
//! connection, a cut subscriber) and starts another read from `delivered`.
//!
//! A subscribe request is answered at a point of the owner's sequence:
//! reply offset `D = delivered` and a replay of exactly `(since, D]`; every
//! `Deliver` after the reply carries an offset above `D`. That is the memory
//! engine's invariant (`hub.rs`), so the subscriber cores do not know which
//! engine runs. The replay comes from the mirror's history when it reaches
//! back to `since`, else from a Redis read `(since, T]`, kept up to `D` and
//! completed from the mirror when `T < D` (pushes fanned out while the read
//! was in flight). When the client has seen more than this node delivered
//! (`D < since ≤ T`, e.g. it comes from another node), the answer waits
//! until `delivered` reaches `since`; those pushes are on their way, by the
//! argument above.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::channel::{OwnedChannel, Resume};
use super::Refusal;
use crate::engine::redis::{EngineError, HistoryReply, Push, Recovery};
use crate::mailbox::ConnId;
use crate::proto::v1::{push_frame, Since};

/// A subscribe request from a core, waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter {
    pub from: usize,
    pub conn: ConnId,
    pub id: Option<u64>,
    pub since: Option<Since>,
    /// When it reached the owner; it is answered `unavailable` past the
    /// engine's command timeout.
    pub at: Instant,
}

/// The answer to one subscribe request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub epoch: String,
    pub offset: u64,
    pub recovered: bool,
    pub replay: Vec<Bytes>,
}

/// What the hub must do, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this push frame to every subscriber core.
    Fanout(Bytes),
    /// Read the channel's history (a sync), from `since` when given.
    Sync(Option<Since>),
    /// Read history from the waiter's `since` for its answer.
    ReadFor(Waiter),
    /// Answer a subscribe request.
    Answer(Waiter, Result<Answer, Refusal>),
    /// This many offsets were never fanned out: Redis history no longer
    /// held them when the mirror found the gap (counted in `/metrics`).
    Skipped(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Subscribing,
    Syncing,
    Live,
}

/// Most pushes held while a read is in flight; past it the newest are
/// dropped and the mirror syncs again once the read is done.
const HELD_MAX: usize = 65_536;

#[derive(Debug)]
pub struct Mirror {
    /// Names this incarnation of the channel on the owner core, so a read
    /// answered after the channel was dropped and created again is ignored.
    pub gen: u64,
    channel: std::sync::Arc<str>,
    phase: Phase,
    /// False until the first sync: the epoch is unknown.
    synced: bool,
    ch: OwnedChannel,
    held: VecDeque<Push>,
    /// Pushes were dropped from `held`, or a re-confirmation came while a
    /// read was in flight: sync again after the current read.
    resync: bool,
    /// The last sync failed (Redis down): retried by [`Mirror::on_tick`].
    sync_failed: Option<Instant>,
    /// Waiting for `Live`.
    waiting: Vec<Waiter>,
    /// Waiting for `delivered` to reach their `since`.
    deferred: Vec<Waiter>,
    /// Reads for waiters in flight.
    reads: usize,
    history_size: usize,
}

impl Mirror {
    pub fn new(
        channel: std::sync::Arc<str>,
        gen: u64,
        cores: usize,
        history_size: usize,
        now: Instant,
    ) -> Self {
        Self {
            gen,
            channel,
            phase: Phase::Subscribing,
            synced: false,
            ch: OwnedChannel::new(String::new(), cores, now),
            held: VecDeque::new(),
            resync: false,
            sync_failed: None,
            waiting: Vec::new(),
            deferred: Vec::new(),
            reads: 0,
            history_size,
        }
    }

    pub fn channel(&self) -> &OwnedChannel {
        &self.ch
    }

    pub fn set_core_subscribed(&mut self, core: usize, subscribed: bool, now: Instant) {
        self.ch.set_core_subscribed(core, subscribed, now);
    }

    /// Core `core`'s widest shared deflate window (see `pubsub/deflate.rs`).
    pub fn set_core_deflate(&mut self, core: usize, window: u8) {
        self.ch.set_core_deflate(core, window);
    }

    /// No core subscribes and nobody waits: the channel can leave Redis.
    pub fn is_unused(&self) -> bool {
        self.ch.subscriber_cores().next().is_none()
            && self.waiting.is_empty()
            && self.deferred.is_empty()
            && self.reads == 0
    }

    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    fn since_delivered(&self) -> Option<Since> {
        self.synced.then(|| Since {
            epoch: self.ch.epoch().to_owned(),
            offset: self.ch.last_offset(),
        })
    }

    fn start_sync(&mut self, since: Option<Since>, out: &mut Vec<Action>) {
        self.phase = Phase::Syncing;
        self.sync_failed = None;
        out.push(Action::Sync(since));
    }

    /// Redis confirmed the subscription: read what came before it.
    pub fn on_live(&mut self, out: &mut Vec<Action>) {
        if self.phase == Phase::Syncing && self.sync_failed.is_none() {
            // The read in flight may predate this confirmation.
            self.resync = true;
            return;
        }
        self.start_sync(self.since_delivered(), out);
    }

    pub fn on_push(&mut self, push: Push, out: &mut Vec<Action>) {
        if self.phase != Phase::Live {
            if self.held.len() >= HELD_MAX {
                self.resync = true;
            } else {
                self.held.push_back(push);
            }
            return;
        }
        self.apply(push, out);
    }

    /// One push while live: fan out, drop, or start a gap read.
    fn apply(&mut self, push: Push, out: &mut Vec<Action>) {
        let delivered = self.ch.last_offset();
        if push.epoch != self.ch.epoch() {
            // Redis lost the channel and numbers it anew: read the new
            // epoch's history from its start.
            let since = Since {
                epoch: push.epoch.clone(),
                offset: 0,
            };
            self.held.push_front(push);
            self.start_sync(Some(since), out);
        } else if push.offset <= delivered {
        } else if push.offset == delivered + 1 {
            self.fan_out(push.offset, &push.payload, out);
        } else {
            self.held.push_front(push);
            self.start_sync(self.since_delivered(), out);
        }
    }

    fn fan_out(&mut self, offset: u64, payload: &[u8], out: &mut Vec<Action>) {
        // Our publish path stores validated JSON; anything else in Redis is
        // not ours to forward.
        let data = std::str::from_utf8(payload).unwrap_or("null");
        let frame = push_frame(&self.channel, offset, self.ch.epoch(), data);
        self.ch
            .append(frame.clone(), self.history_size, Instant::now());
        out.push(Action::Fanout(frame));
        self.release_deferred(out);
    }

    /// A sync read's result.
    pub fn on_sync(
        &mut self,
        result: Result<HistoryReply, EngineError>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.phase != Phase::Syncing {
            return;
        }
        let reply = match result {
            Ok(reply) => reply,
            Err(_) => {
                self.sync_failed = Some(now);
                return;
            }
        };
        if self.synced && reply.epoch == self.ch.epoch() {
            match reply.recovery {
                Some(Recovery::Recovered(entries)) => {
                    for (offset, payload) in entries {
                        if offset == self.ch.last_offset() + 1 {
                            self.fan_out(offset, &payload, out);
                        }
                    }
                }
                // History no longer reaches back: the offsets in between
                // are gone for this node's subscribers; go on from the top.
                Some(Recovery::NotRecovered) | None => {
                    if reply.top > self.ch.last_offset() {
                        tracing::warn!(
                            channel = %self.channel,
                            from = self.ch.last_offset(),
                            to = reply.top,
                            "redis history did not cover a gap: offsets skipped"
                        );
                        out.push(Action::Skipped(reply.top - self.ch.last_offset()));
                        self.ch.restart(reply.epoch, reply.top);
                    }
                }
            }
        } else {
            // First sync, or a new epoch: start from the top, or from the
            // new epoch's first offset when its history was read.
            let read_new_epoch = matches!(reply.recovery, Some(Recovery::Recovered(_)));
            if self.synced && !read_new_epoch {
                // Asked from our old epoch: read the new one from its start.
                let since = Since {
                    epoch: reply.epoch,
                    offset: 0,
                };
                self.start_sync(Some(since), out);
                return;
            }
            match reply.recovery {
                Some(Recovery::Recovered(entries)) if self.synced => {
                    self.ch.restart(reply.epoch, 0);
                    for (offset, payload) in entries {
                        if offset == self.ch.last_offset() + 1 {
                            self.fan_out(offset, &payload, out);
                        }
                    }
                    if self.ch.last_offset() < reply.top {
                        let top = reply.top;
                        let epoch = self.ch.epoch().to_owned();
                        self.ch.restart(epoch, top);
                    }
                }
                _ => self.ch.restart(reply.epoch, reply.top),
            }
            self.synced = true;
        }
        self.phase = Phase::Live;
        if std::mem::take(&mut self.resync) {
            self.start_sync(self.since_delivered(), out);
            return;
        }
        while self.phase == Phase::Live {
            let Some(push) = self.held.pop_front() else {
                break;
            };
            self.apply(push, out);
        }
        if self.phase == Phase::Live {
            for waiter in std::mem::take(&mut self.waiting) {
                self.resolve(waiter, out);
            }
        }
    }

    /// A subscribe request reached the owner.
    pub fn add_waiter(&mut self, waiter: Waiter, out: &mut Vec<Action>) {
        if self.phase == Phase::Live {
            self.resolve(waiter, out);
        } else {
            self.waiting.push(waiter);
        }
    }

    fn answer_now(&self, waiter: Waiter, recovered: bool, replay: Vec<Bytes>) -> Action {
        Action::Answer(
            waiter,
            Ok(Answer {
                epoch: self.ch.epoch().to_owned(),
                offset: self.ch.last_offset(),
                recovered,
                replay,
            }),
        )
    }

    fn resolve(&mut self, waiter: Waiter, out: &mut Vec<Action>) {
        let Some(since) = &waiter.since else {
            out.push(self.answer_now(waiter, false, Vec::new()));
            return;
        };
        match self.ch.resume(since) {
            Resume::Recovered(frames) => out.push(self.answer_now(waiter, true, frames)),
            Resume::NotRecovered => {
                self.reads += 1;
                out.push(Action::ReadFor(waiter));
            }
        }
    }

    /// The Redis read for a waiter came back.
    pub fn on_read_for(
        &mut self,
        waiter: Waiter,
        result: Result<HistoryReply, EngineError>,
        out: &mut Vec<Action>,
    ) {
        self.reads = self.reads.saturating_sub(1);
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => {
                out.push(Action::Answer(waiter, Err(refusal_for(&e))));
                return;
            }
        };
        if self.phase != Phase::Live {
            // A gap read started meanwhile: answer once it is done.
            self.waiting.push(waiter);
            return;
        }
        let delivered = self.ch.last_offset();
        let Some(since) = waiter.since.clone() else {
            out.push(self.answer_now(waiter, false, Vec::new()));
            return;
        };
        let entries = match reply.recovery {
            Some(Recovery::Recovered(entries)) if reply.epoch == self.ch.epoch() => entries,
            _ => {
                out.push(self.answer_now(waiter, false, Vec::new()));
                return;
            }
        };
        if since.offset > delivered {
            // The client saw more than this node delivered; those pushes
            // are on their way.
            self.deferred.push(waiter);
            return;
        }
        let mut replay: Vec<Bytes> = entries
            .iter()
            .filter(|(offset, _)| *offset <= delivered)
            .map(|(offset, payload)| {
                let data = std::str::from_utf8(payload).unwrap_or("null");
                push_frame(&self.channel, *offset, self.ch.epoch(), data)
            })
            .collect();
        if reply.top < delivered {
            let tail = Since {
                epoch: self.ch.epoch().to_owned(),
                offset: reply.top.max(since.offset),
            };
            match self.ch.resume(&tail) {
                Resume::Recovered(frames) => replay.extend(frames),
                Resume::NotRecovered => {
                    out.push(self.answer_now(waiter, false, Vec::new()));
                    return;
                }
            }
        }
        out.push(self.answer_now(waiter, true, replay));
    }

    fn release_deferred(&mut self, out: &mut Vec<Action>) {
        if self.deferred.is_empty() {
            return;
        }
        let delivered = self.ch.last_offset();
        let (ready, wait): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|w| w.since.as_ref().is_none_or(|s| s.offset <= delivered));
        self.deferred = wait;
        for waiter in ready {
            let recovered = match waiter.since.as_ref().map(|s| self.ch.resume(s)) {
                Some(Resume::Recovered(frames)) => Some(frames),
                _ => None,
            };
            out.push(match recovered {
                Some(frames) => self.answer_now(waiter, true, frames),
                None => self.answer_now(waiter, false, Vec::new()),
            });
        }
    }

    /// Periodic work: retry a failed sync, give up on waiters past `timeout`,
    /// trim history by age.
    pub fn on_tick(
        &mut self,
        now: Instant,
        timeout: Duration,
        history_ttl: Duration,
        out: &mut Vec<Action>,
    ) {
        self.ch.expire(history_ttl, now);
        if let Some(failed) = self.sync_failed {
            if now.duration_since(failed) >= timeout.min(Duration::from_millis(500)) {
                let since = match self.held.front() {
                    Some(p) if self.synced && p.epoch != self.ch.epoch() => Some(Since {
                        epoch: p.epoch.clone(),
                        offset: 0,
                    }),
                    _ => self.since_delivered(),
                };
                self.start_sync(since, out);
            }
        }
        let expired = |w: &Waiter| now.duration_since(w.at) >= timeout;
        if self.waiting.iter().any(expired) {
            let (late, keep): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiting)
                .into_iter()
                .partition(expired);
            self.waiting = keep;
            let why = Refusal::unavailable("redis did not confirm the channel in time");
            for waiter in late {
                out.push(Action::Answer(waiter, Err(why.clone())));
            }
        }
        if self.deferred.iter().any(expired) {
            let (late, keep): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.deferred)
                .into_iter()
                .partition(expired);
            self.deferred = keep;
            for waiter in late {
                out.push(self.answer_now(waiter, false, Vec::new()));
            }
        }
    }
}

/// The refusal a client sees for an engine error.
pub fn refusal_for(e: &EngineError) -> Refusal {
    match e {
        EngineError::Overloaded => Refusal::unavailable("the redis engine's queue is full"),
        other => Refusal::unavailable(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn push(offset: u64, epoch: &str) -> Push {
        Push {
            channel: "c".into(),
            offset,
            epoch: epoch.into(),
            payload: Bytes::from(offset.to_string()),
        }
    }

    fn reply(
        epoch: &str,
        top: u64,
        entries: Option<std::ops::RangeInclusive<u64>>,
    ) -> HistoryReply {
        HistoryReply {
            epoch: epoch.into(),
            top,
            recovery: entries
                .map(|r| Recovery::Recovered(r.map(|o| (o, Bytes::from(o.to_string()))).collect())),
        }
    }

    fn waiter(conn: u64, since: Option<(&str, u64)>) -> Waiter {
        Waiter {
            from: 0,
            conn: ConnId::from_raw(conn),
            id: Some(conn),
            since: since.map(|(epoch, offset)| Since {
                epoch: epoch.into(),
                offset,
            }),
            at: Instant::now(),
        }
    }

    /// The offsets fanned out, and answers as `(conn, offset, recovered,
    /// replayed offsets)`, in the order the actions came.
    fn summary(out: &[Action]) -> Vec<String> {
        let offset_of = |frame: &Bytes| {
            // A server text frame under 126 bytes: a 2-byte header, then JSON.
            let v: serde_json::Value = serde_json::from_slice(&frame[2..]).expect("push JSON");
            v["offset"].as_u64().expect("offset")
        };
        out.iter()
            .map(|a| match a {
                Action::Fanout(frame) => format!("fan {}", offset_of(frame)),
                Action::Sync(since) => format!("sync {:?}", since.as_ref().map(|s| s.offset)),
                Action::ReadFor(w) => format!("read {}", w.conn.raw()),
                Action::Answer(w, Ok(a)) => {
                    let replay: Vec<u64> = a.replay.iter().map(offset_of).collect();
                    format!(
                        "answer {} at {} {} {replay:?}",
                        w.conn.raw(),
                        a.offset,
                        a.recovered
                    )
                }
                Action::Answer(w, Err(r)) => format!("refuse {} {}", w.conn.raw(), r.code),
                Action::Skipped(n) => format!("skipped {n}"),
            })
            .collect()
    }

    fn live_mirror(top: u64) -> Mirror {
        let mut m = Mirror::new(Arc::from("c"), 0, 2, 100, Instant::now());
        let mut out = Vec::new();
        m.on_live(&mut out);
        m.on_sync(Ok(reply("e1", top, None)), Instant::now(), &mut out);
        assert!(m.is_live());
        m
    }

    #[test]
    fn the_first_sync_drops_what_it_covers_and_answers_at_the_delivered_offset() {
        let mut m = Mirror::new(Arc::from("c"), 0, 2, 100, Instant::now());
        let mut out = Vec::new();
        m.add_waiter(waiter(1, None), &mut out);
        m.on_live(&mut out);
        // Published between the confirmation and the read: both arrive.
        m.on_push(push(5, "e1"), &mut out);
        m.on_push(push(6, "e1"), &mut out);
        m.on_sync(Ok(reply("e1", 5, None)), Instant::now(), &mut out);
        assert_eq!(
            summary(&out),
            ["sync None", "fan 6", "answer 1 at 6 false []"]
        );
    }

    #[test]
    fn a_gap_is_filled_from_history_before_the_pushes_held_meanwhile() {
        let mut m = live_mirror(3);
        let mut out = Vec::new();
        m.on_push(push(4, "e1"), &mut out);
        m.on_push(push(7, "e1"), &mut out);
        m.on_push(push(8, "e1"), &mut out);
        m.on_sync(Ok(reply("e1", 8, Some(5..=8))), Instant::now(), &mut out);
        m.on_push(push(9, "e1"), &mut out);
        assert_eq!(
            summary(&out),
            [
                "fan 4",
                "sync Some(4)",
                "fan 5",
                "fan 6",
                "fan 7",
                "fan 8",
                "fan 9"
            ]
        );
    }

    #[test]
    fn a_gap_history_no_longer_holds_is_skipped_and_counted() {
        let mut m = live_mirror(3);
        let mut out = Vec::new();
        m.on_push(push(9, "e1"), &mut out);
        // History was trimmed past 4..=8 before the read ran.
        m.on_sync(Ok(reply("e1", 9, None)), Instant::now(), &mut out);
        m.on_push(push(10, "e1"), &mut out);
        assert_eq!(summary(&out), ["sync Some(3)", "skipped 6", "fan 10"]);
    }

    #[test]
    fn a_resume_read_is_cut_at_delivered_and_completed_from_the_mirror() {
        let mut m = live_mirror(10);
        let mut out = Vec::new();
        m.add_waiter(waiter(1, Some(("e1", 4))), &mut out);
        // The read saw up to 11; the node delivered 11 and 12 meanwhile.
        m.on_push(push(11, "e1"), &mut out);
        m.on_push(push(12, "e1"), &mut out);
        m.on_read_for(
            waiter(1, Some(("e1", 4))),
            Ok(reply("e1", 11, Some(5..=11))),
            &mut out,
        );
        // Another read saw up to 14, beyond what the node delivered.
        m.add_waiter(waiter(2, Some(("e1", 6))), &mut out);
        m.on_read_for(
            waiter(2, Some(("e1", 6))),
            Ok(reply("e1", 14, Some(7..=14))),
            &mut out,
        );
        assert_eq!(
            summary(&out),
            [
                "read 1",
                "fan 11",
                "fan 12",
                "answer 1 at 12 true [5, 6, 7, 8, 9, 10, 11, 12]",
                "read 2",
                "answer 2 at 12 true [7, 8, 9, 10, 11, 12]",
            ]
        );
    }

    #[test]
    fn a_client_ahead_of_this_node_waits_for_the_pushes_on_their_way() {
        let mut m = live_mirror(10);
        let mut out = Vec::new();
        m.add_waiter(waiter(1, Some(("e1", 12))), &mut out);
        m.on_read_for(
            waiter(1, Some(("e1", 12))),
            Ok(reply("e1", 13, Some(13..=13))),
            &mut out,
        );
        m.on_push(push(11, "e1"), &mut out);
        m.on_push(push(12, "e1"), &mut out);
        m.on_push(push(13, "e1"), &mut out);
        assert_eq!(
            summary(&out),
            [
                "read 1",
                "fan 11",
                "fan 12",
                "answer 1 at 12 true []",
                "fan 13"
            ]
        );
        // A resume point from the future that Redis does not know either is
        // not recovered; an unknown epoch neither.
        let mut out = Vec::new();
        m.add_waiter(waiter(2, Some(("e1", 99))), &mut out);
        m.on_read_for(
            waiter(2, Some(("e1", 99))),
            Ok(HistoryReply {
                epoch: "e1".into(),
                top: 13,
                recovery: Some(Recovery::NotRecovered),
            }),
            &mut out,
        );
        assert_eq!(summary(&out), ["read 2", "answer 2 at 13 false []"]);
    }

    #[test]
    fn a_new_epoch_is_read_from_its_start() {
        let mut m = live_mirror(10);
        let mut out = Vec::new();
        m.on_push(push(2, "e2"), &mut out);
        m.on_sync(Ok(reply("e2", 2, Some(1..=2))), Instant::now(), &mut out);
        m.on_push(push(3, "e2"), &mut out);
        assert_eq!(summary(&out), ["sync Some(0)", "fan 1", "fan 2", "fan 3"]);
        assert_eq!(m.channel().epoch(), "e2");
    }

    #[test]
    fn waiters_time_out_unavailable_and_a_failed_sync_is_retried() {
        let t0 = Instant::now();
        let mut m = Mirror::new(Arc::from("c"), 0, 2, 100, t0);
        let mut out = Vec::new();
        m.add_waiter(waiter(1, None), &mut out);
        m.on_live(&mut out);
        m.on_sync(Err(EngineError::Overloaded), t0, &mut out);
        let timeout = Duration::from_secs(1);
        m.on_tick(
            t0 + Duration::from_millis(600),
            timeout,
            Duration::from_secs(60),
            &mut out,
        );
        m.on_tick(
            t0 + Duration::from_secs(2),
            timeout,
            Duration::from_secs(60),
            &mut out,
        );
        assert_eq!(
            summary(&out),
            ["sync None", "sync None", "refuse 1 unavailable"]
        );
        assert!(m.is_unused(), "nobody waits any more");
    }
}
