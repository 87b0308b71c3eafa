//! Log summaries: at `info`, refusals and abnormal closes are counted here and
//! written as at most one line per reason per interval (`log.summary_interval`),
//! so a storm of bad handshakes costs a handful of lines, not one per peer.
//!
//! Sans-IO: one per worker, no locks, time is passed in (`now`), and the
//! table is fixed-size (a slot per refusal status and per close reason), so a
//! peer cannot grow it. The exact counts stay in `/metrics`; this only decides
//! what reaches the log.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::metrics::{CloseReason, REFUSAL_STATUSES};

/// Close reasons summarised besides refusals (the others are normal).
const CLOSES: [CloseReason; 3] = [
    CloseReason::HandshakeTimeout,
    CloseReason::ProtocolError,
    CloseReason::SlowConsumer,
];

/// Peers (and paths) followed per refusal status: a fixed table, so a flood
/// from many addresses or to many paths costs no memory; the most frequent
/// stay (space-saving counts).
const CANDIDATES: usize = 8;
/// Peers and paths named on a summary line.
const TOP: usize = 3;
/// Bytes of a path kept: enough to tell `/ws` from `/wss`, not enough for a
/// peer to make the table large.
const PATH_BYTES: usize = 40;

/// The most frequent keys of one status, approximately counted: when the
/// table is full a new key takes the least counted slot and inherits its
/// count, so a key behind more than 1/`CANDIDATES` of the refusals is always
/// among them (its count an upper bound).
#[derive(Debug, Clone, Copy)]
struct Top<K> {
    slots: [Option<(K, u64)>; CANDIDATES],
}

impl<K: Copy + Eq> Default for Top<K> {
    fn default() -> Self {
        Top {
            slots: [None; CANDIDATES],
        }
    }
}

impl<K: Copy + Eq> Top<K> {
    fn add(&mut self, key: K) {
        for slot in &mut self.slots {
            match slot {
                Some((k, n)) if *k == key => {
                    *n += 1;
                    return;
                }
                None => {
                    *slot = Some((key, 1));
                    return;
                }
                Some(_) => {}
            }
        }
        // Full: the least counted slot goes to the newcomer.
        let count = |slot: &Option<(K, u64)>| slot.map_or(0, |(_, n)| n);
        if let Some(least) = self.slots.iter_mut().min_by_key(|slot| count(slot)) {
            let inherited = count(least);
            *least = Some((key, inherited + 1));
        }
    }

    /// The most frequent keys, most first, and empties the table.
    fn take(&mut self) -> Vec<(K, u64)> {
        let mut all: Vec<(K, u64)> = self.slots.iter_mut().filter_map(Option::take).collect();
        all.sort_by_key(|k| std::cmp::Reverse(k.1));
        all.truncate(TOP);
        all
    }
}

/// A request path cut to `PATH_BYTES` (at a character boundary), held
/// inline so that following it allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Clip {
    len: u8,
    cut: bool,
    bytes: [u8; PATH_BYTES],
}

impl Clip {
    fn new(path: &str) -> Self {
        let mut len = path.len().min(PATH_BYTES);
        while !path.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; PATH_BYTES];
        bytes[..len].copy_from_slice(&path.as_bytes()[..len]);
        Clip {
            len: len as u8,
            cut: len < path.len(),
            bytes,
        }
    }

    fn as_str(&self) -> &str {
        // Cut at a character boundary of a `&str`: always UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Display for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())?;
        if self.cut {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

/// One summary line: what happened, and how often in the interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `count` handshakes refused with `status` (0: a status not listed),
    /// most from `peers` and to `paths` (approximate counts; a request too
    /// malformed to have a path is in no path's count).
    Refused {
        status: u16,
        count: u64,
        peers: Vec<(IpAddr, u64)>,
        paths: Vec<(Clip, u64)>,
    },
    /// `count` connections closed for `reason`.
    Closed { reason: CloseReason, count: u64 },
}

/// Counts per reason since the last flush.
pub struct LogSummary {
    interval: Duration,
    next: Option<Instant>,
    refused: [u64; REFUSAL_STATUSES.len()],
    peers: [Top<IpAddr>; REFUSAL_STATUSES.len()],
    paths: [Top<Clip>; REFUSAL_STATUSES.len()],
    closed: [u64; CLOSES.len()],
}

impl LogSummary {
    pub fn new(interval: Duration) -> Self {
        LogSummary {
            interval,
            next: None,
            refused: [0; REFUSAL_STATUSES.len()],
            peers: [Top::default(); REFUSAL_STATUSES.len()],
            paths: [Top::default(); REFUSAL_STATUSES.len()],
            closed: [0; CLOSES.len()],
        }
    }

    /// A handshake from `peer` for `path` (none when the request could not
    /// be parsed) refused with `status`; the interval starts at the first
    /// event.
    pub fn refused(&mut self, status: u16, peer: IpAddr, path: Option<&str>, now: Instant) {
        let i = REFUSAL_STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(REFUSAL_STATUSES.len() - 1);
        self.refused[i] += 1;
        self.peers[i].add(peer);
        if let Some(path) = path {
            self.paths[i].add(Clip::new(path));
        }
        self.arm(now);
    }

    /// A connection closed for `reason`; normal reasons are not summarised.
    pub fn closed(&mut self, reason: CloseReason, now: Instant) {
        if let Some(i) = CLOSES.iter().position(|r| *r == reason) {
            self.closed[i] += 1;
            self.arm(now);
        }
    }

    fn arm(&mut self, now: Instant) {
        if self.next.is_none() {
            self.next = Some(now + self.interval);
        }
    }

    /// The lines due at `now` (none before the interval is over), counters reset.
    pub fn flush(&mut self, now: Instant) -> Vec<Line> {
        if self.next.is_none_or(|t| now < t) {
            return Vec::new();
        }
        self.take()
    }

    /// Every line pending, due or not (at shutdown).
    pub fn take(&mut self) -> Vec<Line> {
        self.next = None;
        let mut lines = Vec::new();
        for (i, status) in REFUSAL_STATUSES.iter().enumerate() {
            if self.refused[i] > 0 {
                lines.push(Line::Refused {
                    status: *status,
                    count: std::mem::take(&mut self.refused[i]),
                    peers: self.peers[i].take(),
                    paths: self.paths[i].take(),
                });
            }
        }
        for (reason, n) in CLOSES.iter().zip(&mut self.closed) {
            if *n > 0 {
                lines.push(Line::Closed {
                    reason: *reason,
                    count: std::mem::take(n),
                });
            }
        }
        lines
    }
}

/// Writes `lines` at info, naming the worker.
pub fn emit(worker: usize, interval: Duration, lines: &[Line]) {
    let secs = interval.as_secs_f64();
    for line in lines {
        match line {
            Line::Refused {
                status,
                count,
                peers,
                paths,
            } => tracing::info!(
                worker,
                reason = "refused",
                status,
                count,
                top_peers = ranked(peers).as_str(),
                // A `&str` field: the log format escapes it, a path being
                // the peer's text.
                top_paths = ranked(paths).as_str(),
                interval_secs = secs,
                "handshakes refused"
            ),
            Line::Closed { reason, count } => tracing::info!(
                worker,
                reason = reason.as_str(),
                count = *count,
                interval_secs = secs,
                "connections closed abnormally"
            ),
        }
    }
}

/// `key:count` pairs, most first, space-separated (a request target holds
/// no space).
fn ranked<K: std::fmt::Display>(top: &[(K, u64)]) -> String {
    let pairs: Vec<String> = top.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    pairs.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn one_line_per_reason_per_interval_with_exact_counts() {
        let t0 = Instant::now();
        let mut s = LogSummary::new(10 * SEC);
        assert!(s.flush(t0).is_empty());
        for i in 0..2000u32 {
            let at = t0 + Duration::from_millis(u64::from(i));
            match i % 4 {
                0 => s.refused(426, ip(1), Some("/echo"), at),
                1 => s.refused(404, ip(2), Some("/nope"), at),
                _ => s.refused(404, ip(1), Some("/nope"), at),
            }
        }
        s.closed(CloseReason::SlowConsumer, t0);
        s.closed(CloseReason::Drained, t0);
        assert!(s.flush(t0 + 9 * SEC).is_empty(), "not before the interval");
        let lines = s.flush(t0 + 10 * SEC);
        assert_eq!(
            lines,
            vec![
                Line::Refused {
                    status: 404,
                    count: 1500,
                    peers: vec![(ip(1), 1000), (ip(2), 500)],
                    paths: vec![(Clip::new("/nope"), 1500)],
                },
                Line::Refused {
                    status: 426,
                    count: 500,
                    peers: vec![(ip(1), 500)],
                    paths: vec![(Clip::new("/echo"), 500)],
                },
                Line::Closed {
                    reason: CloseReason::SlowConsumer,
                    count: 1
                },
            ]
        );
        assert!(s.flush(t0 + 20 * SEC).is_empty(), "reset after a flush");
    }

    #[test]
    fn unknown_statuses_share_one_slot() {
        let t0 = Instant::now();
        let mut s = LogSummary::new(SEC);
        for status in 600..700 {
            s.refused(status, ip(7), None, t0);
        }
        assert_eq!(
            s.take(),
            vec![Line::Refused {
                status: 0,
                count: 100,
                peers: vec![(ip(7), 100)],
                paths: vec![],
            }]
        );
        assert!(s.take().is_empty());
    }

    #[test]
    fn a_flood_from_many_peers_to_many_paths_keeps_the_table_small_and_the_loud_ones_first() {
        let t0 = Instant::now();
        let mut s = LogSummary::new(SEC);
        let before = std::mem::size_of_val(&s);
        // The loud peer sends 20% of the refusals, above 1/CANDIDATES, all
        // to one path; the others each come once, each to its own long path.
        for i in 0..100_000u32 {
            let path = format!("/{i}{}", "x".repeat(200));
            s.refused(404, ip(1_000 + i), Some(&path), t0);
            if i % 4 == 0 {
                s.refused(404, ip(1), Some("/wss"), t0);
            }
        }
        let lines = s.take();
        let [Line::Refused {
            count,
            peers,
            paths,
            ..
        }] = lines.as_slice()
        else {
            panic!("{lines:?}");
        };
        assert_eq!(*count, 125_000);
        assert_eq!(peers.len(), TOP);
        assert_eq!(peers[0].0, ip(1), "{peers:?}");
        assert_eq!(paths.len(), TOP);
        assert_eq!(paths[0].0.to_string(), "/wss", "{paths:?}");
        // Cut, and said to be: a peer's path costs at most PATH_BYTES here.
        let long = paths[1].0.to_string();
        assert!(long.ends_with("x..."), "{long}");
        assert_eq!(long.len(), PATH_BYTES + 3, "{long}");
        // Everything is inline: the summary owns no heap memory to grow.
        assert_eq!(std::mem::size_of_val(&s), before);
        assert!(before < 16 * 1024, "{before} bytes per worker");
    }

    #[test]
    fn a_path_is_cut_at_a_character_boundary() {
        let path = format!("/{}é", "a".repeat(PATH_BYTES - 2));
        assert_eq!(path.len(), PATH_BYTES + 1);
        let clip = Clip::new(&path);
        assert_eq!(clip.as_str(), &path[..PATH_BYTES - 1]);
        assert_eq!(clip.to_string(), format!("{}...", &path[..PATH_BYTES - 1]));
        assert_eq!(Clip::new("/ws").to_string(), "/ws");
        assert_eq!(Clip::new("").to_string(), "");
    }
}
