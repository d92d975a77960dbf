//! Store throughput: single-threaded get/set with lock instrumentation on vs off, and a
//! contended multi-threaded mix with 1 vs 16 shards.
//!
//! Quick run: `cargo bench -p shardcache-storage -- --warm-up-time 1 --measurement-time 2`

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shardcache_storage::{Expiry, Store, StoreConfig};
use std::hint::black_box;
use std::sync::Arc;

const KEYS: usize = 10_000;

fn keys() -> Vec<Bytes> {
    (0..KEYS)
        .map(|i| Bytes::from(format!("key:{i:08}")))
        .collect()
}

fn filled(shards: usize, instrument: bool, keys: &[Bytes]) -> Store {
    let s = Store::new(StoreConfig {
        shards,
        instrument,
        ..Default::default()
    })
    .unwrap();
    for k in keys {
        s.set(
            0,
            k.clone(),
            Bytes::from_static(b"value-of-32-bytes-xxxxxxxxxxxxxx"),
            Expiry::Persist,
        );
    }
    s
}

fn single_thread(c: &mut Criterion) {
    let keys = keys();
    let mut g = c.benchmark_group("single_thread");
    g.throughput(Throughput::Elements(1));
    for instrument in [true, false] {
        let s = filled(16, instrument, &keys);
        let label = if instrument { "instrumented" } else { "plain" };
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("get", label), |b| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(s.get(0, &keys[i]))
            })
        });
        let v = Bytes::from_static(b"another-value");
        g.bench_function(BenchmarkId::new("set", label), |b| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                s.set(0, keys[i].clone(), v.clone(), Expiry::Persist)
            })
        });
    }
    g.finish();
}

fn contended(c: &mut Criterion) {
    const THREADS: usize = 4;
    const OPS: usize = 20_000;
    let keys = Arc::new(keys());
    let mut g = c.benchmark_group("contended_4_threads_90pct_get");
    g.throughput(Throughput::Elements((THREADS * OPS) as u64));
    g.sample_size(10);
    for shards in [1usize, 16] {
        let s = Arc::new(filled(shards, true, &keys));
        g.bench_function(BenchmarkId::new("shards", shards), |b| {
            b.iter(|| {
                let handles: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let (s, keys) = (s.clone(), keys.clone());
                        std::thread::spawn(move || {
                            let v = Bytes::from_static(b"v");
                            let mut i = t * 7919;
                            for n in 0..OPS {
                                i = (i + 104_729) % KEYS;
                                if n % 10 == 0 {
                                    s.set(0, keys[i].clone(), v.clone(), Expiry::Persist);
                                } else {
                                    black_box(s.get(0, &keys[i]));
                                }
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap();
                }
            })
        });
        let st = s.shard_stats(0);
        eprintln!(
            "shards={shards}: shard 0 read contended {}/{} write contended {}/{} p99 wait {:?} ns",
            st.read.contended,
            st.read.acquisitions,
            st.write.contended,
            st.write.acquisitions,
            st.write.wait_quantile_ns(0.99)
        );
    }
    g.finish();
}

criterion_group!(benches, single_thread, contended);
criterion_main!(benches);
