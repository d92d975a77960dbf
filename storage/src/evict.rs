//! Eviction above `maxmemory`, approximating Redis.
//!
//! Like Redis's `performEvictions`, each round samples `samples` keys and merges them into
//! a pool of the 16 best candidates seen so far (the pool persists across rounds and calls),
//! then evicts the best one. Differences, all in the direction of better choices:
//!
//! * a round samples one random shard (every database in it); when that yields nothing,
//!   all shards are swept before concluding nothing is evictable;
//! * `volatile-*` policies sample from the shard's expiry index (a uniform sample of keys
//!   *with* a TTL, however few they are), and `volatile-ttl` also considers the index top,
//!   i.e. the shard's exact soonest-expiring key;
//! * keys found already expired are the best candidates and are counted as expired.
//!
//! Random sampling inside a table (hashbrown has no index access) picks a random segment
//! and probes it with a random hash via `iter_hash` (one group per probe, ~10% of probes
//! hit), falling back to a linear skip; tables of at most 32 entries are sampled
//! exhaustively.

use crate::entry::{lfu_decayed, EntryBox};
use crate::error::OutOfMemory;
use crate::globals::Globals;
use crate::policy::EvictionPolicy;
use crate::shard::{Shard, ShardData, ShardMut};
use crate::table::Table;
use bytes::Bytes;
use rand::Rng;
use std::sync::atomic::Ordering::Relaxed;

/// Candidates kept between rounds (Redis `EVPOOL_SIZE`).
pub(crate) const POOL_SIZE: usize = 16;

/// A candidate for eviction; higher `score` = better to evict.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    score: u64,
    shard: usize,
    db: usize,
    hash: u64,
    key: Bytes,
}

/// The eviction pool, ascending by score.
#[derive(Debug, Default)]
pub(crate) struct EvictionPool {
    cands: Vec<Candidate>,
}

impl EvictionPool {
    pub(crate) fn clear(&mut self) {
        self.cands.clear();
    }

    fn offer(&mut self, c: Candidate) {
        if let Some(old) = self
            .cands
            .iter()
            .position(|o| o.hash == c.hash && o.db == c.db && o.shard == c.shard && o.key == c.key)
        {
            self.cands.remove(old);
        } else if self.cands.len() >= POOL_SIZE {
            if self.cands[0].score >= c.score {
                return;
            }
            self.cands.remove(0);
        }
        let at = self.cands.partition_point(|o| o.score <= c.score);
        self.cands.insert(at, c);
    }

    fn pop_best(&mut self) -> Option<Candidate> {
        self.cands.pop()
    }
}

/// Calls `out` with up to `n` pseudo-random entries of `table` (all of them if it has at
/// most 32, or at most `n`: a `maxmemory-samples` as large as `i32::MAX` then costs one pass,
/// not `32 n` probes under the shard lock). May repeat entries.
pub(crate) fn sample_table<'t>(
    table: &'t Table,
    n: usize,
    rng: &mut impl Rng,
    mut out: impl FnMut(&'t EntryBox),
) {
    let len = table.len();
    if len == 0 {
        return;
    }
    if len <= 32 || n >= len {
        table.iter().for_each(out);
        return;
    }
    let segs = table.segments();
    let mut got = 0;
    let mut tries = 0;
    while got < n && tries < n * 32 {
        tries += 1;
        let seg = &segs[rng.random_range(0..segs.len())];
        if seg.is_empty() {
            continue;
        }
        if let Some(e) = seg.iter_hash(rng.random()).next() {
            out(e);
            got += 1;
        }
    }
    if got < n {
        let skip = rng.random_range(0..len);
        for e in table.iter().cycle().skip(skip).take(n - got) {
            out(e);
        }
    }
}

/// What eviction works on: the shards and the store's settings (the store hands these in,
/// so this module sits below `store`).
pub(crate) struct Evictor<'a> {
    pub(crate) shards: &'a [Shard],
    pub(crate) g: &'a Globals,
}

impl Evictor<'_> {
    fn used_memory(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.used_memory.load(Relaxed))
            .sum()
    }

    fn score(&self, policy: EvictionPolicy, e: &EntryBox, now: u64) -> u64 {
        if e.expired_at(now) {
            return u64::MAX;
        }
        match policy {
            EvictionPolicy::VolatileTtl => u64::MAX - 1 - e.expires_at(),
            p if p.is_lfu() => 255 - lfu_decayed(e.access().load(Relaxed), now) as u64,
            EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom => 0,
            _ => (now as u32).wrapping_sub(e.access().load(Relaxed)) as u64,
        }
    }

    /// Samples one shard's candidates into `pool` (or, for random policies, just offers
    /// random keys with equal score). Returns how many were offered.
    fn sample_shard(
        &self,
        idx: usize,
        policy: EvictionPolicy,
        pool: &mut EvictionPool,
        rng: &mut impl Rng,
        now: u64,
        thorough: bool,
    ) -> usize {
        let samples = if matches!(
            policy,
            EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom
        ) {
            1
        } else {
            self.g.samples.load(Relaxed)
        };
        let g = self.shards[idx].read();
        let data: &ShardData = &g;
        let offered = std::cell::Cell::new(0usize);
        let mut offer = |e: &EntryBox, db: usize| {
            pool.offer(Candidate {
                score: self.score(policy, e, now),
                shard: idx,
                db,
                hash: self.g.hash(e.key()),
                key: Bytes::copy_from_slice(e.key()),
            });
            offered.set(offered.get() + 1);
        };
        if policy.is_volatile() {
            let items = data.expiry.as_slice();
            if items.is_empty() {
                return 0;
            }
            let lookup = |i: usize| {
                let it = &items[i];
                data.find_item(self.g, it).map(|e| (e, it.db()))
            };
            if policy == EvictionPolicy::VolatileTtl {
                // The heap's first element is the shard's soonest expiry.
                if let Some((e, db)) = lookup(0) {
                    offer(e, db);
                }
            }
            // Asking for as many samples as there are items is a full pass (and bounds the
            // work of a huge `maxmemory-samples`).
            if thorough || samples >= items.len() {
                // Random probes may all hit stale items; look at every item instead.
                for i in 0..items.len() {
                    if let Some((e, db)) = lookup(i) {
                        offer(e, db);
                    }
                }
                return offered.get();
            }
            let mut got = 0;
            for _ in 0..samples * 4 {
                if got >= samples {
                    break;
                }
                if let Some((e, db)) = lookup(rng.random_range(0..items.len())) {
                    offer(e, db);
                    got += 1;
                }
            }
        } else {
            let start = rng.random_range(0..data.tables.len());
            for k in 0..data.tables.len() {
                let db = (start + k) % data.tables.len();
                sample_table(&data.tables[db], samples, rng, |e| offer(e, db));
                if samples == 1 && offered.get() > 0 {
                    break;
                }
            }
        }
        offered.get()
    }

    /// Evicts one candidate if it still exists (and still has a TTL for volatile policies).
    fn evict(&self, c: &Candidate, volatile: bool, now: u64) -> bool {
        let shard = &self.shards[c.shard];
        let mut g = shard.write();
        let mut sm = ShardMut {
            g: self.g,
            shard,
            data: &mut g,
        };
        let removed = sm.remove_if(c.db, c.hash, &c.key, |e| !volatile || e.expires_at() != 0);
        if removed.is_some() && volatile {
            sm.pop_stale_expiry_top();
        }
        drop(g);
        match removed {
            Some(e) if e.expired_at(now) => {
                shard.counters.expired.fetch_add(1, Relaxed);
                true
            }
            Some(_) => {
                shard.counters.evicted.fetch_add(1, Relaxed);
                tracing::trace!(shard = c.shard, db = c.db, "evicted key");
                true
            }
            None => false,
        }
    }

    /// The slow path of `Store::reclaim_memory`: evicts with `pool` (the store's, kept
    /// between calls as Redis keeps its pool) until under `maxmemory`.
    #[cold]
    pub(crate) fn evict_until_under(&self, pool: &mut EvictionPool) -> Result<(), OutOfMemory> {
        let now = self.g.now_ms();
        self.g.coarse_ms.store(now, Relaxed);
        let mut rng = rand::rng();
        let n = self.shards.len();
        let mut evicted = 0u64;
        let mut fruitless = 0u32;
        loop {
            let max = self.g.maxmemory.load(Relaxed);
            if max == 0 || self.used_memory() <= max {
                if evicted > 0 {
                    tracing::debug!(evicted, "evicted keys to get under maxmemory");
                }
                return Ok(());
            }
            let policy = self.g.policy();
            if policy == EvictionPolicy::NoEviction || fruitless > 1000 {
                return Err(OutOfMemory);
            }
            if matches!(
                policy,
                EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom
            ) {
                pool.clear();
            }
            self.sample_shard(rng.random_range(0..n), policy, pool, &mut rng, now, false);
            if pool.cands.is_empty() {
                // Sweep every shard before concluding nothing is evictable.
                for idx in 0..n {
                    self.sample_shard(idx, policy, pool, &mut rng, now, true);
                    if !pool.cands.is_empty() {
                        break;
                    }
                }
            }
            let Some(c) = pool.pop_best() else {
                return Err(OutOfMemory);
            };
            if self.evict(&c, policy.is_volatile(), now) {
                evicted += 1;
                fruitless = 0;
            } else {
                fruitless += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(score: u64, key: &'static str) -> Candidate {
        Candidate {
            score,
            shard: 0,
            db: 0,
            hash: key.len() as u64,
            key: Bytes::from_static(key.as_bytes()),
        }
    }

    #[test]
    fn pool_keeps_best() {
        let mut p = EvictionPool::default();
        for i in 0..40u64 {
            p.offer(cand(i, Box::leak(format!("k{i}").into_boxed_str())));
        }
        assert_eq!(p.cands.len(), POOL_SIZE);
        assert_eq!(p.pop_best().unwrap().score, 39);
        p.offer(cand(1000, "k5"));
        p.offer(cand(1001, "k5"));
        assert_eq!(p.cands.iter().filter(|c| c.key == "k5").count(), 1);
        assert_eq!(p.pop_best().unwrap().score, 1001);
    }
}
