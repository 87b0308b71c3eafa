//! Live progress on a terminal: elapsed time, rates achieved against the
//! target, the last second's p50/p99, errors.
//!
//! Drawn with indicatif on stderr, and only when stderr is a terminal: when it
//! is redirected (CI, scripts, tests) a run prints nothing until its report.
//! The main thread is the only caller; drawing is rate-limited by indicatif.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::Micros;

/// One sample of a running scenario, taken by the engine's main loop.
#[derive(Debug, Clone, Copy, Default)]
pub struct Live {
    /// Since the window's start (warmup included).
    pub elapsed: Duration,
    pub warmup: Duration,
    /// Warmup + duration.
    pub total: Duration,
    pub opened: u64,
    pub sent: u64,
    pub received: u64,
    pub errors: u64,
    /// Over the last second.
    pub send_rate: f64,
    pub recv_rate: f64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
}

/// The progress display (a no-op when not on a terminal).
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Messages per second the scenario aims at, shown beside the achieved rate.
    target_rate: Option<f64>,
    connections: u64,
}

impl Progress {
    /// A display for a run opening `connections` and sending at `target_rate`;
    /// drawn only when `enabled` and stderr is a terminal.
    pub fn new(enabled: bool, connections: u64, target_rate: Option<f64>) -> Progress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(connections.max(1)),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            bar.set_style(
                ProgressStyle::with_template("{prefix:>9} [{bar:24}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            target_rate,
            connections,
        }
    }

    /// A display that never draws.
    pub fn hidden() -> Progress {
        Progress::new(false, 0, None)
    }

    /// During setup: connections opened so far.
    pub fn setup(&self, live: &Live) {
        let Some(bar) = &self.bar else { return };
        bar.set_prefix("opening");
        bar.set_length(self.connections.max(1));
        bar.set_position(live.opened.min(self.connections));
        bar.set_message(format!(
            "{}/{} connections, {} errors",
            live.opened, self.connections, live.errors
        ));
    }

    /// During the window.
    pub fn window(&self, live: &Live) {
        let Some(bar) = &self.bar else { return };
        let phase = if live.elapsed < live.warmup {
            "warmup"
        } else if live.elapsed < live.total {
            "measuring"
        } else {
            "draining"
        };
        bar.set_prefix(phase);
        bar.set_length(live.total.as_millis().max(1) as u64);
        bar.set_position(live.elapsed.as_millis().min(live.total.as_millis()) as u64);
        bar.set_message(line(live, self.target_rate));
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `3.2/10.0 s  sent 9998/s of 10000/s  recv 9997/s  p50 85 µs  p99 310 µs  errors 0`
pub fn line(live: &Live, target_rate: Option<f64>) -> String {
    let target = target_rate.map_or(String::new(), |t| format!(" of {t:.0}/s"));
    let pct = |v: Option<u64>| v.map_or("-".to_string(), |us| Micros(us).to_string());
    format!(
        "{:.1}/{:.1} s  sent {:.0}/s{target}  recv {:.0}/s  p50 {}  p99 {}  errors {}",
        live.elapsed.as_secs_f64(),
        live.total.as_secs_f64(),
        live.send_rate,
        live.recv_rate,
        pct(live.p50_us),
        pct(live.p99_us),
        live.errors
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_target_and_percentiles() {
        let live = Live {
            elapsed: Duration::from_millis(3200),
            total: Duration::from_secs(10),
            send_rate: 9998.4,
            recv_rate: 9997.0,
            p50_us: Some(85),
            p99_us: Some(1204),
            errors: 2,
            ..Live::default()
        };
        assert_eq!(
            line(&live, Some(10_000.0)),
            "3.2/10.0 s  sent 9998/s of 10000/s  recv 9997/s  p50 85 µs  p99 1.20 ms  errors 2"
        );
        let empty = Live::default();
        assert_eq!(
            line(&empty, None),
            "0.0/0.0 s  sent 0/s  recv 0/s  p50 -  p99 -  errors 0"
        );
    }

    #[test]
    fn hidden_progress_draws_nothing() {
        let p = Progress::hidden();
        assert!(p.bar.is_none());
        p.setup(&Live::default());
        p.window(&Live::default());
        p.finish();
    }
}
