//! An `RwLock` that measures its own contention, and its holds.
//!
//! Every acquisition first tries the lock without blocking. If that succeeds the acquisition
//! is *uncontended* and costs one `Relaxed` `fetch_add` (or, exclusive, a plain store) and
//! the holder word (see [`crate::blame`]) on top of the lock itself, all on the cache line
//! the lock word is on — no clock read, unless the thread's holder is timed or the
//! acquisition is the sampled one in [`HOLD_SAMPLE`]. Only when the try fails do we read the
//! clock, block, and record the wait in a per-mode histogram with fixed log-spaced bounds
//! ([`LOCK_WAIT_BUCKETS_NS`]), charging it to the holder the waiter saw.
//!
//! The counters of each mode (read, write) live on their own cache lines so that readers
//! bumping the read counters do not invalidate the line writers update, and neither shares
//! a line with the lock word's neighbours more than necessary.
//!
//! Instrumentation can be switched off at construction (`instrument = false`): the lock is
//! then a plain `parking_lot::RwLock` plus one predictable branch, so the overhead of the
//! instrumentation can be benchmarked.

use crate::blame::{
    self, LongHold, HOLD_SAMPLE, LOCK_HOLD_BUCKETS_NS, LOCK_WAIT_BUCKETS_NS, STICKY, TIMED, WRITE,
};
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

const BUCKETS: usize = LOCK_WAIT_BUCKETS_NS.len() + 1;

/// The slow-path counters of one lock mode (touched only by contended acquisitions), on
/// their own cache lines.
#[repr(align(128))]
#[derive(Default)]
struct ModeCounters {
    contended: AtomicU64,
    wait_ns: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
    /// Timed holds (weighted: see [`HOLD_SAMPLE`]).
    holds: AtomicU64,
    hold_ns: AtomicU64,
    hold_buckets: [AtomicU64; HOLD_BUCKETS],
}

const HOLD_BUCKETS: usize = LOCK_HOLD_BUCKETS_NS.len() + 1;

impl ModeCounters {
    #[cold]
    fn waited(&self, ns: u64) {
        self.contended.fetch_add(1, Relaxed);
        self.wait_ns.fetch_add(ns, Relaxed);
        self.buckets[bucket_index(ns)].fetch_add(1, Relaxed);
    }

    #[cold]
    fn held(&self, ns: u64, weight: u64) {
        self.holds.fetch_add(weight, Relaxed);
        self.hold_ns.fetch_add(ns.saturating_mul(weight), Relaxed);
        self.hold_buckets[LOCK_HOLD_BUCKETS_NS.partition_point(|&b| b < ns)]
            .fetch_add(weight, Relaxed);
    }

    fn reset(&self) {
        self.contended.store(0, Relaxed);
        self.wait_ns.store(0, Relaxed);
        self.holds.store(0, Relaxed);
        self.hold_ns.store(0, Relaxed);
        for b in self.buckets.iter().chain(&self.hold_buckets) {
            b.store(0, Relaxed);
        }
    }

    fn snapshot(&self, acquisitions: &AtomicU64) -> LockModeStats {
        LockModeStats {
            acquisitions: acquisitions.load(Relaxed),
            contended: self.contended.load(Relaxed),
            wait_ns_total: self.wait_ns.load(Relaxed),
            wait_buckets: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
            holds: self.holds.load(Relaxed),
            hold_ns_total: self.hold_ns.load(Relaxed),
            hold_buckets: self.hold_buckets.iter().map(|b| b.load(Relaxed)).collect(),
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
    /// Holds, estimated from the timed ones (a sampled hold counts [`HOLD_SAMPLE`] times).
    pub holds: u64,
    /// Their total duration, estimated likewise, in nanoseconds.
    pub hold_ns_total: u64,
    /// Non-cumulative hold histogram over [`LOCK_HOLD_BUCKETS_NS`] (last: `+Inf`), weighted.
    pub hold_buckets: Vec<u64>,
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
        self.holds += other.holds;
        self.hold_ns_total += other.hold_ns_total;
        if self.hold_buckets.len() < other.hold_buckets.len() {
            self.hold_buckets.resize(other.hold_buckets.len(), 0);
        }
        for (a, b) in self.hold_buckets.iter_mut().zip(&other.hold_buckets) {
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

/// Waiters of one lock, for the figures of a long hold: how many acquisitions are waiting
/// and the sum of the times they began, so that at a release `n * now - sum` is their total
/// wait so far without visiting them. Only contended acquisitions touch it.
#[repr(align(128))]
#[derive(Default)]
struct Waiting {
    count: AtomicU64,
    start_sum: AtomicU64,
}

impl Waiting {
    /// (waiters, their wait so far, counted from `since` at the earliest) at `now`.
    fn behind(&self, since: u64, now: u64) -> (u64, u64) {
        let n = self.count.load(Relaxed);
        let sum = self.start_sum.load(Relaxed);
        let so_far = n.wrapping_mul(now).wrapping_sub(sum);
        // The two loads are not one snapshot: bound the figure by the hold itself.
        (n, so_far.min(n.saturating_mul(now.saturating_sub(since))))
    }
}

/// A `parking_lot::RwLock` that counts acquisitions, measures contended waits and holds,
/// and charges each wait to the holder the waiter found (see [`crate::blame`]).
///
/// The uncontended path touches the words next to the lock word (`repr(C)`, first), on the
/// cache line every acquirer touches anyway: a shared acquisition counts with one relaxed
/// `fetch_add` (readers run concurrently); an exclusive one, made while holding the lock
/// alone, with a plain load and store (no locked instruction); both store the thread's holder
/// word when it changed. The clock is read, and the cold counters on their own cache lines
/// are touched, only when the first `try_*` fails or the hold is timed.
#[repr(C)]
pub struct InstrumentedRwLock<T> {
    read_acquisitions: AtomicU64,
    write_acquisitions: AtomicU64,
    /// The holder word of the last acquirer (see [`crate::blame`]).
    holder: AtomicU32,
    /// This lock's id in blame figures (the shard index).
    id: u32,
    instrument: bool,
    lock: RwLock<T>,
    read_counters: ModeCounters,
    write_counters: ModeCounters,
    waiting: Waiting,
}

/// Shared access to an [`InstrumentedRwLock`]'s value; records the hold when dropped.
pub struct ReadGuard<'a, T> {
    guard: ManuallyDrop<RwLockReadGuard<'a, T>>,
    lock: &'a InstrumentedRwLock<T>,
    /// When the hold began (`now_ns`), or 0 if it is not timed.
    start: u64,
    /// The holder word stored for this hold (with `STICKY` if this reader set it).
    word: u32,
}

/// Exclusive access to an [`InstrumentedRwLock`]'s value; records the hold when dropped.
pub struct WriteGuard<'a, T> {
    guard: ManuallyDrop<RwLockWriteGuard<'a, T>>,
    lock: &'a InstrumentedRwLock<T>,
    start: u64,
    word: u32,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.start == 0 {
            // SAFETY: dropped once, here; the field is not used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.guard) };
            return;
        }
        let ended = self.lock.end_hold(self.start, false);
        if self.word & STICKY != 0 {
            // Later readers may blame themselves again; a newer sticky reader keeps its mark.
            let _ =
                self.lock
                    .holder
                    .compare_exchange(self.word, self.word & !STICKY, Relaxed, Relaxed);
        }
        // SAFETY: as above.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        self.lock.record_hold(ended, self.word, false);
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.start == 0 {
            // SAFETY: dropped once, here; the field is not used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.guard) };
            return;
        }
        let ended = self.lock.end_hold(self.start, true);
        // SAFETY: as above.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        self.lock.record_hold(ended, self.word, true);
    }
}

/// A timed hold, measured at release, recorded once the lock is released.
struct EndedHold {
    ns: u64,
    long: Option<LongHold>,
}

impl<T> InstrumentedRwLock<T> {
    /// Wraps `value`. With `instrument == false` nothing is counted.
    pub fn new(value: T, instrument: bool) -> Self {
        Self {
            read_acquisitions: AtomicU64::new(0),
            write_acquisitions: AtomicU64::new(0),
            holder: AtomicU32::new(0),
            id: 0,
            lock: RwLock::new(value),
            instrument,
            read_counters: ModeCounters::default(),
            write_counters: ModeCounters::default(),
            waiting: Waiting::default(),
        }
    }

    /// Sets the id this lock's holds and waits are reported under (the shard index).
    #[must_use]
    pub fn with_id(mut self, id: u32) -> Self {
        self.id = id;
        self
    }

    /// Whether this lock counts its acquisitions.
    pub fn is_instrumented(&self) -> bool {
        self.instrument
    }

    /// Takes a shared lock if it is free right now, without counting it or naming a holder:
    /// for hints that may be skipped ([`crate::Store::prefetch`]), which never wait and hold
    /// the lock for a few nanoseconds.
    #[inline]
    pub fn try_read_uncounted(&self) -> Option<parking_lot::RwLockReadGuard<'_, T>> {
        self.lock.try_read()
    }

    /// Takes a shared lock, counting it.
    #[inline]
    pub fn read(&self) -> ReadGuard<'_, T> {
        self.read_sampled().0
    }

    /// Takes an exclusive lock, counting it.
    #[inline]
    pub fn write(&self) -> WriteGuard<'_, T> {
        self.write_sampled().0
    }

    /// Takes a shared lock and also returns the acquisition count *before* this one
    /// (`None` when not instrumented), so callers can sample 1-in-N acquisitions without
    /// another atomic.
    #[inline]
    pub fn read_sampled(&self) -> (ReadGuard<'_, T>, Option<u64>) {
        if !self.instrument {
            let g = ReadGuard {
                guard: ManuallyDrop::new(self.lock.read()),
                lock: self,
                start: 0,
                word: 0,
            };
            return (g, None);
        }
        let prev = self.read_acquisitions.fetch_add(1, Relaxed);
        let me = blame::current();
        let (guard, waited_until) = match self.lock.try_read() {
            Some(g) => (g, 0),
            None => self.wait(false, || self.lock.read()),
        };
        let (word, start) = if me & TIMED == 0 {
            let h = self.holder.load(Relaxed);
            if h != me && h & STICKY == 0 {
                self.holder.store(me, Relaxed);
            }
            let sampled = prev % HOLD_SAMPLE == 0;
            (me, if sampled { start_time(waited_until) } else { 0 })
        } else {
            let word = me | STICKY;
            self.holder.store(word, Relaxed);
            (word, start_time(waited_until))
        };
        let g = ReadGuard {
            guard: ManuallyDrop::new(guard),
            lock: self,
            start,
            word,
        };
        (g, Some(prev))
    }

    /// Exclusive counterpart of [`Self::read_sampled`].
    #[inline]
    pub fn write_sampled(&self) -> (WriteGuard<'_, T>, Option<u64>) {
        if !self.instrument {
            let g = WriteGuard {
                guard: ManuallyDrop::new(self.lock.write()),
                lock: self,
                start: 0,
                word: 0,
            };
            return (g, None);
        }
        let me = blame::current();
        let (guard, waited_until) = match self.lock.try_write() {
            Some(g) => (g, 0),
            None => self.wait(true, || self.lock.write()),
        };
        // Exclusive: no other thread can change these words now, so no locked RMW is needed.
        let prev = self.write_acquisitions.load(Relaxed);
        self.write_acquisitions.store(prev + 1, Relaxed);
        let word = me | WRITE;
        if self.holder.load(Relaxed) != word {
            self.holder.store(word, Relaxed);
        }
        let start = if me & TIMED != 0 || prev % HOLD_SAMPLE == 0 {
            start_time(waited_until)
        } else {
            0
        };
        let g = WriteGuard {
            guard: ManuallyDrop::new(guard),
            lock: self,
            start,
            word,
        };
        (g, Some(prev))
    }

    /// The contended path: blocks in `acquire`, records the wait in `write`'s mode and
    /// charges it to the holder word seen before blocking. Returns the guard and the time
    /// the wait ended.
    #[cold]
    #[inline(never)]
    fn wait<G>(&self, write: bool, acquire: impl FnOnce() -> G) -> (G, u64) {
        let seen = self.holder.load(Relaxed);
        let t0 = blame::now_ns();
        self.waiting.count.fetch_add(1, Relaxed);
        self.waiting.start_sum.fetch_add(t0, Relaxed);
        let g = acquire();
        let t1 = blame::now_ns();
        self.waiting.count.fetch_sub(1, Relaxed);
        self.waiting.start_sum.fetch_sub(t0, Relaxed);
        let ns = t1.saturating_sub(t0);
        let counters = if write {
            &self.write_counters
        } else {
            &self.read_counters
        };
        counters.waited(ns);
        blame::record_wait(self.id, seen, ns);
        (g, t1)
    }

    /// Measures a timed hold while the lock is still held (the waiters behind it are only
    /// countable now).
    #[inline(never)]
    fn end_hold(&self, start: u64, write: bool) -> EndedHold {
        let now = blame::now_ns();
        let ns = now.saturating_sub(start);
        let long = (ns >= blame::long_hold_ns()).then(|| {
            let (waiters, waited_ns) = self.waiting.behind(start, now);
            LongHold {
                lock: self.id,
                write,
                hold_ns: ns,
                waiters,
                waited_ns,
            }
        });
        EndedHold { ns, long }
    }

    /// Records a timed hold, after the release.
    #[inline(never)]
    fn record_hold(&self, h: EndedHold, word: u32, write: bool) {
        let weight = if word & TIMED != 0 { 1 } else { HOLD_SAMPLE };
        let counters = if write {
            &self.write_counters
        } else {
            &self.read_counters
        };
        counters.held(h.ns, weight);
        blame::record_hold(word, h.ns, weight);
        if let Some(long) = h.long {
            blame::push_long_hold(long);
        }
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

/// When a timed hold began: when its wait ended, or now. Never 0 (0 means untimed).
#[inline]
fn start_time(waited_until: u64) -> u64 {
    if waited_until != 0 {
        waited_until
    } else {
        blame::now_ns().max(1)
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

    /// Charged wait equals measured wait: every contended acquisition's wait, as the lock's
    /// own counters measured it, is charged to exactly one holder.
    #[test]
    fn charged_wait_equals_measured_wait() {
        const ID: u32 = 900_001;
        let l = Arc::new(InstrumentedRwLock::new(0u64, true).with_id(ID));
        let threads: Vec<_> = (0..4u16)
            .map(|t| {
                let l = l.clone();
                std::thread::spawn(move || {
                    let _h = blame::enter(blame::Holder::new(20_000 + t, t == 0));
                    for i in 0..2_000u64 {
                        if (i + u64::from(t)) % 3 == 0 {
                            *l.write() += 1;
                        } else {
                            let g = l.read();
                            std::hint::black_box(*g);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (r, w) = (l.read_stats(), l.write_stats());
        let snap = blame::snapshot();
        let (waits, ns) = snap
            .blame
            .iter()
            .filter(|(k, _)| k.lock == ID)
            .fold((0, 0), |(c, n), (_, b)| (c + b.waits, n + b.wait_ns));
        assert_eq!(waits, r.contended + w.contended);
        assert_eq!(ns, r.wait_ns_total + w.wait_ns_total);
        // Every charged holder is one of the threads' tags (or none, before any hold).
        assert!(snap
            .blame
            .keys()
            .filter(|k| k.lock == ID)
            .all(|k| k.holder == 0 || (20_000..20_004).contains(&k.holder)));
    }

    /// A slow (timed) reader is blamed for the writer that waited behind it even though
    /// short reads came and went meanwhile, and its hold is queued as a long hold with the
    /// waiter counted.
    #[test]
    fn a_slow_reader_is_blamed_and_logged() {
        const ID: u32 = 900_002;
        blame::set_long_hold_ns(Some(1_000_000));
        let l = Arc::new(InstrumentedRwLock::new(0u64, true).with_id(ID));
        let slow = {
            let _h = blame::enter(blame::Holder::new(21_000, true));
            l.read()
        };
        {
            let _h = blame::enter(blame::Holder::new(21_001, false));
            for _ in 0..10 {
                drop(l.read());
            }
        }
        let l2 = l.clone();
        let writer = std::thread::spawn(move || {
            let _h = blame::enter(blame::Holder::new(21_002, false));
            *l2.write() += 1;
        });
        while l.waiting.count.load(Relaxed) == 0 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(5));
        drop(slow);
        writer.join().unwrap();
        let long = blame::take_long_holds();
        let h = long
            .iter()
            .find(|h| h.lock == ID)
            .expect("queued long hold");
        assert!(!h.write);
        assert!(h.hold_ns >= 5_000_000, "{h:?}");
        assert_eq!(h.waiters, 1);
        assert!(
            h.waited_ns >= 4_000_000 && h.waited_ns <= h.hold_ns,
            "{h:?}"
        );
        let snap = blame::snapshot();
        let key = blame::BlameKey {
            holder: 21_000,
            lock: ID,
            write: false,
        };
        let b = snap.blame.get(&key).expect("the slow reader is blamed");
        assert_eq!(b.waits, 1);
        assert_eq!(b.wait_ns, l.write_stats().wait_ns_total);
        // The slow reader's hold is in its command's histogram and the lock's.
        assert!(snap.holds.get(&21_000).is_some_and(|h| h.count == 1));
        assert_eq!(
            l.read_stats().hold_buckets.iter().sum::<u64>(),
            l.read_stats().holds
        );
    }

    /// Untimed holders are timed one acquisition in `HOLD_SAMPLE`, each counted that many
    /// times, so the hold count estimates the acquisitions.
    #[test]
    fn sampled_holds_estimate_all_holds() {
        let l = InstrumentedRwLock::new((), true).with_id(900_003);
        let _h = blame::enter(blame::Holder::new(22_000, false));
        for _ in 0..HOLD_SAMPLE * 10 {
            drop(l.read());
        }
        assert_eq!(l.read_stats().holds, HOLD_SAMPLE * 10);
        assert_eq!(l.read_stats().acquisitions, HOLD_SAMPLE * 10);
    }
}
