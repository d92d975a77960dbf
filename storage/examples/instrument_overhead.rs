//! Cost of lock instrumentation on the uncontended path, measured as a paired A/B test:
//! one thread, two stores (`StoreConfig { instrument: true }` and `false`, 16 shards,
//! 100k keys) and many short alternating rounds of GET (or SET), so that drift from other
//! processes on the machine hits both sides alike. Reports the median ns/op per side and
//! the median (and interquartile range) of the per-round ratios (instrumented / plain).
//!
//! This complements `benches/store.rs` (criterion, `single_thread` group), whose runs of
//! the two sides are minutes apart and so differ by more than the effect on a busy machine.
//!
//! `cargo run --release -p shardcache-storage --example instrument_overhead -- [rounds]`

use bytes::Bytes;
use shardcache_storage::{Expiry, Store, StoreConfig};
use std::hint::black_box;
use std::time::Instant;

const KEYS: usize = 100_000;
const OPS_PER_ROUND: usize = 200_000;

fn store(instrument: bool, keys: &[Bytes], value: &Bytes) -> Store {
    let s = Store::new(StoreConfig {
        shards: 16,
        instrument,
        ..Default::default()
    })
    .expect("valid config");
    for k in keys {
        s.set(0, k.clone(), value.clone(), Expiry::Persist);
    }
    s
}

/// ns per op of one round.
/// `holder`: the store is instrumented, so name a holder per operation.
fn round(s: &Store, holder: bool, keys: &[Bytes], value: &Bytes, set: bool, offset: usize) -> f64 {
    let start = Instant::now();
    let mut i = offset;
    for _ in 0..OPS_PER_ROUND {
        // A stride that visits every key (coprime with KEYS) in a cache-unfriendly order.
        i = (i + 7_919) % KEYS;
        // As the server's dispatcher does per command with lock statistics on: name the
        // holder of the command's lock acquisitions.
        let _holder = holder.then(|| {
            shardcache_storage::blame::enter(shardcache_storage::blame::Holder::new(1, false))
        });
        if set {
            s.set(0, keys[i].clone(), value.clone(), Expiry::Persist);
        } else {
            black_box(s.get(0, &keys[i]));
        }
    }
    start.elapsed().as_nanos() as f64 / OPS_PER_ROUND as f64
}

fn median(v: &mut [f64]) -> f64 {
    quantile(v, 0.5)
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    let keys: Vec<Bytes> = (0..KEYS)
        .map(|i| Bytes::from(format!("key:{i:08}")))
        .collect();
    let value = Bytes::from(vec![b'v'; 32]);
    let on = store(true, &keys, &value);
    let off = store(false, &keys, &value);
    println!("| op | instrumented ns/op | plain ns/op | instrumented/plain (median of {rounds} paired rounds) | IQR of the ratio |");
    println!("|---|---:|---:|---:|---|");
    for (name, set) in [("GET", false), ("SET", true)] {
        let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for n in 0..rounds {
            // Alternate which side goes first, so neither always runs on a warmer cache.
            let (x, y) = if n % 2 == 0 {
                let x = round(&on, true, &keys, &value, set, n);
                (x, round(&off, false, &keys, &value, set, n))
            } else {
                let y = round(&off, false, &keys, &value, set, n);
                (round(&on, true, &keys, &value, set, n), y)
            };
            a.push(x);
            b.push(y);
            r.push(x / y);
        }
        println!(
            "| {name} | {:.1} | {:.1} | {:.3} | {:.3}..{:.3} |",
            median(&mut a),
            median(&mut b),
            median(&mut r),
            quantile(&mut r, 0.25),
            quantile(&mut r, 0.75)
        );
    }
}
