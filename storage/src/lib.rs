//! # shardcache-storage
//!
//! The in-memory keyspace of shardcache: shards, locks, expiry, memory accounting,
//! eviction and statistics. Nothing here knows about sockets, tokio or RESP; the server
//! crate wires commands to [`Store`].
//!
//! ## Design
//!
//! * A [`Store`] has N shards (a power of two). A key is hashed once per command with a
//!   process-wide random `ahash` seed; bits 32..48 pick the shard and the same `u64` is the
//!   hash inside the shard's `hashbrown::HashTable` (one table per logical database).
//! * Each shard sits behind an [`InstrumentedRwLock`] that counts acquisitions and measures
//!   contended waits into a histogram ([`LOCK_WAIT_BUCKETS_NS`]): the store *shows its own
//!   lock contention* ([`Store::shard_stats`]) and which keys cause it
//!   ([`Store::hot_keys`]).
//! * A key is one heap block holding its header, key and value ([`entry_memory`] and the
//!   `entry` module); a table slot is one pointer to it. Readers copy what they need under
//!   the read lock ([`EntryRef`]); only values in a buffer of their own (over
//!   [`INLINE_MAX`], or where that costs less memory) are shared as `Bytes`.
//! * Expiry is lazy (an expired entry is never observable) plus active (a per-shard
//!   expiry index drained by [`Store::expire_cycle`], run by [`Reclaimer::spawn`]).
//! * Memory is accounted per entry ([`memory`]) and bounded by `maxmemory` with Redis's
//!   eviction policies ([`EvictionPolicy`], [`Store::reclaim_memory`]).
//!
//! ## Invariants
//!
//! * The plain GET / SET path reads no clock and allocates nothing but the stored entry.
//! * No module depends on one above it: `memory` < `entry` < `table` < `shard` < `evict` <
//!   `store` < `reclaimer`; shards borrow the store's `Globals`, never the `Store`.
//! * Multi-key operations lock shards in ascending index order.
//! * Every mutation goes through one place that keeps memory, TTL and key counts exact.

#![warn(missing_docs)]

pub mod blame;
mod clock;
mod entry;
mod error;
mod evict;
mod glob;
mod globals;
mod hotkeys;
mod lock;
pub mod memory;
mod policy;
mod reclaimer;
mod shard;
mod store;
mod table;

pub use blame::{LOCK_HOLD_BUCKETS_NS, LOCK_WAIT_BUCKETS_NS};
pub use clock::{Clock, ManualClock, SystemClock};
pub use entry::{entry_memory, EntryRef, Expiry, Removed, INLINE_MAX};
pub use error::{OutOfMemory, StorageError};
pub use glob::glob_match;
pub use hotkeys::{
    HotKey, SAMPLE_INTERVAL as HOT_KEY_SAMPLE_INTERVAL, TOP_K as HOT_KEYS_PER_SHARD,
};
pub use lock::{InstrumentedRwLock, LockModeStats, ReadGuard, WriteGuard};
pub use policy::{EvictionPolicy, UnknownPolicy};
pub use reclaimer::{Reclaimer, RECLAIM_BUDGET_PER_SHARD};
pub use shard::WatchFlag;
pub use store::{
    DbStats, MultiRead, MultiSlots, NoTouch, ShardStats, Slot, Store, StoreConfig, StoreStats,
    MAX_DATABASES, MAX_SHARDS, MAX_TABLES,
};
