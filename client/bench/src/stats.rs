//! Latency histograms and the summaries the bench prints.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded: 60 s in nanoseconds (larger values are clamped).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// A new nanosecond histogram, 1 ns .. 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("static bounds are valid")
}

/// Per-connection counters; merged into one at the end.
#[derive(Clone, Debug)]
pub struct OpStats {
    /// GET latencies (ns).
    pub get: Histogram<u64>,
    /// SET latencies (ns).
    pub set: Histogram<u64>,
    /// Error replies and requests lost to connection failures.
    pub errors: u64,
    /// GETs that returned a value.
    pub get_hits: u64,
    /// GETs that returned nil.
    pub get_misses: u64,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            get: new_histogram(),
            set: new_histogram(),
            errors: 0,
            get_hits: 0,
            get_misses: 0,
        }
    }
}

impl OpStats {
    /// Records one completed request.
    #[inline]
    pub fn record(&mut self, is_get: bool, latency_ns: u64) {
        let h = if is_get { &mut self.get } else { &mut self.set };
        h.saturating_record(latency_ns.clamp(1, MAX_LATENCY_NS));
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &OpStats) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.get.add(&other.get);
        let _ = self.set.add(&other.set);
        self.errors += other.errors;
        self.get_hits += other.get_hits;
        self.get_misses += other.get_misses;
    }

    /// GET and SET together.
    pub fn total(&self) -> Histogram<u64> {
        let mut t = self.get.clone();
        let _ = t.add(&self.set);
        t
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Requests in this summary.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl LatencySummary {
    /// Summarizes a nanosecond histogram in microseconds (all zero when empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let us = |ns: u64| round2(ns as f64 / 1000.0);
        LatencySummary {
            count: h.len(),
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: round2(h.mean() / 1000.0),
        }
    }
}

/// Rounds to two decimals (keeps JSON/CSV readable; the histogram has 3
/// significant digits anyway).
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let mut s = OpStats::default();
        for us in 1..=1000u64 {
            s.record(us % 2 == 0, us * 1000);
        }
        let t = LatencySummary::from_histogram(&s.total());
        assert_eq!(t.count, 1000);
        assert!((t.p50 - 500.0).abs() <= 1.0, "{t:?}");
        assert!((t.p90 - 900.0).abs() <= 1.0, "{t:?}");
        assert!((t.p99 - 990.0).abs() <= 1.0, "{t:?}");
        assert!((t.p999 - 999.0).abs() <= 1.0, "{t:?}");
        assert!((t.max - 1000.0).abs() <= 1.0, "{t:?}");
        assert!((t.mean - 500.5).abs() <= 1.0, "{t:?}");
        let g = LatencySummary::from_histogram(&s.get);
        assert_eq!(g.count, 500);
    }

    #[test]
    fn merge_adds_counts_and_empty_is_zero() {
        let mut a = OpStats::default();
        let mut b = OpStats::default();
        a.record(true, 10_000);
        b.record(false, 20_000);
        b.errors = 3;
        a.merge(&b);
        assert_eq!(a.total().len(), 2);
        assert_eq!(a.errors, 3);
        assert_eq!(
            LatencySummary::from_histogram(&new_histogram()),
            LatencySummary::default()
        );
    }

    #[test]
    fn huge_latencies_are_clamped_not_lost() {
        let mut s = OpStats::default();
        s.record(true, u64::MAX);
        s.record(true, 0);
        assert_eq!(s.get.len(), 2);
    }
}
