//! What every shard needs from the store besides its own data: the hash seed, the clock,
//! the eviction policy and the memory limit. Shards borrow this, never the whole `Store`,
//! so that `shard` sits below `store` and not beside it.

use crate::clock::Clock;
use crate::policy::EvictionPolicy;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

/// Bytes of memory-accounting change a shard accumulates before it publishes them to the
/// store-wide total: writes do not touch a line shared by every thread, and the total the
/// `maxmemory` check reads lags the truth by at most this much per shard.
pub(crate) const PUBLISH_MEMORY_EVERY: i64 = 16 * 1024;

/// A value on its own cache line (for atomics written by many threads).
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(pub(crate) T);

/// The process-wide hash seed: random per process, shared by all stores.
fn process_hasher() -> ahash::RandomState {
    static HASHER: OnceLock<ahash::RandomState> = OnceLock::new();
    HASHER.get_or_init(ahash::RandomState::new).clone()
}

/// Store-wide settings and clocks, read by every shard operation.
pub(crate) struct Globals {
    pub(crate) hasher: ahash::RandomState,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) maxmemory: AtomicU64,
    pub(crate) policy: AtomicU8,
    pub(crate) samples: AtomicUsize,
    /// Coarse clock (unix ms) for LRU/LFU, advanced by the reclaimer's tick.
    pub(crate) coarse_ms: AtomicU64,
    /// Accounted bytes of all shards, published in steps of [`PUBLISH_MEMORY_EVERY`].
    pub(crate) used_memory: Padded<AtomicU64>,
}

impl Globals {
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        maxmemory: u64,
        policy: EvictionPolicy,
        samples: usize,
    ) -> Self {
        let now = clock.now_ms();
        Globals {
            hasher: process_hasher(),
            clock,
            maxmemory: AtomicU64::new(maxmemory),
            policy: AtomicU8::new(policy.to_u8()),
            samples: AtomicUsize::new(samples.max(1)),
            coarse_ms: AtomicU64::new(now),
            used_memory: Padded(AtomicU64::new(0)),
        }
    }

    /// The key's hash.
    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    #[inline]
    pub(crate) fn coarse_now(&self) -> u64 {
        self.coarse_ms.load(Relaxed)
    }

    #[inline]
    pub(crate) fn policy(&self) -> EvictionPolicy {
        EvictionPolicy::from_u8(self.policy.load(Relaxed))
    }
}
