//! Token buckets in integer nanoseconds: a sustained rate with a burst
//! allowance, as a GCRA ("generic cell rate algorithm") cell.
//!
//! A bucket is one `u64`: the *theoretical arrival time* (TAT) of the next
//! event if events came exactly at the rate. An event at `now` is allowed
//! when `TAT - now <= (burst - 1) × interval` (at most `burst` events are
//! "ahead of schedule"), and then moves the TAT one interval on. This is
//! exactly a token bucket of capacity `burst` refilled at `rate` per second,
//! in 8 bytes, with no float and no refill loop: a full bucket is any TAT in
//! the past, so a new bucket is `TAT = 0`.
//!
//! Time is nanoseconds on a timeline the caller picks (see [`Epoch`]);
//! nothing here reads a clock. A refused event consumes nothing and says
//! how long until one token is back ([`Wait`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Nanoseconds since an [`Epoch`].
pub type Nanos = u64;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The origin of a nanosecond timeline: turns `Instant`s into [`Nanos`].
/// Every bucket compared on one timeline must share its epoch (one per
/// process for shared buckets, one per worker for per-connection ones).
#[derive(Debug, Clone, Copy)]
pub struct Epoch(Instant);

impl Epoch {
    pub fn new(start: Instant) -> Epoch {
        Epoch(start)
    }

    /// `now` on this timeline; instants before the epoch are 0.
    pub fn nanos(&self, now: Instant) -> Nanos {
        let since = now.saturating_duration_since(self.0);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A rate limit: `per_sec` events per second sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Nanoseconds per token.
    interval: u64,
    /// How far ahead of schedule the TAT may run: `(burst - 1) × interval`.
    tolerance: u64,
    /// The rate as configured, per second, for messages that name it.
    per_sec: u32,
}

impl Rate {
    /// `None` when `per_sec` is 0 (no limit). `per_sec` above 10⁹ is
    /// treated as 10⁹ (one token per nanosecond), and a `burst` of 0 as 1;
    /// the configuration refuses both before they get here.
    pub fn per_second(per_sec: u32, burst: u32) -> Option<Rate> {
        if per_sec == 0 {
            return None;
        }
        let interval = (NANOS_PER_SEC / u64::from(per_sec)).max(1);
        Some(Rate {
            interval,
            tolerance: interval.saturating_mul(u64::from(burst.max(1)) - 1),
            per_sec,
        })
    }

    /// The configured events per second.
    pub fn per_sec(&self) -> u32 {
        self.per_sec
    }

    /// Time between two tokens.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// The bucket state after allowing one event at `now`, or the wait.
    fn advance(&self, tat: Nanos, now: Nanos) -> Result<Nanos, Wait> {
        let start = tat.max(now);
        let ahead = start - now;
        if ahead > self.tolerance {
            return Err(Wait(ahead - self.tolerance));
        }
        Ok(start.saturating_add(self.interval))
    }
}

/// How long until the refused event would be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub Nanos);

impl Wait {
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// Whole seconds, rounded up, at least 1: a `Retry-After` value.
    pub fn whole_seconds(self) -> u32 {
        let secs = self.0.div_ceil(NANOS_PER_SEC).max(1);
        u32::try_from(secs).unwrap_or(u32::MAX)
    }
}

/// One bucket owned by one thread (a connection's command rate, an IP's
/// admission rate under its shard lock). 8 bytes; starts full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenBucket {
    tat: Nanos,
}

impl TokenBucket {
    /// A full bucket.
    pub const fn new() -> TokenBucket {
        TokenBucket { tat: 0 }
    }

    /// Takes one token at `now`, or says how long until there is one
    /// (taking nothing).
    pub fn try_take(&mut self, rate: &Rate, now: Nanos) -> Result<(), Wait> {
        self.tat = rate.advance(self.tat, now)?;
        Ok(())
    }

    /// Whether a token is there at `now`, without taking it.
    pub fn check(&self, rate: &Rate, now: Nanos) -> Result<(), Wait> {
        rate.advance(self.tat, now).map(|_| ())
    }

    /// True when the bucket is full at `now` (so it can be forgotten: a new
    /// one would behave the same).
    pub fn is_full(&self, now: Nanos) -> bool {
        self.tat <= now
    }
}

/// One bucket shared by every worker (the server-wide admission rate): the
/// TAT in an atomic, updated with compare-and-swap, no lock. Taken once per
/// handshake, never per message.
#[derive(Debug, Default)]
pub struct SharedBucket {
    tat: AtomicU64,
}

impl SharedBucket {
    pub const fn new() -> SharedBucket {
        SharedBucket {
            tat: AtomicU64::new(0),
        }
    }

    /// Takes one token at `now`, or says how long until there is one.
    pub fn try_take(&self, rate: &Rate, now: Nanos) -> Result<(), Wait> {
        // Relaxed is enough: the TAT is the only shared state and the CAS
        // orders updates to it; nothing else is published through it.
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let next = rate.advance(tat, now)?;
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(current) => tat = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000 * MS;

    #[test]
    fn a_full_bucket_allows_the_burst_then_the_rate() {
        let rate = Rate::per_second(10, 3).expect("limited");
        let mut bucket = TokenBucket::new();
        let t0 = 5 * SEC;
        assert!((0..3).all(|_| bucket.try_take(&rate, t0).is_ok()));
        assert_eq!(bucket.try_take(&rate, t0), Err(Wait(100 * MS)));
        assert_eq!(bucket.try_take(&rate, t0 + 99 * MS), Err(Wait(MS)));
        assert_eq!(
            bucket.try_take(&rate, t0 + 100 * MS),
            Ok(()),
            "one per 100 ms"
        );
        assert!(bucket.try_take(&rate, t0 + 100 * MS).is_err());
        // A long idle refills only up to the burst.
        let later = t0 + 60 * SEC;
        assert!(bucket.is_full(later));
        assert!((0..3).all(|_| bucket.try_take(&rate, later).is_ok()));
        assert!(bucket.try_take(&rate, later).is_err());
    }

    #[test]
    fn paced_events_are_all_allowed() {
        // 1,000 events exactly at the rate never run out, burst 1 or not.
        let rate = Rate::per_second(1000, 1).expect("limited");
        let mut bucket = TokenBucket::new();
        for i in 0..1000 {
            assert_eq!(bucket.try_take(&rate, i * MS), Ok(()), "event {i}");
        }
        assert!(bucket.try_take(&rate, 999 * MS + MS / 2).is_err());
    }

    #[test]
    fn refusals_take_nothing_and_check_is_a_peek() {
        let rate = Rate::per_second(1, 1).expect("limited");
        let mut bucket = TokenBucket::new();
        assert_eq!(bucket.check(&rate, 0), Ok(()));
        assert_eq!(bucket.check(&rate, 0), Ok(()), "check takes nothing");
        bucket.try_take(&rate, 0).expect("first");
        for _ in 0..100 {
            assert_eq!(bucket.try_take(&rate, SEC / 2), Err(Wait(SEC / 2)));
        }
        assert_eq!(
            bucket.try_take(&rate, SEC),
            Ok(()),
            "the refusals cost nothing"
        );
    }

    #[test]
    fn zero_is_no_limit_and_waits_round_up() {
        assert_eq!(Rate::per_second(0, 10), None);
        assert_eq!(Wait(1).whole_seconds(), 1);
        assert_eq!(Wait(SEC).whole_seconds(), 1);
        assert_eq!(Wait(SEC + 1).whole_seconds(), 2);
        assert_eq!(Wait(0).whole_seconds(), 1);
        let fast = Rate::per_second(u32::MAX, 1).expect("limited");
        assert_eq!(fast.interval(), Duration::from_nanos(1));
    }

    #[test]
    fn the_shared_bucket_paces_like_the_local_one() {
        let rate = Rate::per_second(2, 2).expect("limited");
        let shared = SharedBucket::new();
        assert!(shared.try_take(&rate, 0).is_ok());
        assert!(shared.try_take(&rate, 0).is_ok());
        assert_eq!(shared.try_take(&rate, 0), Err(Wait(SEC / 2)));
        assert!(shared.try_take(&rate, SEC / 2).is_ok());
    }

    #[test]
    fn the_shared_bucket_never_admits_more_than_its_burst_across_threads() {
        let rate = Rate::per_second(1, 100).expect("limited");
        let shared = std::sync::Arc::new(SharedBucket::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    (0..100)
                        .filter(|_| shared.try_take(&rate, SEC).is_ok())
                        .count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
        assert_eq!(admitted, 100);
    }

    #[test]
    fn the_epoch_maps_instants_to_nanos() {
        let start = Instant::now();
        let epoch = Epoch::new(start);
        assert_eq!(epoch.nanos(start + Duration::from_millis(3)), 3 * MS);
        assert_eq!(
            epoch.nanos(start.checked_sub(Duration::from_secs(1)).unwrap_or(start)),
            0
        );
    }
}
