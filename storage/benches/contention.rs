//! Lock contention in-process, no network: shardcache's [`Store`] at several shard counts
//! against unsharded baselines (`std::sync::Mutex<HashMap>`, `std::sync::RwLock<HashMap>`,
//! `parking_lot::RwLock<HashMap>`) and a read-optimized concurrent map (`papaya`, the
//! analogue of Go's `sync.Map`), all under the same multi-threaded workloads.
//!
//! This criterion file covers a representative subset (throughput only); the full grid
//! (shards 1..256 x threads 1..64 x read ratio 50..100% x uniform/zipf/hotkey) with HDR
//! p50/p99/p99.9 is `examples/contention_grid.rs`. Instrumentation overhead (uncontended
//! GET/SET with lock stats on vs off) is in `benches/store.rs`.
//!
//! Whole file in about 3 minutes (82 benchmarks, 0.5 s warm-up + 1 s measurement each, set
//! below; override on the command line):
//! `cargo bench -p shardcache-storage --bench contention`
//! One group: add a filter, e.g. `cargo bench -p shardcache-storage --bench contention -- shards/`.
//!
//! [`Store`]: shardcache_storage::Store

#[path = "common/mod.rs"]
mod common;

use common::{Dist, Kind, Workload};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

/// One group: every map in `kinds` under the same workload and thread count. Criterion's
/// "iteration" is one operation per thread-round; throughput is reported per operation.
fn group(c: &mut Criterion, name: &str, kinds: &[Kind], threads: usize, w: &Workload) {
    let keys = common::keys();
    let value = common::value();
    let zipf = common::zipf_cdf(common::KEYS, common::ZIPF_THETA);
    let streams = w.streams(threads, &zipf);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(threads as u64));
    g.sample_size(10);
    for kind in kinds {
        let map = kind.build(&keys, &value);
        g.bench_function(BenchmarkId::from_parameter(kind.label()), |b| {
            b.iter_custom(|iters| common::run_ops(&*map, &keys, &value, &streams, iters))
        });
    }
    g.finish();
}

/// Shard count sweep of the store alone: 16 threads, 80% GET, uniform and one hot key.
fn shards(c: &mut Criterion) {
    let kinds: Vec<Kind> = [1, 4, 16, 64, 256]
        .into_iter()
        .map(|shards| Kind::Store {
            shards,
            instrument: true,
        })
        .collect();
    for dist in [Dist::Uniform, Dist::HotKey] {
        let w = Workload {
            read_ratio: 0.8,
            dist,
        };
        group(
            c,
            &format!("shards/t16/rr80/{}", dist.label()),
            &kinds,
            16,
            &w,
        );
    }
}

/// Store (1 and 16 shards) against the baselines, at 4 and 16 threads, balanced and
/// read-heavy, for each distribution.
fn baselines(c: &mut Criterion) {
    let kinds = [
        Kind::StdMutex,
        Kind::StdRwLock,
        Kind::PlRwLock,
        Kind::Papaya,
        Kind::Store {
            shards: 1,
            instrument: true,
        },
        Kind::Store {
            shards: 16,
            instrument: true,
        },
    ];
    for threads in [4, 16] {
        for read_ratio in [0.5, 0.95] {
            for dist in [Dist::Uniform, Dist::Zipf, Dist::HotKey] {
                let w = Workload { read_ratio, dist };
                let name = format!(
                    "maps/t{threads}/rr{}/{}",
                    (read_ratio * 100.0) as u32,
                    dist.label()
                );
                group(c, &name, &kinds, threads, &w);
            }
        }
    }
}

criterion_group! {
    name = benches;
    // Short by default so the whole file stays near 3 minutes; command-line options override.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));
    targets = shards, baselines
}
criterion_main!(benches);
