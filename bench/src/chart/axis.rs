//! The axes of a chart as a plotters coordinate ([`Ranged`]): where a value
//! goes, which values get a labelled tick (bold grid line) and which only a
//! light grid line, and how a tick is labelled. Plotters draws them.
//!
//! - `Linear`: ticks on a 1-2-5 step; the range always includes zero and
//!   ends on ticks, so heights and slopes are not exaggerated;
//! - `Log10`: ticks at 1-2-5 values (up to two decades), 1-3 values (up to
//!   3.5) or decades, with light grid lines at 2…9 × 10ᵏ;
//! - `Percentile`: `p` placed at `-log10(1 - p/100)`, labelled by its nines
//!   (0%, 50%, 90%, 99%, 99.9%, …): each further nine of the tail gets as
//!   much room as the whole body of the distribution;
//! - `Categories`: one band per category, labelled at its middle (bars).

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};

use super::Scale;

/// Most tick intervals on a linear axis.
const MAX_INTERVALS: f64 = 7.0;
/// Most labelled ticks on a log or percentile axis.
const MAX_LABELS: usize = 8;

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Scale(Scale),
    Categories(Vec<String>),
}

/// One axis: its kind, its ends in axis space (the value after
/// [`to_axis`]), and its ticks in data units.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    kind: Kind,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    light: Vec<f64>,
}

impl Axis {
    /// The axis for data spanning `extent` (data units, values the scale
    /// can place; `None`: no data).
    pub fn new(scale: Scale, extent: Option<(f64, f64)>) -> Self {
        match scale {
            Scale::Linear => linear(extent.unwrap_or((0.0, 1.0))),
            Scale::Log10 => log(extent.unwrap_or((1.0, 10.0))),
            Scale::Percentile => percentile(extent.map_or(1.0, |(_, hi)| hi)),
        }
    }

    /// `n` bands, labelled with `names`.
    pub fn categories(names: Vec<String>) -> Self {
        let n = names.len().max(1) as f64;
        Self {
            ticks: (0..names.len()).map(|i| i as f64 + 0.5).collect(),
            kind: Kind::Categories(names),
            lo: 0.0,
            hi: n,
            light: Vec::new(),
        }
    }

    /// The lowest value on the axis, in data units (where bars start).
    pub fn start(&self) -> f64 {
        self.value_at(self.lo)
    }

    /// The labels of the ticks, in order.
    pub fn labels(&self) -> Vec<String> {
        self.ticks.iter().map(|t| self.format_ext(t)).collect()
    }

    fn scale(&self) -> Scale {
        match &self.kind {
            Kind::Scale(s) => *s,
            Kind::Categories(_) => Scale::Linear,
        }
    }

    /// The data value at `t` in axis space.
    fn value_at(&self, t: f64) -> f64 {
        match self.scale() {
            Scale::Linear => t,
            Scale::Log10 => 10f64.powf(t),
            Scale::Percentile => percentile_at(t),
        }
    }
}

/// The percentile at `t` on a percentile axis (`t` nines).
fn percentile_at(t: f64) -> f64 {
    100.0 * (1.0 - 10f64.powf(-t))
}

/// A data value in axis space, if the scale can place it.
pub fn to_axis(scale: Scale, v: f64) -> Option<f64> {
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

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = to_axis(self.scale(), *v).unwrap_or(self.lo);
        let frac = if self.hi > self.lo {
            (t - self.lo) / (self.hi - self.lo)
        } else {
            0.5
        };
        let px = f64::from(limit.0) + frac * f64::from(limit.1 - limit.0);
        // Saturating: a value off the axis lands on its edge, never wraps.
        px.round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.value_at(self.lo)..self.value_at(self.hi)
    }
}

impl ValueFormatter<f64> for Axis {
    fn format_ext(&self, v: &f64) -> String {
        match &self.kind {
            Kind::Categories(names) => names
                .get(v.floor().max(0.0) as usize)
                .cloned()
                .unwrap_or_default(),
            Kind::Scale(Scale::Percentile) => format!("{}%", trim_zeros(format!("{v:.6}"))),
            Kind::Scale(_) => compact(*v),
        }
    }
}

fn linear((lo, hi): (f64, f64)) -> Axis {
    let (mut lo, mut hi) = (lo.min(0.0), hi.max(0.0));
    if hi <= lo {
        (lo, hi) = (0.0, 1.0);
    }
    let span = hi - lo;
    let (ticks, lo, hi) = if span.is_finite() {
        let step = nice_step(span / MAX_INTERVALS);
        let (first, last) = ((lo / step + 1e-9).floor(), (hi / step - 1e-9).ceil());
        // Whole multiples of the step, so 0 is exactly 0.
        let ticks = (first as i64..=last as i64)
            .map(|k| k as f64 * step)
            .collect();
        (ticks, first * step, last * step)
    } else {
        (vec![lo, hi], lo, hi)
    };
    Axis {
        kind: Kind::Scale(Scale::Linear),
        lo,
        hi,
        ticks,
        light: Vec::new(),
    }
}

/// The smallest 1-2-5 value ≥ `raw`.
fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

fn log((lo, hi): (f64, f64)) -> Axis {
    // Widened to 1-2-5 values; one value gets a step either side.
    let (mut a, mut b) = (floor125(lo), ceil125(hi));
    if b <= a {
        (a, b) = (floor125(lo / 1.5), ceil125(hi * 1.5));
    }
    // Near f64's ends the widened values may not exist.
    let (a, b) = (a.max(f64::MIN_POSITIVE), b.min(f64::MAX));
    let (la, lb) = (a.log10(), b.log10());
    let inside = |v: f64| v >= a * (1.0 - 1e-9) && v <= b * (1.0 + 1e-9);
    let (k0, k1) = (la.floor() as i32, (lb.ceil() as i32).min(308));
    let mantissas: &[f64] = match lb - la {
        s if s <= 2.0 + 1e-9 => &[1.0, 2.0, 5.0],
        s if s <= 3.5 => &[1.0, 3.0],
        _ => &[1.0],
    };
    let labelled: Vec<f64> = (k0..=k1)
        .flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)))
        .filter(|&v| inside(v))
        .collect();
    let stride = labelled.len().div_ceil(MAX_LABELS).max(1);
    let light = if stride == 1 {
        (k0..=k1)
            .flat_map(|k| (2..=9).map(move |m| f64::from(m) * 10f64.powi(k)))
            .filter(|&v| inside(v))
            .collect()
    } else {
        Vec::new()
    };
    Axis {
        kind: Kind::Scale(Scale::Log10),
        lo: la,
        hi: lb,
        ticks: labelled.into_iter().step_by(stride).collect(),
        light,
    }
}

/// The largest 1-2-5 value ≤ `v` (`v > 0`).
fn floor125(v: f64) -> f64 {
    let m = 10f64.powf(v.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|c| c * m)
        .find(|&c| c <= v * (1.0 + 1e-9))
        .unwrap_or(m / 2.0)
}

/// The smallest 1-2-5 value ≥ `v` (`v > 0`).
fn ceil125(v: f64) -> f64 {
    let m = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0]
        .into_iter()
        .map(|c| c * m)
        .find(|&c| c >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * m)
}

/// From 0% to the data's highest percentile `hi` (data units): to the next
/// nine when the data nearly reaches it, else just past the data.
fn percentile(hi: f64) -> Axis {
    let hi = to_axis(Scale::Percentile, hi).unwrap_or(1.0);
    let up = (hi - 1e-9).ceil();
    let hi = if up - hi <= 0.25 { up } else { hi };
    let hi = hi.clamp(1.0, 31.0);
    let last = (hi + 1e-9).floor() as u32;
    let stride = (last as usize).div_ceil(MAX_LABELS).max(1);
    let mut ticks: Vec<f64> = (0..=last)
        .step_by(stride)
        .map(|k| percentile_at(f64::from(k)))
        .collect();
    if last <= 6 {
        ticks.insert(1, 50.0);
    }
    Axis {
        kind: Kind::Scale(Scale::Percentile),
        lo: 0.0,
        hi,
        ticks,
        light: Vec::new(),
    }
}

/// A compact label with at most 3 significant digits: `0.5`, `20k`,
/// `1.27k`, `1.5M`, `1e-4`.
pub fn compact(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".to_owned();
    }
    if v.abs() < 1e-3 || v.abs() >= 1e15 {
        let s = format!("{v:.2e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{exp}", trim_zeros(mantissa.to_owned()));
    }
    let (div, suffix) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(d, _)| v.abs() >= *d)
        .unwrap_or((1.0, ""));
    let x = v / div;
    let decimals = (2 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{}{suffix}", trim_zeros(format!("{x:.decimals$}")))
}

fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_nice_and_include_zero() {
        let a = Axis::new(Scale::Linear, Some((1200.0, 18_500.0)));
        assert_eq!(a.labels(), ["0", "5k", "10k", "15k", "20k"]);
        let a = Axis::new(Scale::Linear, Some((0.0, 0.61)));
        assert_eq!(
            a.labels(),
            ["0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]
        );
        let a = Axis::new(Scale::Linear, Some((-3.0, 12.0)));
        assert_eq!(a.labels().first().map(String::as_str), Some("-5"));
        assert_eq!(a.labels().last().map(String::as_str), Some("15"));
        let a = Axis::new(Scale::Linear, Some((5.0, 5.0)));
        assert_eq!(a.labels(), ["0", "1", "2", "3", "4", "5"]);
        assert_eq!(a.range(), 0.0..5.0);
    }

    #[test]
    fn log_ticks_fit_the_span() {
        let a = Axis::new(Scale::Log10, Some((0.3, 4000.0)));
        assert_eq!(a.labels(), ["1", "10", "100", "1k"]);
        assert!(!a.light.is_empty());
        // Two decades or less: 1-2-5.
        let a = Axis::new(Scale::Log10, Some((3.0, 80.0)));
        assert_eq!(a.labels(), ["2", "5", "10", "20", "50", "100"]);
        // Up to 3.5 decades: 1-3.
        let a = Axis::new(Scale::Log10, Some((0.04, 6.0)));
        assert_eq!(a.labels(), ["0.03", "0.1", "0.3", "1", "3", "10"]);
        // One value.
        let a = Axis::new(Scale::Log10, Some((100.0, 100.0)));
        assert_eq!(a.labels(), ["50", "100", "200"]);
        // Many decades: at most MAX_LABELS labels.
        let a = Axis::new(Scale::Log10, Some((1e-9, 1e12)));
        assert!(a.ticks.len() <= MAX_LABELS);
    }

    #[test]
    fn percentile_axis_is_labelled_by_nines() {
        let a = Axis::new(Scale::Percentile, Some((0.0, 99.9)));
        assert_eq!(a.labels(), ["0%", "50%", "90%", "99%", "99.9%"]);
        let a = Axis::new(Scale::Percentile, Some((0.0, 99.999)));
        assert_eq!(a.labels().last().map(String::as_str), Some("99.999%"));
        // Data short of a nine: the axis ends on it, and its tick is inside
        // the range (plotters drops ticks outside).
        for top in [98.9, 99.95, 99.9991] {
            let a = Axis::new(Scale::Percentile, Some((0.0, top)));
            let last = a.ticks.last().copied().unwrap_or(0.0);
            assert!(a.range().contains(&last) || a.range().end == last, "{top}");
        }
        assert_eq!(to_axis(Scale::Percentile, 0.0), Some(0.0));
        assert_eq!(to_axis(Scale::Percentile, 90.0), Some(1.0));
        assert_eq!(to_axis(Scale::Percentile, 99.0), Some(2.0));
        assert_eq!(to_axis(Scale::Percentile, 100.0), None);
        assert_eq!(to_axis(Scale::Percentile, -1.0), None);
        // Each nine gets the same room: on a seven-nines axis, 90% is 1/7
        // of the way along, 99.9% 3/7.
        let a = Axis::new(Scale::Percentile, Some((0.0, 99.99999)));
        assert_eq!(a.map(&90.0, (0, 700)), 100);
        assert_eq!(a.map(&99.9, (0, 700)), 300);
    }

    #[test]
    fn categories_label_their_bands() {
        let a = Axis::categories(vec!["a".into(), "b".into()]);
        assert_eq!(a.labels(), ["a", "b"]);
        assert_eq!(a.map(&0.5, (0, 100)), 25);
        assert_eq!(a.map(&1.5, (0, 100)), 75);
    }

    #[test]
    fn labels_are_compact() {
        assert_eq!(compact(1000.0), "1k");
        assert_eq!(compact(20_000.0), "20k");
        assert_eq!(compact(2500.0), "2.5k");
        assert_eq!(compact(0.5), "0.5");
        assert_eq!(compact(0.30000000000000004), "0.3");
        assert_eq!(compact(1_500_000.0), "1.5M");
        assert_eq!(compact(-40.0), "-40");
        assert_eq!(compact(0.0001), "1e-4");
        assert_eq!(compact(-2e300), "-2e300");
        assert_eq!(compact(1234.0), "1.23k");
        assert_eq!(compact(0.0456), "0.0456");
        assert_eq!(compact(12.5), "12.5");
        assert_eq!(compact(3.0), "3");
    }
}
