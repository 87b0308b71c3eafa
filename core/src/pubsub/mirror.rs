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
