//! Connection admission shared by every worker: connections per client
//! address and in total, and the rate of new handshakes, server-wide and per
//! address. A refusal carries the `Retry-After` to answer with.
//!
//! # Sharing and cost
//!
//! One [`Admission`] per process, in an `Arc`, used by all workers. It is
//! touched twice per connection, never per message:
//!
//! - [`Admission::try_admit`] at the handshake: one shard lock (a
//!   `Mutex<HashMap>` picked by a hash of the address, 64 shards so cores
//!   rarely meet), one atomic add on the total, one CAS on the server-wide
//!   bucket;
//! - dropping the [`IpGuard`] when the connection ends: the same shard lock
//!   and an atomic subtract.
//!
//! # Addresses
//!
//! The address is the client's: the TCP peer, or behind a trusted proxy the
//! one [`Admission::client_ip`] reads from `X-Forwarded-For` (see
//! `proxy.rs`). An IPv4 address counts as itself; an IPv4-mapped IPv6 address
//! (`::ffff:a.b.c.d`, what a dual-stack socket reports) counts as that IPv4
//! address; any other IPv6 address counts as its /64 prefix, the block one
//! subscriber line gets (counting single IPv6 addresses would let one client
//! rotate through 2⁶⁴ of them).
//!
//! # Memory
//!
//! An address has an entry while it holds connections, or while its
//! per-address bucket is not full again (at most `burst / rate` seconds after
//! its last handshake). Entries with neither are dropped at once on the last
//! close when there is no per-address rate, and otherwise by a sweep of the
//! shard at most once per second, done by the next `try_admit` on that
//! shard. So the table holds at most (open connections + handshakes of the
//! last `burst / rate` seconds) entries.
//!
//! # Retry-After
//!
//! A rate refusal says when a token is back (rounded up to whole seconds);
//! a full server or address says 1 s. Every value then gets a jitter of 0 to
//! `retry_jitter` seconds from the injected source, so that clients refused
//! together do not return together.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::bucket::{Epoch, Nanos, Rate, SharedBucket, TokenBucket, Wait};
use super::proxy::TrustedProxies;
use crate::config::ServerConfig;

/// Shards of the address table (a power of two).
const SHARDS: usize = 64;
/// Least time between two sweeps of one shard, in nanoseconds.
const SWEEP_EVERY: Nanos = 1_000_000_000;
/// `Retry-After` of a refusal with no rate to wait for (a full server or
/// address), before jitter.
const FULL_RETRY_SECS: u32 = 1;
/// Largest `Retry-After` ever sent, jitter included.
const MAX_RETRY_SECS: u32 = 3600;

/// The admission limits, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// `limits.max_connections`; 0 = none.
    pub max_total: usize,
    /// `limits.max_connections_per_ip`; 0 = none.
    pub max_per_ip: u32,
    /// `admission.admission_rate` / `admission_burst`.
    pub rate: Option<Rate>,
    /// `admission.admission_rate_per_ip` / `admission_burst_per_ip`.
    pub rate_per_ip: Option<Rate>,
    /// `admission.retry_jitter`, in whole seconds.
    pub retry_jitter: u32,
    /// `admission.trusted_proxies`: peers whose `X-Forwarded-For` names the
    /// client. Empty: nobody.
    pub trusted_proxies: TrustedProxies,
}

impl AdmissionConfig {
    pub fn from_config(config: &ServerConfig) -> AdmissionConfig {
        AdmissionConfig {
            max_total: config.limits.max_connections,
            max_per_ip: u32::try_from(config.limits.max_connections_per_ip).unwrap_or(u32::MAX),
            rate: Rate::per_second(config.admission.rate, config.admission.burst),
            rate_per_ip: Rate::per_second(
                config.admission.rate_per_ip,
                config.admission.burst_per_ip,
            ),
            retry_jitter: u32::try_from(config.admission.retry_jitter.as_secs())
                .unwrap_or(u32::MAX),
            // Parsed when the configuration loaded: nothing left to refuse.
            trusted_proxies: config.admission.trusted_proxies.clone(),
        }
    }

    /// No limit at all: `try_admit` always succeeds (it still counts).
    pub fn unlimited() -> AdmissionConfig {
        AdmissionConfig {
            max_total: 0,
            max_per_ip: 0,
            rate: None,
            rate_per_ip: None,
            retry_jitter: 0,
            trusted_proxies: TrustedProxies::none(),
        }
    }
}

/// Which limit refused a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// `limits.max_connections` reached.
    ServerFull,
    /// `limits.max_connections_per_ip` reached for this address.
    IpFull,
    /// `admission.admission_rate` exceeded.
    ServerRate,
    /// `admission.admission_rate_per_ip` exceeded for this address.
    IpRate,
}

impl RefusalReason {
    /// The key whose limit refused.
    pub fn key(self) -> &'static str {
        match self {
            RefusalReason::ServerFull => "limits.max_connections",
            RefusalReason::IpFull => "limits.max_connections_per_ip",
            RefusalReason::ServerRate => "admission.admission_rate",
            RefusalReason::IpRate => "admission.admission_rate_per_ip",
        }
    }

    /// A short line and a stable label for metrics and logs (the response
    /// body is [`Refusal::body`], which adds the key and its value).
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::ServerFull => "server at connection capacity",
            RefusalReason::IpFull => "too many connections from this address",
            RefusalReason::ServerRate => "too many new connections: retry later",
            RefusalReason::IpRate => "too many new connections from this address: retry later",
        }
    }
}

/// A refused handshake: answer 503 with `Retry-After: retry_after` and the
/// reason as the body, then close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: RefusalReason,
    /// Seconds, jitter included; at least 1.
    pub retry_after: u32,
    /// The value of the key that refused ([`RefusalReason::key`]): a
    /// connection count, or handshakes per second.
    pub limit: u64,
}

impl Refusal {
    /// The HTTP status: 503 Service Unavailable for every refusal.
    pub const STATUS: u16 = 503;

    /// The response body's line: the reason, then the key and its value.
    pub fn body(&self) -> String {
        let key = self.reason.key();
        let limit = self.limit;
        match self.reason {
            RefusalReason::ServerFull | RefusalReason::IpFull => {
                format!("{}: {key} = {limit}", self.reason.as_str())
            }
            RefusalReason::ServerRate | RefusalReason::IpRate => {
                format!("{} ({key} = {limit} per second)", self.reason.as_str())
            }
        }
    }
}

/// Picks the jitter: given the most seconds allowed, returns 0..=max.
pub type Jitter = Box<dyn Fn(u32) -> u32 + Send + Sync>;

/// The key an address is counted under.
fn key_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    connections: u32,
    bucket: TokenBucket,
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<IpAddr, Entry>,
    next_sweep: Nanos,
}

/// The process-wide admission state. See the module docs.
pub struct Admission {
    config: AdmissionConfig,
    epoch: Epoch,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    total: AtomicUsize,
    server_bucket: SharedBucket,
    jitter: Jitter,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("config", &self.config)
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// Admission with random jitter. `epoch` is the start of the
    /// nanosecond timeline every `now` is measured on (process start).
    pub fn new(config: AdmissionConfig, epoch: Instant) -> Arc<Admission> {
        Admission::with_jitter(config, epoch, Box::new(|max| fastrand::u32(0..=max)))
    }

    /// Admission with a given jitter source (deterministic in tests).
    pub fn with_jitter(config: AdmissionConfig, epoch: Instant, jitter: Jitter) -> Arc<Admission> {
        Arc::new(Admission {
            config,
            epoch: Epoch::new(epoch),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            total: AtomicUsize::new(0),
            server_bucket: SharedBucket::new(),
            jitter,
        })
    }

    pub fn config(&self) -> &AdmissionConfig {
        &self.config
    }

    /// The address a connection from the TCP peer `peer` counts as: the
    /// client named by `forwarded_for` (`X-Forwarded-For`) when `peer` is a
    /// trusted proxy, else `peer` itself. Pass the result to
    /// [`Admission::try_admit`] and to logs.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        self.config.trusted_proxies.client_ip(peer, forwarded_for)
    }

    /// Connections admitted and not yet released.
    pub fn connections(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Connections held by `ip`'s address block.
    pub fn connections_from(&self, ip: IpAddr) -> u32 {
        let key = key_of(ip);
        self.shard(key)
            .entries
            .get(&key)
            .map_or(0, |entry| entry.connections)
    }

    /// Address entries held (for metrics and tests).
    pub fn tracked_addresses(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| lock(shard).entries.len())
            .sum()
    }

    /// Drops the entries of every shard that hold no connection and whose
    /// bucket is full at `now`. `try_admit` already does this lazily, one
    /// shard at a time; a slow timer may call it to give memory back when
    /// handshakes stop altogether. Not needed for correctness.
    pub fn sweep(&self, now: Instant) {
        let now = self.epoch.nanos(now);
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            sweep_shard(&mut shard, now);
        }
    }

    fn shard(&self, key: IpAddr) -> MutexGuard<'_, Shard> {
        let index = self.hasher.hash_one(key) as usize & (SHARDS - 1);
        lock(&self.shards[index])
    }

    fn refusal(&self, reason: RefusalReason, wait: Option<Wait>) -> Refusal {
        let base = wait.map_or(FULL_RETRY_SECS, Wait::whole_seconds);
        let jitter = (self.jitter)(self.config.retry_jitter).min(self.config.retry_jitter);
        let config = &self.config;
        let per_sec = |rate: &Option<Rate>| rate.as_ref().map_or(0, |r| u64::from(r.per_sec()));
        let limit = match reason {
            RefusalReason::ServerFull => config.max_total as u64,
            RefusalReason::IpFull => u64::from(config.max_per_ip),
            RefusalReason::ServerRate => per_sec(&config.rate),
            RefusalReason::IpRate => per_sec(&config.rate_per_ip),
        };
        Refusal {
            reason,
            retry_after: base.saturating_add(jitter).min(MAX_RETRY_SECS),
            limit,
        }
    }

    /// Admits a connection from `ip` at `now`, or says which limit refused
    /// it. The connection counts until the guard is dropped.
    pub fn try_admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<IpGuard, Refusal> {
        let now = self.epoch.nanos(now);
        let key = key_of(ip);
        let config = &self.config;
        let mut shard = self.shard(key);
        if now >= shard.next_sweep {
            sweep_shard(&mut shard, now);
        }
        let mut entry = shard.entries.get(&key).copied().unwrap_or_default();
        if config.max_per_ip > 0 && entry.connections >= config.max_per_ip {
            return Err(self.refusal(RefusalReason::IpFull, None));
        }
        if let Some(rate) = &config.rate_per_ip {
            if let Err(wait) = entry.bucket.try_take(rate, now) {
                return Err(self.refusal(RefusalReason::IpRate, Some(wait)));
            }
        }
        let before = self.total.fetch_add(1, Ordering::Relaxed);
        if config.max_total > 0 && before >= config.max_total {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(self.refusal(RefusalReason::ServerFull, None));
        }
        if let Some(rate) = &config.rate {
            if let Err(wait) = self.server_bucket.try_take(rate, now) {
                self.total.fetch_sub(1, Ordering::Relaxed);
                return Err(self.refusal(RefusalReason::ServerRate, Some(wait)));
            }
        }
        // Everything passed: only now does the address's state change, so a
        // refusal by a later check costs the address nothing.
        entry.connections += 1;
        shard.entries.insert(key, entry);
        drop(shard);
        Ok(IpGuard {
            admission: Arc::clone(self),
            key,
        })
    }

    fn release(&self, key: IpAddr) {
        let mut shard = self.shard(key);
        if let Some(entry) = shard.entries.get_mut(&key) {
            entry.connections = entry.connections.saturating_sub(1);
            // Without a per-address rate, an idle entry carries nothing.
            if entry.connections == 0 && self.config.rate_per_ip.is_none() {
                shard.entries.remove(&key);
            }
        }
        drop(shard);
        self.total.fetch_sub(1, Ordering::Relaxed);
    }
}

fn sweep_shard(shard: &mut Shard, now: Nanos) {
    shard
        .entries
        .retain(|_, entry| entry.connections > 0 || !entry.bucket.is_full(now));
    shard.next_sweep = now.saturating_add(SWEEP_EVERY);
}

/// A poisoned shard only means another thread panicked while holding it;
/// its counters are still consistent (each update is one statement).
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An admitted connection: counted against its address and the total until
/// dropped. Keep it in the connection's state for its whole life. 32 bytes.
pub struct IpGuard {
    admission: Arc<Admission>,
    key: IpAddr,
}

impl IpGuard {
    /// The address block this connection counts under.
    pub fn key(&self) -> IpAddr {
        self.key
    }
}

impl std::fmt::Debug for IpGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpGuard").field("key", &self.key).finish()
    }
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        self.admission.release(self.key);
    }
}

/// `127.0.0.1`, for callers without a peer address (tests, Unix sockets).
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn fixed_jitter(seconds: u32) -> Jitter {
        Box::new(move |max| seconds.min(max))
    }

    fn admission(config: AdmissionConfig) -> (Arc<Admission>, Instant) {
        let t0 = Instant::now();
        (Admission::with_jitter(config, t0, fixed_jitter(0)), t0)
    }

    #[test]
    fn the_per_ip_cap_holds_and_guards_release_it() {
        let (adm, t0) = admission(AdmissionConfig {
            max_per_ip: 2,
            ..AdmissionConfig::unlimited()
        });
        let a = ip("192.0.2.1");
        let g1 = adm.try_admit(a, t0).expect("first");
        let g2 = adm.try_admit(a, t0).expect("second");
        let refusal = adm.try_admit(a, t0).expect_err("third");
        assert_eq!(refusal.reason, RefusalReason::IpFull);
        assert_eq!(refusal.retry_after, 1);
        assert_eq!(
            refusal.body(),
            "too many connections from this address: limits.max_connections_per_ip = 2"
        );
        // Another address is not affected.
        let other = adm.try_admit(ip("192.0.2.2"), t0).expect("other address");
        assert_eq!((adm.connections(), adm.connections_from(a)), (3, 2));
        drop(g1);
        assert_eq!(adm.connections_from(a), 1);
        let g3 = adm.try_admit(a, t0).expect("room again");
        drop((g2, g3, other));
        assert_eq!(adm.connections(), 0);
        assert_eq!(adm.tracked_addresses(), 0, "idle entries are dropped");
    }

    #[test]
    fn the_total_cap_holds_across_addresses() {
        let (adm, t0) = admission(AdmissionConfig {
            max_total: 3,
            ..AdmissionConfig::unlimited()
        });
        let guards: Vec<IpGuard> = (1..=3)
            .map(|i| {
                adm.try_admit(ip(&format!("198.51.100.{i}")), t0)
                    .expect("room")
            })
            .collect();
        let refusal = adm.try_admit(ip("198.51.100.9"), t0).expect_err("full");
        assert_eq!(refusal.reason, RefusalReason::ServerFull);
        assert_eq!(adm.connections(), 3, "a refusal is not counted");
        assert_eq!(adm.connections_from(ip("198.51.100.9")), 0);
        drop(guards);
        assert!(adm.try_admit(ip("198.51.100.9"), t0).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let (adm, t0) = admission(AdmissionConfig {
            max_per_ip: 1,
            ..AdmissionConfig::unlimited()
        });
        let _g = adm.try_admit(ip("2001:db8:1:2::1"), t0).expect("first");
        let same_64 = adm.try_admit(ip("2001:db8:1:2:ffff::9"), t0);
        assert_eq!(same_64.expect_err("same /64").reason, RefusalReason::IpFull);
        assert!(adm.try_admit(ip("2001:db8:1:3::1"), t0).is_ok(), "next /64");
        let _v4 = adm.try_admit(ip("203.0.113.7"), t0).expect("v4");
        let mapped = adm.try_admit(ip("::ffff:203.0.113.7"), t0);
        assert_eq!(mapped.expect_err("mapped").reason, RefusalReason::IpFull);
    }

    #[test]
    fn the_server_rate_paces_a_reconnect_storm() {
        let (adm, t0) = admission(AdmissionConfig {
            rate: Rate::per_second(100, 10),
            ..AdmissionConfig::unlimited()
        });
        let mut admitted = Vec::new();
        let mut refused = 0;
        // 1,000 clients from 1,000 addresses try in the same instant...
        for i in 0..1000u32 {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            match adm.try_admit(addr, t0) {
                Ok(guard) => admitted.push(guard),
                Err(refusal) => {
                    assert_eq!(refusal.reason, RefusalReason::ServerRate);
                    refused += 1;
                }
            }
        }
        assert_eq!((admitted.len(), refused), (10, 990), "only the burst");
        // ...then one every 10 ms gets in: 100/s, in virtual time.
        for step in 1..=50u64 {
            let now = t0 + Duration::from_millis(10 * step);
            assert!(adm.try_admit(LOCALHOST, now).is_ok(), "step {step}");
            assert!(adm.try_admit(LOCALHOST, now).is_err(), "step {step}");
        }
    }

    #[test]
    fn the_per_ip_rate_paces_one_address_only() {
        let (adm, t0) = admission(AdmissionConfig {
            rate_per_ip: Rate::per_second(2, 2),
            ..AdmissionConfig::unlimited()
        });
        let a = ip("192.0.2.10");
        let g1 = adm.try_admit(a, t0).expect("1");
        let g2 = adm.try_admit(a, t0).expect("2");
        let refusal = adm.try_admit(a, t0).expect_err("3");
        assert_eq!(
            refusal,
            Refusal {
                reason: RefusalReason::IpRate,
                retry_after: 1,
                limit: 2,
            }
        );
        assert_eq!(
            refusal.body(),
            "too many new connections from this address: retry later \
             (admission.admission_rate_per_ip = 2 per second)"
        );
        assert!(
            adm.try_admit(ip("192.0.2.11"), t0).is_ok(),
            "others unaffected"
        );
        // Closing does not refill: connect/close loops are paced too.
        drop((g1, g2));
        assert!(adm.try_admit(a, t0).is_err());
        assert!(adm.try_admit(a, t0 + Duration::from_millis(500)).is_ok());
        // The entry outlives its connections until its bucket is full again,
        // then a sweep drops it.
        assert_eq!(adm.tracked_addresses(), 2);
        adm.sweep(t0 + Duration::from_millis(900));
        assert_eq!(
            adm.tracked_addresses(),
            1,
            "192.0.2.11 is full again; `a` is not"
        );
        adm.sweep(t0 + Duration::from_secs(10));
        assert_eq!(adm.tracked_addresses(), 0);
        assert_eq!(adm.connections_from(a), 0);
    }

    #[test]
    fn retry_after_is_the_wait_rounded_up_plus_the_injected_jitter() {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        // Jitter goes 0, 1, 2, ... capped by the configured maximum (3).
        let jitter: Jitter = Box::new(move |max| seen.fetch_add(1, Ordering::Relaxed).min(max));
        let config = AdmissionConfig {
            rate: Rate::per_second(1, 1),
            retry_jitter: 3,
            ..AdmissionConfig::unlimited()
        };
        let t0 = Instant::now();
        let adm = Admission::with_jitter(config, t0, jitter);
        let _g = adm.try_admit(LOCALHOST, t0).expect("the burst");
        let retries: Vec<u32> = (0..6)
            .map(|_| adm.try_admit(LOCALHOST, t0).expect_err("paced").retry_after)
            .collect();
        assert_eq!(retries, [1, 2, 3, 4, 4, 4]);
        // A partial second to wait rounds up, then the jitter is added.
        let slow = AdmissionConfig {
            rate: Rate::per_second(1, 1),
            retry_jitter: 3,
            ..AdmissionConfig::unlimited()
        };
        let adm = Admission::with_jitter(slow, t0, fixed_jitter(3));
        let _g = adm.try_admit(LOCALHOST, t0).expect("burst");
        let _g2 = adm
            .try_admit(LOCALHOST, t0 + Duration::from_secs(1))
            .expect("1 s later");
        let refusal = adm
            .try_admit(LOCALHOST, t0 + Duration::from_millis(1_500))
            .expect_err("paced");
        assert_eq!(refusal.retry_after, 1 + 3, "0.5 s rounds up to 1");
        // A source that returns more than asked is capped.
        let greedy = Admission::with_jitter(
            AdmissionConfig {
                max_total: 1,
                retry_jitter: 2,
                ..AdmissionConfig::unlimited()
            },
            t0,
            Box::new(|_| 1000),
        );
        let _g = greedy.try_admit(LOCALHOST, t0).expect("one");
        assert_eq!(
            greedy
                .try_admit(LOCALHOST, t0)
                .expect_err("full")
                .retry_after,
            3
        );
    }

    #[test]
    fn refusals_by_later_checks_cost_the_address_nothing() {
        let (adm, t0) = admission(AdmissionConfig {
            max_total: 1,
            rate_per_ip: Rate::per_second(1, 2),
            ..AdmissionConfig::unlimited()
        });
        let a = ip("192.0.2.20");
        let _only = adm
            .try_admit(ip("192.0.2.21"), t0)
            .expect("fills the server");
        for _ in 0..5 {
            assert_eq!(
                adm.try_admit(a, t0).expect_err("full").reason,
                RefusalReason::ServerFull
            );
        }
        drop(_only);
        assert!(
            adm.try_admit(a, t0).is_ok(),
            "its per-address tokens were kept"
        );
    }

    #[test]
    fn counting_is_exact_across_threads() {
        let (adm, t0) = admission(AdmissionConfig {
            max_per_ip: 50,
            max_total: 120,
            ..AdmissionConfig::unlimited()
        });
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let adm = adm.clone();
                std::thread::spawn(move || {
                    let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, t));
                    (0..100)
                        .filter_map(|_| adm.try_admit(addr, t0).ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let guards: Vec<Vec<IpGuard>> = threads
            .into_iter()
            .map(|t| t.join().expect("join"))
            .collect();
        let admitted: usize = guards.iter().map(Vec::len).sum();
        assert_eq!(admitted, 120, "the total cap, exactly");
        assert!(guards.iter().all(|g| g.len() <= 50), "the per-address cap");
        assert_eq!(adm.connections(), 120);
        drop(guards);
        assert_eq!((adm.connections(), adm.tracked_addresses()), (0, 0));
    }

    #[test]
    fn the_config_maps_the_keys() {
        let mut config = ServerConfig::default();
        config.limits.max_connections = 10;
        config.limits.max_connections_per_ip = 3;
        config.admission.rate = 100;
        config.admission.burst = 50;
        config.admission.retry_jitter = Duration::from_secs(7);
        let mapped = AdmissionConfig::from_config(&config);
        assert_eq!((mapped.max_total, mapped.max_per_ip), (10, 3));
        assert_eq!(mapped.rate, Rate::per_second(100, 50));
        assert_eq!(mapped.rate_per_ip, None, "off by default");
        assert_eq!(mapped.retry_jitter, 7);
        assert!(
            !mapped.trusted_proxies.is_enabled(),
            "trusts nobody by default"
        );
        assert!(std::mem::size_of::<IpGuard>() <= 32);
    }
}
