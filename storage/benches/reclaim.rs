//! Active expiry under client load: how long the reclaimer takes to remove 100,000 keys that
//! expire together, and how long a client write waits meanwhile (the figures the
//! `reclaimer_removes_100k_expired_keys` unit test used to assert against wall-clock bounds).
//!
//! Run: `cargo bench -p shardcache-storage --bench reclaim` (prints one line per round).

use std::time::{Duration, Instant};

use bytes::Bytes;
use shardcache_storage::{Expiry, Reclaimer, Store, StoreConfig};

const KEYS: usize = 100_000;
const ROUNDS: usize = 3;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it once as a smoke test.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let keys = if smoke { 1_000 } else { KEYS };
    for round in 0..if smoke { 1 } else { ROUNDS } {
        let s = std::sync::Arc::new(
            Store::new(StoreConfig {
                shards: 16,
                ..Default::default()
            })
            .expect("store"),
        );
        let reclaimer = Reclaimer::spawn(&s, Duration::from_millis(100));
        for i in 0..keys {
            s.set(
                0,
                Bytes::from(format!("exp{i}")),
                Bytes::from_static(b"v"),
                Expiry::At(s.now_ms() + 300),
            );
        }
        let start = Instant::now();
        let mut waits = Vec::new();
        while s.stats().keys > 1 {
            let t = Instant::now();
            s.set(
                1,
                Bytes::from_static(b"probe"),
                Bytes::from_static(b"v"),
                Expiry::Persist,
            );
            waits.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(2));
        }
        let took = start.elapsed();
        reclaimer.stop();
        waits.sort();
        let pct = |p: f64| {
            waits
                .get(((waits.len() as f64 * p) as usize).min(waits.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "reclaim round {round}: {keys} keys (300 ms TTL) gone {took:?} after the last write; \
             {} probe writes, p50 {:?}, p99 {:?}, worst {:?}",
            waits.len(),
            pct(0.5),
            pct(0.99),
            waits.last().copied().unwrap_or_default()
        );
    }
}
