//! SVG charts for benchmark reports, drawn by plotters' SVG backend.
//!
//! A [`Chart`] describes one chart: a title, axis labels (units belong
//! there: "latency (ms)"), the axes' [`Scale`]s and the [`Series`].
//! [`Chart::to_svg`] renders it as one standalone 720×420 SVG document: the
//! title, a legend row above the plot (so it never hides data), axes with
//! labelled ticks and a light grid (see [`axis`] for the scales), and one
//! colour per series from the colour-blind-friendly Okabe–Ito palette, plus
//! a marker shape per series so the series stay apart in greyscale. Two
//! kinds:
//!
//! - line charts ([`Chart::line`], [`Chart::percentiles`]): a line per
//!   series in the caller's point order, with point markers while a series
//!   has at most [`MARKER_LIMIT`] points (dense curves get the line only);
//! - grouped bars ([`Chart::bars`]): one group per category, one bar per
//!   series, each labelled with its value.
//!
//! Points an axis cannot place (NaN, ±∞, ≤ 0 on a log axis, outside
//! `0..100` on a percentile axis) are skipped, never clamped: a line breaks
//! there and a note under the chart says how many points it left out.

mod axis;

use std::path::Path;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use axis::{Axis, compact, to_axis};

/// Width of the SVG document in pixels.
pub const WIDTH: u32 = 720;
/// Height of the SVG document in pixels.
pub const HEIGHT: u32 = 420;
/// A line series with more points than this is drawn without markers.
pub const MARKER_LIMIT: usize = 40;

/// Okabe–Ito colours, in the order series get them (its yellow is too
/// pale on white, so grey stands in for it).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0x88, 0x88, 0x88),
];
const FONT: &str = "Helvetica, Arial, sans-serif";
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
const MUTED: RGBColor = RGBColor(0x55, 0x55, 0x55);
const GRID: RGBColor = RGBColor(0xe4, 0xe4, 0xe4);
const LIGHT_GRID: RGBColor = RGBColor(0xf3, 0xf3, 0xf3);
/// Height of one legend row, in pixels.
const LEGEND_ROW: u32 = 18;

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
    /// 0% at 0, 90% at 1, 99% at 2, 99.9% at 3.
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

    /// A latency-distribution chart: series of `(percentile, value)` points
    /// (as `stats::Latency::curve` makes) on a [`Scale::Percentile`] x axis.
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
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_svg()?).with_context(|| format!("writing {}", path.display()))
    }

    /// The chart as a standalone SVG document.
    pub fn to_svg(&self) -> Result<String> {
        let mut svg = String::with_capacity(32 * 1024);
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
            self.draw(&root).context("drawing the chart")?;
            root.present().context("writing the SVG")?;
        }
        Ok(svg)
    }

    /// Where each point goes, `None` where its axis cannot place it.
    fn placed(&self) -> Vec<Vec<Option<(f64, f64)>>> {
        let ok_x = |x: f64| match &self.kind {
            Kind::Bars(c) => x >= 0.0 && x < c.len() as f64,
            Kind::Line => to_axis(self.x_scale, x).is_some(),
        };
        let ok_y = |y: f64| to_axis(self.y_scale, y).is_some();
        self.series
            .iter()
            .map(|s| {
                s.points
                    .iter()
                    .map(|&(x, y)| (ok_x(x) && ok_y(y)).then_some((x, y)))
                    .collect()
            })
            .collect()
    }

    fn draw(&self, root: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<()> {
        let placed = self.placed();
        let skipped: usize = placed
            .iter()
            .map(|s| s.iter().filter(|p| p.is_none()).count())
            .sum();
        let extent = |pick: fn(&(f64, f64)) -> f64| {
            placed
                .iter()
                .flatten()
                .flatten()
                .map(pick)
                .fold(None, |acc, v| {
                    let (lo, hi) = acc.unwrap_or((v, v));
                    Some((f64::min(lo, v), f64::max(hi, v)))
                })
        };
        let (x_ext, y_ext) = (extent(|p| p.0), extent(|p| p.1));
        let bars = matches!(self.kind, Kind::Bars(_));
        let x_axis = match &self.kind {
            Kind::Bars(categories) => Axis::categories(categories.clone()),
            Kind::Line => Axis::new(self.x_scale, x_ext),
        };
        // Bars get headroom for their value labels.
        let y_ext = y_ext.map(|(lo, hi)| match (bars, self.y_scale) {
            (false, _) => (lo, hi),
            (true, Scale::Log10) => (lo, hi * 1.5),
            (true, _) => (lo * 1.1, hi * 1.1),
        });
        let y_axis = Axis::new(self.y_scale, y_ext);

        root.fill(&WHITE)?;
        let mut area = root.clone();
        if !self.title.is_empty() {
            let (top, rest) = area.split_vertically(38);
            let style = font(16.0)
                .style(FontStyle::Bold)
                .color(&INK)
                .pos(Pos::new(HPos::Center, VPos::Center));
            top.draw_text(&text(&self.title), &style, (WIDTH as i32 / 2, 22))?;
            area = rest;
        }

        // Plot position: room for the y tick labels and the y label on the
        // left, half the last x tick label on the right.
        let chars = |l: &String| l.chars().count() as u32;
        let left = 16 + 7 * y_axis.labels().iter().map(chars).max().unwrap_or(1);
        let left = (left + if self.y_label.is_empty() { 0 } else { 22 }).min(WIDTH / 4);
        let right = match &self.kind {
            Kind::Line => (4 * x_axis.labels().last().map_or(0, chars) + 8).clamp(20, WIDTH / 4),
            Kind::Bars(_) => 20,
        };

        let rows = self.legend_rows(WIDTH - left - right);
        if rows > 0 {
            let (legend, rest) = area.split_vertically(rows * LEGEND_ROW + 6);
            self.draw_legend(&legend.margin(0, 0, left as i32, right as i32))?;
            area = rest;
        }
        let note = (skipped > 0).then(|| {
            let what = match (self.x_scale, self.y_scale, bars) {
                (Scale::Linear, Scale::Linear, _) | (_, Scale::Linear, true) => "NaN or infinite",
                _ => "NaN, infinite or outside a log/percentile axis",
            };
            let s = if skipped == 1 { "" } else { "s" };
            format!("{skipped} point{s} not shown ({what})")
        });
        if let Some(note) = &note {
            let h = area.dim_in_pixel().1;
            let (rest, bottom) = area.split_vertically(h.saturating_sub(14));
            let style = font(10.0)
                .color(&MUTED)
                .pos(Pos::new(HPos::Right, VPos::Bottom));
            bottom.draw_text(&text(note), &style, (WIDTH as i32 - 8, 12))?;
            area = rest;
        }

        let mut chart = ChartBuilder::on(&area)
            .margin_top(6)
            .margin_left(6)
            .margin_right(right)
            .margin_bottom(6)
            .x_label_area_size(if self.x_label.is_empty() { 24 } else { 46 })
            .y_label_area_size(left)
            .build_cartesian_2d(x_axis.clone(), y_axis.clone())?;
        let mut mesh = chart.configure_mesh();
        mesh.label_style(font(11.0).color(&MUTED))
            .axis_desc_style(font(13.0).color(&INK))
            .bold_line_style(GRID)
            .light_line_style(LIGHT_GRID)
            .axis_style(RGBColor(0x33, 0x33, 0x33))
            .x_labels(100)
            .y_labels(100);
        if bars {
            mesh.disable_x_mesh().x_label_style(font(12.0).color(&INK));
        }
        if !self.x_label.is_empty() {
            mesh.x_desc(text(&self.x_label));
        }
        if !self.y_label.is_empty() {
            mesh.y_desc(text(&self.y_label));
        }
        mesh.draw()?;

        match &self.kind {
            Kind::Line => self.draw_lines(&mut chart, &placed)?,
            Kind::Bars(categories) => {
                self.draw_bars(&chart, &placed, categories.len(), y_axis.start())?;
            }
        }
        if y_ext.is_none() {
            let plot = chart.plotting_area().strip_coord_spec();
            let (w, h) = plot.dim_in_pixel();
            let style = font(14.0)
                .color(&RGBColor(0x99, 0x99, 0x99))
                .pos(Pos::new(HPos::Center, VPos::Center));
            plot.draw_text("no data", &style, (w as i32 / 2, h as i32 / 2))?;
        }
        Ok(())
    }

    fn draw_lines(
        &self,
        chart: &mut Plot<'_, '_>,
        placed: &[Vec<Option<(f64, f64)>>],
    ) -> Result<()> {
        for (i, pts) in placed.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let style = colour.stroke_width(2);
            let count = pts.iter().flatten().count();
            for seg in pts.split(Option::is_none) {
                let seg: Vec<(f64, f64)> = seg.iter().flatten().copied().collect();
                if seg.len() > 1 {
                    match i {
                        0 | 1 => chart.draw_series(LineSeries::new(seg.iter().copied(), style))?,
                        _ if i % 2 == 0 => chart.draw_series(DashedLineSeries::new(
                            seg.iter().copied(),
                            7,
                            4,
                            style,
                        ))?,
                        _ => chart.draw_series(DashedLineSeries::new(
                            seg.iter().copied(),
                            2,
                            3,
                            style,
                        ))?,
                    };
                }
                if count <= MARKER_LIMIT || seg.len() == 1 {
                    for &p in &seg {
                        marker(chart.plotting_area(), i, p, colour)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn draw_bars(
        &self,
        chart: &Plot<'_, '_>,
        placed: &[Vec<Option<(f64, f64)>>],
        categories: usize,
        floor: f64,
    ) -> Result<()> {
        let base = match self.y_scale {
            Scale::Linear => 0.0,
            _ => floor,
        };
        let width = 0.8 / placed.len().max(1) as f64;
        let band_px = f64::from(chart.plotting_area().dim_in_pixel().0) / categories.max(1) as f64;
        for (i, pts) in placed.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            for &(cat, v) in pts.iter().flatten() {
                let x0 = cat + 0.1 + width * i as f64;
                let bar = Rectangle::new([(x0, base), (x0 + width, v)], colour.filled());
                chart.plotting_area().draw(&bar)?;
                let label = compact(v);
                if (label.chars().count() * 6) as f64 <= width * band_px + 6.0 {
                    let (dy, v_pos) = if v >= base {
                        (-3, VPos::Bottom)
                    } else {
                        (3, VPos::Top)
                    };
                    let style = font(10.0).color(&INK).pos(Pos::new(HPos::Center, v_pos));
                    let at = EmptyElement::at((x0 + width / 2.0, v));
                    chart
                        .plotting_area()
                        .draw(&(at + Text::new(label, (0, dy), style)))?;
                }
            }
        }
        Ok(())
    }

    /// Legend items, `(row, x offset)` each, for a row `width` wide.
    fn legend_layout(&self, width: u32) -> Vec<(u32, u32)> {
        let (mut row, mut x) = (0, 0);
        self.series
            .iter()
            .map(|s| {
                let w = 48 + 7 * s.name.chars().count() as u32;
                if x > 0 && x + w > width {
                    row += 1;
                    x = 0;
                }
                let at = (row, x);
                if !s.name.is_empty() {
                    x += w;
                }
                at
            })
            .collect()
    }

    fn legend_rows(&self, width: u32) -> u32 {
        let layout = self.legend_layout(width);
        self.series
            .iter()
            .zip(&layout)
            .filter(|(s, _)| !s.name.is_empty())
            .map(|(_, &(row, _))| row + 1)
            .max()
            .unwrap_or(0)
    }

    fn draw_legend(&self, area: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<()> {
        let layout = self.legend_layout(area.dim_in_pixel().0);
        let bars = matches!(self.kind, Kind::Bars(_));
        let label = font(12.0)
            .color(&INK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (i, (s, &(row, x))) in self.series.iter().zip(&layout).enumerate() {
            if s.name.is_empty() {
                continue;
            }
            let colour = PALETTE[i % PALETTE.len()];
            let (x, y) = (x as i32, (row * LEGEND_ROW + LEGEND_ROW / 2) as i32);
            if bars {
                area.draw(&Rectangle::new(
                    [(x + 5, y - 6), (x + 19, y + 6)],
                    colour.filled(),
                ))?;
            } else {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + 24, y)],
                    colour.stroke_width(2),
                ))?;
                marker(area, i, (x + 12, y), colour)?;
            }
            area.draw_text(&text(&s.name), &label, (x + 30, y))?;
        }
        Ok(())
    }
}

/// The chart's plot: both axes are an [`Axis`].
type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Axis, Axis>>;

/// Series `i`'s marker at `at`: circle, square, triangle, diamond, in turn.
fn marker<C: CoordTranslate>(
    area: &DrawingArea<SVGBackend<'_>, C>,
    i: usize,
    at: C::From,
    colour: RGBColor,
) -> Result<()>
where
    C::From: Clone + 'static,
{
    let style = colour.filled();
    match i % 4 {
        0 => area.draw(&Circle::new(at, 4, style))?,
        1 => area.draw(&(EmptyElement::at(at) + Rectangle::new([(-4, -4), (4, 4)], style)))?,
        2 => area.draw(&TriangleMarker::new(at, 5, style))?,
        _ => area.draw(
            &(EmptyElement::at(at) + Polygon::new(vec![(0, -5), (5, 0), (0, 5), (-5, 0)], style)),
        )?,
    }
    Ok(())
}

/// A font of `px` pixels (plotters' SVG backend writes 1/1.24 of the size
/// it is given).
fn font(px: f64) -> FontDesc<'static> {
    (FONT, px * 1.24).into_font()
}

/// `s` without the control characters XML 1.0 forbids (plotters escapes
/// the rest).
fn text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, '\t' | '\n' | '\r') {
                ' '
            } else {
                c
            }
        })
        .filter(|c| !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests;
