//! Hot-key sampling: a bounded top-K per shard (space-saving algorithm).
//!
//! Every [`SAMPLE_INTERVAL`]th lock acquisition on a shard records the key it was for. The
//! space-saving algorithm keeps at most [`TOP_K`] counters: a sampled key already tracked
//! gets `+1`; otherwise it replaces the minimum counter `m` and starts at `m + 1` (its count
//! is an overestimate by at most `m`, kept as `error`). Keys with a true share above
//! `1/K` of a shard's samples are guaranteed to be tracked.
//!
//! To favour the recent past, all counters are halved once a shard has taken
//! [`DECAY_AFTER`] samples.

use bytes::Bytes;

/// Number of keys tracked per shard.
pub const TOP_K: usize = 16;
/// One acquisition in this many is sampled.
pub const SAMPLE_INTERVAL: u64 = 128;
/// A counter's key buffer is reused for the next key up to this capacity (bytes) whatever that
/// key's length; a larger one only for a key at least half its size.
const KEEP_KEY_BUFFER: usize = 256;
/// Samples after which a shard's counters are halved.
const DECAY_AFTER: u64 = 1 << 16;

/// Whether the acquisition that followed the count `prev` should be sampled.
#[inline]
pub(crate) fn should_sample(prev: Option<u64>) -> bool {
    matches!(prev, Some(p) if p % SAMPLE_INTERVAL == 0)
}

#[derive(Debug, Clone)]
pub(crate) struct Counter {
    /// The key's hash (the store's), compared before the key.
    hash: u64,
    /// The key; its buffer is reused by the next key that takes the counter over.
    pub(crate) key: Vec<u8>,
    pub(crate) count: u64,
    pub(crate) error: u64,
}

/// Space-saving top-K for one shard.
#[derive(Debug, Default)]
pub(crate) struct TopK {
    pub(crate) counters: Vec<Counter>,
    /// Samples taken (after decay), the denominator of shares.
    pub(crate) samples: u64,
}

impl TopK {
    /// Records one sampled access to `key` (whose store hash is `hash`). Copies the key only
    /// when it enters the set, into the buffer of the key it replaces (no allocation once the
    /// set is full, unless the key is longer than the buffer; see [`KEEP_KEY_BUFFER`]).
    pub(crate) fn record(&mut self, hash: u64, key: &[u8]) {
        self.samples += 1;
        if let Some(c) = self
            .counters
            .iter_mut()
            .find(|c| c.hash == hash && c.key == key)
        {
            c.count += 1;
        } else if self.counters.len() < TOP_K {
            self.counters.push(Counter {
                hash,
                key: key.to_vec(),
                count: 1,
                error: 0,
            });
        } else if let Some(min) = self.counters.iter_mut().min_by_key(|c| c.count) {
            let m = min.count;
            min.hash = hash;
            if min.key.capacity() > KEEP_KEY_BUFFER && min.key.capacity() / 2 > key.len() {
                // A long key held this counter: do not keep its buffer for short ones.
                min.key = key.to_vec();
            } else {
                min.key.clear();
                min.key.extend_from_slice(key);
            }
            min.count = m + 1;
            min.error = m;
        }
        if self.samples >= DECAY_AFTER {
            self.samples /= 2;
            for c in &mut self.counters {
                c.count /= 2;
                c.error /= 2;
            }
            self.counters.retain(|c| c.count > 0);
        }
    }
}

/// A frequently accessed key, from [`crate::Store::hot_keys`].
#[derive(Debug, Clone, PartialEq)]
pub struct HotKey {
    /// The key.
    pub key: Bytes,
    /// The shard it lives in (to correlate with that shard's lock contention).
    pub shard: usize,
    /// Estimated fraction (0..=1) of all sampled lock acquisitions that were for this key.
    pub estimated_share: f64,
    /// Estimated lock acquisitions for this key (`samples * SAMPLE_INTERVAL`, an overestimate
    /// bounded by the space-saving error).
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_hitters_survive() {
        let mut t = TopK::default();
        let mut record = |key: &[u8]| {
            t.record(
                ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(key),
                key,
            )
        };
        for i in 0..10_000u32 {
            record(b"hot");
            if i % 3 == 0 {
                record(b"warm");
            }
            record(format!("cold{i}").as_bytes());
        }
        assert!(t.counters.len() <= TOP_K);
        let hot = t.counters.iter().find(|c| c.key == b"hot").unwrap();
        assert!(hot.count >= 10_000);
        assert!(t.counters.iter().any(|c| c.key == b"warm"));
    }

    #[test]
    fn a_long_key_does_not_leave_its_buffer_to_short_ones() {
        let mut t = TopK::default();
        for i in 0..TOP_K as u64 {
            t.record(i, &[b'a'; 8]);
        }
        t.record(100, &[b'b'; 10_000]);
        let long = t
            .counters
            .iter()
            .position(|c| c.key.len() == 10_000)
            .unwrap();
        // Make the long key's counter the minimum, the one the next new key takes over.
        for c in &mut t.counters {
            c.count = 5;
        }
        t.counters[long].count = 1;
        t.record(200, b"short");
        let c = t.counters.iter().find(|c| c.key == b"short").unwrap();
        assert!(c.key.capacity() < 1024, "capacity {}", c.key.capacity());
    }

    #[test]
    fn sampling_interval() {
        assert!(should_sample(Some(0)));
        assert!(!should_sample(Some(1)));
        assert!(should_sample(Some(128)));
        assert!(!should_sample(None));
    }
}
