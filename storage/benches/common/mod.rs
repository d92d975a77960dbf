//! Shared by `benches/contention.rs` (criterion) and `examples/contention_grid.rs` (the full
//! grid with HDR latency): the maps under test, the workloads, and a fixed-duration
//! multi-threaded driver.
//!
//! Every map stores `Bytes -> Bytes` with the same `ahash` hasher as [`Store`], a GET returns
//! a clone of the value handle and a SET overwrites an existing key, so the only difference
//! between the contenders is how they synchronize.
//!
//! Included with `#[path]` by both targets; each uses only part of it.
#![allow(dead_code)]

use bytes::Bytes;
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng};
use shardcache_storage::{Expiry, Store, StoreConfig};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Key space size: every key exists before measuring (SETs overwrite).
pub const KEYS: usize = 100_000;
/// Value size in bytes (as the wire sweep's default).
pub const VALUE_SIZE: usize = 32;
/// Zipf exponent.
pub const ZIPF_THETA: f64 = 0.99;
/// Share of operations that go to the single hot key in [`Dist::HotKey`].
pub const HOT_SHARE: f64 = 0.9;
/// Operations per thread's pre-generated stream (cycled): drawing keys costs nothing
/// during measurement.
const STREAM_LEN: usize = 1 << 16;
/// Time one operation in this many (two clock reads cost ~40 ns; sampling keeps the
/// measured loop within a few percent of the unmeasured one).
pub const SAMPLE_EVERY: usize = 16;

type AHashMap = HashMap<Bytes, Bytes, ahash::RandomState>;

/// A map under test.
pub trait Map: Send + Sync {
    /// GET: a clone of the value handle, if present.
    fn get(&self, key: &Bytes) -> Option<Bytes>;
    /// SET: insert or overwrite.
    fn set(&self, key: &Bytes, value: &Bytes);
    /// `(contended, acquisitions)` summed over all locks, for maps that count them.
    fn contention(&self) -> Option<(u64, u64)> {
        None
    }
}

/// shardcache's [`Store`] (database 0).
pub struct StoreMap(pub Store);

impl Map for StoreMap {
    #[inline]
    fn get(&self, key: &Bytes) -> Option<Bytes> {
        self.0.get(0, key)
    }
    #[inline]
    fn set(&self, key: &Bytes, value: &Bytes) {
        self.0.set(0, key.clone(), value.clone(), Expiry::Persist)
    }
    fn contention(&self) -> Option<(u64, u64)> {
        let (mut c, mut a) = (0, 0);
        for i in 0..self.0.shard_count() {
            let s = self.0.shard_stats(i);
            c += s.read.contended + s.write.contended;
            a += s.read.acquisitions + s.write.acquisitions;
        }
        (a > 0).then_some((c, a))
    }
}

/// `std::sync::Mutex<HashMap>`: Go's `map + sync.Mutex`.
pub struct StdMutexMap(Mutex<AHashMap>);

impl Map for StdMutexMap {
    #[inline]
    fn get(&self, key: &Bytes) -> Option<Bytes> {
        self.0.lock().unwrap().get(key).cloned()
    }
    #[inline]
    fn set(&self, key: &Bytes, value: &Bytes) {
        let old = self.0.lock().unwrap().insert(key.clone(), value.clone());
        drop(old);
    }
}

/// `std::sync::RwLock<HashMap>`: Go's `map + sync.RWMutex`.
pub struct StdRwLockMap(RwLock<AHashMap>);

impl Map for StdRwLockMap {
    #[inline]
    fn get(&self, key: &Bytes) -> Option<Bytes> {
        self.0.read().unwrap().get(key).cloned()
    }
    #[inline]
    fn set(&self, key: &Bytes, value: &Bytes) {
        let old = self.0.write().unwrap().insert(key.clone(), value.clone());
        drop(old);
    }
}

/// `parking_lot::RwLock<HashMap>`: the lock our shards use, unsharded and uninstrumented.
pub struct PlRwLockMap(parking_lot::RwLock<AHashMap>);

impl Map for PlRwLockMap {
    #[inline]
    fn get(&self, key: &Bytes) -> Option<Bytes> {
        self.0.read().get(key).cloned()
    }
    #[inline]
    fn set(&self, key: &Bytes, value: &Bytes) {
        let old = self.0.write().insert(key.clone(), value.clone());
        drop(old);
    }
}

/// `papaya::HashMap`: lock-free reads, epoch-reclaimed writes; the analogue of Go's
/// `sync.Map` (read-optimized concurrent map).
pub struct PapayaMap(papaya::HashMap<Bytes, Bytes, ahash::RandomState>);

impl Map for PapayaMap {
    #[inline]
    fn get(&self, key: &Bytes) -> Option<Bytes> {
        self.0.pin().get(key).cloned()
    }
    #[inline]
    fn set(&self, key: &Bytes, value: &Bytes) {
        self.0.pin().insert(key.clone(), value.clone());
    }
}

/// Which map to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`Store`] with this many shards; `instrument` as in [`StoreConfig`].
    Store {
        /// Shard count (power of two).
        shards: usize,
        /// Lock instrumentation on (the server's default) or off.
        instrument: bool,
    },
    /// `std::sync::Mutex<HashMap>`.
    StdMutex,
    /// `std::sync::RwLock<HashMap>`.
    StdRwLock,
    /// `parking_lot::RwLock<HashMap>`.
    PlRwLock,
    /// `papaya::HashMap`.
    Papaya,
}

impl Kind {
    /// Short label for tables and criterion ids.
    pub fn label(&self) -> String {
        match self {
            Kind::Store {
                shards,
                instrument: true,
            } => format!("store/{shards}"),
            Kind::Store {
                shards,
                instrument: false,
            } => format!("store/{shards}/plain"),
            Kind::StdMutex => "std-mutex".into(),
            Kind::StdRwLock => "std-rwlock".into(),
            Kind::PlRwLock => "pl-rwlock".into(),
            Kind::Papaya => "papaya".into(),
        }
    }

    /// Builds the map and fills every key.
    pub fn build(&self, keys: &[Bytes], value: &Bytes) -> Box<dyn Map> {
        let hasher = ahash::RandomState::new;
        let cap = keys.len();
        let m: Box<dyn Map> = match *self {
            Kind::Store { shards, instrument } => Box::new(StoreMap(
                Store::new(StoreConfig {
                    shards,
                    instrument,
                    ..Default::default()
                })
                .expect("valid shard count"),
            )),
            Kind::StdMutex => Box::new(StdMutexMap(Mutex::new(
                AHashMap::with_capacity_and_hasher(cap, hasher()),
            ))),
            Kind::StdRwLock => Box::new(StdRwLockMap(RwLock::new(
                AHashMap::with_capacity_and_hasher(cap, hasher()),
            ))),
            Kind::PlRwLock => Box::new(PlRwLockMap(parking_lot::RwLock::new(
                AHashMap::with_capacity_and_hasher(cap, hasher()),
            ))),
            Kind::Papaya => Box::new(PapayaMap(papaya::HashMap::with_capacity_and_hasher(
                cap,
                hasher(),
            ))),
        };
        for k in keys {
            m.set(k, value);
        }
        m
    }
}

/// Key distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dist {
    /// Every key equally likely.
    Uniform,
    /// Zipf with [`ZIPF_THETA`] over [`KEYS`] ranks.
    Zipf,
    /// One key gets [`HOT_SHARE`] of the operations, the rest are uniform.
    HotKey,
}

impl Dist {
    /// Label for tables.
    pub fn label(&self) -> &'static str {
        match self {
            Dist::Uniform => "uniform",
            Dist::Zipf => "zipf",
            Dist::HotKey => "hotkey",
        }
    }

    /// Parses a label.
    pub fn parse(s: &str) -> Option<Dist> {
        match s {
            "uniform" => Some(Dist::Uniform),
            "zipf" => Some(Dist::Zipf),
            "hotkey" | "hotset" | "one-hot-key" => Some(Dist::HotKey),
            _ => None,
        }
    }
}

/// Cumulative zipf probabilities over `n` ranks (sampling = binary search).
pub fn zipf_cdf(n: usize, theta: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n)
        .map(|k| {
            acc += 1.0 / (k as f64).powf(theta);
            acc
        })
        .collect();
    let total = acc;
    for c in &mut cdf {
        *c /= total;
    }
    cdf
}

/// One operation of a stream: key index, and whether it is a SET.
#[derive(Clone, Copy)]
pub struct Op {
    key: u32,
    write: bool,
}

/// A workload: who does what to which keys.
#[derive(Clone, Debug)]
pub struct Workload {
    /// GET fraction, 0.0..=1.0.
    pub read_ratio: f64,
    /// Key distribution.
    pub dist: Dist,
}

impl Workload {
    /// Pre-generates one op stream per thread (distinct seeds).
    pub fn streams(&self, threads: usize, zipf: &[f64]) -> Vec<Vec<Op>> {
        (0..threads)
            .map(|t| {
                let mut rng = SmallRng::seed_from_u64(0x5EED ^ ((t as u64 + 1) << 32));
                (0..STREAM_LEN)
                    .map(|_| {
                        let key = match self.dist {
                            Dist::Uniform => rng.random_range(0..KEYS),
                            Dist::Zipf => {
                                let u: f64 = rng.random();
                                zipf.partition_point(|&c| c < u).min(KEYS - 1)
                            }
                            Dist::HotKey => {
                                if rng.random::<f64>() < HOT_SHARE {
                                    0
                                } else {
                                    rng.random_range(1..KEYS)
                                }
                            }
                        } as u32;
                        Op {
                            key,
                            write: rng.random::<f64>() >= self.read_ratio,
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// The key set `key:00000000 ..`.
pub fn keys() -> Vec<Bytes> {
    (0..KEYS)
        .map(|i| Bytes::from(format!("key:{i:08}")))
        .collect()
}

/// The value every SET writes.
pub fn value() -> Bytes {
    Bytes::from(vec![b'v'; VALUE_SIZE])
}

#[inline]
fn apply(map: &dyn Map, keys: &[Bytes], value: &Bytes, op: Op) {
    let k = &keys[op.key as usize];
    if op.write {
        map.set(k, value);
    } else {
        black_box(map.get(k));
    }
}

/// Runs `ops_per_thread` operations on each of `streams.len()` threads, started together;
/// returns the wall time from the start to the last thread's end (criterion's
/// `iter_custom`).
pub fn run_ops(
    map: &dyn Map,
    keys: &[Bytes],
    value: &Bytes,
    streams: &[Vec<Op>],
    ops_per_thread: u64,
) -> Duration {
    let barrier = Barrier::new(streams.len() + 1);
    std::thread::scope(|s| {
        for stream in streams {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                let mut i = 0usize;
                for _ in 0..ops_per_thread {
                    apply(map, keys, value, stream[i]);
                    i = (i + 1) & (STREAM_LEN - 1);
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // The scope joins every thread before returning.
        start
    })
    .elapsed()
}

/// Result of a fixed-duration run.
pub struct Timed {
    /// Operations completed by all threads.
    pub ops: u64,
    /// Wall time from the common start to the stop signal.
    pub elapsed: Duration,
    /// Sampled per-operation latencies, nanoseconds (1 in [`SAMPLE_EVERY`]).
    pub latency_ns: Histogram<u64>,
}

impl Timed {
    /// Throughput.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs all threads for `duration`, timing one op in [`SAMPLE_EVERY`] into per-thread HDR
/// histograms (merged at the end).
pub fn run_for(
    map: &dyn Map,
    keys: &[Bytes],
    value: &Bytes,
    streams: &[Vec<Op>],
    duration: Duration,
) -> Timed {
    let barrier = Barrier::new(streams.len() + 1);
    let stop = AtomicBool::new(false);
    let (results, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = streams
            .iter()
            .map(|stream| {
                let (barrier, stop) = (&barrier, &stop);
                s.spawn(move || {
                    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
                        .expect("valid bounds");
                    let mut ops = 0u64;
                    let mut i = 0usize;
                    barrier.wait();
                    while !stop.load(Ordering::Relaxed) {
                        // SAMPLE_EVERY ops per round: one timed, the rest not.
                        let t0 = Instant::now();
                        apply(map, keys, value, stream[i]);
                        let ns = t0.elapsed().as_nanos() as u64;
                        h.saturating_record(ns.max(1));
                        for j in 1..SAMPLE_EVERY {
                            apply(map, keys, value, stream[(i + j) & (STREAM_LEN - 1)]);
                        }
                        i = (i + SAMPLE_EVERY) & (STREAM_LEN - 1);
                        ops += SAMPLE_EVERY as u64;
                    }
                    (ops, h)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        let elapsed = start.elapsed();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (results, elapsed)
    });
    let mut latency_ns =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    let mut ops = 0;
    for (n, h) in results {
        ops += n;
        latency_ns.add(&h).expect("same bounds");
    }
    Timed {
        ops,
        elapsed,
        latency_ns,
    }
}
