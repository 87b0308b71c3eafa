//! Report building blocks shared by every scenario: latency percentiles from
//! an HDR histogram, failure counts by cause, and the server-memory line.
//!
//! Every figure here is plain data (`serde::Serialize`), so a scenario prints
//! it with the `Display` impls and writes the very same values with
//! `--json PATH`. Latencies are recorded in microseconds.

use std::collections::BTreeMap;
use std::fmt;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram records: 10 minutes in µs; larger values are
/// clamped to it (every scenario's own timeouts are far below).
pub const MAX_LATENCY_US: u64 = 600_000_000;

/// A latency histogram in µs with 3 significant digits, as every scenario uses.
pub fn new_latency_histogram() -> Histogram<u64> {
    // 1 µs .. 10 min at 3 significant figures: a fixed, valid configuration.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Records `us` in a histogram from [`new_latency_histogram`], clamped to its range.
pub fn record_us(hist: &mut Histogram<u64>, us: u64) {
    hist.saturating_record(us.clamp(1, MAX_LATENCY_US));
}

/// Percentiles of one latency histogram, in µs: the one computation every
/// output shows (the text report, `--json`, the plot's HTML table), so they
/// cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub p9999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl LatencySummary {
    pub fn from_histogram(hist: &Histogram<u64>) -> LatencySummary {
        if hist.is_empty() {
            return LatencySummary {
                count: 0,
                p50_us: 0,
                p90_us: 0,
                p99_us: 0,
                p999_us: 0,
                p9999_us: 0,
                max_us: 0,
                mean_us: 0.0,
            };
        }
        LatencySummary {
            count: hist.len(),
            p50_us: hist.value_at_quantile(0.50),
            p90_us: hist.value_at_quantile(0.90),
            p99_us: hist.value_at_quantile(0.99),
            p999_us: hist.value_at_quantile(0.999),
            p9999_us: hist.value_at_quantile(0.9999),
            max_us: hist.max(),
            mean_us: hist.mean(),
        }
    }
}

/// The names of [`LatencySummary::columns`], in order: every table's header.
pub const PERCENTILE_COLUMNS: [&str; 6] = ["p50", "p90", "p99", "p99.9", "p99.99", "max"];

impl LatencySummary {
    /// The figures every table shows, in the order of
    /// [`PERCENTILE_COLUMNS`], each with its name.
    pub fn columns(&self) -> [(&'static str, u64); 6] {
        let values = [
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.p9999_us,
            self.max_us,
        ];
        std::array::from_fn(|i| (PERCENTILE_COLUMNS[i], values[i]))
    }
}

impl fmt::Display for LatencySummary {
    /// `p50 812 µs  p90 1.20 ms  p99 2.51 ms  p99.9 4.00 ms  p99.99 5.00 ms  max 5.12 ms  (n=19000)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return write!(f, "no samples");
        }
        for (name, us) in self.columns() {
            write!(f, "{name} {}  ", Micros(us))?;
        }
        write!(f, "(n={})", self.count)
    }
}

/// A duration in µs, shown with a unit that keeps 3 significant digits:
/// `812 µs`, `1.20 ms`, `25.4 ms`, `1.23 s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Micros(pub u64);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0;
        if us < 1_000 {
            return write!(f, "{us} µs");
        }
        // Pick the unit and decimals on the value as it will print, so that
        // 999_999 µs is "1.00 s" and 9_995 µs is "10.0 ms", never "10.00 ms".
        let (value, unit) = if us < 999_500 {
            (us as f64 / 1e3, "ms")
        } else {
            (us as f64 / 1e6, "s")
        };
        let decimals = if value < 9.995 {
            2
        } else if value < 99.95 {
            1
        } else {
            0
        };
        write!(f, "{value:.decimals$} {unit}")
    }
}

/// Counts of outcomes by cause label (`refused`, `timeout`, `bad status 503`,
/// `EADDRNOTAVAIL`, ...), ordered by label so reports are stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CauseCounts(BTreeMap<String, u64>);

impl CauseCounts {
    pub fn add(&mut self, cause: &str, n: u64) {
        match self.0.get_mut(cause) {
            Some(count) => *count += n,
            None => {
                self.0.insert(cause.to_string(), n);
            }
        }
    }

    pub fn merge(&mut self, other: &CauseCounts) {
        for (cause, n) in &other.0 {
            self.add(cause, *n);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every cause with its count, by cause.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

impl fmt::Display for CauseCounts {
    /// `refused 3, timeout 1` (largest first), or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "none");
        }
        let mut items: Vec<_> = self.0.iter().collect();
        items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (i, (cause, n)) in items.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{cause} {n}")?;
        }
        Ok(())
    }
}

/// The server's resident memory before connecting and with the connections
/// open: the headline "memory per idle connection" figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ServerRss {
    pub pid: u32,
    pub before_kib: u64,
    pub after_kib: u64,
    /// Connections open when `after_kib` was read.
    pub open: u64,
}

impl ServerRss {
    /// `after - before`, negative if the server shrank.
    pub fn growth_kib(&self) -> i64 {
        self.after_kib as i64 - self.before_kib as i64
    }

    /// Growth divided by the open connections; `None` with none open.
    pub fn per_connection_kib(&self) -> Option<f64> {
        (self.open > 0).then(|| self.growth_kib() as f64 / self.open as f64)
    }
}

impl fmt::Display for ServerRss {
    /// `server RSS: before 2048 KiB, after 98304 KiB, growth 96256 KiB, per connection 5.07 KiB (19000 open)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server RSS: before {} KiB, after {} KiB, growth {} KiB, per connection ",
            self.before_kib,
            self.after_kib,
            self.growth_kib()
        )?;
        match self.per_connection_kib() {
            Some(per) => write!(f, "{per:.2} KiB")?,
            None => write!(f, "n/a")?,
        }
        write!(f, " ({} open)", self.open)
    }
}

/// Serializes the `ServerRss` derived figures too, for `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ServerRssJson {
    #[serde(flatten)]
    pub rss: ServerRss,
    pub growth_kib: i64,
    pub per_connection_kib: Option<f64>,
}

impl From<ServerRss> for ServerRssJson {
    fn from(rss: ServerRss) -> Self {
        ServerRssJson {
            rss,
            growth_kib: rss.growth_kib(),
            per_connection_kib: rss.per_connection_kib(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_pick_a_unit() {
        assert_eq!(Micros(0).to_string(), "0 µs");
        assert_eq!(Micros(812).to_string(), "812 µs");
        assert_eq!(Micros(999).to_string(), "999 µs");
        assert_eq!(Micros(1_000).to_string(), "1.00 ms");
        assert_eq!(Micros(1_204).to_string(), "1.20 ms");
        assert_eq!(Micros(25_400).to_string(), "25.4 ms");
        assert_eq!(Micros(250_000).to_string(), "250 ms");
        assert_eq!(Micros(1_234_567).to_string(), "1.23 s");
        // Rounding never adds a digit or stays below the next unit.
        assert_eq!(Micros(9_995).to_string(), "10.0 ms");
        assert_eq!(Micros(99_950).to_string(), "100 ms");
        assert_eq!(Micros(999_499).to_string(), "999 ms");
        assert_eq!(Micros(999_999).to_string(), "1.00 s");
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = new_latency_histogram();
        for us in 1..=1000 {
            record_us(&mut h, us);
        }
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 1000);
        assert_eq!(s.p50_us, 500);
        assert_eq!(s.p90_us, 900);
        assert_eq!(s.p99_us, 990);
        assert_eq!(s.p999_us, 999);
        assert_eq!(s.p9999_us, 1000);
        assert_eq!(s.max_us, 1000);
        assert_eq!(
            s.to_string(),
            "p50 500 µs  p90 900 µs  p99 990 µs  p99.9 999 µs  p99.99 1.00 ms  max 1.00 ms  (n=1000)"
        );
        let empty = LatencySummary::from_histogram(&new_latency_histogram());
        assert_eq!(empty.to_string(), "no samples");
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let mut h = new_latency_histogram();
        record_us(&mut h, 0);
        record_us(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 1);
        assert!(h.max() >= MAX_LATENCY_US);
    }

    #[test]
    fn cause_counts_merge_and_print_largest_first() {
        let mut a = CauseCounts::default();
        assert_eq!(a.to_string(), "none");
        a.add("timeout", 1);
        a.add("refused", 3);
        let mut b = CauseCounts::default();
        b.add("timeout", 3);
        b.add("bad status 503", 2);
        a.merge(&b);
        assert_eq!(a.total(), 9);
        assert_eq!(a.to_string(), "timeout 4, refused 3, bad status 503 2");
        assert_eq!(
            serde_json::to_string(&a).expect("json"),
            r#"{"bad status 503":2,"refused":3,"timeout":4}"#
        );
    }

    #[test]
    fn server_rss_line() {
        let r = ServerRss {
            pid: 7,
            before_kib: 2048,
            after_kib: 98_304,
            open: 19_000,
        };
        assert_eq!(
            r.to_string(),
            "server RSS: before 2048 KiB, after 98304 KiB, growth 96256 KiB, per connection 5.07 KiB (19000 open)"
        );
        let none = ServerRss {
            pid: 7,
            before_kib: 10,
            after_kib: 9,
            open: 0,
        };
        assert_eq!(
            none.to_string(),
            "server RSS: before 10 KiB, after 9 KiB, growth -1 KiB, per connection n/a (0 open)"
        );
        let json = serde_json::to_value(ServerRssJson::from(r)).expect("json");
        assert_eq!(json["growth_kib"], 96_256);
        assert_eq!(json["before_kib"], 2048);
    }
}
