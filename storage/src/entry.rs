//! Stored entries and their LRU / LFU access word.
//!
//! The access word is an `AtomicU32` updated with `Relaxed` loads/stores under the shard's
//! *read* lock. Like Redis's `robj.lru` it is interpreted according to the current eviction
//! policy:
//!
//! * LRU (all non-LFU policies): the low 32 bits of the coarse clock in milliseconds at the
//!   last access. Idle time is `now - word` (wrapping; idle times above ~49 days alias).
//! * LFU: `minutes << 8 | counter` — Redis's 8-bit logarithmic counter (`lfu-log-factor`
//!   10, initial value 5) and 16-bit "last decrement" time in minutes (`lfu-decay-time` 1).
//!
//! Switching policy reinterprets existing words, as in Redis; they converge as keys are
//! touched.

use bytes::Bytes;
use rand::Rng;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// What a write does to a key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Keep the existing TTL (e.g. `SET ... KEEPTTL`, `APPEND`, `INCR`); a new key gets none.
    Keep,
    /// Remove any TTL (plain `SET`).
    Persist,
    /// Expire at this absolute unix time in milliseconds. A time not after now deletes the
    /// key (like `EXPIREAT` in the past).
    At(u64),
}

/// One key/value pair in a shard's table.
pub(crate) struct Entry {
    pub(crate) key: Bytes,
    pub(crate) value: Bytes,
    /// Absolute unix ms, 0 = no TTL.
    pub(crate) expires_at_ms: u64,
    /// The full key hash, so table resizes, scans and the expiry index never rehash.
    pub(crate) hash: u64,
    /// LRU clock or LFU counter, see the module doc.
    pub(crate) access: AtomicU32,
}

impl Entry {
    /// Whether the entry is expired at `now_ms`.
    #[inline]
    pub(crate) fn expired_at(&self, now_ms: u64) -> bool {
        self.expires_at_ms != 0 && self.expires_at_ms <= now_ms
    }
}

/// A read-only view of a live entry, handed to [`crate::Store::read`] closures.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    /// The key.
    pub key: &'a Bytes,
    /// The value; clone it to keep it beyond the closure (a refcount increment, no copy).
    pub value: &'a Bytes,
    /// Absolute expiry time in unix ms; 0 = no TTL.
    pub expires_at_ms: u64,
}

impl<'a> EntryRef<'a> {
    pub(crate) fn from_entry(e: &'a Entry) -> Self {
        EntryRef {
            key: &e.key,
            value: &e.value,
            expires_at_ms: e.expires_at_ms,
        }
    }
}

/// Redis `LFU_INIT_VAL`.
pub(crate) const LFU_INIT_VAL: u8 = 5;
/// Redis `lfu-log-factor` default.
const LFU_LOG_FACTOR: f64 = 10.0;
/// Redis `lfu-decay-time` default, in minutes.
const LFU_DECAY_MINUTES: u32 = 1;

/// Minutes clock used by LFU, 16 bits like Redis's `LFUGetTimeInMinutes`.
#[inline]
pub(crate) fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xFFFF) as u32
}

/// Initial access word for a new entry.
#[inline]
pub(crate) fn initial_access(lfu: bool, coarse_ms: u64) -> u32 {
    if lfu {
        (lfu_minutes(coarse_ms) << 8) | LFU_INIT_VAL as u32
    } else {
        coarse_ms as u32
    }
}

/// The LFU counter of `word` after decay (Redis `LFUDecrAndReturn`).
#[inline]
pub(crate) fn lfu_decayed(word: u32, now_ms: u64) -> u8 {
    let ldt = (word >> 8) & 0xFFFF;
    let counter = (word & 0xFF) as u8;
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= ldt {
        now - ldt
    } else {
        65_535 - ldt + now
    };
    let periods = elapsed / LFU_DECAY_MINUTES;
    counter.saturating_sub(periods.min(255) as u8)
}

/// Logarithmic increment (Redis `LFULogIncr`).
#[inline]
fn lfu_log_incr(counter: u8) -> u8 {
    if counter == 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    if base == 0.0 {
        return counter + 1;
    }
    let p = 1.0 / (base * LFU_LOG_FACTOR + 1.0);
    if rand::rng().random::<f64>() < p {
        counter + 1
    } else {
        counter
    }
}

/// Records an access: under LRU stores the coarse clock (only if it changed, so hot keys
/// read on many cores do not bounce the line); under LFU decays and increments the counter.
#[inline]
pub(crate) fn touch(access: &AtomicU32, lfu: bool, coarse_ms: u64) {
    let old = access.load(Relaxed);
    let new = if lfu {
        let c = lfu_log_incr(lfu_decayed(old, coarse_ms));
        (lfu_minutes(coarse_ms) << 8) | c as u32
    } else {
        coarse_ms as u32
    };
    if new != old {
        access.store(new, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let a = AtomicU32::new(initial_access(true, 0));
        assert_eq!(lfu_decayed(a.load(Relaxed), 0), LFU_INIT_VAL);
        for _ in 0..1000 {
            touch(&a, true, 0);
        }
        let c = lfu_decayed(a.load(Relaxed), 0);
        assert!(c > 10 && c < 60, "counter {c}");
        // Ten minutes later the counter has decayed by ten.
        assert_eq!(lfu_decayed(a.load(Relaxed), 10 * 60_000), c - 10);
    }

    #[test]
    fn lru_stores_clock() {
        let a = AtomicU32::new(initial_access(false, 5));
        touch(&a, false, 1234);
        assert_eq!(a.load(Relaxed), 1234);
    }
}
