//! Gap and duplicate detection over a numbered stream of messages.
//!
//! A fan-out subscriber sees each channel's messages numbered 1, 2, 3, …
//! (ringcast's offsets, contiguous within an epoch), and a broadcast
//! subscriber sees each publisher's messages numbered 0, 1, 2, …. A
//! [`SeqTracker`] holds the next number it expects and classifies each
//! arrival: in order, after a gap (how many were skipped), or a duplicate
//! (a number at or below one already seen). Skipped numbers that arrive later
//! count as duplicates, not as repaired gaps: ringcast promises order, so a
//! late message is already a fault.
//!
//! At the end of a run, [`SeqTracker::missing_before`] says how many numbers
//! up to the last one published never arrived after the last one seen (the
//! tail a subscriber lost when the stream stopped).

/// What one arrival was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The number expected next.
    InOrder,
    /// Later than expected: this many numbers were skipped.
    Gap(u64),
    /// At or below a number already seen.
    Duplicate,
}

/// Tracks one numbered stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqTracker {
    next: u64,
}

impl SeqTracker {
    /// A tracker expecting `next` first.
    pub fn expecting(next: u64) -> SeqTracker {
        SeqTracker { next }
    }

    /// The number expected next (one past the highest seen).
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Classifies the arrival of `seq` and moves past it.
    pub fn observe(&mut self, seq: u64) -> Seen {
        if seq == self.next {
            self.next += 1;
            Seen::InOrder
        } else if seq > self.next {
            let skipped = seq - self.next;
            self.next = seq + 1;
            Seen::Gap(skipped)
        } else {
            Seen::Duplicate
        }
    }

    /// How many numbers from the expected one up to `last` (inclusive) have
    /// not arrived: 0 when `last` was seen.
    pub fn missing_before(&self, last: u64) -> u64 {
        (last + 1).saturating_sub(self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_stream() {
        let mut t = SeqTracker::expecting(1);
        for seq in 1..=5 {
            assert_eq!(t.observe(seq), Seen::InOrder);
        }
        assert_eq!(t.next(), 6);
        assert_eq!(t.missing_before(5), 0);
        assert_eq!(t.missing_before(0), 0);
    }

    #[test]
    fn a_gap_counts_the_skipped_numbers() {
        let mut t = SeqTracker::expecting(1);
        assert_eq!(t.observe(1), Seen::InOrder);
        assert_eq!(t.observe(4), Seen::Gap(2));
        assert_eq!(t.observe(5), Seen::InOrder);
        assert_eq!(t.next(), 6);
    }

    #[test]
    fn repeats_and_late_arrivals_are_duplicates() {
        let mut t = SeqTracker::expecting(0);
        assert_eq!(t.observe(0), Seen::InOrder);
        assert_eq!(t.observe(0), Seen::Duplicate);
        assert_eq!(t.observe(3), Seen::Gap(2));
        assert_eq!(t.observe(1), Seen::Duplicate);
        assert_eq!(t.observe(4), Seen::InOrder);
    }

    #[test]
    fn first_arrival_after_a_subscribe_reply() {
        // Subscribed at offset 41: 42 is next; 45 means 42..44 were lost.
        let mut t = SeqTracker::expecting(42);
        assert_eq!(t.observe(45), Seen::Gap(3));
        // Published up to 50, seen up to 45: 46..=50 missing at the end.
        assert_eq!(t.missing_before(50), 5);
    }
}
