//! Dependency-free SVG charts for benchmark reports.
//!
//! A [`Chart`] renders to one standalone SVG document (720×420): a title, a
//! legend row above the plot (so it never hides data), axes with "nice"
//! ticks and a light grid, and one colour per [`Series`] from the
//! colour-blind-friendly Okabe–Ito palette, plus a distinct marker shape
//! per series so the series stay apart in greyscale too. Two kinds:
//!
//! - line charts ([`Chart::line`], [`Chart::percentiles`]): a polyline per
//!   series in the caller's point order, with point markers while a series
//!   has at most [`MARKER_LIMIT`] points (dense curves get the line only);
//! - grouped bar charts ([`Chart::bars`]): one group per category, one bar
//!   per series, each labelled with its value.
//!
//! Axes ([`Scale`]):
//! - `Linear`: ticks on 1-2-5 steps; the range always includes zero, so
//!   heights and slopes are not exaggerated;
//! - `Log10`: ticks at decades (1-2-5 or 1-3 values when the data spans
//!   few decades) with light minor grid lines; values ≤ 0 cannot be placed;
//! - `Percentile`: the HdrHistogram-style tail axis, see
//!   [`percentile_curve`].
//!
//! Points an axis cannot place (NaN, ±∞, ≤ 0 on a log axis, outside
//! `0..100` on a percentile axis) are skipped, never clamped: a line breaks
//! there and the chart notes how many points it left out. Units belong in
//! the axis labels ("latency (ms)"); tick labels are compact numbers (`0.5`,
//! `20k`, `1.5M`).

use std::fmt::{self, Write as _};
use std::path::Path;

/// Width of the SVG document in pixels.
pub const WIDTH: f64 = 720.0;
/// Height of the SVG document in pixels.
pub const HEIGHT: f64 = 420.0;
/// A line series with more points than this is drawn without markers.
pub const MARKER_LIMIT: usize = 40;

/// Okabe–Ito colours, in the order series get them (its yellow is too
/// pale on white, so grey stands in for it).
const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#888888",
];
const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
/// Samples per decade of the percentile axis kept by [`percentile_curve`].
const POINTS_PER_DECADE: f64 = 40.0;
/// Most tick intervals on a linear axis.
const MAX_INTERVALS: f64 = 7.0;
/// Most labelled ticks on a log or percentile axis.
const MAX_LABELS: usize = 8;

/// One named line (or one bar colour) of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// `(x, y)` in data units, drawn in this order. For bar charts x is the
    /// category index.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
        }
    }
}

/// How an axis maps data values to positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    #[default]
    Linear,
    Log10,
    /// Values are percentiles in `0..100`, placed at `-log10(1 - p/100)`:
    /// 0% at 0, 90% at 1, 99% at 2, 99.9% at 3 (see [`percentile_curve`]).
    Percentile,
}

/// Line chart or grouped bars.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Line,
    /// Bar groups named by these categories; a series' point `(i, v)` is
    /// its bar of height `v` in category `i`.
    Bars(Vec<String>),
}

/// A chart description; [`Chart::to_svg`] renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Ignored by bar charts.
    pub x_scale: Scale,
    pub y_scale: Scale,
    pub kind: Kind,
    pub series: Vec<Series>,
}

impl Chart {
    /// A line chart on linear axes (see [`Chart::log_x`], [`Chart::log_y`]).
    pub fn line(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        series: Vec<Series>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            kind: Kind::Line,
            series,
        }
    }

    /// A latency-distribution chart: series of `(percentile, value)`
    /// points, as [`percentile_curve`] makes, on a [`Scale::Percentile`]
    /// x axis.
    pub fn percentiles(
        title: impl Into<String>,
        y_label: impl Into<String>,
        series: Vec<Series>,
    ) -> Self {
        Self {
            x_scale: Scale::Percentile,
            ..Self::line(title, "percentile", y_label, series)
        }
    }

    /// Grouped bars: for each category one bar per series, `series[s].1[c]`
    /// high (NaN, or a short vector, leaves a bar out).
    pub fn bars(
        title: impl Into<String>,
        y_label: impl Into<String>,
        categories: Vec<String>,
        series: Vec<(String, Vec<f64>)>,
    ) -> Self {
        let series = series
            .into_iter()
            .map(|(name, values)| {
                let points = values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i as f64, v))
                    .collect();
                Series { name, points }
            })
            .collect();
        Self {
            kind: Kind::Bars(categories),
            ..Self::line(title, "", y_label, series)
        }
    }

    /// Puts the x axis on a log scale.
    #[must_use]
    pub fn log_x(mut self) -> Self {
        self.x_scale = Scale::Log10;
        self
    }

    /// Puts the y axis on a log scale.
    #[must_use]
    pub fn log_y(mut self) -> Self {
        self.y_scale = Scale::Log10;
        self
    }

    /// Writes [`Chart::to_svg`] to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.to_svg())
    }

    /// The chart as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = self.render(&mut out);
        out
    }

    fn render(&self, out: &mut String) -> fmt::Result {
        let categories = match &self.kind {
            Kind::Line => None,
            Kind::Bars(c) => Some(c.as_slice()),
        };

        // Data in axis space; `None` where a point cannot be placed.
        let mut skipped = 0usize;
        let placed: Vec<Vec<Option<(f64, f64)>>> = self
            .series
            .iter()
            .map(|s| {
                s.points
                    .iter()
                    .map(|&(x, y)| {
                        let p = match categories {
                            Some(c) => (x >= 0.0 && x < c.len() as f64)
                                .then_some(x)
                                .zip(to_axis(self.y_scale, y)),
                            None => to_axis(self.x_scale, x).zip(to_axis(self.y_scale, y)),
                        };
                        skipped += usize::from(p.is_none());
                        p
                    })
                    .collect()
            })
            .collect();
        let all = || placed.iter().flatten().flatten();
        let extent = |vals: &mut dyn Iterator<Item = f64>| {
            vals.fold(None, |acc: Option<(f64, f64)>, v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            })
        };
        let x_ext = extent(&mut all().map(|p| p.0));
        let mut y_ext = extent(&mut all().map(|p| p.1));
        let has_data = y_ext.is_some();

        let x_axis = match categories {
            Some(_) => None,
            None => Some(Axis::new(self.x_scale, x_ext)),
        };
        if categories.is_some() {
            // Headroom for the value labels above the bars.
            y_ext = y_ext.map(|(lo, hi)| match self.y_scale {
                Scale::Linear => (lo * 1.1, hi * 1.1),
                _ => (lo, hi + 0.1),
            });
        }
        let y_axis = Axis::new(self.y_scale, y_ext);

        // Layout, from the top: title, legend rows, plot, x ticks, x label,
        // note.
        let mut top = 12.0;
        if !self.title.is_empty() {
            top = 40.0;
        }
        let y_tick_w = y_axis
            .ticks
            .iter()
            .map(|t| text_w(&t.1, 11.0))
            .fold(0.0, f64::max);
        let left = 14.0 + y_tick_w + if self.y_label.is_empty() { 0.0 } else { 22.0 };
        let last_x_tick_w = x_axis
            .as_ref()
            .and_then(|a| a.ticks.last())
            .map_or(0.0, |t| text_w(&t.1, 11.0));
        let right = WIDTH - (last_x_tick_w / 2.0 + 8.0).max(20.0);
        let legend = legend_layout(&self.series, right - left);
        let legend_top = top;
        if legend.rows > 0 {
            top += legend.rows as f64 * 18.0 + 4.0;
        }
        top += 8.0;
        let note = (skipped > 0).then(|| {
            let what = match (self.x_scale, self.y_scale, categories.is_some()) {
                (Scale::Linear, Scale::Linear, _) | (_, Scale::Linear, true) => "NaN or infinite",
                _ => "NaN, infinite or outside a log/percentile axis",
            };
            let s = if skipped == 1 { "" } else { "s" };
            format!("{skipped} point{s} not shown ({what})")
        });
        let mut bottom = HEIGHT - 26.0;
        if !self.x_label.is_empty() {
            bottom -= 18.0;
        }
        if note.is_some() {
            bottom -= 14.0;
        }
        let plot = Rect {
            left,
            right,
            top,
            bottom,
        };

        writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{}" font-size="11">"#,
            esc(FONT)
        )?;
        writeln!(out, "<title>{}</title>", esc(&self.title))?;
        writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
        if !self.title.is_empty() {
            writeln!(
                out,
                r##"<text x="{}" y="26" text-anchor="middle" font-size="16" font-weight="600" fill="#222">{}</text>"##,
                n(WIDTH / 2.0),
                esc(&self.title)
            )?;
        }

        // Grid and ticks.
        writeln!(out, r##"<g stroke="#ececec" stroke-width="1">"##)?;
        for &t in &y_axis.minor {
            let y = plot.y(&y_axis, t);
            writeln!(
                out,
                r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#f5f5f5"/>"##,
                n(plot.left),
                n(y),
                n(plot.right),
                n(y)
            )?;
        }
        for (t, _) in &y_axis.ticks {
            let y = plot.y(&y_axis, *t);
            writeln!(
                out,
                r#"<line x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
                n(plot.left),
                n(y),
                n(plot.right),
                n(y)
            )?;
        }
        if let Some(xa) = &x_axis {
            for &t in &xa.minor {
                let x = plot.x(xa, t);
                writeln!(
                    out,
                    r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#f5f5f5"/>"##,
                    n(x),
                    n(plot.top),
                    n(x),
                    n(plot.bottom)
                )?;
            }
            for (t, _) in &xa.ticks {
                let x = plot.x(xa, *t);
                writeln!(
                    out,
                    r#"<line x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
                    n(x),
                    n(plot.top),
                    n(x),
                    n(plot.bottom)
                )?;
            }
        }
        writeln!(out, "</g>")?;
        writeln!(out, r##"<g fill="#444">"##)?;
        for (t, label) in &y_axis.ticks {
            let y = plot.y(&y_axis, *t);
            writeln!(
                out,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                n(plot.left - 8.0),
                n(y + 4.0),
                esc(label)
            )?;
        }
        if let Some(xa) = &x_axis {
            for (t, label) in &xa.ticks {
                writeln!(
                    out,
                    r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                    n(plot.x(xa, *t)),
                    n(plot.bottom + 17.0),
                    esc(label)
                )?;
            }
        }
        if let Some(cats) = categories {
            let band = plot.width() / cats.len().max(1) as f64;
            let max_chars = ((band - 4.0) / (11.0 * 0.6)).floor().max(1.0) as usize;
            for (i, c) in cats.iter().enumerate() {
                let x = plot.left + band * (i as f64 + 0.5);
                let shown = truncate(c, max_chars);
                writeln!(
                    out,
                    r##"<text x="{}" y="{}" text-anchor="middle" font-size="12" fill="#222"><title>{}</title>{}</text>"##,
                    n(x),
                    n(plot.bottom + 17.0),
                    esc(c),
                    esc(&shown)
                )?;
            }
        }
        writeln!(out, "</g>")?;

        // Axis lines and labels.
        writeln!(
            out,
            r##"<path d="M{},{} V{} H{}" fill="none" stroke="#333" stroke-width="1"/>"##,
            n(plot.left),
            n(plot.top),
            n(plot.bottom),
            n(plot.right)
        )?;
        if !self.x_label.is_empty() {
            writeln!(
                out,
                r##"<text x="{}" y="{}" text-anchor="middle" font-size="13" fill="#222">{}</text>"##,
                n((plot.left + plot.right) / 2.0),
                n(plot.bottom + 37.0),
                esc(&self.x_label)
            )?;
        }
        if !self.y_label.is_empty() {
            writeln!(
                out,
                r##"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle" font-size="13" fill="#222">{}</text>"##,
                n((plot.top + plot.bottom) / 2.0),
                esc(&self.y_label)
            )?;
        }
        if let Some(note) = &note {
            writeln!(
                out,
                r##"<text x="{}" y="{}" text-anchor="end" font-size="10" fill="#777">{}</text>"##,
                n(WIDTH - 8.0),
                n(HEIGHT - 8.0),
                esc(note)
            )?;
        }
        if !has_data {
            writeln!(
                out,
                r##"<text x="{}" y="{}" text-anchor="middle" font-size="14" fill="#999">no data</text>"##,
                n((plot.left + plot.right) / 2.0),
                n((plot.top + plot.bottom) / 2.0)
            )?;
        }

        // Data.
        match (&x_axis, categories) {
            (Some(xa), _) => self.render_lines(out, &placed, &plot, xa, &y_axis)?,
            (None, Some(cats)) => self.render_bars(out, &placed, &plot, cats.len(), &y_axis)?,
            (None, None) => {}
        }

        // Legend.
        for (i, (s, &(row, x))) in self.series.iter().zip(&legend.items).enumerate() {
            if s.name.is_empty() {
                continue;
            }
            let colour = PALETTE[i % PALETTE.len()];
            let x = plot.left + x;
            let y = legend_top + 9.0 + row as f64 * 18.0;
            if categories.is_some() {
                writeln!(
                    out,
                    r#"<rect x="{}" y="{}" width="14" height="12" fill="{colour}"/>"#,
                    n(x + 5.0),
                    n(y - 6.0)
                )?;
            } else {
                writeln!(
                    out,
                    r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="2.5"{}/>"#,
                    n(x),
                    n(y),
                    n(x + 24.0),
                    n(y),
                    dash(i)
                )?;
                marker(out, i, x + 12.0, y, colour)?;
            }
            writeln!(
                out,
                r##"<text x="{}" y="{}" font-size="12" fill="#222">{}</text>"##,
                n(x + 30.0),
                n(y + 4.0),
                esc(&s.name)
            )?;
        }

        writeln!(out, "</svg>")
    }

    fn render_lines(
        &self,
        out: &mut String,
        placed: &[Vec<Option<(f64, f64)>>],
        plot: &Rect,
        xa: &Axis,
        ya: &Axis,
    ) -> fmt::Result {
        for (i, (s, pts)) in self.series.iter().zip(placed).enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let count = pts.iter().flatten().count();
            writeln!(out, "<g><title>{}</title>", esc(&s.name))?;
            for seg in pts.split(Option::is_none) {
                let seg: Vec<(f64, f64)> = seg
                    .iter()
                    .flatten()
                    .map(|&(x, y)| (plot.x(xa, x), plot.y(ya, y)))
                    .collect();
                if seg.len() > 1 {
                    write!(
                        out,
                        r#"<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"{} points=""#,
                        dash(i)
                    )?;
                    for (j, (x, y)) in seg.iter().enumerate() {
                        let sep = if j == 0 { "" } else { " " };
                        write!(out, "{sep}{},{}", n(*x), n(*y))?;
                    }
                    writeln!(out, r#""/>"#)?;
                }
                if count <= MARKER_LIMIT || seg.len() == 1 {
                    for &(x, y) in &seg {
                        marker(out, i, x, y, colour)?;
                    }
                }
            }
            writeln!(out, "</g>")?;
        }
        Ok(())
    }

    fn render_bars(
        &self,
        out: &mut String,
        placed: &[Vec<Option<(f64, f64)>>],
        plot: &Rect,
        ncat: usize,
        ya: &Axis,
    ) -> fmt::Result {
        let nser = self.series.len().max(1) as f64;
        let band = plot.width() / ncat.max(1) as f64;
        let bar_w = band * 0.8 / nser;
        let base = match self.y_scale {
            Scale::Linear => 0.0,
            _ => ya.lo,
        };
        let base_y = plot.y(ya, base);
        for (i, (s, pts)) in self.series.iter().zip(placed).enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            writeln!(out, "<g><title>{}</title>", esc(&s.name))?;
            for &(cat, v) in pts.iter().flatten() {
                let x = plot.left + band * (cat + 0.1) + bar_w * i as f64;
                let y = plot.y(ya, v);
                let (y0, y1) = (y.min(base_y), y.max(base_y));
                let value = from_axis(self.y_scale, v);
                writeln!(
                    out,
                    r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{colour}"><title>{}: {}</title></rect>"#,
                    n(x + 1.0),
                    n(y0),
                    n((bar_w - 2.0).max(1.0)),
                    n((y1 - y0).max(0.5)),
                    esc(&s.name),
                    esc(&fmt_value(value))
                )?;
                let label = fmt_value(value);
                if text_w(&label, 10.0) <= bar_w + 6.0 {
                    let ly = if y < base_y || value >= 0.0 {
                        y0 - 4.0
                    } else {
                        y1 + 11.0
                    };
                    writeln!(
                        out,
                        r##"<text x="{}" y="{}" text-anchor="middle" font-size="10" fill="#333">{}</text>"##,
                        n(x + bar_w / 2.0),
                        n(ly),
                        esc(&label)
                    )?;
                }
            }
            writeln!(out, "</g>")?;
        }
        Ok(())
    }
}

/// Percentile-plot points of `samples`, HdrHistogram style, for an x axis
/// of [`Scale::Percentile`] (see [`Chart::percentiles`]).
///
/// Returns `(percentile, value)` pairs, percentile in `0..100`, both
/// ascending. The percentile axis places percentile `p` at
/// `-log10(1 - p/100)`, the decade of `1/(1-p)`: 0% at 0, 90% at 1, 99% at
/// 2, 99.9% at 3, so each further "nine" of the tail gets as much room as
/// the whole body of the distribution, and tails — where latency trouble
/// shows — stay readable. The k-th smallest of n samples (k = 0..n) is
/// placed at percentile `100·k/n`: the minimum at 0%, the maximum at
/// `100·(n−1)/n`% (the 100th percentile would sit at infinity). So n
/// samples reach `log10(n)` decades: 1000 samples show up to p99.9, and
/// nothing rarer, which is all they can tell. About 40 points per decade
/// are kept (the minimum and maximum always), so millions of samples give
/// a few hundred points. Non-finite samples are ignored.
pub fn percentile_curve(samples: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let len = sorted.len() as f64;
    rank_indices(sorted.len())
        .into_iter()
        .map(|k| (100.0 * k as f64 / len, sorted[k]))
        .collect()
}

/// The percentiles (in `0..100`, ascending) at which [`percentile_curve`]
/// samples `count` values: to draw a histogram the same way, e.g.
/// `percentile_ranks(h.len()).into_iter().map(|p| (p, h.value_at_quantile(p / 100.0) as f64))`.
pub fn percentile_ranks(count: u64) -> Vec<f64> {
    let n = usize::try_from(count).unwrap_or(usize::MAX);
    rank_indices(n)
        .into_iter()
        .map(|k| 100.0 * k as f64 / count as f64)
        .collect()
}

/// Indices into `n` sorted samples, evenly spaced on the percentile axis.
fn rank_indices(n: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let nf = n as f64;
    let decades = nf.log10();
    let steps = (decades * POINTS_PER_DECADE).ceil() as usize;
    let mut out = vec![0];
    let mut last = 0;
    for k in 1..=steps {
        let t = decades * k as f64 / steps as f64;
        let idx = (((1.0 - 10f64.powf(-t)) * nf).round() as usize).min(n - 1);
        if idx > last {
            out.push(idx);
            last = idx;
        }
    }
    if last != n - 1 {
        out.push(n - 1);
    }
    out
}

/// A data value in axis space, if the axis can place it.
fn to_axis(scale: Scale, v: f64) -> Option<f64> {
    if !v.is_finite() {
        return None;
    }
    match scale {
        Scale::Linear => Some(v),
        Scale::Log10 => (v > 0.0).then(|| v.log10()),
        Scale::Percentile => (0.0..100.0)
            .contains(&v)
            .then(|| 2.0 - (100.0 - v).log10())
            .filter(|t| t.is_finite()),
    }
}

fn from_axis(scale: Scale, t: f64) -> f64 {
    match scale {
        Scale::Linear => t,
        Scale::Log10 => 10f64.powf(t),
        Scale::Percentile => 100.0 * (1.0 - 10f64.powf(-t)),
    }
}

/// An axis in axis space: its range and labelled ticks, plus unlabelled
/// minor grid lines.
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<(f64, String)>,
    minor: Vec<f64>,
}

impl Axis {
    /// The axis for data spanning `extent` (in axis space; `None`: no data).
    fn new(scale: Scale, extent: Option<(f64, f64)>) -> Self {
        match scale {
            Scale::Linear => {
                let (lo, hi) = extent.unwrap_or((0.0, 1.0));
                let (mut lo, mut hi) = (lo.min(0.0), hi.max(0.0));
                if hi <= lo {
                    (lo, hi) = (0.0, 1.0);
                }
                let (step, vals) = linear_ticks(lo, hi);
                Self {
                    lo: vals.first().copied().unwrap_or(lo),
                    hi: vals.last().copied().unwrap_or(hi),
                    ticks: vals.iter().map(|&v| (v, fmt_tick(v, step))).collect(),
                    minor: Vec::new(),
                }
            }
            Scale::Log10 => {
                let (lo, hi) = extent.unwrap_or((0.0, 1.0));
                let (vals, minor, lo, hi) = log_ticks(10f64.powf(lo), 10f64.powf(hi));
                Self {
                    lo,
                    hi,
                    ticks: vals.iter().map(|&v| (v.log10(), fmt_tick(v, v))).collect(),
                    minor,
                }
            }
            Scale::Percentile => {
                let (lo, hi) = extent.unwrap_or((0.0, 1.0));
                let lo = (lo + 1e-9).floor().clamp(0.0, 30.0);
                // End at the next "nine" when the data nearly reaches it,
                // else right after the data.
                let up = (hi - 1e-9).ceil();
                let hi = if up - hi <= 0.25 { up } else { hi };
                let hi = hi.clamp(lo + 1.0, 31.0);
                let (first, last) = (lo as u32, (hi + 1e-9).floor() as u32);
                let stride = (((last - first) as usize).div_ceil(MAX_LABELS)).max(1);
                let mut ticks: Vec<(f64, String)> = (first..=last)
                    .step_by(stride)
                    .map(|k| (f64::from(k), nines(k)))
                    .collect();
                if first == 0 && last <= 6 {
                    ticks.insert(1, (2f64.log10(), "50%".to_owned()));
                }
                Self {
                    lo,
                    hi,
                    ticks,
                    minor: Vec::new(),
                }
            }
        }
    }

    /// Where `t` lies between the axis ends, 0 to 1.
    fn frac(&self, t: f64) -> f64 {
        if self.hi > self.lo {
            (t - self.lo) / (self.hi - self.lo)
        } else {
            0.5
        }
    }
}

/// "90%", "99%", "99.9%", … for `k` nines; "0%" for none.
fn nines(k: u32) -> String {
    match k {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        2 => "99%".to_owned(),
        _ => format!("99.{}%", "9".repeat(k as usize - 2)),
    }
}

/// Ticks on the smallest 1-2-5 step that covers `lo..=hi` with at most
/// [`MAX_INTERVALS`] intervals: `(step, ticks)`, the ticks enclosing the
/// range.
fn linear_ticks(lo: f64, hi: f64) -> (f64, Vec<f64>) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (1.0, vec![lo]);
    }
    let first = (span / MAX_INTERVALS).log10().floor() as i32 - 1;
    for exp in first..first + 4 {
        for m in [1i64, 2, 5] {
            let s = m as f64 * 10f64.powi(exp);
            let start = (lo / s + 1e-9).floor();
            let end = (hi / s - 1e-9).ceil();
            if end - start <= MAX_INTERVALS {
                // Whole multiples of m, scaled once, so 0.6 is 0.6 and not
                // 0.6000000000000001.
                let ticks = (start as i64..=end as i64)
                    .map(|i| {
                        let v = (i * m) as f64;
                        if exp >= 0 {
                            v * 10f64.powi(exp)
                        } else {
                            v / 10f64.powi(-exp)
                        }
                    })
                    .collect();
                return (s, ticks);
            }
        }
    }
    (span, vec![lo, hi])
}

/// Log-axis ticks for data in `lo..=hi` (both > 0): the range widens to
/// 1-2-5 values; the labels are the 1-2-5 values inside it when it spans
/// two decades or less, 1-3 values up to 3.5 decades, else decades. Returns `(labelled values, minor
/// positions in log space, log10 of the range ends)`.
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>, f64, f64) {
    let (mut a, mut b) = (floor125(lo), ceil125(hi));
    if b <= a {
        (a, b) = (floor125(lo / 1.5), ceil125(hi * 1.5));
    }
    let (la, lb) = (a.log10(), b.log10());
    let in_range = |v: f64| v >= a * (1.0 - 1e-9) && v <= b * (1.0 + 1e-9);
    let (k0, k1) = (la.floor() as i32, lb.ceil() as i32);
    let span = lb - la;
    let mantissas: &[f64] = if span <= 2.0 + 1e-9 {
        &[1.0, 2.0, 5.0]
    } else if span <= 3.5 {
        &[1.0, 3.0]
    } else {
        &[1.0]
    };
    let labelled: Vec<f64> = (k0..=k1)
        .flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)))
        .filter(|&v| in_range(v))
        .collect();
    let stride = labelled.len().div_ceil(MAX_LABELS).max(1);
    let mut minor = Vec::new();
    if stride == 1 {
        for k in k0..=k1 {
            for m in 2..=9 {
                let v = f64::from(m) * 10f64.powi(k);
                if in_range(v) {
                    minor.push(v.log10());
                }
            }
        }
    }
    let vals = labelled.into_iter().step_by(stride).collect();
    (vals, minor, la, lb)
}

/// The largest 1-2-5 value ≤ `v`.
fn floor125(v: f64) -> f64 {
    if !(v > 0.0 && v.is_finite()) {
        return v;
    }
    let m = 10f64.powf(v.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|c| c * m)
        .find(|&c| c <= v * (1.0 + 1e-9))
        .unwrap_or(m / 2.0)
}

/// The smallest 1-2-5 value ≥ `v`.
fn ceil125(v: f64) -> f64 {
    if !(v > 0.0 && v.is_finite()) {
        return v;
    }
    let m = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0]
        .into_iter()
        .map(|c| c * m)
        .find(|&c| c >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * m)
}

/// SI suffix and divisor for `v`.
fn si(v: f64) -> (f64, &'static str) {
    let a = v.abs();
    if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    }
}

/// A compact tick label for `v` on an axis stepping by `step`: `0.5`,
/// `20k`, `1.5M`, `1e-4`.
fn fmt_tick(v: f64, step: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".to_owned();
    }
    if v.abs() < 1e-3 {
        return format!("{:e}", round_sig(v, 3));
    }
    let (div, suffix) = si(v);
    let x = (step / div).abs();
    let decimals = (0..=6)
        .find(|&d| {
            let scaled = x * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6) as usize;
    format!("{}{suffix}", trim_zeros(format!("{:.decimals$}", v / div)))
}

/// A compact value label with 3 significant digits: `1.23k`, `0.0456`.
fn fmt_value(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".to_owned();
    }
    if v.abs() < 1e-3 {
        return format!("{:e}", round_sig(v, 3));
    }
    let (div, suffix) = si(v);
    let x = v / div;
    let decimals = (2 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{}{suffix}", trim_zeros(format!("{x:.decimals$}")))
}

fn round_sig(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    (v * m).round() / m
}

fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Rough width of `s` in pixels at font size `size`.
fn text_w(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * 0.62
}

/// `s` cut to `max` characters, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// Text for XML content and attribute values; drops characters XML 1.0
/// forbids.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with one decimal.
fn n(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "0".to_owned()
    }
}

/// The plot area in pixels.
struct Rect {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Rect {
    fn width(&self) -> f64 {
        self.right - self.left
    }

    fn x(&self, axis: &Axis, t: f64) -> f64 {
        self.left + axis.frac(t) * (self.right - self.left)
    }

    fn y(&self, axis: &Axis, t: f64) -> f64 {
        self.bottom - axis.frac(t) * (self.bottom - self.top)
    }
}

struct Legend {
    /// `(row, x offset from the plot's left)` per series.
    items: Vec<(usize, f64)>,
    rows: usize,
}

fn legend_layout(series: &[Series], width: f64) -> Legend {
    let mut items = Vec::with_capacity(series.len());
    let (mut row, mut x, mut rows) = (0, 0.0, 0);
    for s in series {
        if s.name.is_empty() {
            items.push((row, x));
            continue;
        }
        let w = 30.0 + text_w(&s.name, 12.0) + 18.0;
        if x > 0.0 && x + w > width {
            row += 1;
            x = 0.0;
        }
        items.push((row, x));
        rows = row + 1;
        x += w;
    }
    Legend { items, rows }
}

/// Series `i`'s line style: the first two solid, then dashed and dotted
/// in turn, so overlapping lines still show.
fn dash(i: usize) -> &'static str {
    match i {
        0 | 1 => "",
        _ if i.is_multiple_of(2) => r#" stroke-dasharray="7 4""#,
        _ => r#" stroke-dasharray="2 3""#,
    }
}

/// Series `i`'s marker: circle, square, triangle, diamond, inverted
/// triangle, in turn.
fn marker(out: &mut String, i: usize, x: f64, y: f64, colour: &str) -> fmt::Result {
    let r = 3.5;
    let style = format!(r#"fill="{colour}" stroke="white" stroke-width="1""#);
    match i % 5 {
        0 => writeln!(
            out,
            r#"<circle cx="{}" cy="{}" r="{}" {style}/>"#,
            n(x),
            n(y),
            n(r)
        ),
        1 => writeln!(
            out,
            r#"<rect x="{}" y="{}" width="{}" height="{}" {style}/>"#,
            n(x - r),
            n(y - r),
            n(2.0 * r),
            n(2.0 * r)
        ),
        2 => writeln!(
            out,
            r#"<path d="M{},{} L{},{} L{},{} Z" {style}/>"#,
            n(x),
            n(y - 1.3 * r),
            n(x + 1.2 * r),
            n(y + 0.8 * r),
            n(x - 1.2 * r),
            n(y + 0.8 * r)
        ),
        3 => writeln!(
            out,
            r#"<path d="M{},{} L{},{} L{},{} L{},{} Z" {style}/>"#,
            n(x),
            n(y - 1.4 * r),
            n(x + 1.4 * r),
            n(y),
            n(x),
            n(y + 1.4 * r),
            n(x - 1.4 * r),
            n(y)
        ),
        _ => writeln!(
            out,
            r#"<path d="M{},{} L{},{} L{},{} Z" {style}/>"#,
            n(x),
            n(y + 1.3 * r),
            n(x + 1.2 * r),
            n(y - 0.8 * r),
            n(x - 1.2 * r),
            n(y - 0.8 * r)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small well-formedness check: balanced, matching tags, quoted
    /// attributes, only known entities, one root element.
    fn check_xml(s: &str) -> Result<(), String> {
        let mut stack: Vec<String> = Vec::new();
        let mut roots = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let Some(lt) = rest.find('<') else {
                check_text(rest)?;
                break;
            };
            check_text(&rest[..lt])?;
            if !rest[..lt].trim().is_empty() && stack.is_empty() {
                return Err(format!("text outside the root: {:?}", &rest[..lt]));
            }
            rest = &rest[lt..];
            if let Some(r) = rest.strip_prefix("<?") {
                let end = r.find("?>").ok_or("unterminated <?")?;
                rest = &r[end + 2..];
                continue;
            }
            if let Some(r) = rest.strip_prefix("<!--") {
                let end = r.find("-->").ok_or("unterminated comment")?;
                rest = &r[end + 3..];
                continue;
            }
            let gt = rest.find('>').ok_or("unterminated tag")?;
            let tag = &rest[1..gt];
            rest = &rest[gt + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().ok_or(format!("stray </{name}>"))?;
                if open != name.trim() {
                    return Err(format!("<{open}> closed by </{name}>"));
                }
                continue;
            }
            let (body, selfclose) = match tag.strip_suffix('/') {
                Some(b) => (b, true),
                None => (tag, false),
            };
            let name: String = body
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect::<String>();
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '-') {
                return Err(format!("bad tag name in <{tag}>"));
            }
            check_attrs(&body[name.len()..])?;
            if stack.is_empty() {
                roots += 1;
            }
            if !selfclose {
                stack.push(name);
            }
        }
        if !stack.is_empty() {
            return Err(format!("unclosed: {stack:?}"));
        }
        if roots != 1 {
            return Err(format!("{roots} root elements"));
        }
        Ok(())
    }

    fn check_attrs(mut s: &str) -> Result<(), String> {
        loop {
            s = s.trim_start();
            if s.is_empty() {
                return Ok(());
            }
            let eq = s.find('=').ok_or(format!("attribute without value: {s}"))?;
            let name = &s[..eq];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-:_".contains(c))
            {
                return Err(format!("bad attribute name {name:?}"));
            }
            let v = s[eq + 1..]
                .strip_prefix('"')
                .ok_or(format!("unquoted attribute {name}"))?;
            let end = v.find('"').ok_or("unterminated attribute")?;
            if v[..end].contains('<') {
                return Err(format!("< in attribute {name}"));
            }
            if v[..end].contains("NaN") || v[..end].contains("inf") {
                return Err(format!("non-finite number in attribute {name}"));
            }
            check_text(&v[..end])?;
            s = &v[end + 1..];
        }
    }

    fn check_text(s: &str) -> Result<(), String> {
        if s.contains('>') {
            return Err(format!("raw > in {s:?}"));
        }
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            let r = &rest[i + 1..];
            let end = r.find(';').ok_or(format!("bare & in {s:?}"))?;
            let ent = &r[..end];
            let ok = ["amp", "lt", "gt", "quot", "apos"].contains(&ent)
                || ent
                    .strip_prefix('#')
                    .is_some_and(|d| d.parse::<u32>().is_ok());
            if !ok {
                return Err(format!("unknown entity &{ent};"));
            }
            rest = &r[end + 1..];
        }
        Ok(())
    }

    fn assert_valid(svg: &str) {
        if let Err(e) = check_xml(svg) {
            panic!("invalid SVG: {e}\n{svg}");
        }
        assert!(svg.contains(r#"xmlns="http://www.w3.org/2000/svg""#));
    }

    fn labels(axis: &Axis) -> Vec<&str> {
        axis.ticks.iter().map(|t| t.1.as_str()).collect()
    }

    #[test]
    fn checker_catches_errors() {
        assert!(check_xml("<a><b></a></b>").is_err());
        assert!(check_xml("<a>x & y</a>").is_err());
        assert!(check_xml("<a x=1/>").is_err());
        assert!(check_xml("<a/><b/>").is_err());
        assert!(check_xml("<a><b/>").is_err());
        assert!(check_xml(r#"<?xml v="1"?><a x="&lt;"><b/>t &amp; u</a>"#).is_ok());
    }

    #[test]
    fn linear_ticks_are_nice() {
        let (step, t) = linear_ticks(0.0, 97.0);
        assert!((step - 20.0).abs() < 1e-12);
        assert_eq!(t, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let (_, t) = linear_ticks(0.0, 0.61);
        assert_eq!(t, vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
        let (_, t) = linear_ticks(-3.0, 12.0);
        assert_eq!(t.first(), Some(&-5.0));
        assert_eq!(t.last(), Some(&15.0));
        let a = Axis::new(Scale::Linear, Some((1200.0, 18_500.0)));
        assert_eq!(labels(&a), ["0", "5k", "10k", "15k", "20k"]);
        let a = Axis::new(Scale::Linear, Some((0.0, 0.0)));
        assert_eq!(labels(&a), ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
        let a = Axis::new(Scale::Linear, Some((5.0, 5.0)));
        assert_eq!(labels(&a), ["0", "1", "2", "3", "4", "5"]);
    }

    #[test]
    fn log_ticks_are_decades() {
        let (t, minor, lo, hi) = log_ticks(0.3, 4000.0);
        assert_eq!(t, vec![1.0, 10.0, 100.0, 1000.0]);
        assert!((lo - 0.2f64.log10()).abs() < 1e-12);
        assert!((hi - 5000f64.log10()).abs() < 1e-12);
        assert!(!minor.is_empty());
        let a = Axis::new(Scale::Log10, Some((0.3f64.log10(), 4000f64.log10())));
        assert_eq!(labels(&a), ["1", "10", "100", "1k"]);
        // Two decades or less: 1-2-5.
        let a = Axis::new(Scale::Log10, Some((3f64.log10(), 80f64.log10())));
        assert_eq!(labels(&a), ["2", "5", "10", "20", "50", "100"]);
        // One value.
        let a = Axis::new(Scale::Log10, Some((2.0, 2.0)));
        assert_eq!(labels(&a), ["50", "100", "200"]);
        // Many decades: at most MAX_LABELS labels.
        let a = Axis::new(Scale::Log10, Some((-9.0, 12.0)));
        assert!(a.ticks.len() <= MAX_LABELS);
    }

    #[test]
    fn percentile_axis_labels() {
        let a = Axis::new(Scale::Percentile, Some((0.0, 3.0)));
        assert_eq!(labels(&a), ["0%", "50%", "90%", "99%", "99.9%"]);
        assert_eq!(to_axis(Scale::Percentile, 0.0), Some(0.0));
        assert_eq!(to_axis(Scale::Percentile, 90.0), Some(1.0));
        assert_eq!(to_axis(Scale::Percentile, 99.0), Some(2.0));
        assert!(to_axis(Scale::Percentile, 99.9).is_some_and(|t| (t - 3.0).abs() < 1e-9));
        assert_eq!(to_axis(Scale::Percentile, 100.0), None);
        assert_eq!(to_axis(Scale::Percentile, -1.0), None);
    }

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(fmt_tick(1000.0, 1000.0), "1k");
        assert_eq!(fmt_tick(20_000.0, 5000.0), "20k");
        assert_eq!(fmt_tick(2500.0, 2500.0), "2.5k");
        assert_eq!(fmt_tick(0.5, 0.1), "0.5");
        assert_eq!(fmt_tick(1_500_000.0, 500_000.0), "1.5M");
        assert_eq!(fmt_tick(-40.0, 20.0), "-40");
        assert_eq!(fmt_tick(0.0001, 0.0001), "1e-4");
        assert_eq!(fmt_value(1234.0), "1.23k");
        assert_eq!(fmt_value(0.0456), "0.0456");
        assert_eq!(fmt_value(12.5), "12.5");
        assert_eq!(fmt_value(3.0), "3");
    }

    #[test]
    fn escapes_text() {
        let c = Chart::line(
            "a <b> & \"c\" 'd'\u{1}",
            "x<",
            "y&",
            vec![Series::new("<&>", vec![(1.0, 2.0)])],
        );
        let svg = c.to_svg();
        assert_valid(&svg);
        assert!(svg.contains("a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;"));
        assert!(svg.contains("&lt;&amp;&gt;"));
        assert!(!svg.contains('\u{1}'));
    }

    #[test]
    fn percentile_curve_is_monotonic() {
        // Deterministic pseudo-random, heavy-tailed samples.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let samples: Vec<f64> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                1.0 / (1.0 - u).max(1e-9)
            })
            .chain([f64::NAN, f64::INFINITY])
            .collect();
        let c = percentile_curve(&samples);
        assert!(c.len() > 100 && c.len() < 400, "{} points", c.len());
        for w in c.windows(2) {
            assert!(w[0].0 < w[1].0, "{w:?}");
            assert!(w[0].1 <= w[1].1, "{w:?}");
        }
        let finite: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(c.first(), Some(&(0.0, min)));
        assert_eq!(c.last().map(|p| p.1), Some(max));
        assert!((c.last().map_or(0.0, |p| p.0) - 99.999).abs() < 1e-9);
        assert!(percentile_curve(&[]).is_empty());
        assert_eq!(percentile_curve(&[f64::NAN]), vec![]);
        assert_eq!(percentile_curve(&[7.0]), vec![(0.0, 7.0)]);
        assert_eq!(
            percentile_curve(&[3.0, 1.0, 2.0]),
            vec![(0.0, 1.0), (100.0 / 3.0, 2.0), (200.0 / 3.0, 3.0)]
        );
        let ranks = percentile_ranks(100_000);
        assert_eq!(ranks, c.iter().map(|p| p.0).collect::<Vec<_>>());
        assert!(percentile_ranks(0).is_empty());
    }

    #[test]
    fn edge_cases_render() {
        let nan = f64::NAN;
        let cases = vec![
            Chart::line("empty", "x", "y", vec![]),
            Chart::line("empty series", "x", "y", vec![Series::new("a", vec![])]),
            Chart::line("one", "x", "y", vec![Series::new("a", vec![(3.0, 4.0)])]),
            Chart::line(
                "equal",
                "x",
                "y",
                vec![Series::new("a", vec![(2.0, 5.0), (2.0, 5.0)])],
            ),
            Chart::line(
                "zeros",
                "",
                "",
                vec![Series::new("", vec![(0.0, 0.0), (0.0, 0.0)])],
            ),
            Chart::line(
                "nan",
                "x",
                "y",
                vec![Series::new(
                    "a",
                    vec![(nan, 1.0), (1.0, f64::INFINITY), (2.0, 3.0), (3.0, nan)],
                )],
            ),
            Chart::line(
                "log",
                "x",
                "y",
                vec![Series::new(
                    "a",
                    vec![
                        (0.0, 1.0),
                        (-1.0, 2.0),
                        (10.0, 0.0),
                        (100.0, 5.0),
                        (1e3, 50.0),
                    ],
                )],
            )
            .log_x()
            .log_y(),
            Chart::line(
                "log empty",
                "x",
                "y",
                vec![Series::new("a", vec![(0.0, -1.0)])],
            )
            .log_y(),
            Chart::line(
                "huge",
                "x",
                "y",
                vec![Series::new("a", vec![(-1e300, 1e300), (1e300, -1e300)])],
            ),
            Chart::line(
                "max",
                "x",
                "y",
                vec![Series::new(
                    "a",
                    vec![(f64::MIN, f64::MAX), (f64::MAX, f64::MIN)],
                )],
            )
            .log_x(),
            Chart::percentiles("p", "ms", vec![Series::new("a", vec![(100.0, 1.0)])]),
            Chart::percentiles(
                "p",
                "ms",
                vec![Series::new("a", percentile_curve(&[1.0, 1.0, 1.0]))],
            ),
            Chart::bars("bars empty", "y", vec![], vec![]),
            Chart::bars(
                "bars",
                "y",
                vec!["a".into(), "b".into()],
                vec![("s".into(), vec![1.0, nan, 3.0]), ("t".into(), vec![-2.0])],
            ),
            Chart::bars(
                "bars log",
                "y",
                vec!["a".into()],
                vec![("s".into(), vec![0.0]), ("t".into(), vec![5.0])],
            )
            .log_y(),
        ];
        for c in cases {
            let svg = c.to_svg();
            assert_valid(&svg);
        }
        let svg = Chart::line("empty", "x", "y", vec![]).to_svg();
        assert!(svg.contains("no data"));
        let svg = Chart::line(
            "log",
            "x",
            "y",
            vec![Series::new("a", vec![(1.0, 0.0), (2.0, 3.0)])],
        )
        .log_y()
        .to_svg();
        assert!(svg.contains("1 point not shown"));
    }

    #[test]
    fn renders_series_and_bars() {
        let c = Chart::line(
            "RSS vs connections",
            "connections",
            "RSS (MiB)",
            vec![
                Series::new("rust", vec![(1e3, 20.0), (1e4, 60.0), (2e4, 110.0)]),
                Series::new("node", vec![(1e3, 80.0), (1e4, 300.0), (2e4, 560.0)]),
            ],
        );
        let svg = c.to_svg();
        assert_valid(&svg);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(PALETTE[0]) && svg.contains(PALETTE[1]));
        assert!(svg.contains(">20k<"));
        let b = Chart::bars(
            "CPU per delivery",
            "µs",
            vec!["fan-out".into(), "1:1".into()],
            vec![
                ("rust".into(), vec![1.5, 2.0]),
                ("node".into(), vec![6.0, 9.25]),
            ],
        );
        let svg = b.to_svg();
        assert_valid(&svg);
        assert_eq!(svg.matches("<rect").count(), 1 + 4 + 2);
        assert!(svg.contains(">9.25<"));
    }
}
