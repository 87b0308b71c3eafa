//! A channel as its owner core sees it: epoch, offsets, history, and which
//! cores have subscribers.
//!
//! Only the owner core touches an [`OwnedChannel`], so it needs no lock: the
//! offsets it hands out are contiguous within an epoch because one thread
//! assigns them in order. Time comes in as `now` (sans-IO, testable).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::proto::v1::Since;

/// What a subscriber with a resume point gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Everything after `since` is in history: these push frames, in order.
    Recovered(Vec<Bytes>),
    /// Different epoch, or history no longer reaches back: reload state.
    NotRecovered,
}

/// What [`OwnedChannel::read`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRead {
    /// Push frames, oldest first.
    pub frames: Vec<Bytes>,
    /// Nothing in the asked range is missing from `frames` but for `limit`.
    pub complete: bool,
}

#[derive(Debug)]
struct Entry {
    offset: u64,
    at: Instant,
    frame: Bytes,
}

#[derive(Debug)]
pub struct OwnedChannel {
    /// Random per channel creation, in hex: a restart or an eviction changes it.
    epoch: String,
    /// Offset of the last published message; 0 before the first.
    last_offset: u64,
    history: VecDeque<Entry>,
    history_bytes: usize,
    /// Bit `i` set: core `i` has at least one local subscriber.
    subscriber_cores: Vec<u64>,
    /// permessage-deflate: `[core]` is the widest window among that core's
    /// subscribers that take the shared compressed push, as its last
    /// message said (`0`: none; see `pubsub/deflate.rs`). Empty until some
    /// core has one, so a channel nobody compresses holds no bytes for it.
    deflate_windows: Vec<u8>,
    /// The widest of `deflate_windows`, read by every publish.
    deflate_widest: u8,
    /// Last publish or subscription change, for idle eviction.
    last_active: Instant,
}

impl OwnedChannel {
    pub fn new(epoch: String, workers: usize, now: Instant) -> Self {
        Self {
            epoch,
            last_offset: 0,
            history: VecDeque::new(),
            history_bytes: 0,
            subscriber_cores: vec![0; workers.div_ceil(64)],
            deflate_windows: Vec::new(),
            deflate_widest: 0,
            last_active: now,
        }
    }

    /// A channel as the disk engine's recovery left it: `history` is
    /// `(offset, when, push frame)`, oldest first, ending at `last_offset`.
    pub fn restore(
        epoch: String,
        last_offset: u64,
        history: Vec<(u64, Instant, Bytes)>,
        workers: usize,
        now: Instant,
    ) -> Self {
        let mut ch = Self::new(epoch, workers, now);
        ch.last_offset = last_offset;
        for (offset, at, frame) in history {
            ch.history_bytes += frame.len();
            ch.history.push_back(Entry { offset, at, frame });
        }
        ch
    }

    /// Takes back every publish after `last` (the disk engine, when their
    /// write failed and none of them was acknowledged or delivered).
    pub fn rollback(&mut self, last: u64) {
        if last >= self.last_offset {
            return;
        }
        while self.history.back().is_some_and(|e| e.offset > last) {
            if let Some(gone) = self.history.pop_back() {
                self.history_bytes -= gone.frame.len();
            }
        }
        self.last_offset = last;
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    pub fn last_offset(&self) -> u64 {
        self.last_offset
    }

    /// The oldest offset history still holds.
    pub fn oldest_offset(&self) -> Option<u64> {
        self.history.front().map(|e| e.offset)
    }

    /// The offset the next publish gets.
    pub fn next_offset(&self) -> u64 {
        self.last_offset + 1
    }

    /// Records the frame of offset `next_offset()` in history, keeping at most
    /// `keep` entries.
    pub fn append(&mut self, frame: Bytes, keep: usize, now: Instant) -> u64 {
        self.last_offset += 1;
        self.last_active = now;
        if keep > 0 {
            self.history_bytes += frame.len();
            self.history.push_back(Entry {
                offset: self.last_offset,
                at: now,
                frame,
            });
            while self.history.len() > keep {
                self.pop_oldest();
            }
        }
        self.last_offset
    }

    fn pop_oldest(&mut self) {
        if let Some(old) = self.history.pop_front() {
            self.history_bytes -= old.frame.len();
        }
    }

    /// Drops history older than `ttl`.
    pub fn expire(&mut self, ttl: Duration, now: Instant) {
        while self
            .history
            .front()
            .is_some_and(|e| now.duration_since(e.at) >= ttl)
        {
            self.pop_oldest();
        }
    }

    /// True when no core subscribes and nothing happened for `ttl`.
    pub fn is_evictable(&self, ttl: Duration, now: Instant) -> bool {
        self.subscriber_cores.iter().all(|w| *w == 0) && now.duration_since(self.last_active) >= ttl
    }

    pub fn history_bytes(&self) -> usize {
        self.history_bytes
    }

    /// What to replay for a subscriber resuming after `since`.
    pub fn resume(&self, since: &Since) -> Resume {
        if since.epoch != self.epoch || since.offset > self.last_offset {
            return Resume::NotRecovered;
        }
        let first_needed = since.offset + 1;
        let reaches_back = match self.history.front() {
            Some(oldest) => oldest.offset <= first_needed,
            None => first_needed > self.last_offset,
        };
        if !reaches_back {
            return Resume::NotRecovered;
        }
        let frames = self
            .history
            .iter()
            .filter(|e| e.offset >= first_needed)
            .map(|e| e.frame.clone());
        Resume::Recovered(frames.collect())
    }

    /// A history read (the `history` command, `/api/history`): the frames
    /// after `after` (all kept ones when `None`), at most `limit` of them —
    /// the oldest first after `after`, else the newest `limit`. `complete`
    /// says no message of the range was left out (history reaches back far
    /// enough, and `after` is of this epoch when `epoch` is given).
    pub fn read(&self, after: Option<u64>, epoch: Option<&str>, limit: usize) -> HistoryRead {
        let kept = self.history.len();
        let (frames, complete): (Vec<Bytes>, bool) = match after {
            Some(after) => {
                let same_epoch = epoch.is_none_or(|e| e == self.epoch);
                let reaches = match self.history.front() {
                    Some(oldest) => oldest.offset <= after + 1,
                    None => after >= self.last_offset,
                };
                let frames = self
                    .history
                    .iter()
                    .filter(|e| e.offset > after)
                    .take(limit)
                    .map(|e| e.frame.clone())
                    .collect();
                (frames, same_epoch && reaches && after <= self.last_offset)
            }
            None => {
                let skip = kept.saturating_sub(limit);
                let frames = self.history.iter().skip(skip).map(|e| e.frame.clone());
                let oldest = self
                    .history
                    .front()
                    .map_or(self.last_offset + 1, |e| e.offset);
                (frames.collect(), oldest == 1 || skip > 0)
            }
        };
        HistoryRead { frames, complete }
    }

    /// Starts over at `epoch`, as if `top` messages had been published with
    /// none of them in history; the subscriber cores stay. The Redis
    /// engine's mirror uses it when Redis's sequence moved past what this
    /// node saw (first sync, a gap history no longer covers, a new epoch).
    pub fn restart(&mut self, epoch: String, top: u64) {
        self.epoch = epoch;
        self.last_offset = top;
        self.history.clear();
        self.history_bytes = 0;
    }

    pub fn set_core_subscribed(&mut self, core: usize, subscribed: bool, now: Instant) {
        let (word, bit) = (core / 64, 1u64 << (core % 64));
        if let Some(w) = self.subscriber_cores.get_mut(word) {
            if subscribed {
                *w |= bit;
            } else {
                *w &= !bit;
            }
        }
        if !subscribed {
            self.set_core_deflate(core, 0);
        }
        self.last_active = now;
    }

    /// Core `core`'s widest window among its subscribers that take the
    /// shared compressed push is now `window` (`0`: it has none).
    pub fn set_core_deflate(&mut self, core: usize, window: u8) {
        if self.deflate_windows.len() <= core {
            if window == 0 {
                return;
            }
            self.deflate_windows.resize(core + 1, 0);
        }
        self.deflate_windows[core] = window;
        self.deflate_widest = self.deflate_windows.iter().copied().max().unwrap_or(0);
    }

    /// The widest window of any subscriber that takes the shared compressed
    /// push, on any core (`0`: nobody; pushes are not compressed).
    #[inline]
    pub fn deflate_widest(&self) -> u8 {
        self.deflate_widest
    }

    /// The cores with local subscribers, in increasing order.
    pub fn subscriber_cores(&self) -> impl Iterator<Item = usize> + '_ {
        self.subscriber_cores
            .iter()
            .enumerate()
            .flat_map(|(i, &word)| {
                (0..64)
                    .filter(move |b| word & (1 << b) != 0)
                    .map(move |b| i * 64 + b)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u64) -> Bytes {
        Bytes::from(format!("m{n}"))
    }

    fn channel_with(n: u64, keep: usize, t0: Instant) -> OwnedChannel {
        let mut ch = OwnedChannel::new("e1".into(), 2, t0);
        for i in 1..=n {
            assert_eq!(ch.next_offset(), i);
            assert_eq!(ch.append(frame(i), keep, t0), i);
        }
        ch
    }

    fn since(epoch: &str, offset: u64) -> Since {
        Since {
            epoch: epoch.into(),
            offset,
        }
    }

    #[test]
    fn resume_replays_exactly_what_was_missed() {
        let t0 = Instant::now();
        let ch = channel_with(10, 5, t0);
        assert_eq!(
            ch.resume(&since("e1", 7)),
            Resume::Recovered(vec![frame(8), frame(9), frame(10)])
        );
        assert_eq!(ch.resume(&since("e1", 10)), Resume::Recovered(vec![]));
        // Offset 6 is the oldest kept, so resuming after 5 still works; after 4 does not.
        assert_eq!(
            ch.resume(&since("e1", 5)).clone(),
            Resume::Recovered((6..=10).map(frame).collect())
        );
        assert_eq!(ch.resume(&since("e1", 4)), Resume::NotRecovered);
        assert_eq!(ch.resume(&since("other", 7)), Resume::NotRecovered);
        assert_eq!(
            ch.resume(&since("e1", 11)),
            Resume::NotRecovered,
            "an offset from the future"
        );
    }

    #[test]
    fn resume_on_an_empty_channel() {
        let t0 = Instant::now();
        let ch = channel_with(0, 5, t0);
        assert_eq!(ch.resume(&since("e1", 0)), Resume::Recovered(vec![]));
        let no_history = channel_with(3, 0, t0);
        assert_eq!(
            no_history.resume(&since("e1", 3)),
            Resume::Recovered(vec![])
        );
        assert_eq!(no_history.resume(&since("e1", 2)), Resume::NotRecovered);
    }

    #[test]
    fn history_is_bounded_by_count_and_age() {
        let t0 = Instant::now();
        let mut ch = channel_with(10, 3, t0);
        assert_eq!(ch.history_bytes(), "m8m9m10".len());
        ch.append(frame(11), 3, t0 + Duration::from_secs(10));
        ch.expire(Duration::from_secs(5), t0 + Duration::from_secs(12));
        assert_eq!(
            ch.resume(&since("e1", 10)),
            Resume::Recovered(vec![frame(11)])
        );
        assert_eq!(ch.resume(&since("e1", 9)), Resume::NotRecovered);
        assert_eq!(ch.history_bytes(), 3);
    }

    #[test]
    fn history_reads_take_the_newest_or_those_after_an_offset() {
        let t0 = Instant::now();
        let ch = channel_with(10, 5, t0);
        let read = ch.read(None, None, 3);
        assert_eq!(read.frames, vec![frame(8), frame(9), frame(10)]);
        assert!(read.complete, "the limit cut it, nothing was lost");
        let all = ch.read(None, None, 100);
        assert_eq!(all.frames, (6..=10).map(frame).collect::<Vec<_>>());
        assert!(!all.complete, "offsets 1..=5 fell out of history");
        let after = ch.read(Some(6), Some("e1"), 2);
        assert_eq!(
            (after.frames, after.complete),
            (vec![frame(7), frame(8)], true)
        );
        assert!(!ch.read(Some(3), None, 10).complete, "4 and 5 are gone");
        assert!(!ch.read(Some(7), Some("e0"), 10).complete, "another epoch");
        assert!(ch.read(Some(10), None, 10).frames.is_empty());
        let fresh = channel_with(2, 5, t0);
        assert!(fresh.read(None, None, 100).complete);
    }

    #[test]
    fn restore_resumes_like_the_original_and_rollback_takes_back_the_tail() {
        let t0 = Instant::now();
        let history = (4..=6).map(|i| (i, t0, frame(i))).collect();
        let mut ch = OwnedChannel::restore("e1".into(), 6, history, 2, t0);
        assert_eq!(
            ch.resume(&since("e1", 4)),
            Resume::Recovered(vec![frame(5), frame(6)])
        );
        assert_eq!(ch.resume(&since("e1", 2)), Resume::NotRecovered);
        assert_eq!(ch.append(frame(7), 10, t0), 7);
        ch.rollback(5);
        assert_eq!((ch.last_offset(), ch.history_bytes()), (5, "m4m5".len()));
        ch.rollback(9);
        assert_eq!(ch.next_offset(), 6, "a rollback never moves forward");
    }

    #[test]
    fn eviction_needs_no_subscribers_and_idleness() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(60);
        let mut ch = OwnedChannel::new("e".into(), 130, t0);
        ch.set_core_subscribed(129, true, t0);
        assert_eq!(ch.subscriber_cores().collect::<Vec<_>>(), vec![129]);
        assert!(!ch.is_evictable(ttl, t0 + ttl * 2));
        ch.set_core_subscribed(129, false, t0);
        assert!(!ch.is_evictable(ttl, t0 + ttl / 2));
        assert!(ch.is_evictable(ttl, t0 + ttl));
    }

    #[test]
    fn the_widest_deflate_window_follows_each_core() {
        let t0 = Instant::now();
        let mut ch = OwnedChannel::new("e".into(), 3, t0);
        ch.set_core_deflate(2, 0);
        assert_eq!(ch.deflate_widest(), 0);
        assert!(ch.deflate_windows.is_empty(), "nothing held for nobody");
        ch.set_core_subscribed(1, true, t0);
        ch.set_core_subscribed(2, true, t0);
        ch.set_core_deflate(1, 15);
        ch.set_core_deflate(2, 9);
        assert_eq!(ch.deflate_widest(), 15);
        ch.set_core_deflate(1, 0);
        assert_eq!(ch.deflate_widest(), 9);
        // A core that has no subscriber left has no window either.
        ch.set_core_subscribed(2, false, t0);
        assert_eq!(ch.deflate_widest(), 0);
    }
}
