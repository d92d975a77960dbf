//! The sharded store.

use crate::clock::{Clock, SystemClock};
use crate::entry::{touch, EntryBox, EntryRef, Expiry, Removed};
use crate::error::StorageError;
use crate::evict::{sample_table, EvictionPool};
use crate::glob::{glob_match, is_literal};
use crate::globals::Globals;
use crate::hotkeys::{should_sample, HotKey, SAMPLE_INTERVAL};
use crate::lock::LockModeStats;
use crate::policy::EvictionPolicy;
use crate::shard::{
    in_transaction, ExpiryItem, HeldShards, Shard, ShardData, ShardMut, ShardRead, ShardWrite,
    ValueSrc, WatchFlag, EXPIRE_BATCH,
};
use crate::table::{segment_of, Table, SEGMENTS};
use bytes::Bytes;
use parking_lot::Mutex;
use rand::Rng;
use std::cell::Cell;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// The bounds on shards and databases are the config crate's, where the options are validated
/// (cursor encoding reserves 16 bits for the shard; each table is a header of ~64 bytes).
pub use shardcache_config::{MAX_DATABASES, MAX_SHARDS, MAX_TABLES};

/// Store configuration. Everything but `shards`, `databases` and `instrument` can be
/// changed at runtime through setters on [`Store`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Number of shards, a power of two in `1..=65536`. More shards mean less lock
    /// contention and cheaper per-shard scans, at ~1.5 KiB of fixed cost each.
    pub shards: usize,
    /// Number of logical databases (Redis `databases`, `SELECT 0..n-1`), `1..=65536`, and
    /// `shards * databases <= 4194304`.
    pub databases: usize,
    /// Memory limit in accounted bytes (see [`crate::memory`]); 0 = unlimited.
    pub maxmemory: u64,
    /// What to evict above `maxmemory`.
    pub policy: EvictionPolicy,
    /// Keys sampled per eviction round (Redis `maxmemory-samples`).
    pub samples: usize,
    /// Count lock acquisitions and waits, and sample hot keys. Off = plain locks.
    pub instrument: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            shards: 16,
            databases: 16,
            maxmemory: 0,
            policy: EvictionPolicy::NoEviction,
            samples: 5,
            instrument: true,
        }
    }
}

/// Keyspace summary of one database, for `INFO keyspace`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbStats {
    /// Live keys.
    pub keys: u64,
    /// Live keys with a TTL.
    pub expires: u64,
    /// Average remaining TTL of `expires` keys, in ms (0 if none).
    pub avg_ttl_ms: u64,
}

/// Per-shard observability snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Entries in the shard, all databases, including expired ones not yet reclaimed.
    pub keys: u64,
    /// Accounted bytes of the shard's entries.
    pub used_memory: u64,
    /// Shared-lock counters.
    pub read: LockModeStats,
    /// Exclusive-lock counters.
    pub write: LockModeStats,
}

/// Store-wide counters, summed over shards on demand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Lookups that found a live key (Redis `keyspace_hits`).
    pub hits: u64,
    /// Lookups that did not (Redis `keyspace_misses`).
    pub misses: u64,
    /// Keys removed because their TTL passed (`expired_keys`).
    pub expired: u64,
    /// Keys removed to get under `maxmemory` (`evicted_keys`).
    pub evicted: u64,
    /// Entries, including expired ones not yet reclaimed.
    pub keys: u64,
    /// Accounted bytes (`used_memory`).
    pub used_memory: u64,
}

/// A sharded, lock-instrumented in-memory key-value store with Redis semantics for
/// expiry and eviction. `Send + Sync`; share it as `Arc<Store>`.
///
/// Closures passed to [`Store::read`], [`Store::write`] and the multi-key variants run
/// while shard locks are held: they must be short and must not call back into the store
/// (that can deadlock).
pub struct Store {
    pub(crate) shards: Box<[Shard]>,
    shard_mask: u64,
    databases: usize,
    pub(crate) g: Globals,
    pub(crate) evict_pool: Mutex<EvictionPool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("shards", &self.shards.len())
            .field("databases", &self.databases)
            .field("used_memory", &self.used_memory())
            .field("maxmemory", &self.maxmemory())
            .field("policy", &self.policy())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Creates a store using the system clock.
    ///
    /// # Errors
    /// [`StorageError::InvalidShardCount`] unless `shards` is a power of two in
    /// `1..=65536`; [`StorageError::InvalidDatabases`] unless `databases` is in
    /// `1..=65536` and `shards * databases <= 4194304`.
    pub fn new(cfg: StoreConfig) -> Result<Store, StorageError> {
        Self::with_clock(cfg, Arc::new(SystemClock))
    }

    /// Creates a store reading time from `clock` (tests use [`crate::ManualClock`]).
    ///
    /// # Errors
    /// As [`Store::new`].
    pub fn with_clock(cfg: StoreConfig, clock: Arc<dyn Clock>) -> Result<Store, StorageError> {
        if !cfg.shards.is_power_of_two() || cfg.shards > MAX_SHARDS {
            return Err(StorageError::InvalidShardCount(cfg.shards));
        }
        if cfg.databases == 0
            || cfg.databases > MAX_DATABASES
            || cfg.shards.saturating_mul(cfg.databases) > MAX_TABLES
        {
            return Err(StorageError::InvalidDatabases(cfg.databases));
        }
        Ok(Store {
            shards: (0..cfg.shards)
                .map(|i| Shard::new(i, cfg.databases, cfg.instrument))
                .collect(),
            shard_mask: cfg.shards as u64 - 1,
            databases: cfg.databases,
            g: Globals::new(clock, cfg.maxmemory, cfg.policy, cfg.samples),
            evict_pool: Mutex::new(EvictionPool::default()),
        })
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Number of logical databases; valid `db` arguments are `0..databases()`.
    pub fn databases(&self) -> usize {
        self.databases
    }

    /// Current time from the store's clock, unix ms (for computing `Expiry::At`).
    pub fn now_ms(&self) -> u64 {
        self.g.now_ms()
    }

    /// The key's hash (process-wide random seed). Computed once per command.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.g.hash(key)
    }

    /// Shard index for a hash. Uses bits 32..48: the table inside a shard uses the low bits
    /// for the bucket, bits 48..56 for the segment and the top 7 bits as the control tag, so
    /// the shard bits must be none of those (otherwise all keys of a shard would share a home
    /// bucket).
    #[inline]
    fn shard_index(&self, hash: u64) -> usize {
        ((hash >> 32) & self.shard_mask) as usize
    }

    /// The shard a key lives in (to correlate keys with per-shard lock stats).
    pub fn shard_of(&self, key: &[u8]) -> usize {
        self.shard_index(self.hash(key))
    }

    /// Advances the coarse clock used for LRU/LFU from the real clock. The reclaimer calls
    /// this every tick (like Redis's `serverCron`); eviction calls it too.
    pub fn tick(&self) {
        self.g.coarse_ms.store(self.g.now_ms(), Relaxed);
    }

    /// Whether `e` is not expired; reads the clock only if it has a TTL.
    #[inline]
    pub(crate) fn live(&self, e: &EntryBox) -> bool {
        let at = e.expires_at();
        at == 0 || at > self.g.now_ms()
    }

    #[inline]
    fn touch(&self, e: &EntryBox) {
        if NO_TOUCH.with(Cell::get) {
            return;
        }
        touch(e.access(), self.g.policy().is_lfu(), self.g.coarse_now());
    }

    #[inline]
    fn shard_mut<'a>(&'a self, idx: usize, data: &'a mut ShardData) -> ShardMut<'a> {
        ShardMut {
            g: &self.g,
            shard: &self.shards[idx],
            data,
        }
    }

    #[cold]
    fn sample_hot(&self, shard: usize, hash: u64, key: &[u8]) {
        self.shards[shard].hot.lock().record(hash, key);
    }

    // ---------------------------------------------------------------- single key

    /// GET: the live value of `key`, as an owned `Bytes` (see [`EntryRef::value_bytes`]).
    /// Counts a keyspace hit or miss and touches the key's LRU/LFU word. A server writing the
    /// value into a reply should use [`Store::read`] and copy it there instead.
    ///
    /// # Panics
    /// If `db >= self.databases()` (the caller validates `SELECT`).
    #[inline]
    pub fn get(&self, db: usize, key: &[u8]) -> Option<Bytes> {
        self.read(db, key, |e| e.map(|e| e.value_bytes()))
    }

    /// A hint that `key` (in `db`) is about to be used: starts loading its table slots and
    /// entry into the CPU cache, so that a batch of pipelined requests prefetched first and
    /// executed after waits for memory once, in parallel, instead of once per request. Changes
    /// nothing (no hit or miss, no LRU touch) and does not wait: it is skipped when the shard
    /// is write-locked, and its brief shared hold is not counted in the lock statistics.
    #[inline]
    pub fn prefetch(&self, db: usize, key: &[u8]) {
        let hash = self.hash(key);
        let shard = &self.shards[self.shard_index(hash)];
        if let Some(g) = shard.lock.try_read_uncounted() {
            if let Some(t) = g.tables.get(db) {
                t.prefetch(hash);
            }
        }
    }

    /// Generic lookup under the shard's read lock: `f` sees the live entry or `None`
    /// (an expired entry is `None`). Like Redis `lookupKeyRead`, counts a keyspace hit or
    /// miss and touches LRU/LFU; use [`Store::peek`] for lookups that should not.
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    #[inline]
    pub fn read<R>(&self, db: usize, key: &[u8], f: impl FnOnce(Option<EntryRef<'_>>) -> R) -> R {
        self.read_impl(db, key, true, f)
    }

    /// Like [`Store::read`] but neither counts hits/misses nor touches LRU/LFU (for TTL,
    /// EXISTS-like or introspection commands).
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn peek<R>(&self, db: usize, key: &[u8], f: impl FnOnce(Option<EntryRef<'_>>) -> R) -> R {
        self.read_impl(db, key, false, f)
    }

    #[inline]
    fn read_impl<R>(
        &self,
        db: usize,
        key: &[u8],
        lookup: bool,
        f: impl FnOnce(Option<EntryRef<'_>>) -> R,
    ) -> R {
        let hash = self.hash(key);
        let idx = self.shard_index(hash);
        let shard = &self.shards[idx];
        let (guard, prev) = shard.read_sampled();
        let found = guard.tables[db].find(hash, key).filter(|e| self.live(e));
        if lookup {
            let c = &shard.counters;
            match found {
                Some(e) => {
                    self.touch(e);
                    c.hits.fetch_add(1, Relaxed);
                }
                None => {
                    c.misses.fetch_add(1, Relaxed);
                }
            }
        }
        let r = f(found.map(EntryRef::from_entry));
        drop(guard);
        if should_sample(prev) {
            self.sample_hot(idx, hash, key);
        }
        r
    }

    /// Generic read-modify-write under the shard's write lock. An expired entry is removed
    /// first, so the slot looks empty. The key is copied into an owned `Bytes` only if `f`
    /// inserts it.
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    #[inline]
    pub fn write<R>(&self, db: usize, key: &[u8], f: impl FnOnce(&mut Slot<'_>) -> R) -> R {
        let hash = self.hash(key);
        let idx = self.shard_index(hash);
        let shard = &self.shards[idx];
        let (mut guard, prev) = shard.write_sampled();
        let mut sm = self.shard_mut(idx, &mut guard);
        sm.remove_if_expired(db, hash, key);
        let mut slot = Slot {
            sm,
            db,
            hash,
            key,
            garbage: None,
        };
        let r = f(&mut slot);
        let garbage = slot.garbage.take();
        drop(guard);
        // A replaced or removed block is freed after the lock is released.
        drop(garbage);
        if should_sample(prev) {
            self.sample_hot(idx, hash, key);
        }
        r
    }

    /// SET: stores a copy of `value` under a copy of `key` and applies `expiry`. The entry's
    /// block is built before the shard's write lock is taken and the replaced one is freed
    /// after it is released: the lock covers only the table operation.
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn set(&self, db: usize, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, expiry: Expiry) {
        let key = key.as_ref();
        let hash = self.hash(key);
        let idx = self.shard_index(hash);
        let at = match expiry {
            Expiry::At(t) => t,
            _ => 0,
        };
        let new = EntryBox::new(key, value.as_ref(), at != 0, at);
        let shard = &self.shards[idx];
        let (mut guard, prev) = shard.write_sampled();
        let mut sm = self.shard_mut(idx, &mut guard);
        sm.remove_if_expired(db, hash, key);
        let old = sm.put(db, hash, key, new, expiry == Expiry::Keep);
        drop(guard);
        drop(old);
        if should_sample(prev) {
            self.sample_hot(idx, hash, key);
        }
    }

    /// DEL of one key: true if a live key was removed.
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn delete(&self, db: usize, key: &[u8]) -> bool {
        self.write(db, key, |s| s.remove().is_some())
    }

    // ---------------------------------------------------------------- multi key

    fn plan(&self, keys: &[&[u8]]) -> (Vec<u64>, Vec<usize>, Vec<usize>) {
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k)).collect();
        let mut shards: Vec<usize> = hashes.iter().map(|&h| self.shard_index(h)).collect();
        shards.sort_unstable();
        shards.dedup();
        let pos = hashes
            .iter()
            .map(|&h| {
                shards
                    .binary_search(&self.shard_index(h))
                    .unwrap_or_default()
            })
            .collect();
        (hashes, shards, pos)
    }

    /// Atomic multi-key write (MSET, DEL k1 k2, RENAME…): write-locks every involved shard
    /// once, in ascending shard order (so multi-key operations never deadlock), removes
    /// expired entries of the keys, then runs `f`. Readers see all of `f`'s changes or none.
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn write_many<R>(
        &self,
        db: usize,
        keys: &[&[u8]],
        f: impl FnOnce(&mut MultiSlots<'_>) -> R,
    ) -> R {
        let (hashes, shard_ids, pos) = self.plan(keys);
        let mut guards = Vec::with_capacity(shard_ids.len());
        let mut sampled = Vec::new();
        for &s in &shard_ids {
            let (g, prev) = self.shards[s].write_sampled();
            if should_sample(prev) {
                sampled.push(s);
            }
            guards.push((s, g));
        }
        for (i, key) in keys.iter().enumerate() {
            let (s, g) = &mut guards[pos[i]];
            self.shard_mut(*s, g).remove_if_expired(db, hashes[i], key);
        }
        let mut ms = MultiSlots {
            store: self,
            db,
            keys,
            hashes,
            pos,
            guards,
        };
        let r = f(&mut ms);
        let MultiSlots {
            guards,
            pos,
            hashes,
            ..
        } = ms;
        drop(guards);
        self.sample_multi(&sampled, keys, &hashes, &pos);
        r
    }

    fn sample_multi(&self, sampled: &[usize], keys: &[&[u8]], hashes: &[u64], _pos: &[usize]) {
        for &s in sampled {
            if let Some(i) = hashes.iter().position(|&h| self.shard_index(h) == s) {
                self.sample_hot(s, hashes[i], keys[i]);
            }
        }
    }

    /// Atomic multi-key read (MGET, EXISTS k1 k2…): read-locks every involved shard once,
    /// in ascending order, and runs `f` on a consistent snapshot of the keys.
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn read_many<R>(
        &self,
        db: usize,
        keys: &[&[u8]],
        f: impl FnOnce(&MultiRead<'_>) -> R,
    ) -> R {
        let (hashes, shard_ids, pos) = self.plan(keys);
        let mut guards = Vec::with_capacity(shard_ids.len());
        let mut sampled = Vec::new();
        for &s in &shard_ids {
            let (g, prev) = self.shards[s].read_sampled();
            if should_sample(prev) {
                sampled.push(s);
            }
            guards.push((s, g));
        }
        let mr = MultiRead {
            store: self,
            db,
            keys,
            hashes,
            pos,
            guards,
        };
        let r = f(&mr);
        let MultiRead {
            guards,
            pos,
            hashes,
            ..
        } = mr;
        drop(guards);
        self.sample_multi(&sampled, keys, &hashes, &pos);
        r
    }

    // ---------------------------------------------------------------- transactions

    /// Runs `f` as one atomic unit (`EXEC`): write-locks the shards of `keys` (every shard
    /// for `None`, for commands whose keys are not known in advance), once each, in
    /// ascending order like [`Store::write_many`], then runs `f`; while it runs, every store
    /// operation *on this thread* uses those locks instead of taking its own, so no other
    /// client observes part of what `f` does. The acquisitions are counted, and their waits
    /// measured, like any other. An operation inside `f` on a shard that was not locked
    /// takes its lock as usual (so the caller must name every key it will touch, or `None`).
    /// A transaction inside a transaction just runs `f`.
    ///
    /// # Panics
    /// If `f` panics (the locks are released and the held set restored first).
    pub fn transaction<R>(&self, keys: Option<&[&[u8]]>, f: impl FnOnce() -> R) -> R {
        if in_transaction() {
            return f();
        }
        let mut ids: Vec<usize> = match keys {
            Some(keys) => keys.iter().map(|k| self.shard_of(k)).collect(),
            None => (0..self.shards.len()).collect(),
        };
        ids.sort_unstable();
        ids.dedup();
        let mut guards: Vec<_> = ids.iter().map(|&i| self.shards[i].lock.write()).collect();
        let mut held = HeldShards {
            held: ids
                .iter()
                .zip(guards.iter_mut())
                .map(|(&i, g)| (&self.shards[i] as *const Shard, &mut **g as *mut ShardData))
                .collect(),
        };
        held.held.sort_unstable_by_key(|h| h.0);
        let reset = held.install();
        let r = f();
        drop(reset);
        // Memory changes made under the transaction are published like any others.
        for (&i, g) in ids.iter().zip(guards.iter_mut()) {
            ShardMut {
                g: &self.g,
                shard: &self.shards[i],
                data: g,
            }
            .flush_memory();
        }
        drop(guards);
        r
    }

    /// `WATCH`: from now on, any change to `key` in `db` (write, delete, expiry, eviction,
    /// flush) sets `flag`. Returns whether the key is already logically expired (Redis does
    /// not abort `EXEC` for a key that had expired before it was watched).
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn watch(&self, db: usize, key: &[u8], flag: &Arc<WatchFlag>) -> bool {
        let hash = self.hash(key);
        let mut g = self.shards[self.shard_index(hash)].write();
        let expired = g.tables[db].find(hash, key).is_some_and(|e| !self.live(e));
        let w = g.watches.get_or_insert_with(Box::default);
        let flags = w
            .keys
            .entry((db as u32, Box::<[u8]>::from(key)))
            .or_default();
        if !flags.iter().any(|f| Arc::ptr_eq(f, flag)) {
            flags.push(Arc::clone(flag));
        }
        expired
    }

    /// Stops `flag` watching `key` in `db` (`UNWATCH`, `EXEC`, `DISCARD`, disconnect).
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn unwatch(&self, db: usize, key: &[u8], flag: &Arc<WatchFlag>) {
        let hash = self.hash(key);
        let mut g = self.shards[self.shard_index(hash)].write();
        let Some(w) = g.watches.as_mut() else {
            return;
        };
        let k = (db as u32, Box::<[u8]>::from(key));
        if let Some(flags) = w.keys.get_mut(&k) {
            flags.retain(|f| !Arc::ptr_eq(f, flag));
            if flags.is_empty() {
                w.keys.remove(&k);
            }
        }
        if w.keys.is_empty() {
            g.watches = None;
        }
    }

    /// Whether `key` is in `db` but logically expired (`EXEC` aborts for a watched key that
    /// expired after it was watched, even if nothing has removed it yet).
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn is_expired(&self, db: usize, key: &[u8]) -> bool {
        let hash = self.hash(key);
        let g = self.shards[self.shard_index(hash)].read();
        g.tables[db].find(hash, key).is_some_and(|e| !self.live(e))
    }

    /// `OBJECT IDLETIME` in milliseconds from an entry's access word (LRU policies only).
    pub fn object_idle_ms(&self, access_word: u32) -> u64 {
        u64::from((self.g.coarse_now() as u32).wrapping_sub(access_word))
    }

    /// `OBJECT FREQ` from an entry's access word: the decayed LFU counter (LFU policies).
    pub fn object_freq(&self, access_word: u32) -> u8 {
        crate::entry::lfu_decayed(access_word, self.g.coarse_now())
    }

    /// `SWAPDB a b`: swaps two databases atomically (every shard is locked, in ascending
    /// order, for the whole swap). Clients watching a key that exists in either database are
    /// touched, as Redis does.
    ///
    /// # Panics
    /// If `a` or `b` is not below `self.databases()`.
    pub fn swap_db(&self, a: usize, b: usize) {
        assert!(a < self.databases && b < self.databases);
        if a == b {
            return;
        }
        self.transaction(None, || {
            for shard in self.shards.iter() {
                let mut g = shard.write();
                let data: &mut ShardData = &mut g;
                if let Some(w) = &data.watches {
                    for ((db, key), flags) in &w.keys {
                        let db = *db as usize;
                        let h = self.hash(key);
                        if (db == a || db == b)
                            && (data.tables[a].find(h, key).is_some()
                                || data.tables[b].find(h, key).is_some())
                        {
                            flags.iter().for_each(|f| f.touch());
                        }
                    }
                }
                data.tables.swap(a, b);
                data.dbs.swap(a, b);
                if data.ttl_keys > 0 {
                    let items: Vec<ExpiryItem> = std::mem::take(&mut data.expiry)
                        .into_vec()
                        .into_iter()
                        .map(|it| match it.db() {
                            d if d == a => it.with_db(b),
                            d if d == b => it.with_db(a),
                            _ => it,
                        })
                        .collect();
                    data.expiry = std::collections::BinaryHeap::from(items);
                }
            }
        })
    }

    // ---------------------------------------------------------------- keyspace

    /// DBSIZE: live keys in `db`. O(shards) unless some shard has due-but-unreclaimed
    /// expired keys, in which case that shard is counted entry by entry.
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn dbsize(&self, db: usize) -> usize {
        self.db_stats_impl(db, false).keys as usize
    }

    /// KEYS: all live keys of `db` matching the Redis glob `pattern`. O(keys); shards are
    /// locked one at a time.
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn keys(&self, db: usize, pattern: &[u8]) -> Vec<Bytes> {
        let all = pattern == b"*";
        if is_literal(pattern) {
            return self
                .peek(db, pattern, |e| e.map(|e| Bytes::copy_from_slice(e.key)))
                .into_iter()
                .collect();
        }
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let g = shard.read();
            let mut now = None;
            for e in g.tables[db].iter() {
                let at = e.expires_at();
                if at != 0 && at <= *now.get_or_insert_with(|| self.now_ms()) {
                    continue;
                }
                if all || glob_match(pattern, e.key()) {
                    out.push(Bytes::copy_from_slice(e.key()));
                }
            }
        }
        out
    }

    /// SCAN. The cursor is `(shard << 48) | position`, where a key's position is a fixed
    /// function of its hash: the table segment in the top 8 bits, then the hash's low 40 bits
    /// (`scan_position`). Each call returns keys of one shard (or more, if a shard runs
    /// out) in position order, ties together. So every key present for the whole scan is
    /// returned at least once, whatever inserts, deletes and table growth happen between
    /// calls. Cursor 0 starts and a returned 0 ends the scan.
    ///
    /// `count` is a hint, as in Redis: a call examines about `count` keys, visiting
    /// segments in order and hashing only the keys of the segments it visits. `pattern`
    /// filters after selection, so a call may return no keys with a non-zero cursor. An
    /// invalid cursor ends the scan.
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn scan(
        &self,
        db: usize,
        cursor: u64,
        count: usize,
        pattern: Option<&[u8]>,
    ) -> (u64, Vec<Bytes>) {
        const POS_BITS: u32 = 48;
        const POS_MASK: u64 = (1 << POS_BITS) - 1;
        let mut shard = (cursor >> POS_BITS) as usize;
        let mut from = cursor & POS_MASK;
        let mut out = Vec::new();
        if shard >= self.shards.len() {
            return (0, out);
        }
        let count = count.max(1);
        // Like Redis, a lone "*" is no filter (it would not match the empty key).
        let pattern = pattern.filter(|p| *p != b"*");
        let mut examined = 0usize;
        let mut now = None;
        loop {
            let g = self.shards[shard].read();
            let mut cands: Vec<(u64, &[u8])> = Vec::new();
            let segs = g.tables[db].segments();
            let mut seg = (from >> SCAN_SEGMENT_SHIFT) as usize;
            let mut next = None;
            while seg < segs.len() {
                cands.clear();
                for e in segs[seg].iter() {
                    let pos = scan_position(self.hash(e.key()));
                    if pos < from {
                        continue;
                    }
                    let at = e.expires_at();
                    if at != 0 && at <= *now.get_or_insert_with(|| self.now_ms()) {
                        continue;
                    }
                    cands.push((pos, e.key()));
                }
                let want = count.saturating_sub(examined).max(1);
                if cands.len() > want {
                    cands.select_nth_unstable_by_key(want - 1, |c| c.0);
                    let t = cands[want - 1].0;
                    cands.retain(|c| c.0 <= t);
                    // Positions within a segment stay below the next segment's first.
                    next = Some(((shard as u64) << POS_BITS) | (t + 1));
                }
                cands.sort_unstable_by_key(|c| c.0);
                examined += cands.len();
                out.extend(
                    cands
                        .iter()
                        .filter(|c| pattern.map_or(true, |p| glob_match(p, c.1)))
                        .map(|c| Bytes::copy_from_slice(c.1)),
                );
                if next.is_some() {
                    break;
                }
                seg += 1;
                from = (seg as u64) << SCAN_SEGMENT_SHIFT;
                if examined >= count && seg < segs.len() {
                    next = Some(((shard as u64) << POS_BITS) | from);
                    break;
                }
            }
            drop(cands);
            drop(g);
            if let Some(c) = next {
                return (c, out);
            }
            shard += 1;
            from = 0;
            if shard == self.shards.len() {
                return (0, out);
            }
            if examined >= count {
                return ((shard as u64) << POS_BITS, out);
            }
        }
    }

    /// RANDOMKEY: a random live key of `db`, or `None` if it has none.
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn random_key(&self, db: usize) -> Option<Bytes> {
        let mut rng = rand::rng();
        let n = self.shards.len();
        let start = rng.random_range(0..n);
        for k in 0..n {
            let g = self.shards[(start + k) & (n - 1)].read();
            let table = &g.tables[db];
            if table.is_empty() {
                continue;
            }
            let mut live = Vec::new();
            sample_table(table, 4, &mut rng, |e| {
                if self.live(e) {
                    live.push(e);
                }
            });
            let mut found = (!live.is_empty())
                .then(|| Bytes::copy_from_slice(live[rng.random_range(0..live.len())].key()));
            if found.is_none() {
                found = table
                    .iter()
                    .find(|e| self.live(e))
                    .map(|e| Bytes::copy_from_slice(e.key()));
            }
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// FLUSHDB. With `lazy`, the old tables are dropped on a background thread (`FLUSHDB
    /// ASYNC`), so each shard's write lock is held only to swap in an empty table.
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn flush_db(&self, db: usize, lazy: bool) {
        let mut garbage = Vec::new();
        for shard in self.shards.iter() {
            let mut g = shard.write();
            let old = ShardMut {
                g: &self.g,
                shard,
                data: &mut g,
            }
            .take_db(db);
            drop(g);
            if !old.is_empty() {
                garbage.push(old);
            }
        }
        self.drop_tables(garbage, lazy);
    }

    /// FLUSHALL, see [`Store::flush_db`].
    pub fn flush_all(&self, lazy: bool) {
        let mut garbage = Vec::new();
        for shard in self.shards.iter() {
            let mut g = shard.write();
            let mut sm = ShardMut {
                g: &self.g,
                shard,
                data: &mut g,
            };
            for db in 0..self.databases {
                let old = sm.take_db(db);
                if !old.is_empty() {
                    garbage.push(old);
                }
            }
        }
        self.drop_tables(garbage, lazy);
    }

    fn drop_tables(&self, garbage: Vec<Table>, lazy: bool) {
        if garbage.is_empty() {
            return;
        }
        if lazy {
            let spawned = std::thread::Builder::new()
                .name("shardcache-lazyfree".into())
                .spawn(move || drop(garbage));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not spawn lazy-free thread; freeing inline");
            }
        } else {
            drop(garbage);
        }
    }

    /// `INFO keyspace` numbers for `db`: live keys, live keys with a TTL, average TTL.
    ///
    /// # Panics
    /// If `db >= self.databases()`.
    pub fn db_stats(&self, db: usize) -> DbStats {
        self.db_stats_impl(db, true)
    }

    fn db_stats_impl(&self, db: usize, want_ttl: bool) -> DbStats {
        let now = self.now_ms();
        let (mut keys, mut expires, mut ttl_sum) = (0u64, 0u64, 0u128);
        for shard in self.shards.iter() {
            let g = shard.read();
            let meta = g.dbs[db];
            let table = &g.tables[db];
            if meta.ttl_keys == 0 || g.next_expiry > now {
                // Nothing due in this shard: the bookkeeping is exact.
                keys += table.len() as u64;
                expires += meta.ttl_keys;
                ttl_sum += meta.ttl_sum - meta.ttl_keys as u128 * now as u128;
            } else {
                for e in table.iter() {
                    let at = e.expires_at();
                    if at == 0 {
                        keys += 1;
                    } else if at > now {
                        keys += 1;
                        if want_ttl {
                            expires += 1;
                            ttl_sum += (at - now) as u128;
                        }
                    }
                }
            }
        }
        DbStats {
            keys,
            expires,
            avg_ttl_ms: if expires == 0 {
                0
            } else {
                (ttl_sum / expires as u128) as u64
            },
        }
    }

    // ---------------------------------------------------------------- expiry / memory

    /// Active expiry: removes up to `budget_per_shard` due keys per shard (reading the clock
    /// once), holding each shard's write lock for at most a batch of 256 removals. Shards
    /// with nothing due are skipped without locking. Returns the number of keys removed.
    pub fn expire_cycle(&self, budget_per_shard: usize) -> usize {
        self.expire_cycle_inner(budget_per_shard).0
    }

    /// Returns (removed, whether some shard used its whole budget and still has due keys).
    pub(crate) fn expire_cycle_inner(&self, budget_per_shard: usize) -> (usize, bool) {
        let now = self.now_ms();
        self.g.coarse_ms.store(now, Relaxed);
        let mut removed = 0;
        let mut saturated = false;
        for shard in self.shards.iter() {
            if shard.next_expiry.load(Relaxed) > now {
                continue;
            }
            let mut left = budget_per_shard;
            while left > 0 {
                let batch = left.min(EXPIRE_BATCH);
                let mut g = shard.write();
                let (n, more) = ShardMut {
                    g: &self.g,
                    shard,
                    data: &mut g,
                }
                .expire_some(now, batch);
                drop(g);
                removed += n;
                left -= batch;
                if !more {
                    break;
                }
                if left == 0 {
                    saturated = true;
                }
            }
        }
        (removed, saturated)
    }

    /// Called before every command that may grow memory (Redis `performEvictions`). Fast
    /// path: one atomic load when under the limit. Otherwise evicts keys per the policy,
    /// using Redis's approximation (sample `samples` keys into a pool of the 16 best
    /// candidates, evict the best, repeat) until under the limit.
    ///
    /// # Errors
    /// [`crate::OutOfMemory`] if still above `maxmemory` and the policy is `noeviction` or
    /// nothing is evictable.
    #[inline]
    pub fn reclaim_memory(&self) -> Result<(), crate::OutOfMemory> {
        let max = self.g.maxmemory.load(Relaxed);
        if max == 0 {
            return Ok(());
        }
        // The published total lags each shard by less than PUBLISH_MEMORY_EVERY: far under
        // the limit one load decides; near it, the exact per-shard sum does.
        let slack = self.shards.len() as u64 * crate::globals::PUBLISH_MEMORY_EVERY as u64;
        if self.g.used_memory.0.load(Relaxed).saturating_add(slack) <= max
            || self.used_memory() <= max
        {
            return Ok(());
        }
        self.evict_until_under()
    }

    #[cold]
    fn evict_until_under(&self) -> Result<(), crate::OutOfMemory> {
        let mut pool = self.evict_pool.lock();
        crate::evict::Evictor {
            shards: &self.shards,
            g: &self.g,
        }
        .evict_until_under(&mut pool)
    }

    /// Accounted bytes (`used_memory`): entries, table segments and expiry indexes, see
    /// [`crate::memory`]. Exact: the sum of the shards' own figures.
    pub fn used_memory(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.used_memory.load(Relaxed))
            .sum()
    }

    /// Bytes of the store's structures rather than its entries (Redis's
    /// `used_memory_overhead`): table segments and expiry indexes, recomputed from their
    /// capacities under each shard's read lock. Part of [`Store::used_memory`].
    pub fn overhead_memory(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| {
                let g = s.read();
                g.tables.iter().map(Table::allocated).sum::<u64>()
                    + g.expiry.capacity() as u64 * crate::memory::EXPIRY_ITEM_BYTES
            })
            .sum()
    }

    /// [`Store::used_memory`] recomputed from scratch: every entry's size class plus
    /// [`Store::overhead_memory`]. O(keys), for tests and diagnostics; the incremental
    /// accounting must always equal it.
    pub fn recount_memory(&self) -> u64 {
        let entries: u64 = self
            .shards
            .iter()
            .map(|s| {
                let g = s.read();
                g.tables
                    .iter()
                    .flat_map(Table::iter)
                    .map(EntryBox::memory)
                    .sum::<u64>()
            })
            .sum();
        entries + self.overhead_memory()
    }

    /// The memory limit, 0 = unlimited.
    pub fn maxmemory(&self) -> u64 {
        self.g.maxmemory.load(Relaxed)
    }

    /// `CONFIG SET maxmemory`. Takes effect at the next [`Store::reclaim_memory`].
    pub fn set_maxmemory(&self, bytes: u64) {
        self.g.maxmemory.store(bytes, Relaxed);
    }

    /// The eviction policy.
    pub fn policy(&self) -> EvictionPolicy {
        self.g.policy()
    }

    /// `CONFIG SET maxmemory-policy`. Existing LRU/LFU words are reinterpreted, as in Redis.
    pub fn set_policy(&self, p: EvictionPolicy) {
        self.g.policy.store(p.to_u8(), Relaxed);
        self.evict_pool.lock().clear();
    }

    /// Keys sampled per eviction round.
    pub fn samples(&self) -> usize {
        self.g.samples.load(Relaxed)
    }

    /// `CONFIG SET maxmemory-samples`; 0 is treated as 1.
    pub fn set_samples(&self, n: usize) {
        self.g.samples.store(n.max(1), Relaxed);
    }

    // ---------------------------------------------------------------- observability

    /// Lock and memory stats of one shard. Lock-free (does not itself acquire the lock).
    ///
    /// # Panics
    /// If `shard >= self.shard_count()`.
    pub fn shard_stats(&self, shard: usize) -> ShardStats {
        let s = &self.shards[shard];
        ShardStats {
            keys: s.keys.load(Relaxed),
            used_memory: s.used_memory.load(Relaxed),
            read: s.lock.read_stats(),
            write: s.lock.write_stats(),
        }
    }

    /// Zeroes the statistics (`CONFIG RESETSTAT`): keyspace hits, misses, expired and
    /// evicted counts, every shard's lock counters and wait histograms, and the hot-key
    /// samples. The keyspace itself, key counts and memory accounting are untouched.
    pub fn reset_stats(&self) {
        for s in self.shards.iter() {
            s.counters.hits.store(0, Relaxed);
            s.counters.misses.store(0, Relaxed);
            s.counters.expired.store(0, Relaxed);
            s.counters.evicted.store(0, Relaxed);
            s.lock.reset_stats();
            *s.hot.lock() = Default::default();
        }
    }

    /// Keyspace counters summed over shards.
    pub fn stats(&self) -> StoreStats {
        let mut st = StoreStats::default();
        for s in self.shards.iter() {
            st.hits += s.counters.hits.load(Relaxed);
            st.misses += s.counters.misses.load(Relaxed);
            st.expired += s.counters.expired.load(Relaxed);
            st.evicted += s.counters.evicted.load(Relaxed);
            st.keys += s.keys.load(Relaxed);
            st.used_memory += s.used_memory.load(Relaxed);
        }
        st
    }

    /// The `count` most frequently accessed keys across shards, by sampled lock
    /// acquisitions (1 in 128 per shard), most frequent first. Empty when instrumentation
    /// is off.
    pub fn hot_keys(&self, count: usize) -> Vec<HotKey> {
        let mut total = 0u64;
        let mut all = Vec::new();
        for (i, s) in self.shards.iter().enumerate() {
            let t = s.hot.lock();
            total += t.samples;
            all.extend(
                t.counters
                    .iter()
                    .map(|c| (i, Bytes::copy_from_slice(&c.key), c.count)),
            );
        }
        all.sort_unstable_by_key(|a| std::cmp::Reverse(a.2));
        all.truncate(count);
        all.into_iter()
            .map(|(shard, key, n)| HotKey {
                key,
                shard,
                estimated_share: if total == 0 {
                    0.0
                } else {
                    n as f64 / total as f64
                },
                count: n.saturating_mul(SAMPLE_INTERVAL),
            })
            .collect()
    }
}

/// A key's place in a write-locked shard, handed to [`Store::write`] closures.
pub struct Slot<'a> {
    sm: ShardMut<'a>,
    db: usize,
    hash: u64,
    key: &'a [u8],
    /// A block this slot replaced or removed, freed after the lock is released.
    garbage: Option<EntryBox>,
}

impl Slot<'_> {
    fn entry(&self) -> Option<&EntryBox> {
        self.sm.find(self.db, self.hash, self.key)
    }

    /// The current value, if the key exists.
    pub fn get(&self) -> Option<&[u8]> {
        self.entry().map(EntryBox::value)
    }

    /// The current value as an owned `Bytes` (see [`EntryRef::value_bytes`]).
    pub fn get_bytes(&self) -> Option<Bytes> {
        self.entry().map(EntryBox::value_bytes)
    }

    /// The key's expiry time in unix ms, 0 if it has none or does not exist.
    pub fn expires_at_ms(&self) -> u64 {
        self.entry().map_or(0, EntryBox::expires_at)
    }

    /// Whether the key exists.
    pub fn exists(&self) -> bool {
        self.entry().is_some()
    }

    /// The key this slot is for.
    pub fn key(&self) -> &[u8] {
        self.key
    }

    fn discard(&mut self, e: Option<EntryBox>) {
        // At most one block per slot waits for the lock's release; a second is freed now
        // (a closure that writes the same key twice).
        if let Some(e) = e {
            if let Some(prev) = self.garbage.replace(e) {
                drop(prev);
            }
        }
    }

    /// Inserts or replaces the value (copying it), and applies `expiry`. `Expiry::At` a time
    /// not after now deletes the key instead.
    pub fn set(&mut self, value: impl AsRef<[u8]>, expiry: Expiry) {
        let v = ValueSrc::Slice(value.as_ref());
        let old = self.sm.set_value(self.db, self.hash, self.key, v, expiry);
        self.discard(old);
    }

    /// Like [`Slot::set`], taking ownership of a value the caller built: a large value keeps
    /// this allocation rather than being copied.
    pub fn set_vec(&mut self, value: Vec<u8>, expiry: Expiry) {
        let v = ValueSrc::Vec(value);
        let old = self.sm.set_value(self.db, self.hash, self.key, v, expiry);
        self.discard(old);
    }

    /// Like [`Slot::set_vec`], without telling `WATCH`ers: for a write Redis does not count
    /// as a modification (a `BITFIELD` that only pads or creates the key because every write
    /// failed its overflow check).
    pub fn set_vec_quietly(&mut self, value: Vec<u8>, expiry: Expiry) {
        let watchers = self.sm.data.watches.take();
        self.set_vec(value, expiry);
        self.sm.data.watches = watchers;
    }

    /// Marks the existing value `raw` for `OBJECT ENCODING` without changing it (Redis does
    /// so to a string a bit command writes to, even when no bit changes).
    pub fn make_raw(&mut self) {
        if let Some(e) = self.sm.data.tables[self.db].find_mut(self.hash, self.key) {
            e.set_raw();
        }
    }

    /// Sets (`Some(unix ms)`) or removes (`None`) the TTL. A time not after now deletes the
    /// key (and returns true). Returns false if the key does not exist.
    pub fn set_expiry(&mut self, at_ms: Option<u64>) -> bool {
        self.sm.set_expiry(self.db, self.hash, self.key, at_ms)
    }

    /// Removes the key, returning the removed entry (freed when the caller drops it).
    pub fn remove(&mut self) -> Option<Removed> {
        self.sm
            .remove_if(self.db, self.hash, self.key, |_| true)
            .map(Removed)
    }

    /// Current time from the store's clock (for relative TTLs and `TTL` replies).
    pub fn now_ms(&self) -> u64 {
        self.sm.g.now_ms()
    }
}

/// Several keys' places, all shards write-locked; see [`Store::write_many`].
pub struct MultiSlots<'a> {
    store: &'a Store,
    db: usize,
    keys: &'a [&'a [u8]],
    hashes: Vec<u64>,
    pos: Vec<usize>,
    guards: Vec<(usize, ShardWrite<'a>)>,
}

impl MultiSlots<'_> {
    /// The slot of `keys[i]`. Repeated keys share the same entry.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn slot(&mut self, i: usize) -> Slot<'_> {
        let (s, g) = &mut self.guards[self.pos[i]];
        Slot {
            sm: ShardMut {
                g: &self.store.g,
                shard: &self.store.shards[*s],
                data: g,
            },
            db: self.db,
            hash: self.hashes[i],
            key: self.keys[i],
            garbage: None,
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no keys were given.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Several keys, all shards read-locked; see [`Store::read_many`].
pub struct MultiRead<'a> {
    store: &'a Store,
    db: usize,
    keys: &'a [&'a [u8]],
    hashes: Vec<u64>,
    pos: Vec<usize>,
    guards: Vec<(usize, ShardRead<'a>)>,
}

impl MultiRead<'_> {
    /// The live entry of `keys[i]`. Each call counts as a keyspace lookup (hit or miss) and
    /// touches LRU/LFU, like Redis's MGET.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn get(&self, i: usize) -> Option<EntryRef<'_>> {
        let (s, g) = &self.guards[self.pos[i]];
        let found = g.tables[self.db]
            .find(self.hashes[i], self.keys[i])
            .filter(|e| self.store.live(e));
        let c = &self.store.shards[*s].counters;
        match found {
            Some(e) => {
                self.store.touch(e);
                c.hits.fetch_add(1, Relaxed);
                Some(EntryRef::from_entry(e))
            }
            None => {
                c.misses.fetch_add(1, Relaxed);
                None
            }
        }
    }

    /// The live entry of `keys[i]`, without counting a lookup or touching LRU/LFU (to size a
    /// reply before writing it with [`MultiRead::get`]).
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn peek(&self, i: usize) -> Option<EntryRef<'_>> {
        let (_, g) = &self.guards[self.pos[i]];
        g.tables[self.db]
            .find(self.hashes[i], self.keys[i])
            .filter(|e| self.store.live(e))
            .map(EntryRef::from_entry)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no keys were given.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

thread_local! {
    /// Set while a `CLIENT NO-TOUCH` client's command runs on this thread.
    static NO_TOUCH: Cell<bool> = const { Cell::new(false) };
}

/// While alive, lookups on this thread leave keys' LRU/LFU words alone (`CLIENT NO-TOUCH`).
#[derive(Debug)]
pub struct NoTouch(bool);

impl NoTouch {
    /// Starts a no-touch section on this thread.
    pub fn enter() -> NoTouch {
        NoTouch(NO_TOUCH.with(|c| c.replace(true)))
    }
}

impl Drop for NoTouch {
    fn drop(&mut self) {
        NO_TOUCH.with(|c| c.set(self.0));
    }
}

/// Bits of a SCAN position below the segment index.
const SCAN_SEGMENT_SHIFT: u32 = 40;

/// A key's SCAN position (48 bits) from its hash: segment, then the hash's low 40 bits, so
/// that visiting positions in order visits segments in order.
#[inline]
fn scan_position(hash: u64) -> u64 {
    ((segment_of(hash) as u64) << SCAN_SEGMENT_SHIFT) | (hash & ((1 << SCAN_SEGMENT_SHIFT) - 1))
}

const _: () = assert!(SEGMENTS <= 1 << (48 - SCAN_SEGMENT_SHIFT));

#[cfg(test)]
mod tests;
