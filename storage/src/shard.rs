//! One shard: its lock, tables (one per logical database), expiry index and bookkeeping.
//!
//! # Expiry index
//!
//! Each shard keeps a min-heap of `(expires_at_ms, db, hash, key)` items. It is a *lazy*
//! index: changing or removing a TTL does not touch the heap; instead, an item popped from
//! the heap removes the entry only if the entry still exists and its current `expires_at_ms`
//! equals the item's. Stale items are discarded when popped, and when the heap holds more
//! than twice as many items as there are TTL'd keys (plus 1024) it is compacted in place
//! (stale and duplicate items dropped) — amortized O(1) per TTL write.
//!
//! `next_expiry` mirrors the heap top in an atomic so the active expiry cycle can skip
//! shards with nothing due without taking their lock.

use crate::entry::{initial_access, Entry, Expiry};
use crate::hotkeys::TopK;
use crate::lock::InstrumentedRwLock;
use crate::memory::entry_memory;
use crate::store::Store;
use bytes::Bytes;
use hashbrown::HashTable;
use parking_lot::Mutex;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Max items popped per write-lock hold in the active expiry cycle.
pub(crate) const EXPIRE_BATCH: usize = 256;
/// Heap size below which the expiry index is never compacted.
const COMPACT_MIN: usize = 1024;

/// An item of the expiry index.
pub(crate) struct ExpiryItem {
    pub(crate) at: u64,
    pub(crate) db: u32,
    pub(crate) hash: u64,
    pub(crate) key: Bytes,
}

impl PartialEq for ExpiryItem {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for ExpiryItem {}
impl PartialOrd for ExpiryItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ExpiryItem {
    /// Reversed so `BinaryHeap` (a max-heap) pops the soonest expiry first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

/// Per (shard, db) bookkeeping, so DBSIZE / INFO keyspace / FLUSHDB need no scan.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DbMeta {
    /// Accounted bytes of this db's entries in this shard.
    pub(crate) used: u64,
    /// Entries with a TTL (including expired, not yet reclaimed).
    pub(crate) ttl_keys: u64,
    /// Sum of their `expires_at_ms`, for the average TTL.
    pub(crate) ttl_sum: u128,
}

/// The data behind a shard's lock.
#[derive(Default)]
pub(crate) struct ShardData {
    pub(crate) tables: Vec<HashTable<Entry>>,
    pub(crate) dbs: Vec<DbMeta>,
    pub(crate) expiry: BinaryHeap<ExpiryItem>,
    pub(crate) used: u64,
    pub(crate) ttl_keys: u64,
    pub(crate) len: u64,
    pub(crate) next_expiry: u64,
}

impl ShardData {
    fn new(databases: usize) -> Self {
        ShardData {
            tables: (0..databases).map(|_| HashTable::new()).collect(),
            dbs: vec![DbMeta::default(); databases],
            expiry: BinaryHeap::new(),
            next_expiry: u64::MAX,
            ..Default::default()
        }
    }
}

/// Keyspace counters of a shard, on their own cache line.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct KeyspaceCounters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) evicted: AtomicU64,
}

/// A shard, cache-line aligned so neighbouring shards do not false-share.
#[repr(align(128))]
pub(crate) struct Shard {
    pub(crate) lock: InstrumentedRwLock<ShardData>,
    pub(crate) counters: KeyspaceCounters,
    pub(crate) hot: Mutex<TopK>,
    /// Mirrors of `ShardData` fields, written under the write lock, read lock-free by stats.
    pub(crate) used_memory: AtomicU64,
    pub(crate) keys: AtomicU64,
    pub(crate) next_expiry: AtomicU64,
}

impl Shard {
    pub(crate) fn new(databases: usize, instrument: bool) -> Self {
        Shard {
            lock: InstrumentedRwLock::new(ShardData::new(databases), instrument),
            counters: KeyspaceCounters::default(),
            hot: Mutex::new(TopK::default()),
            used_memory: AtomicU64::new(0),
            keys: AtomicU64::new(0),
            next_expiry: AtomicU64::new(u64::MAX),
        }
    }
}

/// Where a key to insert comes from.
pub(crate) enum KeySrc<'k> {
    /// Copy on insert (`Bytes::copy_from_slice`).
    Borrowed(&'k [u8]),
    /// Store as-is.
    Owned(Bytes),
}

impl KeySrc<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            KeySrc::Borrowed(k) => k,
            KeySrc::Owned(b) => b,
        }
    }
    fn into_bytes(self) -> Bytes {
        match self {
            KeySrc::Borrowed(k) => Bytes::copy_from_slice(k),
            KeySrc::Owned(b) => b,
        }
    }
}

/// A write-locked shard plus what mutations need from the store (global memory counter,
/// clock, policy). All mutations go through here so accounting cannot be forgotten.
pub(crate) struct ShardMut<'a> {
    pub(crate) store: &'a Store,
    pub(crate) shard: &'a Shard,
    pub(crate) data: &'a mut ShardData,
}

impl ShardMut<'_> {
    #[inline]
    pub(crate) fn find(&self, db: usize, hash: u64, key: &[u8]) -> Option<&Entry> {
        self.data.tables[db].find(hash, |e| e.hash == hash && e.key == key)
    }

    fn add_mem(&mut self, db: usize, n: u64) {
        self.data.used += n;
        self.data.dbs[db].used += n;
        self.store.used_memory.0.fetch_add(n, Relaxed);
    }

    fn sub_mem(&mut self, db: usize, n: u64) {
        self.data.used -= n;
        self.data.dbs[db].used -= n;
        self.store.used_memory.0.fetch_sub(n, Relaxed);
    }

    fn publish(&self) {
        self.shard.used_memory.store(self.data.used, Relaxed);
        self.shard.keys.store(self.data.len, Relaxed);
    }

    fn add_ttl(&mut self, db: usize, at: u64) {
        if at != 0 {
            self.data.ttl_keys += 1;
            self.data.dbs[db].ttl_keys += 1;
            self.data.dbs[db].ttl_sum += at as u128;
        }
    }

    fn sub_ttl(&mut self, db: usize, at: u64) {
        if at != 0 {
            self.data.ttl_keys -= 1;
            self.data.dbs[db].ttl_keys -= 1;
            self.data.dbs[db].ttl_sum -= at as u128;
        }
    }

    fn set_next_expiry(&mut self, at: u64) {
        self.data.next_expiry = at;
        self.shard.next_expiry.store(at, Relaxed);
    }

    fn push_expiry(&mut self, db: usize, hash: u64, key: Bytes, at: u64) {
        self.data.expiry.push(ExpiryItem {
            at,
            db: db as u32,
            hash,
            key,
        });
        if at < self.data.next_expiry {
            self.set_next_expiry(at);
        }
        let len = self.data.expiry.len();
        if len > COMPACT_MIN && len as u64 > 2 * self.data.ttl_keys {
            self.compact_expiry();
        }
    }

    /// Drops stale and duplicate items from the expiry index.
    pub(crate) fn compact_expiry(&mut self) {
        let ShardData { tables, expiry, .. } = &mut *self.data;
        let mut items = std::mem::take(expiry).into_vec();
        items.retain(|it| {
            tables[it.db as usize]
                .find(it.hash, |e| e.hash == it.hash && e.key == it.key)
                .is_some_and(|e| e.expires_at_ms == it.at)
        });
        items.sort_unstable_by_key(|a| (a.db, a.hash, a.at));
        items.dedup_by(|a, b| a.db == b.db && a.hash == b.hash && a.at == b.at && a.key == b.key);
        *expiry = BinaryHeap::from(items);
        let next = expiry.peek().map_or(u64::MAX, |it| it.at);
        self.set_next_expiry(next);
        tracing::trace!(items = self.data.expiry.len(), "compacted expiry index");
    }

    /// Inserts a key known to be absent.
    fn insert(&mut self, db: usize, hash: u64, key: Bytes, value: Bytes, at: u64) {
        let mem = entry_memory(key.len(), value.len());
        let access = initial_access(self.store.policy().is_lfu(), self.store.coarse_now());
        let heap_key = (at != 0).then(|| key.clone());
        self.data.tables[db].insert_unique(
            hash,
            Entry {
                key,
                value,
                expires_at_ms: at,
                hash,
                access: access.into(),
            },
            |e| e.hash,
        );
        self.data.len += 1;
        self.add_mem(db, mem);
        self.add_ttl(db, at);
        if let Some(k) = heap_key {
            self.push_expiry(db, hash, k, at);
        }
        self.publish();
    }

    /// Removes a key, keeping the accounting right. `pred` may veto the removal.
    pub(crate) fn remove_if(
        &mut self,
        db: usize,
        hash: u64,
        key: &[u8],
        pred: impl FnOnce(&Entry) -> bool,
    ) -> Option<Entry> {
        let occ = self.data.tables[db]
            .find_entry(hash, |e| e.hash == hash && e.key == key)
            .ok()?;
        if !pred(occ.get()) {
            return None;
        }
        let (e, _) = occ.remove();
        self.data.len -= 1;
        self.sub_mem(db, entry_memory(e.key.len(), e.value.len()));
        self.sub_ttl(db, e.expires_at_ms);
        self.publish();
        Some(e)
    }

    /// Removes the entry if it has expired (lazy expiry on the write path). Reads the clock
    /// only if the entry has a TTL.
    pub(crate) fn remove_if_expired(&mut self, db: usize, hash: u64, key: &[u8]) {
        // No key of this shard has a TTL (the common cache-without-TTL case): nothing can be
        // expired, so skip the extra probe.
        if self.data.next_expiry == u64::MAX {
            return;
        }
        let due = match self.find(db, hash, key) {
            Some(e) if e.expires_at_ms != 0 => e.expires_at_ms <= self.store.now_ms(),
            _ => false,
        };
        if due && self.remove_if(db, hash, key, |_| true).is_some() {
            self.shard.counters.expired.fetch_add(1, Relaxed);
        }
    }

    /// Inserts or replaces, applying `expiry`.
    pub(crate) fn set_value(
        &mut self,
        db: usize,
        hash: u64,
        key: KeySrc<'_>,
        value: Bytes,
        expiry: Expiry,
    ) {
        if let Expiry::At(t) = expiry {
            if t <= self.store.now_ms() {
                self.remove_if(db, hash, key.as_slice(), |_| true);
                return;
            }
        }
        let lfu = self.store.policy().is_lfu();
        let coarse = self.store.coarse_now();
        let k = key.as_slice();
        match self.data.tables[db].find_mut(hash, |e| e.hash == hash && e.key == k) {
            Some(e) => {
                let old_mem = entry_memory(e.key.len(), e.value.len());
                let new_mem = entry_memory(e.key.len(), value.len());
                let old_at = e.expires_at_ms;
                let new_at = match expiry {
                    Expiry::Keep => old_at,
                    Expiry::Persist => 0,
                    Expiry::At(t) => t,
                };
                e.value = value;
                e.expires_at_ms = new_at;
                if !lfu {
                    // Redis keeps the LFU counter on overwrite but refreshes the LRU clock.
                    e.access.store(coarse as u32, Relaxed);
                }
                let push = (new_at != 0 && new_at != old_at).then(|| e.key.clone());
                self.sub_mem(db, old_mem);
                self.add_mem(db, new_mem);
                if old_at != new_at {
                    self.sub_ttl(db, old_at);
                    self.add_ttl(db, new_at);
                }
                if let Some(k) = push {
                    self.push_expiry(db, hash, k, new_at);
                }
                self.publish();
            }
            None => {
                let at = match expiry {
                    Expiry::At(t) => t,
                    _ => 0,
                };
                self.insert(db, hash, key.into_bytes(), value, at);
            }
        }
    }

    /// Sets (`Some`) or removes (`None`) the TTL of an existing key. A time not after now
    /// deletes the key. Returns false if the key is absent.
    pub(crate) fn set_expiry(&mut self, db: usize, hash: u64, key: &[u8], at: Option<u64>) -> bool {
        let new_at = at.unwrap_or(0);
        if new_at != 0 && new_at <= self.store.now_ms() {
            return self.remove_if(db, hash, key, |_| true).is_some();
        }
        let Some(e) = self.data.tables[db].find_mut(hash, |e| e.hash == hash && e.key == key)
        else {
            return false;
        };
        let old_at = e.expires_at_ms;
        if old_at == new_at {
            return true;
        }
        e.expires_at_ms = new_at;
        let k = e.key.clone();
        self.sub_ttl(db, old_at);
        self.add_ttl(db, new_at);
        if new_at != 0 {
            self.push_expiry(db, hash, k, new_at);
        }
        true
    }

    /// Pops up to `max` due items from the expiry index, removing the entries they still
    /// describe. Returns (entries expired, whether more items are due).
    pub(crate) fn expire_some(&mut self, now: u64, max: usize) -> (usize, bool) {
        let mut expired = 0;
        let mut processed = 0;
        while processed < max {
            match self.data.expiry.peek() {
                Some(it) if it.at <= now => {}
                _ => break,
            }
            let Some(it) = self.data.expiry.pop() else {
                break;
            };
            processed += 1;
            let db = it.db as usize;
            if self
                .remove_if(db, it.hash, &it.key, |e| e.expires_at_ms == it.at)
                .is_some()
            {
                expired += 1;
            }
        }
        let next = self.data.expiry.peek().map_or(u64::MAX, |it| it.at);
        self.set_next_expiry(next);
        if expired > 0 {
            self.shard
                .counters
                .expired
                .fetch_add(expired as u64, Relaxed);
        }
        (expired, next <= now)
    }

    /// Pops stale items off the top of the expiry index, so its top is the shard's true
    /// soonest expiry (used by `volatile-ttl`).
    pub(crate) fn pop_stale_expiry_top(&mut self) {
        let ShardData { tables, expiry, .. } = &mut *self.data;
        while let Some(it) = expiry.peek() {
            let valid = tables[it.db as usize]
                .find(it.hash, |e| e.hash == it.hash && e.key == it.key)
                .is_some_and(|e| e.expires_at_ms == it.at);
            if valid {
                break;
            }
            expiry.pop();
        }
        let next = self.data.expiry.peek().map_or(u64::MAX, |it| it.at);
        self.set_next_expiry(next);
    }

    /// Empties database `db` in this shard, returning the old table (to drop elsewhere).
    pub(crate) fn take_db(&mut self, db: usize) -> HashTable<Entry> {
        let old = std::mem::take(&mut self.data.tables[db]);
        let meta = std::mem::take(&mut self.data.dbs[db]);
        self.data.used -= meta.used;
        self.store.used_memory.0.fetch_sub(meta.used, Relaxed);
        self.data.ttl_keys -= meta.ttl_keys;
        self.data.len -= old.len() as u64;
        if meta.ttl_keys > 0 {
            self.data.expiry.retain(|it| it.db as usize != db);
        }
        if self.data.ttl_keys == 0 {
            self.data.expiry = BinaryHeap::new();
        }
        let next = self.data.expiry.peek().map_or(u64::MAX, |it| it.at);
        self.set_next_expiry(next);
        self.publish();
        old
    }
}
