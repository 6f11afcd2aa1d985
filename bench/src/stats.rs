//! Latency histograms and their summaries.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram tracks (larger values are clamped): 1 hour.
const MAX_US: u64 = 3_600_000_000;

/// A thread-safe latency histogram in microseconds.
#[derive(Debug)]
pub struct Latency(Mutex<Histogram<u64>>);

impl Latency {
    /// An empty histogram (3 significant digits).
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self(Mutex::new(Histogram::new_with_bounds(1, MAX_US, 3)?)))
    }

    pub fn record(&self, d: Duration) {
        self.record_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn record_us(&self, us: u64) {
        let mut h = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        h.saturating_record(us.clamp(1, MAX_US));
    }

    pub fn summary(&self) -> Summary {
        let h = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Summary::of(&h)
    }

    /// The whole distribution for a chart: `(percentile 0..100, µs)` at the
    /// ranks of [`percentile_ranks`] (denser in the tail).
    pub fn curve(&self) -> Vec<(f64, u64)> {
        let h = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if h.is_empty() {
            return Vec::new();
        }
        percentile_ranks(h.len())
            .into_iter()
            .map(|p| (p, h.value_at_quantile(p / 100.0)))
            .collect()
    }
}

/// Percentiles of a latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub count: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: u64,
}

impl Summary {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            min: h.min(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            // Rounding a mean of microseconds to whole microseconds.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            mean: h.mean().round() as u64,
        }
    }

    /// One human line: `p50 1.23 ms  p90 …`.
    pub fn line(&self) -> String {
        if self.count == 0 {
            return "no samples".to_owned();
        }
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (n={})",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.p999),
            ms(self.max),
            self.count
        )
    }
}

/// Points per decade of the percentile axis kept by [`percentile_ranks`].
const POINTS_PER_DECADE: f64 = 40.0;

/// The percentiles (in `0..100`, ascending) at which to sample a
/// distribution of `count` values for a percentile chart (the chart's
/// percentile axis places `p` at `-log10(1 - p/100)`: 0% at 0, 90% at 1,
/// 99% at 2, …, so each further nine of the tail, where latency trouble
/// shows, gets as much room as the whole body).
///
/// The k-th smallest of n samples (k = 0..n) sits at percentile `100·k/n`:
/// the minimum at 0%, the maximum at `100·(n−1)/n`% (the 100th percentile
/// would sit at infinity). So n samples reach `log10(n)` nines: 1000
/// samples show up to p99.9, and nothing rarer, which is all they can
/// tell. About 40 points per decade are kept (the minimum and maximum
/// always), so millions of samples give a few hundred points.
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

/// Microseconds as a short human string in milliseconds.
pub fn ms(us: u64) -> String {
    // Display only: precision loss above 2^52 µs is irrelevant.
    #[allow(clippy::cast_precision_loss)]
    let v = us as f64 / 1000.0;
    if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 1000.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises() -> anyhow::Result<()> {
        let l = Latency::new()?;
        assert_eq!(l.summary().count, 0);
        for us in 1..=1000 {
            l.record_us(us);
        }
        l.record(Duration::from_secs(7200));
        let s = l.summary();
        assert_eq!(s.count, 1001);
        assert!((495..=505).contains(&s.p50), "{s:?}");
        assert!(s.max >= MAX_US - MAX_US / 1000);
        assert!(s.line().contains("p50"));
        Ok(())
    }

    #[test]
    fn percentile_ranks_thin_out_evenly_on_the_nines() {
        assert!(percentile_ranks(0).is_empty());
        assert_eq!(percentile_ranks(1), vec![0.0]);
        let r = percentile_ranks(100_000);
        assert!(r.len() > 100 && r.len() < 400, "{} points", r.len());
        assert!(r.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(r.first(), Some(&0.0));
        assert!((r.last().copied().unwrap_or(0.0) - 99.999).abs() < 1e-9);
        // About as many points between 99% and 99.9% as between 0 and 90%.
        let between = |a: f64, b: f64| r.iter().filter(|&&p| p >= a && p < b).count();
        assert!(between(0.0, 90.0).abs_diff(between(99.0, 99.9)) <= 2);
    }

    #[test]
    fn curve_of_a_histogram() -> anyhow::Result<()> {
        let l = Latency::new()?;
        assert!(l.curve().is_empty());
        for us in 1..=10_000 {
            l.record_us(us);
        }
        let c = l.curve();
        assert!(c.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(c.first().map(|p| p.1), Some(1));
        Ok(())
    }
}
