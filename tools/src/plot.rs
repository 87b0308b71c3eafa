//! Latency-by-percentile plots: one run (`--plot FILE`) or several runs
//! overlaid (`ringcast-load plot a.json b.json -o cmp.svg`) to compare
//! servers.
//!
//! The x axis is the percentile on HdrHistogram's log scale — x = 1/(1-q),
//! labelled 0 %, 90 %, 99 %, 99.9 %… — so the tail gets as much room as the
//! median; the y axis is latency in ms. Drawn with `plotters` into SVG; a
//! file ending in `.html` gets the SVG inline in a self-contained page with
//! the percentile table of each run under it.
//!
//! Input is the runs' `--json` reports: each curve is one metric's
//! `distribution` (default `latency`) labelled with the run's `label`.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::Deserialize;

use crate::hgrm::Point;
use crate::report::Micros;
use crate::summary::RunReport;

/// Right end of the x axis when no run goes further: p99.99.
const MIN_X_MAX: f64 = 1e4;

/// One run's percentile distribution of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub label: String,
    pub points: Vec<Point>,
}

/// The parts of a `--json` report a plot reads.
#[derive(Deserialize)]
struct JsonReport {
    label: String,
    #[serde(default)]
    metrics: std::collections::BTreeMap<String, JsonMetric>,
}

#[derive(Deserialize)]
struct JsonMetric {
    distribution: Vec<Point>,
}

/// The curve of `metric` in a report just measured.
pub fn curve_of(report: &RunReport, metric: &str) -> Option<Curve> {
    report.metrics.get(metric).map(|m| Curve {
        label: report.label.clone(),
        points: m.distribution.clone(),
    })
}

/// The curve of `metric` in a `--json` report file.
pub fn read_curve(path: &Path, metric: &str) -> Result<Curve, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let report: JsonReport = serde_json::from_slice(&text)
        .map_err(|e| format!("{}: not a ringcast-load JSON report: {e}", path.display()))?;
    let m = report
        .metrics
        .get(metric)
        .ok_or_else(|| format!("{}: no metric `{metric}`", path.display()))?;
    Ok(Curve {
        label: report.label,
        points: m.distribution.clone(),
    })
}

/// x position of quantile `q`: 1/(1-q), capped at `cap` (q = 1 is infinite).
pub fn x_of(q: f64, cap: f64) -> f64 {
    if q >= 1.0 {
        cap
    } else {
        (1.0 / (1.0 - q)).min(cap)
    }
}

/// The percentile an x position stands for: `90%`, `99.9%`.
pub fn percentile_label(x: f64) -> String {
    if x <= 1.0 {
        return "0%".into();
    }
    let p = 100.0 * (1.0 - 1.0 / x);
    let mut s = format!("{p:.6}");
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    format!("{s}%")
}

/// Writes the curves to `path`: SVG, or an HTML page when it ends in `.html`.
pub fn write_plot(path: &Path, title: &str, curves: &[Curve]) -> Result<(), String> {
    let svg = render_svg(title, curves)?;
    let is_html = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let text = if is_html {
        html_page(title, &svg, curves)
    } else {
        svg
    };
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The plot as an SVG document.
pub fn render_svg(title: &str, curves: &[Curve]) -> Result<String, String> {
    // The last finite step of the longest run sets the right end (the next
    // decade; the 100 % step is drawn there), at least p99.99.
    let finite_max = curves
        .iter()
        .flat_map(|c| c.points.iter())
        .filter(|p| p.quantile < 1.0)
        .map(|p| x_of(p.quantile, f64::MAX))
        .fold(1.0, f64::max);
    let x_max = 10f64.powf(finite_max.log10().ceil()).max(MIN_X_MAX);
    let y_max_us = curves
        .iter()
        .flat_map(|c| c.points.iter())
        .map(|p| p.value_us)
        .max()
        .unwrap_or(1)
        .max(1);
    let y_max = y_max_us as f64 / 1000.0 * 1.08;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .margin_right(40)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((1f64..x_max).log_scale(), 0f64..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| format!("{y:.3}"))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, curve) in curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points: Vec<(f64, f64)> = curve
                .points
                .iter()
                .map(|p| (x_of(p.quantile, x_max), p.value_us as f64 / 1000.0))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(curve.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A self-contained page: the SVG inline and each run's percentile table.
fn html_page(title: &str, svg: &str, curves: &[Curve]) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style></head>\n\
         <body><h1>{t}</h1>\n{svg}\n<table><tr><th>run</th>",
        t = escape(title)
    );
    let levels = [0.5, 0.9, 0.99, 0.999, 0.9999, 1.0];
    for q in levels {
        let _ = write!(
            page,
            "<th>{}</th>",
            if q >= 1.0 {
                "max".to_string()
            } else {
                format!(
                    "p{}",
                    percentile_label(x_of(q, f64::MAX)).trim_end_matches('%')
                )
            }
        );
    }
    page.push_str("</tr>\n");
    for c in curves {
        let _ = write!(page, "<tr><th>{}</th>", escape(&c.label));
        for q in levels {
            let v = c
                .points
                .iter()
                .find(|p| p.quantile >= q)
                .or(c.points.last())
                .map_or("-".to_string(), |p| Micros(p.value_us).to_string());
            let _ = write!(page, "<td>{v}</td>");
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table></body></html>\n");
    page
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(label: &str, scale: u64) -> Curve {
        Curve {
            label: label.into(),
            points: [0.0, 0.5, 0.9, 0.99, 0.999, 1.0]
                .iter()
                .enumerate()
                .map(|(i, &q)| Point {
                    quantile: q,
                    value_us: (i as u64 + 1) * scale,
                })
                .collect(),
        }
    }

    #[test]
    fn percentile_labels() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(2.0), "50%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(1e6), "99.9999%");
        assert!((x_of(0.99, 1e6) - 100.0).abs() < 1e-6);
        assert_eq!(x_of(1.0, 1e5), 1e5);
    }

    #[test]
    fn svg_has_both_runs_and_axis_labels() {
        let svg = render_svg(
            "echo: a vs b",
            &[curve("ringcast", 100), curve("peer", 300)],
        )
        .expect("svg");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("ringcast") && svg.contains("peer"));
        assert!(svg.contains("99.9%"));
        assert!(svg.contains("latency (ms)"));
        assert!(svg.matches("<polyline").count() >= 2);
    }

    #[test]
    fn html_page_embeds_the_svg_and_a_table() {
        let dir = std::env::temp_dir().join(format!("ringcast-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("cmp.html");
        write_plot(&path, "a <b>", &[curve("x", 1000)]).expect("write");
        let page = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(page.starts_with("<!doctype html>"));
        assert!(page.contains("<svg"));
        assert!(page.contains("a &lt;b&gt;"));
        assert!(page.contains("<td>2.00 ms</td>"));
        assert!(page.contains("<th>p99.9</th>"));
    }
}
