//! A latency histogram: log-linear buckets (8 per power of two, so any value is known within
//! 12.5%), written by one thread and read by any at scrape time.
//!
//! Each worker thread owns its histograms (see [`crate::stats`]): recording is a relaxed load
//! and store of a counter no other thread writes, so no locked instruction and no cache line
//! shared with another writer. Readers sum the workers' [`Snapshot`]s.
//!
//! It feeds both `INFO latencystats` (percentiles) and the Prometheus
//! `shardcache_command_duration_seconds` histogram, whose fixed `le` bounds (10 µs … 1 s) are
//! derived from these buckets when scraped.

use std::sync::atomic::{AtomicU64, Ordering};

/// A cheap monotonic tick counter for timing batches of commands on one thread: the CPU's
/// time-stamp counter on x86_64 (no system call, no vDSO page reads), elsewhere nanoseconds
/// of [`std::time::Instant`]. Convert differences with [`ticks_to_ns`]. Worker threads are
/// pinned, so both ends of a measurement read the same CPU's counter.
#[inline]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC is available on every x86_64 CPU and has no preconditions.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        anchor().elapsed().as_nanos() as u64
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn anchor() -> std::time::Instant {
    static ANCHOR: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ANCHOR.get_or_init(std::time::Instant::now)
}

/// Nanoseconds per tick, measured once (see [`calibrate`]).
static NS_PER_TICK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

/// Measures the tick rate against the OS clock (about 5 ms, once per process). Called at
/// start so no request pays for it.
pub fn calibrate() -> f64 {
    *NS_PER_TICK.get_or_init(|| {
        if cfg!(not(target_arch = "x86_64")) {
            return 1.0;
        }
        let i0 = std::time::Instant::now();
        let t0 = ticks();
        while i0.elapsed() < std::time::Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        let t1 = ticks();
        let ns = i0.elapsed().as_nanos() as f64;
        if t1 > t0 {
            ns / (t1 - t0) as f64
        } else {
            1.0
        }
    })
}

/// A tick difference in nanoseconds.
#[inline]
pub fn ticks_to_ns(t: u64) -> u64 {
    (t as f64 * calibrate()) as u64
}

/// Sub-buckets per power of two (2^3 = 8).
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for values up to 2^41 ns (about 36 minutes).
const BUCKETS: usize = ((41 - SUB_BITS as usize) + 1) * SUB as usize;

/// The Prometheus `le` bounds of command durations, in seconds: 10 µs to 1 s, 1-2.5-5 spaced.
pub const DURATION_BOUNDS_SECONDS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0,
];

/// Histogram of nanosecond values with a single writer (its worker thread) and any readers.
pub struct LatencyHistogram {
    buckets: Box<Buckets>,
    sum_ns: AtomicU64,
}

/// The bucket counters, aligned so two histograms (of two workers) never share a cache line.
#[repr(align(128))]
struct Buckets([AtomicU64; BUCKETS]);

/// Adds `n` to a counter only the calling thread writes: a plain load and store, no locked
/// read-modify-write. Another thread writing the same counter could lose an update, never
/// corrupt memory; readers see a value at most one update old.
#[inline]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index(ns: u64) -> usize {
    if ns < SUB {
        return ns as usize;
    }
    let magnitude = 63 - ns.leading_zeros(); // >= SUB_BITS
    let sub = (ns >> (magnitude - SUB_BITS)) & (SUB - 1);
    let i = ((magnitude - SUB_BITS + 1) as u64 * SUB + sub) as usize;
    i.min(BUCKETS - 1)
}

/// The largest value that falls in bucket `i` (inclusive).
fn upper_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let magnitude = i / SUB - 1 + u64::from(SUB_BITS);
    let sub = i % SUB;
    ((SUB + sub + 1) << (magnitude - u64::from(SUB_BITS))) - 1
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        LatencyHistogram {
            buckets: Box::new(Buckets(std::array::from_fn(|_| AtomicU64::new(0)))),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records `count` values of `ns` each (a batch's commands share its time evenly). Only
    /// the owning thread may call this (see [`bump`]).
    #[inline]
    pub fn record_n(&self, ns: u64, count: u64) {
        bump(&self.buckets.0[index(ns)], count);
        bump(&self.sum_ns, ns.saturating_mul(count));
    }

    /// Records one value. Only the owning thread may call this.
    #[inline]
    pub fn record(&self, ns: u64) {
        self.record_n(ns, 1);
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counts: self
                .buckets
                .0
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
        }
    }
}

/// A point-in-time copy of a [`LatencyHistogram`], or the sum or difference of several.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    counts: Vec<u64>,
    /// Sum of all recorded values, in ns.
    pub sum_ns: u64,
}

impl Snapshot {
    /// Adds `other`'s counts (another worker's histogram of the same command).
    pub fn add(&mut self, other: &Snapshot) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum_ns += other.sum_ns;
    }

    /// Subtracts a baseline taken earlier (`CONFIG RESETSTAT`), never going below zero.
    pub fn sub(&mut self, base: &Snapshot) {
        for (a, b) in self.counts.iter_mut().zip(&base.counts) {
            *a = a.saturating_sub(*b);
        }
        self.sum_ns = self.sum_ns.saturating_sub(base.sum_ns);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The value at quantile `q` (0..=1), as the upper bound of its bucket, in ns.
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(upper_bound(i));
            }
        }
        self.counts.len().checked_sub(1).map(upper_bound)
    }

    /// Cumulative counts at each bound of `bounds_ns` (values `<=` the bound), for
    /// Prometheus `le` buckets. A bucket is counted under a bound when its upper edge is at or
    /// below the bound, so counts near a bound are exact within one bucket (12.5%).
    pub fn cumulative(&self, bounds_ns: &[u64]) -> Vec<u64> {
        let mut out = Vec::with_capacity(bounds_ns.len());
        let mut acc = 0;
        let mut i = 0;
        for &b in bounds_ns {
            while i < self.counts.len() && upper_bound(i) <= b {
                acc += self.counts[i];
                i += 1;
            }
            out.push(acc);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_within_an_eighth() {
        for v in [
            0u64,
            1,
            7,
            8,
            9,
            15,
            16,
            100,
            1000,
            12345,
            1 << 30,
            (1 << 40) + 5,
        ] {
            let i = index(v);
            assert!(upper_bound(i) >= v, "{v} above its bucket's bound");
            if i > 0 {
                assert!(upper_bound(i - 1) < v, "{v} belongs to an earlier bucket");
            }
            if v >= 8 {
                assert!((upper_bound(i) - v) as f64 <= v as f64 / 8.0, "{v}");
            }
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn ticks_measure_time() {
        let t0 = ticks();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let ns = ticks_to_ns(ticks() - t0);
        assert!(ns >= 15_000_000, "{ns}");
    }

    #[test]
    fn quantiles_and_cumulative_counts() {
        let h = LatencyHistogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 1000);
        let p50 = s.quantile_ns(0.5).unwrap();
        assert!((500_000..=570_000).contains(&p50), "{p50}");
        let p99 = s.quantile_ns(0.99).unwrap();
        assert!((990_000..=1_120_000).contains(&p99), "{p99}");
        let c = s.cumulative(&[10_000, 100_000, 1_000_000, 2_000_000]);
        assert!(c.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(c[3], 1000);
        assert!((8..=10).contains(&c[0]), "{c:?}");
        assert_eq!(s.sum_ns, 500_500_000);
        assert_eq!(LatencyHistogram::new().snapshot().quantile_ns(0.5), None);
        let mut twice = s.clone();
        twice.add(&s);
        assert_eq!(twice.count(), 2000);
        twice.sub(&s);
        assert_eq!(twice, s);
        twice.sub(&s);
        assert_eq!(twice.count(), 0);
        let h = LatencyHistogram::new();
        h.record_n(2000, 3);
        assert_eq!(h.snapshot().count(), 3);
        assert_eq!(h.snapshot().sum_ns, 6000);
    }
}
