//! When each connection of a core must be driven without IO: a min-heap of
//! `(deadline, connection)`, so a timer tick costs the connections that are
//! due, not a walk over every connection.
//!
//! A connection's deadline moves on almost every drive (a message pushes its
//! idle deadline forward). Re-queueing on each move would fill the heap with
//! dead entries, so the heap holds at most one live entry per connection,
//! the one its `armed` field names, and is corrected lazily:
//!
//! - the deadline moved **later**: nothing happens now; when the armed entry
//!   comes due, the connection's real deadline is looked up and re-armed;
//! - the deadline moved **earlier** (a close started, a flush timed): a new
//!   entry is armed; the old one no longer matches `armed` and is dropped
//!   when it surfaces.
//!
//! So an entry is pushed at most once per deadline period per connection
//! plus once per earlier move, and a removed connection's entry is dropped
//! when it surfaces (its id no longer resolves).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use slab::Slab;

use super::conn::Conn;
use crate::mailbox::ConnId;

/// Deadlines are kept in whole ticks (`timeouts.timer_tick`) since the
/// loop started, rounded up, so an entry is 12 bytes and a connection's
/// armed tick 4: this heap is part of every idle connection's cost. A
/// deadline is seen at the first sweep after its tick ends, at most two
/// ticks after it passed.
pub(crate) struct Deadlines {
    base: Instant,
    tick: Duration,
    /// `[tick, generation half, slot half]` of a [`ConnId`].
    heap: BinaryHeap<Reverse<[u32; 3]>>,
}

/// What the heap needs to know of a connection.
pub(crate) trait Timed {
    /// When the connection must be driven, if ever.
    fn deadline(&self) -> Option<Instant>;
    /// The tick of the heap entry that stands for this connection; 0: none.
    fn armed(&mut self) -> &mut u32;
}

/// The connections, by id: `None` once one was removed.
pub(crate) trait Lookup {
    type Conn: Timed;
    fn timed_mut(&mut self, id: ConnId) -> Option<&mut Self::Conn>;
}

impl Timed for Conn {
    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
    fn armed(&mut self) -> &mut u32 {
        &mut self.armed
    }
}

/// A driver's entry for one connection: the socket side around its [`Conn`].
pub(crate) trait Driven {
    fn conn(&self) -> &Conn;
    fn conn_mut(&mut self) -> &mut Conn;
}

/// A core's connections, as either reactor keeps them: a slab of its
/// per-connection entries, and the generation the next [`ConnId`] takes (so
/// an id whose slot was reused finds nothing).
pub(crate) struct Table<S> {
    pub conns: Slab<S>,
    pub generation: u32,
}

impl<S: Driven> Table<S> {
    /// A table for up to `max` connections
    /// (`limits.max_connections_per_worker`), reserved whole at start:
    /// address space, whose pages become resident only as connections fill
    /// them. Grown by doubling instead, the slab moved at each power of two
    /// and the allocator kept the old buffer resident (an idle worker never
    /// purges it): 19,000 idle connections on the completion path measured
    /// 0.80-0.82 KiB each that way, 0.71 reserved; readiness 0.66-0.68 and
    /// 0.67 (2026-12-04). Past 2²⁰ it grows as before (a cap in the
    /// millions must not reserve gigabytes up front).
    pub fn with_capacity(max: usize) -> Self {
        Self {
            conns: Slab::with_capacity(max.min(1 << 20)),
            generation: 0,
        }
    }

    /// The entry of connection `id`, unless it is gone.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut S> {
        let entry = self.conns.get_mut(id.key())?;
        (entry.conn().slot.id() == id).then_some(entry)
    }
}

impl<S: Driven> Lookup for Table<S> {
    type Conn = Conn;
    fn timed_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.get_mut(id).map(Driven::conn_mut)
    }
}

impl Deadlines {
    pub fn new(base: Instant, tick: Duration) -> Self {
        Self {
            base,
            tick: tick.max(Duration::from_millis(1)),
            heap: BinaryHeap::new(),
        }
    }

    /// Ticks since `base` at `at`, rounded up (at least 1, 0 means none).
    fn tick_of(&self, at: Instant) -> u32 {
        let nanos = at.saturating_duration_since(self.base).as_nanos();
        let tick = self.tick.as_nanos();
        u32::try_from(nanos.div_ceil(tick))
            .unwrap_or(u32::MAX)
            .max(1)
    }

    /// After `conn` was created or driven: arms its deadline when no entry
    /// already comes due at or before it.
    pub fn arm(&mut self, id: ConnId, conn: &mut impl Timed) {
        let Some(deadline) = conn.deadline() else {
            return;
        };
        let tick = self.tick_of(deadline);
        let armed = conn.armed();
        if *armed == 0 || tick < *armed {
            *armed = tick;
            let raw = id.raw();
            self.heap
                .push(Reverse([tick, (raw >> 32) as u32, raw as u32]));
        }
    }

    /// Appends to `due` every connection whose deadline passed by `now`,
    /// re-arming those whose deadline moved later.
    pub fn expire(&mut self, now: Instant, conns: &mut impl Lookup, due: &mut Vec<ConnId>) {
        let elapsed = now.saturating_duration_since(self.base).as_nanos() / self.tick.as_nanos();
        let current = u32::try_from(elapsed).unwrap_or(u32::MAX);
        while let Some(&Reverse([tick, high, low])) = self.heap.peek() {
            if tick > current {
                break;
            }
            self.heap.pop();
            let id = ConnId::from_raw((u64::from(high) << 32) | u64::from(low));
            let Some(conn) = conns.timed_mut(id) else {
                continue; // removed
            };
            if *conn.armed() != tick {
                continue; // superseded by an earlier arming
            }
            *conn.armed() = 0;
            // Rounded up, so an unchanged deadline has passed; one that
            // moved later is re-armed at a tick after `current`.
            match conn.deadline() {
                Some(deadline) if deadline <= now => due.push(id),
                Some(_) => self.arm(id, conn),
                None => {}
            }
        }
    }

    /// Entries held, live and superseded.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    #[derive(Default)]
    struct Fake {
        deadline: Option<Instant>,
        armed: u32,
    }

    impl Timed for Fake {
        fn deadline(&self) -> Option<Instant> {
            self.deadline
        }
        fn armed(&mut self) -> &mut u32 {
            &mut self.armed
        }
    }

    struct Table(HashMap<u64, Fake>);

    impl Lookup for Table {
        type Conn = Fake;
        fn timed_mut(&mut self, id: ConnId) -> Option<&mut Fake> {
            self.0.get_mut(&id.raw())
        }
    }

    fn id(n: u64) -> ConnId {
        ConnId::from_raw(n)
    }

    fn set(t: &mut Table, d: &mut Deadlines, n: u64, at: Option<Instant>) {
        let conn = t.0.entry(n).or_default();
        conn.deadline = at;
        d.arm(id(n), conn);
    }

    fn due(t: &mut Table, d: &mut Deadlines, now: Instant) -> Vec<u64> {
        let mut out = Vec::new();
        d.expire(now, t, &mut out);
        let mut raw: Vec<u64> = out.iter().map(|i| i.raw()).collect();
        raw.sort_unstable();
        raw
    }

    #[test]
    fn only_due_connections_come_out_and_a_later_deadline_is_rearmed_not_requeued() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let (mut t, mut d) = (Table(HashMap::new()), Deadlines::new(t0, s));
        set(&mut t, &mut d, 1, Some(t0 + s));
        set(&mut t, &mut d, 2, Some(t0 + 5 * s));
        // Connection 1 is busy: its deadline moves later many times.
        for k in 2..100 {
            set(&mut t, &mut d, 1, Some(t0 + k * s));
        }
        assert_eq!(d.len(), 2, "a later deadline pushes nothing");
        assert_eq!(due(&mut t, &mut d, t0 + s), Vec::<u64>::new());
        assert_eq!(d.len(), 2, "re-armed at its real deadline");
        assert_eq!(due(&mut t, &mut d, t0 + 5 * s), [2]);
        assert_eq!(due(&mut t, &mut d, t0 + 99 * s), [1]);
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn a_deadline_inside_a_tick_is_seen_once_its_tick_ends_never_before_it_passed() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let ms = Duration::from_millis(1);
        let (mut t, mut d) = (Table(HashMap::new()), Deadlines::new(t0, s));
        set(&mut t, &mut d, 1, Some(t0 + 1500 * ms));
        assert_eq!(due(&mut t, &mut d, t0 + 1400 * ms), Vec::<u64>::new());
        assert_eq!(due(&mut t, &mut d, t0 + 1600 * ms), Vec::<u64>::new());
        assert_eq!(due(&mut t, &mut d, t0 + 2 * s), [1]);
        // Moved later inside the same tick: still due when the tick ends.
        set(&mut t, &mut d, 2, Some(t0 + 2100 * ms));
        t.0.get_mut(&2).expect("connection 2").deadline = Some(t0 + 2900 * ms);
        assert_eq!(due(&mut t, &mut d, t0 + 3 * s), [2]);
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn an_earlier_deadline_supersedes_and_removed_or_cleared_ones_vanish() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let (mut t, mut d) = (Table(HashMap::new()), Deadlines::new(t0, s));
        set(&mut t, &mut d, 1, Some(t0 + 10 * s));
        set(&mut t, &mut d, 1, Some(t0 + 2 * s)); // a close started
        set(&mut t, &mut d, 2, Some(t0 + 3 * s));
        set(&mut t, &mut d, 3, Some(t0 + 3 * s));
        t.0.remove(&2);
        set(&mut t, &mut d, 3, None);
        assert_eq!(due(&mut t, &mut d, t0 + 2 * s), [1]);
        assert_eq!(due(&mut t, &mut d, t0 + 3 * s), Vec::<u64>::new());
        // The superseded entry at +10 s is dropped, not driven again.
        t.0.get_mut(&1).expect("connection 1").deadline = Some(t0 + 20 * s);
        assert_eq!(due(&mut t, &mut d, t0 + 10 * s), Vec::<u64>::new());
        assert_eq!(d.len(), 0, "nothing armed: connection 1 was not re-driven");
    }
}
