//! Two threads on distinct shards against one thread: does the store scale when its callers
//! share nothing but the store? (Issue 11's store-alone scaling figure; target ≥ 1.9×.)
//!
//! The keyspace (100,000 keys of 16 bytes, 32-byte values, the default 16 shards, lock
//! instrumentation on, as the server runs it) is split by shard: keys of shards 0–7 and keys of
//! shards 8–15. One round runs, for `--millis`, one thread on the first half, then two threads,
//! one on each half (the order alternates between rounds). The figure is operations per second
//! of the two threads together ÷ that of the one thread; any write to a cache line both threads
//! share (a store-wide counter, an allocator lock) shows as a ratio below 2.
//!
//! ```text
//! cargo run --release -p shardcache-storage --example store_scaling -- [--rounds 7] [--millis 1000]
//! ```
//!
//! Threads are pinned (CPUs 0 and 1) when the affinity mask allows; on a machine with fewer than
//! two CPUs the figure means nothing and the example says so.
//!
//! The control: the same loops on a `HashMap` private to each thread (same keys, same values,
//! nothing shared at all), measured in the same rounds. Its ratio is what this machine gives two
//! threads that share nothing (a VM's two vCPUs may share a core or be descheduled by the
//! host), so the store's figure is to be read against it.
//!
//! Each thread also reads its own CPU time (`CLOCK_THREAD_CPUTIME_ID`, which leaves out the
//! time the host took its vCPU away, steal), so a second figure is per CPU-second: the two
//! threads' operations per CPU-second, summed, ÷ the one thread's. That is the scaling two
//! cores of their own would give: it is below 2 only if a thread does more work, or waits on
//! memory more, when the other runs (a shared cache line, a lock, the allocator), not because
//! the host ran something else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use clap::Parser;
use shardcache_storage::{Expiry, Store, StoreConfig};

/// Two threads on distinct shards against one thread.
#[derive(Parser)]
struct Args {
    /// Rounds (each: one thread, then two, or the reverse).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Length of each run, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    millis: u64,
}

const KEYS: usize = 100_000;
const VALUE: &[u8] = b"0123456789abcdef0123456789abcdef";

/// What each thread does.
#[derive(Clone, Copy, Debug)]
enum Op {
    Get,
    Set,
}

fn pin(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The calling thread's CPU time, in seconds.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// What one run measured: operations per second of wall time (all threads together), and the
/// sum over threads of each one's operations per second of its own CPU time.
struct Rates {
    wall: f64,
    cpu: f64,
}

/// Runs `keys.len()` threads, thread i on `keys[i]` pinned to CPU i, for `d`.
/// `private`: each thread works on its own `HashMap` of its keys instead of the store.
fn run(
    store: &Arc<Store>,
    keys: &[Arc<Vec<Vec<u8>>>],
    op: Op,
    d: Duration,
    private: bool,
) -> Rates {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(keys.len() + 1));
    let handles: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, ks)| {
            let (store, ks, stop, start) = (
                Arc::clone(store),
                Arc::clone(ks),
                Arc::clone(&stop),
                Arc::clone(&start),
            );
            std::thread::spawn(move || {
                pin(i);
                let mut own: hashbrown::HashMap<Vec<u8>, Vec<u8>> = if private {
                    ks.iter().map(|k| (k.clone(), VALUE.to_vec())).collect()
                } else {
                    hashbrown::HashMap::new()
                };
                start.wait();
                let cpu0 = thread_cpu_secs();
                let mut n = 0u64;
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ i as u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let k = &ks[(x % ks.len() as u64) as usize];
                        match (op, private) {
                            (Op::Get, false) => {
                                let hit = store.read(0, k, |e| e.map(|e| e.value.len()));
                                std::hint::black_box(hit);
                            }
                            (Op::Set, false) => store.set(0, k, VALUE, Expiry::Persist),
                            (Op::Get, true) => {
                                std::hint::black_box(own.get(k.as_slice()).map(Vec::len));
                            }
                            (Op::Set, true) => {
                                if let Some(v) = own.get_mut(k.as_slice()) {
                                    *v = VALUE.to_vec();
                                }
                            }
                        }
                    }
                    n += 256;
                }
                (n, thread_cpu_secs() - cpu0)
            })
        })
        .collect();
    start.wait();
    std::thread::sleep(d);
    stop.store(true, Ordering::Relaxed);
    let done: Vec<(u64, f64)> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or((0, 0.0)))
        .collect();
    Rates {
        wall: done.iter().map(|&(n, _)| n as f64).sum::<f64>() / d.as_secs_f64(),
        cpu: done
            .iter()
            .map(|&(n, cpu)| if cpu > 0.0 { n as f64 / cpu } else { 0.0 })
            .sum(),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args = Args::parse();
    let rounds = args.rounds.max(1);
    let d = Duration::from_millis(args.millis.max(50));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("store_scaling: fewer than two CPUs available; nothing to measure");
        return;
    }
    let store = Arc::new(Store::new(StoreConfig::default()).expect("store"));
    let shards = store.shard_count();
    let (mut low, mut high) = (Vec::new(), Vec::new());
    for i in 0..KEYS {
        let k = format!("key:{i:012}").into_bytes();
        store.set(0, &k, VALUE, Expiry::Persist);
        if store.shard_of(&k) < shards / 2 {
            low.push(k);
        } else {
            high.push(k);
        }
    }
    let (low, high) = (Arc::new(low), Arc::new(high));
    println!(
        "store_scaling: {KEYS} keys, {shards} shards (thread 0: shards 0-{}, {} keys; thread 1: shards {}-{}, {} keys), {rounds} rounds of {} ms, {cpus} CPUs",
        shards / 2 - 1,
        low.len(),
        shards / 2,
        shards - 1,
        high.len(),
        d.as_millis()
    );
    for op in [Op::Get, Op::Set] {
        for private in [false, true] {
            let what = if private {
                "private HashMap (control)"
            } else {
                "store"
            };
            let (mut ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
            let (mut ones, mut twos) = (Vec::new(), Vec::new());
            for r in 0..rounds {
                let one_set = [Arc::clone(&low)];
                let two_set = [Arc::clone(&low), Arc::clone(&high)];
                let (one, two) = if r % 2 == 0 {
                    let one = run(&store, &one_set, op, d, private);
                    let two = run(&store, &two_set, op, d, private);
                    (one, two)
                } else {
                    let two = run(&store, &two_set, op, d, private);
                    let one = run(&store, &one_set, op, d, private);
                    (one, two)
                };
                println!(
                    "round={} op={op:?} target={} one_thread_ops_s={:.0} two_threads_ops_s={:.0} ratio={:.3} one_thread_ops_cpu_s={:.0} two_threads_ops_cpu_s={:.0} cpu_ratio={:.3}",
                    r + 1,
                    if private { "private" } else { "store" },
                    one.wall,
                    two.wall,
                    two.wall / one.wall,
                    one.cpu,
                    two.cpu,
                    two.cpu / one.cpu
                );
                ones.push(one.wall);
                twos.push(two.wall);
                ratios.push(two.wall / one.wall);
                cpu_ratios.push(two.cpu / one.cpu);
            }
            let range = |v: &[f64]| {
                (
                    v.iter().copied().fold(f64::INFINITY, f64::min),
                    v.iter().copied().fold(0.0, f64::max),
                )
            };
            let (lo, hi) = range(&ratios);
            let (clo, chi) = range(&cpu_ratios);
            println!(
                "{op:?}, {what}: two threads ÷ one, median {:.3} (range {lo:.3}-{hi:.3}); per CPU-second {:.3} (range {clo:.3}-{chi:.3}); one thread {:.0} ops/s, two {:.0} ops/s (medians)",
                median(&mut ratios),
                median(&mut cpu_ratios),
                median(&mut ones),
                median(&mut twos)
            );
        }
    }
}
