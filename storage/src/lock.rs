//! An `RwLock` that measures its own contention.
//!
//! Every acquisition first tries the lock without blocking. If that succeeds the acquisition
//! is *uncontended* and costs one `Relaxed` `fetch_add` on top of the lock itself — no clock
//! read. Only when the try fails do we read `Instant::now()`, block, and record the wait in a
//! per-mode histogram with fixed log-spaced bounds ([`LOCK_WAIT_BUCKETS_NS`]).
//!
//! The counters of each mode (read, write) live on their own cache lines so that readers
//! bumping the read counters do not invalidate the line writers update, and neither shares
//! a line with the lock word's neighbours more than necessary.
//!
//! Instrumentation can be switched off at construction (`instrument = false`): the lock is
//! then a plain `parking_lot::RwLock` plus one predictable branch, so the overhead of the
//! instrumentation can be benchmarked.

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Upper bounds (inclusive, nanoseconds) of the lock-wait histogram buckets: 100 ns to
/// 100 ms, 1-2.5-5 log spaced. A last, implicit `+Inf` bucket follows, so histograms have
/// `LOCK_WAIT_BUCKETS_NS.len() + 1` buckets. Exposed so the server can print Prometheus
/// `le` labels.
pub const LOCK_WAIT_BUCKETS_NS: &[u64] = &[
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
];

const BUCKETS: usize = LOCK_WAIT_BUCKETS_NS.len() + 1;

/// The slow-path counters of one lock mode (touched only by contended acquisitions), on
/// their own cache lines.
#[repr(align(128))]
#[derive(Default)]
struct ModeCounters {
    contended: AtomicU64,
    wait_ns: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl ModeCounters {
    #[cold]
    fn waited(&self, ns: u64) {
        self.contended.fetch_add(1, Relaxed);
        self.wait_ns.fetch_add(ns, Relaxed);
        self.buckets[bucket_index(ns)].fetch_add(1, Relaxed);
    }

    fn reset(&self) {
        self.contended.store(0, Relaxed);
        self.wait_ns.store(0, Relaxed);
        for b in &self.buckets {
            b.store(0, Relaxed);
        }
    }

    fn snapshot(&self, acquisitions: &AtomicU64) -> LockModeStats {
        LockModeStats {
            acquisitions: acquisitions.load(Relaxed),
            contended: self.contended.load(Relaxed),
            wait_ns_total: self.wait_ns.load(Relaxed),
            wait_buckets: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
        }
    }
}

/// Index of the histogram bucket for a wait of `ns` nanoseconds (first bound `>= ns`).
fn bucket_index(ns: u64) -> usize {
    LOCK_WAIT_BUCKETS_NS.partition_point(|&b| b < ns)
}

/// A snapshot of one lock mode's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockModeStats {
    /// All acquisitions, contended or not.
    pub acquisitions: u64,
    /// Acquisitions that could not take the lock immediately and had to wait.
    pub contended: u64,
    /// Sum of the waits of contended acquisitions, in nanoseconds.
    pub wait_ns_total: u64,
    /// Non-cumulative wait histogram: `wait_buckets[i]` counts waits `<=
    /// LOCK_WAIT_BUCKETS_NS[i]` (and above the previous bound); the last element is `+Inf`.
    pub wait_buckets: Vec<u64>,
}

impl LockModeStats {
    /// Adds another snapshot into this one (to aggregate shards).
    pub fn merge(&mut self, other: &LockModeStats) {
        self.acquisitions += other.acquisitions;
        self.contended += other.contended;
        self.wait_ns_total += other.wait_ns_total;
        if self.wait_buckets.len() < other.wait_buckets.len() {
            self.wait_buckets.resize(other.wait_buckets.len(), 0);
        }
        for (a, b) in self.wait_buckets.iter_mut().zip(&other.wait_buckets) {
            *a += b;
        }
    }

    /// Estimates the `q`-quantile (0.0..=1.0) of contended waits from the histogram, by
    /// linear interpolation inside the bucket (like Prometheus `histogram_quantile`). Waits
    /// in the `+Inf` bucket are reported as the largest finite bound (100 ms).
    ///
    /// Returns `None` if there were no contended acquisitions or `q` is out of range.
    pub fn wait_quantile_ns(&self, q: f64) -> Option<u64> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let total: u64 = self.wait_buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut before = 0u64;
        for (i, &n) in self.wait_buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if (before + n) as f64 >= rank {
                let Some(&upper) = LOCK_WAIT_BUCKETS_NS.get(i) else {
                    return LOCK_WAIT_BUCKETS_NS.last().copied();
                };
                let lower = if i == 0 {
                    0
                } else {
                    LOCK_WAIT_BUCKETS_NS[i - 1]
                };
                let frac = ((rank - before as f64) / n as f64).clamp(0.0, 1.0);
                return Some(lower + ((upper - lower) as f64 * frac) as u64);
            }
            before += n;
        }
        LOCK_WAIT_BUCKETS_NS.last().copied()
    }
}

/// A `parking_lot::RwLock` that counts acquisitions and measures contended waits.
///
/// The uncontended path touches one extra word: the acquisition counters sit next to the lock
/// word (`repr(C)`, first), on the cache line every acquirer touches anyway. A shared
/// acquisition counts with one relaxed `fetch_add` (readers run concurrently); an exclusive
/// one, made while holding the lock alone, with a plain load and store (no locked
/// instruction). The clock is read, and the cold counters on their own cache lines are
/// touched, only when the first `try_*` fails.
#[repr(C)]
pub struct InstrumentedRwLock<T> {
    read_acquisitions: AtomicU64,
    write_acquisitions: AtomicU64,
    instrument: bool,
    lock: RwLock<T>,
    read_counters: ModeCounters,
    write_counters: ModeCounters,
}

impl<T> InstrumentedRwLock<T> {
    /// Wraps `value`. With `instrument == false` nothing is counted.
    pub fn new(value: T, instrument: bool) -> Self {
        Self {
            read_acquisitions: AtomicU64::new(0),
            write_acquisitions: AtomicU64::new(0),
            lock: RwLock::new(value),
            instrument,
            read_counters: ModeCounters::default(),
            write_counters: ModeCounters::default(),
        }
    }

    /// Whether this lock counts its acquisitions.
    pub fn is_instrumented(&self) -> bool {
        self.instrument
    }

    /// Takes a shared lock, counting it.
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.read_sampled().0
    }

    /// Takes an exclusive lock, counting it.
    #[inline]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.write_sampled().0
    }

    /// Takes a shared lock and also returns the acquisition count *before* this one
    /// (`None` when not instrumented), so callers can sample 1-in-N acquisitions without
    /// another atomic.
    #[inline]
    pub fn read_sampled(&self) -> (RwLockReadGuard<'_, T>, Option<u64>) {
        if !self.instrument {
            return (self.lock.read(), None);
        }
        let prev = self.read_acquisitions.fetch_add(1, Relaxed);
        if let Some(g) = self.lock.try_read() {
            return (g, Some(prev));
        }
        let start = Instant::now();
        let g = self.lock.read();
        self.read_counters
            .waited(start.elapsed().as_nanos().min(u64::MAX as u128) as u64);
        (g, Some(prev))
    }

    /// Exclusive counterpart of [`Self::read_sampled`].
    #[inline]
    pub fn write_sampled(&self) -> (RwLockWriteGuard<'_, T>, Option<u64>) {
        if !self.instrument {
            return (self.lock.write(), None);
        }
        let g = match self.lock.try_write() {
            Some(g) => g,
            None => {
                let start = Instant::now();
                let g = self.lock.write();
                self.write_counters
                    .waited(start.elapsed().as_nanos().min(u64::MAX as u128) as u64);
                g
            }
        };
        // Exclusive: no other thread can change the counter now, so no locked RMW is needed.
        let prev = self.write_acquisitions.load(Relaxed);
        self.write_acquisitions.store(prev + 1, Relaxed);
        (g, Some(prev))
    }

    /// Snapshot of the shared-mode counters.
    pub fn read_stats(&self) -> LockModeStats {
        self.read_counters.snapshot(&self.read_acquisitions)
    }

    /// Snapshot of the exclusive-mode counters.
    pub fn write_stats(&self) -> LockModeStats {
        self.write_counters.snapshot(&self.write_acquisitions)
    }

    /// Zeroes both modes' counters (`CONFIG RESETSTAT`). Acquisitions racing with the reset
    /// may land on either side of it.
    pub fn reset_stats(&self) {
        self.read_acquisitions.store(0, Relaxed);
        self.write_acquisitions.store(0, Relaxed);
        self.read_counters.reset();
        self.write_counters.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    #[test]
    fn uncontended_counts_acquisitions_only() {
        let l = InstrumentedRwLock::new(0u32, true);
        for _ in 0..10 {
            drop(l.read());
        }
        *l.write() += 1;
        let r = l.read_stats();
        assert_eq!(r.acquisitions, 10);
        assert_eq!(r.contended, 0);
        assert_eq!(r.wait_ns_total, 0);
        assert_eq!(r.wait_buckets.len(), LOCK_WAIT_BUCKETS_NS.len() + 1);
        assert!(r.wait_buckets.iter().all(|&b| b == 0));
        assert_eq!(l.write_stats().acquisitions, 1);
        assert_eq!(l.write_stats().contended, 0);
    }

    #[test]
    fn contention_is_counted() {
        let l = Arc::new(InstrumentedRwLock::new(0u32, true));
        let barrier = Arc::new(Barrier::new(2));
        let g = l.write();
        let (l2, b2) = (l.clone(), barrier.clone());
        let t = std::thread::spawn(move || {
            b2.wait();
            let _r = l2.read();
            let _ = 0;
        });
        barrier.wait();
        std::thread::sleep(Duration::from_millis(30));
        drop(g);
        t.join().unwrap();
        let r = l.read_stats();
        assert_eq!(r.acquisitions, 1);
        assert_eq!(r.contended, 1);
        assert!(r.wait_ns_total >= 10_000_000, "{r:?}");
        // 30 ms falls in the (25 ms, 50 ms] bucket or later.
        let idx = r.wait_buckets.iter().position(|&b| b == 1).unwrap();
        assert!(LOCK_WAIT_BUCKETS_NS[idx] >= 25_000_000);
        assert!(r.wait_quantile_ns(0.5).unwrap() >= 10_000_000);

        // A writer waiting on a reader is counted in write mode.
        let rg = l.read();
        let l3 = l.clone();
        let t = std::thread::spawn(move || {
            *l3.write() += 1;
        });
        std::thread::sleep(Duration::from_millis(20));
        drop(rg);
        t.join().unwrap();
        assert_eq!(l.write_stats().contended, 1);
    }

    #[test]
    fn uninstrumented_counts_nothing() {
        let l = InstrumentedRwLock::new((), false);
        let (_g, prev) = l.read_sampled();
        assert_eq!(prev, None);
        drop(_g);
        drop(l.write());
        assert_eq!(l.read_stats().acquisitions, 0);
        assert_eq!(l.write_stats().acquisitions, 0);
    }

    #[test]
    fn sampled_returns_previous_count() {
        let l = InstrumentedRwLock::new((), true);
        assert_eq!(l.read_sampled().1, Some(0));
        assert_eq!(l.read_sampled().1, Some(1));
        assert_eq!(l.write_sampled().1, Some(0));
    }

    #[test]
    fn buckets_and_quantiles() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(100), 0);
        assert_eq!(bucket_index(101), 1);
        assert_eq!(bucket_index(100_000_000), LOCK_WAIT_BUCKETS_NS.len() - 1);
        assert_eq!(bucket_index(100_000_001), LOCK_WAIT_BUCKETS_NS.len());
        let mut s = LockModeStats {
            wait_buckets: vec![0; BUCKETS],
            ..Default::default()
        };
        assert_eq!(s.wait_quantile_ns(0.5), None);
        s.wait_buckets[1] = 10; // (100, 250]
        assert_eq!(s.wait_quantile_ns(0.5), Some(175));
        assert_eq!(s.wait_quantile_ns(1.0), Some(250));
        assert_eq!(s.wait_quantile_ns(1.5), None);
        s.wait_buckets[BUCKETS - 1] = 90;
        assert_eq!(s.wait_quantile_ns(0.99), Some(100_000_000));
        let mut m = LockModeStats::default();
        m.merge(&s);
        m.merge(&s);
        assert_eq!(m.wait_buckets[1], 20);
    }
}
