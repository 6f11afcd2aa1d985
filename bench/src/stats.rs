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
    /// ranks of [`crate::chart::percentile_ranks`] (denser in the tail).
    pub fn curve(&self) -> Vec<(f64, u64)> {
        let h = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if h.is_empty() {
            return Vec::new();
        }
        crate::chart::percentile_ranks(h.len())
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
}
