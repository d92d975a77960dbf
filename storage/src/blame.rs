//! Who holds the shard locks, for how long, and whom they made wait.
//!
//! The server tells the store which command a thread is running ([`enter`]: a *holder tag*,
//! the command's index + 1, and whether its holds are always timed). Every instrumented lock
//! acquisition then:
//!
//! - writes the tag into the lock's holder word (on the lock's own cache line, which the
//!   acquisition writes anyway). A waiter reads it when its `try_*` fails and, once it gets
//!   the lock, charges its whole measured wait to that holder: the *blame*. So the charged
//!   wait sums to exactly the measured wait. A shared hold is charged to the reading command
//!   that last took it, except that a reader whose holds are timed (a command whose work
//!   grows with its input, such as `KEYS`) marks the word *sticky* until it releases, so the
//!   slow reader is blamed rather than the short reads that came and went beside it.
//! - is timed (two clock reads) when the tag says so, or for one acquisition in
//!   [`HOLD_SAMPLE`] (by the lock's acquisition count, already read). The uncontended path of
//!   an untimed command therefore reads no clock. Timed holds feed the per-shard, per-mode
//!   hold histogram (sampled ones weighted by `HOLD_SAMPLE`, so counts estimate all holds)
//!   and the per-command one; a timed hold of at least [`set_long_hold_ns`] is also queued as
//!   a [`LongHold`] on the thread, for the server's `LOCKLOG` (see [`take_long_holds`]).
//!
//! What the server marks as timed decides what can be missed: commands whose holds grow
//! with their input are always timed, so none of their holds of a millisecond or more is
//! missed; an O(1) command's hold passes a millisecond only when its thread is descheduled
//! while holding, and is then seen by sampling, or, when someone waited, on the waiting side.
//!
//! Per-command figures are kept per thread (a mutex only its own thread takes, except when a
//! scrape sums them: [`snapshot`]), so recording writes no line shared with other threads;
//! a thread's figures are folded into a retired total when it exits.

use parking_lot::Mutex;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// One timed acquisition in this many (of each lock and mode) when the holder is not timed.
pub const HOLD_SAMPLE: u64 = 256;

/// Upper bounds (inclusive, nanoseconds) of the hold-time histograms: 100 ns to 1 s,
/// 1-2.5-5 log spaced, then an implicit `+Inf`.
pub const LOCK_HOLD_BUCKETS_NS: &[u64] = &[
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
    250_000_000,
    500_000_000,
    1_000_000_000,
];

/// Upper bounds (inclusive, nanoseconds) of the lock-wait histogram buckets: the hold bounds
/// up to 100 ms (100 ns to 100 ms, 1-2.5-5 log spaced). A last, implicit `+Inf` bucket
/// follows, so histograms have `LOCK_WAIT_BUCKETS_NS.len() + 1` buckets. Exposed so the
/// server can print Prometheus `le` labels.
pub const LOCK_WAIT_BUCKETS_NS: &[u64] = LOCK_HOLD_BUCKETS_NS.split_at(19).0;

/// Holder tag of lock acquisitions made outside any command (store internals, tests).
pub const TAG_NONE: u16 = 0;
/// Holder tag of the store's background work (active expiry, background eviction).
pub const TAG_BACKGROUND: u16 = u16::MAX;

/// Holder word layout: the tag in the low 16 bits, then these flags.
pub(crate) const TIMED: u32 = 1 << 16;
pub(crate) const WRITE: u32 = 1 << 17;
pub(crate) const STICKY: u32 = 1 << 18;

thread_local! {
    /// This thread's holder word (tag | TIMED).
    static CURRENT: Cell<u32> = const { Cell::new(0) };
    /// Whether `LONG` may hold anything: the one test a command's end makes
    /// ([`long_holds_pending`]).
    static LONG_PENDING: Cell<bool> = const { Cell::new(false) };
    /// Long holds made by this thread since the last `take_long_holds`.
    static LONG: RefCell<Vec<LongHold>> = const { RefCell::new(Vec::new()) };
    /// This thread's figures, registered in `SINKS` on first use.
    static SINK: ThreadSink = const { ThreadSink::new() };
}

/// At most this many long holds wait on one thread for `take_long_holds` (a command that
/// takes thousands of shard locks, or a thread that never drains, keeps the first ones).
const LONG_MAX: usize = 64;

/// Nanoseconds since the first call in this process (the time base of holds and waits).
#[inline]
pub(crate) fn now_ns() -> u64 {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    ANCHOR.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The minimum hold queued as a [`LongHold`] (`u64::MAX`: none).
static LONG_HOLD_NS: AtomicU64 = AtomicU64::new(1_000_000);

/// Sets the minimum hold (nanoseconds) queued as a [`LongHold`]; `None` queues none.
pub fn set_long_hold_ns(ns: Option<u64>) {
    LONG_HOLD_NS.store(ns.unwrap_or(u64::MAX), Relaxed);
}

/// The minimum hold queued as a [`LongHold`].
#[inline]
pub(crate) fn long_hold_ns() -> u64 {
    LONG_HOLD_NS.load(Relaxed)
}

/// Restores the thread's previous holder when dropped.
#[must_use = "the holder is reset when this is dropped"]
pub struct HolderScope(u32);

impl Drop for HolderScope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// A holder tag and whether its holds are timed, as one word (what [`enter`] installs):
/// built once per command at start-up, so entering a command's scope is one store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder(u32);

impl Holder {
    /// `tag`, with every hold timed when `timed`.
    pub const fn new(tag: u16, timed: bool) -> Holder {
        Holder(tag as u32 | if timed { TIMED } else { 0 })
    }
}

/// Makes `holder` this thread's lock holder until the scope drops.
#[inline]
pub fn enter(holder: Holder) -> HolderScope {
    HolderScope(CURRENT.with(|c| c.replace(holder.0)))
}

/// This thread's holder word.
#[inline]
pub(crate) fn current() -> u32 {
    CURRENT.with(Cell::get)
}

/// A lock hold of at least the long-hold threshold, as the holder's thread saw it at release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongHold {
    /// The lock's id (the shard index).
    pub lock: u32,
    /// Exclusive (`true`) or shared.
    pub write: bool,
    /// How long it was held, in nanoseconds.
    pub hold_ns: u64,
    /// Acquisitions waiting for this lock when it was released.
    pub waiters: u64,
    /// Their total wait so far (from when each began waiting, or from the start of this hold
    /// if later), in nanoseconds.
    pub waited_ns: u64,
}

/// Whether this thread has queued long holds since the last [`take_long_holds`]: one
/// thread-local load, for the end of every command.
#[inline]
pub fn long_holds_pending() -> bool {
    LONG_PENDING.with(Cell::get)
}

/// Takes this thread's queued long holds (no allocation when there are none).
#[inline]
pub fn take_long_holds() -> Vec<LongHold> {
    if !long_holds_pending() {
        return Vec::new();
    }
    LONG.with(|l| match l.try_borrow_mut() {
        Ok(mut l) => {
            LONG_PENDING.with(|p| p.set(false));
            std::mem::take(&mut *l)
        }
        Err(_) => Vec::new(),
    })
}

pub(crate) fn push_long_hold(h: LongHold) {
    LONG.with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            if l.len() < LONG_MAX {
                l.push(h);
                LONG_PENDING.with(|p| p.set(true));
            }
        }
    });
}

/// A histogram over fixed bounds, plus count and sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Non-cumulative counts: `buckets[i]` counts values `<= bounds[i]` (and above the previous
    /// bound); the last element is `+Inf`.
    pub buckets: Vec<u64>,
    /// Number of values (weighted).
    pub count: u64,
    /// Sum of the values, in nanoseconds (weighted).
    pub sum_ns: u64,
}

impl Histogram {
    fn record(&mut self, bounds: &[u64], ns: u64, weight: u64) {
        if self.buckets.len() != bounds.len() + 1 {
            self.buckets.resize(bounds.len() + 1, 0);
        }
        self.buckets[bounds.partition_point(|&b| b < ns)] += weight;
        self.count += weight;
        self.sum_ns = self.sum_ns.saturating_add(ns.saturating_mul(weight));
    }

    /// The upper bound of the bucket holding the `q`-quantile (0.0..=1.0) of the values
    /// recorded over `bounds` (`u64::MAX` for `+Inf`), or `None` if empty.
    pub fn quantile_bound_ns(&self, bounds: &[u64], q: f64) -> Option<u64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bounds.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        Some(u64::MAX)
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Histogram) {
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
    }
}

/// Blame charged to one (holder, lock, mode of the hold).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Blame {
    /// Contended acquisitions that waited on this holder.
    pub waits: u64,
    /// Their total wait, in nanoseconds.
    pub wait_ns: u64,
}

/// Where a wait is charged: the holder's tag, the lock's id, the mode of the hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlameKey {
    /// Holder tag ([`TAG_NONE`], [`TAG_BACKGROUND`], or the server's command index + 1).
    pub holder: u16,
    /// Lock id (shard index).
    pub lock: u32,
    /// Whether the blamed hold was exclusive.
    pub write: bool,
}

/// Per-command lock figures, summed over threads by [`snapshot`].
#[derive(Debug, Clone, Default)]
pub struct BlameSnapshot {
    /// Hold times by holder tag (sampled holds weighted).
    pub holds: HashMap<u16, Histogram>,
    /// Contended waits by the waiting thread's tag.
    pub waits: HashMap<u16, Histogram>,
    /// Waits charged to holders.
    pub blame: HashMap<BlameKey, Blame>,
}

impl BlameSnapshot {
    fn merge(&mut self, o: &BlameSnapshot) {
        for (t, h) in &o.holds {
            self.holds.entry(*t).or_default().merge(h);
        }
        for (t, h) in &o.waits {
            self.waits.entry(*t).or_default().merge(h);
        }
        for (k, b) in &o.blame {
            let e = self.blame.entry(*k).or_default();
            e.waits += b.waits;
            e.wait_ns += b.wait_ns;
        }
    }

    /// Blame summed by holder tag: (tag, waits, wait ns), most wait first.
    pub fn blame_by_holder(&self) -> Vec<(u16, Blame)> {
        let mut by: HashMap<u16, Blame> = HashMap::new();
        for (k, b) in &self.blame {
            let e = by.entry(k.holder).or_default();
            e.waits += b.waits;
            e.wait_ns += b.wait_ns;
        }
        let mut v: Vec<_> = by.into_iter().collect();
        v.sort_by(|a, b| b.1.wait_ns.cmp(&a.1.wait_ns).then(a.0.cmp(&b.0)));
        v
    }
}

type Shared = Arc<Mutex<BlameSnapshot>>;

/// Every live thread's figures, and the folded figures of threads that exited.
struct Registry {
    live: Vec<Shared>,
    retired: BlameSnapshot,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Mutex::new(Registry {
            live: Vec::new(),
            retired: BlameSnapshot::default(),
        })
    })
}

/// A thread's figures: registered on first use, folded into the retired total at exit.
struct ThreadSink(RefCell<Option<Shared>>);

impl ThreadSink {
    const fn new() -> Self {
        ThreadSink(RefCell::new(None))
    }

    fn with(&self, f: impl FnOnce(&mut BlameSnapshot)) {
        let Ok(mut slot) = self.0.try_borrow_mut() else {
            return;
        };
        let sink = slot.get_or_insert_with(|| {
            let s: Shared = Arc::default();
            registry().lock().live.push(s.clone());
            s
        });
        f(&mut sink.lock());
    }
}

impl Drop for ThreadSink {
    fn drop(&mut self) {
        if let Some(s) = self.0.get_mut().take() {
            let mut r = registry().lock();
            r.live.retain(|l| !Arc::ptr_eq(l, &s));
            let mine = s.lock();
            r.retired.merge(&mine);
        }
    }
}

fn with_sink(f: impl FnOnce(&mut BlameSnapshot)) {
    // During thread teardown the sink may be gone: the figure is then dropped.
    let _ = SINK.try_with(|s| s.with(f));
}

/// Records a timed hold by `holder` (tag | flags) of `ns`, counted `weight` times.
#[cold]
pub(crate) fn record_hold(holder: u32, ns: u64, weight: u64) {
    with_sink(|s| {
        s.holds
            .entry(holder as u16)
            .or_default()
            .record(LOCK_HOLD_BUCKETS_NS, ns, weight)
    });
}

/// Records a contended wait of `ns` by this thread on lock `lock`, charged to `holder`
/// (the holder word the waiter saw).
#[cold]
pub(crate) fn record_wait(lock: u32, holder: u32, ns: u64) {
    let me = current() as u16;
    let key = BlameKey {
        holder: holder as u16,
        lock,
        write: holder & WRITE != 0,
    };
    with_sink(|s| {
        s.waits
            .entry(me)
            .or_default()
            .record(LOCK_WAIT_BUCKETS_NS, ns, 1);
        let b = s.blame.entry(key).or_default();
        b.waits += 1;
        b.wait_ns += ns;
    });
}

/// Every thread's figures summed (live and exited threads).
pub fn snapshot() -> BlameSnapshot {
    let (live, mut total) = {
        let r = registry().lock();
        (r.live.clone(), r.retired.clone())
    };
    for s in live {
        let s = s.lock();
        total.merge(&s);
    }
    total
}

/// Zeroes every thread's figures (`CONFIG RESETSTAT`).
pub fn reset() {
    let mut r = registry().lock();
    r.retired = BlameSnapshot::default();
    for s in &r.live {
        *s.lock() = BlameSnapshot::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_sets_and_restores_the_holder() {
        assert_eq!(current(), 0);
        {
            let _a = enter(Holder::new(7, false));
            assert_eq!(current(), 7);
            {
                let _b = enter(Holder::new(9, true));
                assert_eq!(current(), 9 | TIMED);
            }
            assert_eq!(current(), 7);
        }
        assert_eq!(current(), 0);
    }

    #[test]
    fn histograms_weight_and_merge() {
        let mut h = Histogram::default();
        h.record(LOCK_HOLD_BUCKETS_NS, 150, 64);
        h.record(LOCK_HOLD_BUCKETS_NS, 2_000_000_000, 1);
        assert_eq!(h.count, 65);
        assert_eq!(h.buckets[1], 64);
        assert_eq!(h.buckets[LOCK_HOLD_BUCKETS_NS.len()], 1);
        assert_eq!(h.sum_ns, 150 * 64 + 2_000_000_000);
        let mut m = Histogram::default();
        m.merge(&h);
        m.merge(&h);
        assert_eq!(m.count, 130);
        assert_eq!(m.quantile_bound_ns(LOCK_HOLD_BUCKETS_NS, 0.5), Some(250));
        assert_eq!(
            m.quantile_bound_ns(LOCK_HOLD_BUCKETS_NS, 1.0),
            Some(u64::MAX)
        );
        assert_eq!(
            Histogram::default().quantile_bound_ns(LOCK_HOLD_BUCKETS_NS, 0.5),
            None
        );
    }

    #[test]
    fn exited_threads_are_folded_into_the_total() {
        std::thread::spawn(|| {
            let _s = enter(Holder::new(4242, true));
            record_hold(current(), 5_000, 1);
            record_wait(3, 4243 | WRITE, 7_000);
        })
        .join()
        .unwrap();
        let s = snapshot();
        assert!(s.holds.get(&4242).is_some_and(|h| h.count >= 1));
        let key = BlameKey {
            holder: 4243,
            lock: 3,
            write: true,
        };
        assert!(s.blame.get(&key).is_some_and(|b| b.wait_ns >= 7_000));
        assert!(s.waits.get(&4242).is_some_and(|h| h.count >= 1));
    }
}
