//! Latency-by-percentile plots: one run (`--plot FILE`) or several runs
//! overlaid (`ringcast-load plot a.json b.json -o cmp.svg`) to compare
//! servers.
//!
//! Both axes are logarithmic, as HdrHistogram's percentile plots are. The x
//! axis is the percentile as x = 1/(1-q), labelled 0 %, 90 %, 99 %, 99.9 %…,
//! so the tail gets as much room as the median; the y axis is latency in ms,
//! one labelled line per decade (0.01, 0.1, 1, 10…), so a 75 µs median does
//! not sit on zero beside a 5 ms p99. A run the generator could not keep up
//! with says so in red under the title and in the legend (CLIENT-BOUND: its
//! figures describe the generator, not the server).
//!
//! Drawn with `plotters` into SVG; a file ending in `.html` gets the SVG
//! inline in a self-contained page with each run's percentile table and
//! verdict under it. The table shows each run's [`LatencySummary`], the very
//! numbers its text report printed, never values read back off the curve.
//!
//! Input is the runs' `--json` reports: each curve is one metric's
//! `distribution` (default `latency`) labelled with the run's `label`.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Deserialize;

use crate::hgrm::Point;
use crate::report::{LatencySummary, Micros, PERCENTILE_COLUMNS};
use crate::summary::{verdict, RunReport};

/// Right end of the x axis when no run goes further: p99.99.
const MIN_X_MAX: f64 = 1e4;

/// Colour of the CLIENT-BOUND verdict.
const WARN: RGBColor = RGBColor(0xc0, 0x10, 0x10);

/// One run's percentile distribution of one metric, with the figures its
/// report printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub label: String,
    pub points: Vec<Point>,
    /// The run's percentiles of this metric, as its text report shows them.
    pub summary: LatencySummary,
    /// The run's verdict: true when the generator, not the server, set the
    /// figures; the reasons say why.
    pub client_bound: bool,
    pub client_bound_reasons: Vec<String>,
}

/// The parts of a `--json` report a plot reads.
#[derive(Deserialize)]
struct JsonReport {
    label: String,
    client_bound: bool,
    #[serde(default)]
    client_bound_reasons: Vec<String>,
    #[serde(default)]
    metrics: std::collections::BTreeMap<String, JsonMetric>,
}

#[derive(Deserialize)]
struct JsonMetric {
    #[serde(flatten)]
    summary: LatencySummary,
    distribution: Vec<Point>,
}

/// The curve of `metric` in a report just measured.
pub fn curve_of(report: &RunReport, metric: &str) -> Option<Curve> {
    report.metrics.get(metric).map(|m| Curve {
        label: report.label.clone(),
        points: m.distribution.clone(),
        summary: m.summary,
        client_bound: report.client_bound,
        client_bound_reasons: report.client_bound_reasons.clone(),
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
        summary: m.summary,
        client_bound: report.client_bound,
        client_bound_reasons: report.client_bound_reasons,
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

/// The decades (as powers of ten) that enclose `lo..=hi` ms: the y axis
/// runs from 10^first to 10^last, last > first.
pub fn decades(lo_ms: f64, hi_ms: f64) -> (i32, i32) {
    let first = lo_ms.max(1e-6).log10().floor() as i32;
    let last = (hi_ms.max(1e-6).log10().ceil() as i32).max(first + 1);
    (first, last)
}

/// The y axis label of `ms` when it is a decade (`0.01`, `1`, `100`), else
/// empty: the axis is labelled once per decade.
pub fn decade_label(ms: f64) -> String {
    let k = ms.log10().round() as i32;
    if (ms / 10f64.powi(k) - 1.0).abs() > 1e-6 {
        return String::new();
    }
    if k >= 0 {
        format!("{}", 10u64.pow(k.unsigned_abs()))
    } else {
        format!("0.{}1", "0".repeat(k.unsigned_abs() as usize - 1))
    }
}

/// What [`write_plot`] wrote, for the caller to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotKind {
    Svg,
    Html,
}

impl PlotKind {
    /// What the file holds, in words.
    pub fn what(self) -> &'static str {
        match self {
            PlotKind::Svg => "SVG plot",
            PlotKind::Html => "HTML page: plot, percentile table, verdict",
        }
    }
}

/// Writes the curves to `path`: SVG, or an HTML page when it ends in `.html`.
pub fn write_plot(path: &Path, title: &str, curves: &[Curve]) -> Result<PlotKind, String> {
    let svg = render_svg(title, curves)?;
    let is_html = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let (text, kind) = if is_html {
        (html_page(title, &svg, curves), PlotKind::Html)
    } else {
        (svg, PlotKind::Svg)
    };
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(kind)
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
    // Histograms record at least 1 µs, so every value has a logarithm.
    let values = || {
        curves
            .iter()
            .flat_map(|c| c.points.iter())
            .map(|p| p.value_us.max(1))
    };
    let lo_ms = values().min().unwrap_or(1) as f64 / 1000.0;
    let hi_ms = values().max().unwrap_or(1) as f64 / 1000.0;
    let (first, last) = decades(lo_ms, hi_ms);
    // A hair beyond the end decades, so that rounding in plotters' key
    // points never drops the first or the last label.
    let y_range = 10f64.powi(first) * 0.999..10f64.powi(last) * 1.001;
    let label_count = (last - first + 1) as usize;

    let warnings: Vec<String> = curves
        .iter()
        .filter(|c| c.client_bound)
        .map(|c| format!("{}: {}", c.label, verdict(true, &c.client_bound_reasons)))
        .collect();

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 560 + 18 * warnings.len() as u32))
            .into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let header_h = 40 + 18 * warnings.len() as u32;
        let (header, body) = root.split_vertically(header_h);
        header
            .draw(&Text::new(
                title.to_string(),
                (480, 10),
                ("sans-serif", 22)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(|e| e.to_string())?;
        for (i, line) in warnings.iter().enumerate() {
            header
                .draw(&Text::new(
                    line.clone(),
                    (16, 40 + 18 * i as i32),
                    ("sans-serif", 14).into_font().color(&WARN),
                ))
                .map_err(|e| e.to_string())?;
        }
        let mut chart = ChartBuilder::on(&body)
            .margin(16)
            .margin_right(40)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((1f64..x_max).log_scale(), y_range.log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms, log scale)")
            .y_labels(label_count)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| decade_label(*y))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, curve) in curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points: Vec<(f64, f64)> = curve
                .points
                .iter()
                .map(|p| (x_of(p.quantile, x_max), p.value_us.max(1) as f64 / 1000.0))
                .collect();
            let legend = if curve.client_bound {
                format!("{} (CLIENT-BOUND)", curve.label)
            } else {
                curve.label.clone()
            };
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(legend)
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

/// A self-contained page: the SVG inline, then each run's percentiles (its
/// report's summary) and verdict.
fn html_page(title: &str, svg: &str, curves: &[Curve]) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}\
         .client-bound{{color:#c01010;font-weight:bold}}</style></head>\n\
         <body><h1>{t}</h1>\n",
        t = escape(title)
    );
    for c in curves.iter().filter(|c| c.client_bound) {
        let _ = writeln!(
            page,
            "<p class=\"client-bound\">{}: {}</p>",
            escape(&c.label),
            escape(&verdict(true, &c.client_bound_reasons))
        );
    }
    let _ = write!(page, "{svg}\n<table><tr><th>run</th>");
    for name in PERCENTILE_COLUMNS {
        let _ = write!(page, "<th>{name}</th>");
    }
    page.push_str("<th>count</th><th>verdict</th></tr>\n");
    for c in curves {
        let _ = write!(page, "<tr><th>{}</th>", escape(&c.label));
        for (_, us) in c.summary.columns() {
            if c.summary.count == 0 {
                page.push_str("<td>-</td>");
            } else {
                let _ = write!(page, "<td>{}</td>", Micros(us));
            }
        }
        let _ = write!(page, "<td>{}</td>", c.summary.count);
        if c.client_bound {
            page.push_str("<td class=\"client-bound\">CLIENT-BOUND</td>");
        } else {
            page.push_str("<td>generator kept up</td>");
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
    use crate::hgrm::distribution;
    use crate::report::{new_latency_histogram, record_us};
    use crate::summary::percentile_row;

    /// A curve of the histogram of `values_us`, as a run would report it.
    fn curve_of_values(label: &str, values_us: impl IntoIterator<Item = u64>) -> Curve {
        let mut h = new_latency_histogram();
        for us in values_us {
            record_us(&mut h, us);
        }
        Curve {
            label: label.into(),
            points: distribution(&h),
            summary: LatencySummary::from_histogram(&h),
            client_bound: false,
            client_bound_reasons: Vec::new(),
        }
    }

    fn curve(label: &str, scale: u64) -> Curve {
        curve_of_values(label, (1..=1000).map(|i| i * scale / 100))
    }

    /// The text of every `<text>` element of an SVG.
    fn svg_texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..];
                Some(body[..body.find("</text>")?].trim().to_string())
            })
            .collect()
    }

    /// The cells of an HTML table row whose header cell is `label`.
    fn html_row(page: &str, label: &str) -> Vec<String> {
        let start = page
            .find(&format!("<tr><th>{label}</th>"))
            .expect("the run's row");
        let row = &page[start..start + page[start..].find("</tr>").expect("row end")];
        row.split("<td")
            .skip(1)
            .map(|cell| {
                let body = &cell[cell.find('>').expect("td") + 1..];
                body[..body.find("</td>").expect("td end")].to_string()
            })
            .collect()
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
    fn decades_enclose_the_values() {
        assert_eq!(decades(0.075, 5.0), (-2, 1));
        assert_eq!(decades(0.001, 0.001), (-3, -2));
        assert_eq!(decades(1.0, 10.0), (0, 1));
        assert_eq!(decades(0.5, 250.0), (-1, 3));
        assert_eq!(decade_label(0.01), "0.01");
        assert_eq!(decade_label(0.001), "0.001");
        assert_eq!(decade_label(1.0), "1");
        assert_eq!(decade_label(1000.0), "1000");
        assert_eq!(decade_label(10f64.powi(-2) * 10.0), "0.1");
        assert_eq!(decade_label(2.0), "");
        assert_eq!(decade_label(0.05), "");
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
        assert!(svg.contains("latency (ms, log scale)"));
        assert!(svg.matches("<polyline").count() >= 2);
        assert!(!svg.contains("CLIENT-BOUND"));
    }

    /// A 75 µs median beside a 5 ms tail: the y axis is labelled once per
    /// decade from below the smallest value to above the largest, and by
    /// nothing else (a linear axis would read 0, 1, 2, ... ms).
    #[test]
    fn y_axis_is_logarithmic_in_decades() {
        let values = (0..1000).map(|i| if i < 980 { 75 } else { 5_000 });
        let svg = render_svg("tail", &[curve_of_values("run", values)]).expect("svg");
        let numeric: Vec<String> = svg_texts(&svg)
            .into_iter()
            .filter(|t| t.parse::<f64>().is_ok())
            .collect();
        assert_eq!(numeric, ["0.01", "0.1", "1", "10"], "{numeric:?}");
    }

    /// The HTML table and the text report show the same figures: the run's
    /// summary. Reading them back off the curve (the first step at or past
    /// each percentile, as the page once did) gives a different p99 for this
    /// histogram, so the test tells the two apart.
    #[test]
    fn html_table_and_text_report_show_the_same_percentiles() {
        let c = curve_of_values("ringcast", 1..=10_000);
        let off_the_curve = c
            .points
            .iter()
            .find(|p| p.quantile >= 0.99)
            .map(|p| p.value_us);
        assert_ne!(off_the_curve, Some(c.summary.p99_us));

        let row = percentile_row("latency", &c.summary);
        let text_cells: Vec<String> = (0..PERCENTILE_COLUMNS.len() + 1)
            .map(|i| row.chars().skip(15 + 10 * i).take(9).collect::<String>())
            .map(|cell| cell.trim().to_string())
            .collect();
        let page = html_page("t", "<svg></svg>", std::slice::from_ref(&c));
        let html_cells = html_row(&page, "ringcast");
        assert_eq!(
            html_cells[..text_cells.len()],
            text_cells[..],
            "{row}\n{page}"
        );
        assert_eq!(text_cells[2], "9.90 ms");
    }

    #[test]
    fn the_client_bound_verdict_is_on_the_plot_and_the_page() {
        let mut bound = curve("overloaded", 100);
        bound.client_bound = true;
        bound.client_bound_reasons = vec!["the generator fell behind its own schedule".into()];
        let curves = [bound, curve("fine", 100)];
        let svg = render_svg("two runs", &curves).expect("svg");
        let texts = svg_texts(&svg);
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("overloaded: CLIENT-BOUND")
                    && t.contains("fell behind its own schedule")),
            "{texts:?}"
        );
        assert!(
            texts.iter().any(|t| t == "overloaded (CLIENT-BOUND)"),
            "{texts:?}"
        );
        assert!(
            !texts.iter().any(|t| t.contains("fine (CLIENT")),
            "{texts:?}"
        );

        let page = html_page("two runs", &svg, &curves);
        assert!(page.contains(
            "<p class=\"client-bound\">overloaded: CLIENT-BOUND: these figures describe the \
             generator, not the server: the generator fell behind its own schedule</p>"
        ));
        assert_eq!(
            html_row(&page, "overloaded").last().map(String::as_str),
            Some("CLIENT-BOUND")
        );
        assert_eq!(
            html_row(&page, "fine").last().map(String::as_str),
            Some("generator kept up")
        );
    }

    #[test]
    fn html_page_embeds_the_svg_and_a_table() {
        let dir = std::env::temp_dir().join(format!("ringcast-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("cmp.html");
        let kind = write_plot(&path, "a <b>", &[curve("x", 1000)]).expect("write");
        let page = std::fs::read_to_string(&path).expect("read");
        let svg_kind = write_plot(&dir.join("cmp.svg"), "a", &[curve("x", 1000)]).expect("svg");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((kind, svg_kind), (PlotKind::Html, PlotKind::Svg));
        assert!(page.starts_with("<!doctype html>"));
        assert!(page.contains("<svg"));
        assert!(page.contains("a &lt;b&gt;"));
        assert!(page.contains("<td>5.00 ms</td>"), "{page}");
        assert!(page.contains("<th>p99.9</th>"));
    }
}
