//! HdrHistogram's percentile-distribution text format (`.hgrm`), and the same
//! distribution as plain points for JSON and plots.
//!
//! The text is what HdrHistogram's Java `outputPercentileDistribution` prints
//! (and what its online plotter and `HistogramLogAnalyzer` read): a header
//! line, one line per percentile step (`Value`, `Percentile` as a fraction,
//! `TotalCount`, `1/(1-Percentile)`; the last line, at 100 %, has no fourth
//! column), then the `#[Mean …]`, `#[Max …]` and `#[Buckets …]` footer.
//! Steps are `ticks_per_half_distance` per halving of the distance to 100 %
//! (5, as HdrHistogram's tools use). Values are recorded in µs and printed
//! divided by `scale` (1000.0 prints milliseconds, the plotter's default).

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Percentile steps per halving of the distance to 100 %.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// One point of a percentile distribution: `quantile` (0..=1) and the value
/// at it, in µs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub quantile: f64,
    pub value_us: u64,
}

/// The percentile distribution of `hist`, one point per step (empty for an
/// empty histogram).
pub fn distribution(hist: &Histogram<u64>) -> Vec<Point> {
    if hist.is_empty() {
        return Vec::new();
    }
    hist.iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .map(|v| Point {
            quantile: v.quantile_iterated_to(),
            value_us: v.value_iterated_to(),
        })
        .collect()
}

/// Writes `hist` in the `.hgrm` format, values divided by `scale`.
pub fn encode_hgrm_into(out: &mut String, hist: &Histogram<u64>, scale: f64) {
    let digits = usize::from(hist.sigfig());
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !hist.is_empty() {
        for v in hist.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / scale;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.digits$} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:12.digits$} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, stdev, max) = if hist.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            hist.mean() / scale,
            hist.stdev() / scale,
            hist.max() as f64 / scale,
        )
    };
    let _ = writeln!(
        out,
        "#[Mean    = {mean:12.digits$}, StdDeviation   = {stdev:12.digits$}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:12.digits$}, Total count    = {:12}]",
        hist.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        hist.buckets(),
        sub_bucket_count(hist.sigfig())
    );
}

/// HdrHistogram's sub-bucket count for `sigfig` significant digits: the
/// power of two at or above `2 * 10^sigfig`.
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest_single_unit = 2 * 10u64.pow(u32::from(sigfig));
    largest_single_unit.next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{new_latency_histogram, record_us};

    fn uniform(n: u64) -> Histogram<u64> {
        let mut h = new_latency_histogram();
        for us in 1..=n {
            record_us(&mut h, us * 1000);
        }
        h
    }

    #[test]
    fn header_lines_and_footer_match_hdrhistogram() {
        let mut out = String::new();
        encode_hgrm_into(&mut out, &uniform(100), 1000.0);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        // The first step is the minimum at percentile 0.
        assert_eq!(
            lines[2],
            "       1.000 0.000000000000          1           1.00"
        );
        // The last step: 100 %, the maximum, every count, no inverse column.
        let last = lines[lines.len() - 4];
        assert_eq!(last, "     100.031 1.000000000000        100");
        assert_eq!(
            lines[lines.len() - 3],
            "#[Mean    =       50.504, StdDeviation   =       28.866]"
        );
        assert_eq!(
            lines[lines.len() - 2],
            "#[Max     =      100.031, Total count    =          100]"
        );
        assert_eq!(
            lines[lines.len() - 1],
            "#[Buckets =           20, SubBuckets     =         2048]"
        );
    }

    #[test]
    fn steps_are_monotonic_and_parse_back() {
        let mut out = String::new();
        encode_hgrm_into(&mut out, &uniform(1000), 1.0);
        let mut last = (0.0f64, 0.0f64, 0u64);
        let mut rows = 0;
        for line in out.lines().skip(2).take_while(|l| !l.starts_with('#')) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert!(cols.len() == 4 || cols.len() == 3, "{line}");
            let value: f64 = cols[0].parse().expect("value");
            let q: f64 = cols[1].parse().expect("percentile");
            let count: u64 = cols[2].parse().expect("count");
            assert!(value >= last.0 && q >= last.1 && count >= last.2, "{line}");
            last = (value, q, count);
            rows += 1;
        }
        assert!(rows > 20, "{rows} rows");
        assert_eq!(last.1, 1.0);
        assert_eq!(last.2, 1000);
    }

    #[test]
    fn distribution_points_follow_the_same_steps() {
        let h = uniform(1000);
        let points = distribution(&h);
        assert_eq!(points.first().map(|p| p.quantile), Some(0.0));
        assert_eq!(points.last().map(|p| p.quantile), Some(1.0));
        assert_eq!(points.last().map(|p| p.value_us), Some(h.max()));
        assert!(points.windows(2).all(|w| w[0].value_us <= w[1].value_us));
        assert!(distribution(&new_latency_histogram()).is_empty());
    }

    #[test]
    fn an_empty_histogram_still_has_header_and_footer() {
        let mut out = String::new();
        encode_hgrm_into(&mut out, &new_latency_histogram(), 1000.0);
        assert_eq!(out.lines().count(), 5);
        assert!(out.contains("Total count    =            0]"));
    }

    #[test]
    fn sub_buckets_for_three_digits() {
        assert_eq!(sub_bucket_count(3), 2048);
        assert_eq!(sub_bucket_count(2), 256);
    }
}
