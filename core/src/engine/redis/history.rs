//! The resume rule applied to a Redis history snapshot.
//!
//! The same rule as the memory engine (`pubsub::channel::OwnedChannel::
//! resume`): a subscriber that saw everything up to `since` recovers iff the
//! epoch is the same, `since.offset` is not in the future, and history still
//! holds every offset after it. Here "holds every offset" is checked
//! entry by entry (offsets `since+1 ..= top`, contiguous), so an entry left
//! out for its age anywhere in the range makes the answer `NotRecovered`,
//! never a silent gap.

use bytes::Bytes;

use super::script::Snapshot;
use crate::proto::v1::Since;

/// What a subscriber with a resume point gets from Redis history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Every message after `since`, `(offset, payload)`, in offset order.
    Recovered(Vec<(u64, Bytes)>),
    /// Different epoch, or history no longer reaches back: reload state.
    NotRecovered,
}

/// A channel's position in Redis, and the recovery when a `since` was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryReply {
    pub epoch: String,
    /// Offset of the last published message; 0 before the first.
    pub top: u64,
    /// `None` when the request had no `since`.
    pub recovery: Option<Recovery>,
}

/// Applies the rule to a snapshot read from `since.offset + 1` on.
pub(crate) fn recover(snapshot: Snapshot, since: Option<&Since>) -> HistoryReply {
    let recovery = since.map(|since| {
        if since.epoch != snapshot.epoch || since.offset > snapshot.top {
            return Recovery::NotRecovered;
        }
        let wanted = since.offset + 1..=snapshot.top;
        let complete = snapshot.entries.len() as u64 == snapshot.top - since.offset
            && snapshot
                .entries
                .iter()
                .zip(wanted)
                .all(|((offset, _), want)| *offset == want);
        if complete {
            Recovery::Recovered(snapshot.entries)
        } else {
            Recovery::NotRecovered
        }
    });
    HistoryReply {
        epoch: snapshot.epoch,
        top: snapshot.top,
        recovery,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64) -> (u64, Bytes) {
        (offset, Bytes::from(format!("m{offset}")))
    }

    /// History holds `oldest..=top` of epoch `e1`; the snapshot is what
    /// `history.lua` returns when asked from `since + 1`.
    fn resume(top: u64, oldest: u64, since_epoch: &str, since: u64) -> Option<Recovery> {
        let snapshot = Snapshot {
            epoch: "e1".into(),
            top,
            entries: (oldest.max(since + 1)..=top).map(entry).collect(),
        };
        let since = Since {
            epoch: since_epoch.into(),
            offset: since,
        };
        recover(snapshot, Some(&since)).recovery
    }

    /// The cases of the memory engine's `resume_replays_exactly_what_was_missed`
    /// and `resume_on_an_empty_channel`, with the same answers.
    #[test]
    fn matches_the_memory_engine() {
        let recovered =
            |r: std::ops::RangeInclusive<u64>| Some(Recovery::Recovered(r.map(entry).collect()));
        let nothing_missed = Some(Recovery::Recovered(Vec::new()));
        assert_eq!(resume(10, 6, "e1", 7), recovered(8..=10));
        assert_eq!(resume(10, 6, "e1", 10), nothing_missed.clone());
        assert_eq!(resume(10, 6, "e1", 5), recovered(6..=10));
        assert_eq!(resume(10, 6, "e1", 4), Some(Recovery::NotRecovered));
        assert_eq!(resume(10, 6, "other", 7), Some(Recovery::NotRecovered));
        assert_eq!(resume(10, 6, "e1", 11), Some(Recovery::NotRecovered));
        assert_eq!(resume(0, 1, "e1", 0), nothing_missed.clone());
        // No history kept (size 0): only an up-to-date subscriber recovers.
        assert_eq!(resume(3, 4, "e1", 3), nothing_missed.clone());
        assert_eq!(resume(3, 4, "e1", 2), Some(Recovery::NotRecovered));
    }

    #[test]
    fn a_hole_in_the_range_is_not_recovered() {
        let snapshot = Snapshot {
            epoch: "e1".into(),
            top: 10,
            entries: vec![entry(8), entry(10)],
        };
        let since = Since {
            epoch: "e1".into(),
            offset: 7,
        };
        assert_eq!(
            recover(snapshot.clone(), Some(&since)).recovery,
            Some(Recovery::NotRecovered)
        );
        assert_eq!(recover(snapshot, None).recovery, None);
    }
}
