//! The report of a measuring scenario (`echo`, `fanout`, `storm`): built from
//! the engine's [`Outcome`], printed as text, written as JSON and `.hgrm`.
//!
//! One shape for every scenario, so runs compare and plots overlay:
//! - `metrics`: per latency metric, the percentile summary (p50, p90, p99,
//!   p99.9, p99.99, max, in µs) and the full percentile distribution;
//! - `throughput` (per second, over the recorded window), `counts`, `figures`
//!   (scenario-specific values, named in each scenario's module doc) and
//!   `errors` by cause;
//! - `cpu`: the generator's own CPU use;
//! - `client_bound` with its reasons: whether the figures describe the
//!   generator rather than the server. It is set when the generator's own lag
//!   (how late it dispatched scheduled messages) had a p99 over
//!   [`LAG_LIMIT_US`], or, where nothing spins, when its threads were over
//!   [`BUSY_LIMIT`] busy during the window;
//! - `warnings`: anything a reader must know before trusting a figure.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::engine::Outcome;
use crate::hgrm::{distribution, encode_hgrm_into, Point};
use crate::report::{CauseCounts, LatencySummary, Micros, PERCENTILE_COLUMNS};
use crate::stats::{Counter, Metric};

/// Generator lag (p99) above which a run is flagged client-bound, in µs.
pub const LAG_LIMIT_US: u64 = 1_000;

/// Share of the window a generator thread may be busy before a run that
/// does not spin is flagged client-bound.
pub const BUSY_LIMIT: f64 = 0.90;

/// One latency metric.
#[derive(Debug, Clone, Serialize)]
pub struct MetricReport {
    /// What is measured, from when to when.
    pub what: String,
    #[serde(flatten)]
    pub summary: LatencySummary,
    /// The percentile distribution (HdrHistogram steps), for plots.
    pub distribution: Vec<Point>,
    #[serde(skip)]
    pub hist: Histogram<u64>,
}

/// The generator's CPU use.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuReport {
    /// Whole process, over the whole run (setup and close included).
    pub user_s: f64,
    pub system_s: f64,
    /// Process CPU time divided by wall time: cores' worth used.
    pub cores: f64,
    /// Generator threads' CPU time inside the recorded window, divided by the
    /// window times the thread count (1.0 = every thread always busy).
    pub window_busy: f64,
    /// Whether the pacing loops spin before each send (then busy is ~1.0 by
    /// design and says nothing about headroom; the lag does).
    pub spinning: bool,
    /// Naps taken while spinning idle, in µs (0 = pure spin); a reply that
    /// landed in one was read up to this late.
    pub nap_us: u64,
}

/// Connection counts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Connections {
    pub requested: u64,
    pub opened: u64,
    pub failed: u64,
}

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub scenario: String,
    /// A name for plots and comparisons (`--label`, default the scenario).
    pub label: String,
    pub url: String,
    /// The load shape in words (`open loop at 10000 msg/s`, ...).
    pub mode: String,
    pub settings: BTreeMap<String, serde_json::Value>,
    pub threads: usize,
    pub cpus: Option<Vec<usize>>,
    pub driver: &'static str,
    pub fd_limit: Option<u64>,
    pub connections: Connections,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// The recorded window actually covered (shorter when interrupted).
    pub measured_s: f64,
    pub interrupted: bool,
    pub hard_stopped: bool,
    pub target_rate_per_s: Option<f64>,
    pub throughput: BTreeMap<String, f64>,
    pub counts: BTreeMap<String, u64>,
    pub figures: BTreeMap<String, f64>,
    pub errors: CauseCounts,
    pub metrics: BTreeMap<String, MetricReport>,
    pub cpu: CpuReport,
    pub client_bound: bool,
    pub client_bound_reasons: Vec<String>,
    pub warnings: Vec<String>,
}

impl RunReport {
    /// The parts every scenario shares, from the engine's outcome. The
    /// scenario adds its throughput, counts, figures and warnings after.
    pub fn new<T>(scenario: &str, outcome: &Outcome<T>, base: ReportBase) -> RunReport {
        let stats = &outcome.stats;
        let mut metrics = BTreeMap::new();
        for (metric, what) in base.metrics {
            let hist = stats.hist(*metric).clone();
            metrics.insert(
                metric.name().to_string(),
                MetricReport {
                    what: what.to_string(),
                    summary: LatencySummary::from_histogram(&hist),
                    distribution: distribution(&hist),
                    hist,
                },
            );
        }
        let counts = Counter::ALL
            .iter()
            .filter(|c| stats.count(**c) > 0 || base.always_count.contains(c))
            .map(|c| (c.name().to_string(), stats.count(*c)))
            .collect();
        let measured_s = outcome.measured.as_secs_f64();
        let wall = outcome.wall.as_secs_f64().max(1e-9);
        let window_busy = if measured_s > 0.0 {
            stats.cpu.total_us() as f64 / 1e6 / (measured_s * base.threads as f64)
        } else {
            0.0
        };
        let opened = stats.hist(Metric::Setup).len();
        let mut report = RunReport {
            scenario: scenario.to_string(),
            label: base.label.unwrap_or_else(|| scenario.to_string()),
            url: base.url,
            mode: base.mode,
            settings: base.settings,
            threads: base.threads,
            cpus: base.cpus,
            driver: outcome.driver,
            fd_limit: base.fd_limit,
            connections: Connections {
                requested: base.connections,
                opened,
                failed: base.connections.saturating_sub(opened),
            },
            warmup_s: base.warmup_s,
            duration_s: base.duration_s,
            measured_s,
            interrupted: outcome.interrupted,
            hard_stopped: outcome.hard_stopped,
            target_rate_per_s: base.target_rate,
            throughput: BTreeMap::new(),
            counts,
            figures: BTreeMap::new(),
            errors: stats.errors.clone(),
            metrics,
            cpu: CpuReport {
                user_s: outcome.process_cpu.user_us as f64 / 1e6,
                system_s: outcome.process_cpu.system_us as f64 / 1e6,
                cores: outcome.process_cpu.total_us() as f64 / 1e6 / wall,
                window_busy,
                spinning: base.spinning,
                nap_us: base.nap_us,
            },
            client_bound: false,
            client_bound_reasons: Vec::new(),
            warnings: Vec::new(),
        };
        if outcome.interrupted {
            report
                .warnings
                .push("interrupted: the figures cover the part of the window that ran".into());
        }
        if outcome.hard_stopped {
            report.warnings.push(
                "hard stop: a generator thread did not finish in time; figures are what it had flushed"
                    .into(),
            );
        }
        if outcome.setup_timed_out {
            report
                .warnings
                .push("setup did not finish by its deadline: the window never started".into());
        }
        if report.connections.failed > 0 {
            report.warnings.push(format!(
                "{} of {} connections did not open (see errors)",
                report.connections.failed, report.connections.requested
            ));
        }
        report
    }

    /// Per-second rate of `count` over the recorded window.
    pub fn per_second(&self, count: u64) -> f64 {
        if self.measured_s > 0.0 {
            count as f64 / self.measured_s
        } else {
            0.0
        }
    }

    /// How many errors have a cause containing `needle` (`None` for none).
    pub fn errors_matching(&self, needle: &str) -> Option<u64> {
        let n: u64 = self
            .errors
            .iter()
            .filter(|(cause, _)| cause.contains(needle))
            .map(|(_, n)| n)
            .sum();
        (n > 0).then_some(n)
    }

    /// Sets `client_bound` from the generator's lag and CPU.
    pub fn judge_client_bound(&mut self) {
        if let Some(lag) = self.metrics.get(Metric::Lag.name()) {
            let s = lag.summary;
            if s.count > 0 && s.p99_us > LAG_LIMIT_US {
                self.client_bound_reasons.push(format!(
                    "the generator fell behind its own schedule: lag p99 {} (limit {}), max {}",
                    Micros(s.p99_us),
                    Micros(LAG_LIMIT_US),
                    Micros(s.max_us)
                ));
            }
        }
        if !self.cpu.spinning && self.cpu.window_busy > BUSY_LIMIT {
            self.client_bound_reasons.push(format!(
                "generator threads were {:.0} % busy in the window (limit {:.0} %)",
                self.cpu.window_busy * 100.0,
                BUSY_LIMIT * 100.0
            ));
        }
        self.client_bound = !self.client_bound_reasons.is_empty();
    }

    /// Writes the JSON report to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the primary latency to `path` and each other recorded metric
    /// beside it (`run.hgrm` → `run.generator_lag.hgrm`), values in ms.
    /// Returns the files written.
    pub fn write_hgrm(&self, path: &Path) -> Result<Vec<PathBuf>, String> {
        let mut written = Vec::new();
        for (name, metric) in &self.metrics {
            if name != Metric::Latency.name() && metric.summary.count == 0 {
                continue;
            }
            let target = if name == Metric::Latency.name() {
                path.to_path_buf()
            } else {
                sibling_path(path, name)
            };
            let mut text = String::new();
            encode_hgrm_into(&mut text, &metric.hist, 1000.0);
            std::fs::write(&target, text).map_err(|e| format!("{}: {e}", target.display()))?;
            written.push(target);
        }
        Ok(written)
    }
}

/// `dir/run.hgrm` + `lag` → `dir/run.lag.hgrm`.
pub fn sibling_path(path: &Path, name: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
    let file = match path.extension() {
        Some(ext) => format!("{stem}.{name}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{name}"),
    };
    path.with_file_name(file)
}

/// What a scenario tells [`RunReport::new`] about itself.
pub struct ReportBase {
    pub label: Option<String>,
    pub url: String,
    pub mode: String,
    pub settings: BTreeMap<String, serde_json::Value>,
    pub threads: usize,
    pub cpus: Option<Vec<usize>>,
    pub fd_limit: Option<u64>,
    pub connections: u64,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub target_rate: Option<f64>,
    /// The metrics to report, each with what it measures.
    pub metrics: &'static [(Metric, &'static str)],
    /// Counters reported even when zero (the ones a reader checks: gaps, ...).
    pub always_count: &'static [Counter],
    pub spinning: bool,
    pub nap_us: u64,
}

/// `name` then p50, p90, p99, p99.9, p99.99, max (each 9 wide) and the count.
pub fn percentile_row(name: &str, s: &LatencySummary) -> String {
    if s.count == 0 {
        return format!("{name:<14} {:>9}", "no samples");
    }
    let cells = s
        .columns()
        .map(|(_, us)| format!("{:>9}", Micros(us).to_string()));
    format!("{name:<14} {} {:>9}", cells.join(" "), s.count)
}

/// The header over [`percentile_row`]s.
pub fn percentile_header() -> String {
    let names = PERCENTILE_COLUMNS.map(|name| format!("{name:>9}"));
    format!("{:<14} {} {:>9}", "metric", names.join(" "), "count")
}

/// The verdict on a run, as the text report, the plot and its page show it:
/// `CLIENT-BOUND: ...` with the reasons, or that the generator kept up.
pub fn verdict(client_bound: bool, reasons: &[String]) -> String {
    if client_bound {
        format!(
            "CLIENT-BOUND: these figures describe the generator, not the server: {}",
            reasons.join("; ")
        )
    } else {
        format!(
            "generator kept up (lag p99 within {})",
            Micros(LAG_LIMIT_US)
        )
    }
}

fn join_counts(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_figures(figures: &BTreeMap<String, f64>) -> String {
    figures
        .iter()
        .map(|(k, v)| format!("{k} {}", trim_float(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `12` for 12.0, `0.25` for 0.25, `9998.4` for 9998.43.
fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {}  {}", self.scenario, self.url, self.mode)?;
        let pinned = match &self.cpus {
            Some(c) => format!(
                ", pinned to CPU {}",
                c.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
            ),
            None => String::new(),
        };
        writeln!(
            f,
            "generator     {} thread(s) on {}{pinned}; warmup {} s, measured {:.2} s of {} s{}",
            self.threads,
            self.driver,
            trim_float(self.warmup_s),
            self.measured_s,
            trim_float(self.duration_s),
            self.fd_limit
                .map_or(String::new(), |l| format!("; open-file limit {l}"))
        )?;
        writeln!(
            f,
            "connections   {} opened, {} failed (of {})",
            self.connections.opened, self.connections.failed, self.connections.requested
        )?;
        let target = self.target_rate_per_s.map_or(String::new(), |t| {
            format!(" (target {} msg/s)", trim_float(t))
        });
        let rates = self
            .throughput
            .iter()
            .map(|(k, v)| format!("{k} {}", trim_float(*v)))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(f, "throughput    {rates}{target}")?;
        writeln!(f, "{}", percentile_header())?;
        for metric in Metric::ALL {
            if let Some(m) = self.metrics.get(metric.name()) {
                writeln!(f, "{}", percentile_row(metric.name(), &m.summary))?;
            }
        }
        writeln!(f, "counts        {}", join_counts(&self.counts))?;
        if !self.figures.is_empty() {
            writeln!(f, "figures       {}", join_figures(&self.figures))?;
        }
        writeln!(f, "errors        {}", self.errors)?;
        writeln!(
            f,
            "client CPU    {:.2} cores (user {:.2} s, system {:.2} s); threads {:.0} % busy in the window{}",
            self.cpu.cores,
            self.cpu.user_s,
            self.cpu.system_s,
            self.cpu.window_busy * 100.0,
            match (self.cpu.spinning, self.cpu.nap_us) {
                (true, 0) => " (spin-waits for send times)".to_string(),
                (true, nap) => format!(" (spin-waits for send times, {nap} µs naps when idle)"),
                (false, _) => String::new(),
            }
        )?;
        write!(
            f,
            "verdict       {}",
            verdict(self.client_bound, &self.client_bound_reasons)
        )?;
        for w in &self.warnings {
            write!(f, "\nwarning: {w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{new_latency_histogram, record_us};

    #[test]
    fn percentile_rows_line_up_under_the_header() {
        let mut h = new_latency_histogram();
        for us in 1..=10_000 {
            record_us(&mut h, us);
        }
        let s = LatencySummary::from_histogram(&h);
        let header = percentile_header();
        let row = percentile_row("latency", &s);
        assert_eq!(
            header,
            "metric               p50       p90       p99     p99.9    p99.99       max     count"
        );
        assert_eq!(
            row,
            "latency          5.00 ms   9.01 ms   9.90 ms   9.99 ms   10.0 ms   10.0 ms     10000"
        );
        assert_eq!(header.chars().count(), row.chars().count());
        assert_eq!(
            percentile_row(
                "lag",
                &LatencySummary::from_histogram(&new_latency_histogram())
            ),
            "lag            no samples"
        );
    }

    #[test]
    fn sibling_hgrm_names() {
        assert_eq!(
            sibling_path(Path::new("/tmp/run.hgrm"), "generator_lag"),
            PathBuf::from("/tmp/run.generator_lag.hgrm")
        );
        assert_eq!(
            sibling_path(Path::new("out"), "setup"),
            PathBuf::from("out.setup")
        );
    }

    #[test]
    fn floats_print_short() {
        assert_eq!(trim_float(12.0), "12");
        assert_eq!(trim_float(0.25), "0.250");
        assert_eq!(trim_float(9998.43), "9998.4");
    }
}
