//! One shard: its lock, tables (one per logical database), expiry index and bookkeeping.
//!
//! # Expiry index
//!
//! Each shard keeps a min-heap of 16-byte items `(expires_at_ms << 16 | db, hash)`. It is a
//! *lazy* index: changing or removing a TTL does not touch the heap; instead, an item popped
//! from the heap removes an entry only if the database's table holds an entry with that hash
//! whose current expiry equals the item's (so an item can never remove a key it no longer
//! describes: whatever key it finds is due). Stale items are discarded when popped, and when
//! the heap holds more than twice as many items as there are TTL'd keys (plus 1024) it is
//! compacted in place — amortized O(1) per TTL write. Expiry times at or beyond 2^48 ms
//! (the year 10889) are not indexed; such keys still expire lazily.
//!
//! `next_expiry` mirrors the heap top in an atomic so the active expiry cycle can skip
//! shards with nothing due without taking their lock.
//!
//! # Memory
//!
//! `ShardData::used` is the shard's accounted bytes: entries, table segments and the expiry
//! index (see [`crate::memory`]). Changes are published to the shard's atomic mirror at once
//! and to the store-wide total in steps of [`PUBLISH_MEMORY_EVERY`].

use crate::entry::{initial_access, EntryBox, Expiry};
use crate::globals::{Globals, PUBLISH_MEMORY_EVERY};
use crate::hotkeys::TopK;
use crate::lock::InstrumentedRwLock;
use crate::lock::{ReadGuard, WriteGuard};
use crate::memory::EXPIRY_ITEM_BYTES;
use crate::table::Table;
use parking_lot::Mutex;
use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Max items popped per write-lock hold in the active expiry cycle.
pub(crate) const EXPIRE_BATCH: usize = 256;
/// Heap size below which the expiry index is never compacted.
const COMPACT_MIN: usize = 1024;
/// Expiry times from here on are not indexed (they do not fit the item's 48 bits).
const INDEX_LIMIT: u64 = 1 << 48;

/// An item of the expiry index.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExpiryItem {
    at_db: u64,
    pub(crate) hash: u64,
}

impl ExpiryItem {
    fn new(at: u64, db: usize, hash: u64) -> Self {
        ExpiryItem {
            at_db: (at << 16) | db as u64,
            hash,
        }
    }
    #[inline]
    pub(crate) fn at(&self) -> u64 {
        self.at_db >> 16
    }
    #[inline]
    pub(crate) fn db(&self) -> usize {
        (self.at_db & 0xFFFF) as usize
    }
    /// The same item for database `db` (`SWAPDB`).
    pub(crate) fn with_db(self, db: usize) -> Self {
        ExpiryItem::new(self.at(), db, self.hash)
    }
}

impl PartialOrd for ExpiryItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ExpiryItem {
    /// Reversed so `BinaryHeap` (a max-heap) pops the soonest expiry first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at_db
            .cmp(&self.at_db)
            .then(other.hash.cmp(&self.hash))
    }
}

/// Per (shard, db) bookkeeping, so DBSIZE / INFO keyspace / FLUSHDB need no scan.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DbMeta {
    /// Accounted bytes of this db's entries and table segments in this shard.
    pub(crate) used: u64,
    /// Entries with a TTL (including expired, not yet reclaimed).
    pub(crate) ttl_keys: u64,
    /// Sum of their `expires_at_ms`, for the average TTL.
    pub(crate) ttl_sum: u128,
}

/// The data behind a shard's lock.
#[derive(Default)]
pub(crate) struct ShardData {
    pub(crate) tables: Vec<Table>,
    pub(crate) dbs: Vec<DbMeta>,
    pub(crate) expiry: BinaryHeap<ExpiryItem>,
    /// Accounted bytes: every db's `used` plus the expiry index.
    pub(crate) used: u64,
    /// Memory change not yet added to the store-wide total.
    pub(crate) unpublished: i64,
    pub(crate) ttl_keys: u64,
    pub(crate) len: u64,
    pub(crate) next_expiry: u64,
    /// Clients watching keys of this shard (`WATCH`); `None` while nobody does, so writes
    /// pay one branch for the feature.
    pub(crate) watches: Option<Box<Watches>>,
}

/// A `WATCH`ing client's flag: set when a key it watches is modified, deleted, expired,
/// evicted or flushed. Shared by the client and every shard holding one of its keys.
#[derive(Debug, Default)]
pub struct WatchFlag(AtomicBool);

impl WatchFlag {
    /// Whether a watched key was touched since the flag was created or cleared.
    pub fn is_dirty(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
    /// Clears the flag (after `EXEC`, `DISCARD`, `UNWATCH`).
    pub fn clear(&self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
    pub(crate) fn touch(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// A watched key: (database, key).
pub(crate) type WatchedKey = (u32, Box<[u8]>);

/// The watchers of one shard's keys: (db, key) to the flags of the clients watching it.
#[derive(Default)]
pub(crate) struct Watches {
    pub(crate) keys: HashMap<WatchedKey, Vec<Arc<WatchFlag>>, ahash::RandomState>,
}

impl Watches {
    fn touch(&self, db: usize, key: &[u8]) {
        // Keys are looked up by an owned tuple; a borrowed probe would need a custom
        // `Equivalent`, and this runs only while somebody watches a key of this shard.
        if let Some(flags) = self.keys.get(&(db as u32, Box::<[u8]>::from(key))) {
            flags.iter().for_each(|f| f.touch());
        }
    }
}

impl ShardData {
    fn new(databases: usize) -> Self {
        ShardData {
            tables: (0..databases).map(|_| Table::default()).collect(),
            dbs: vec![DbMeta::default(); databases],
            expiry: BinaryHeap::new(),
            next_expiry: u64::MAX,
            ..Default::default()
        }
    }

    /// Finds a live-or-expired entry.
    #[inline]
    pub(crate) fn find(&self, db: usize, hash: u64, key: &[u8]) -> Option<&EntryBox> {
        self.tables[db].find(hash, key)
    }

    /// The entry an expiry item describes, if it still does.
    pub(crate) fn find_item(&self, g: &Globals, it: &ExpiryItem) -> Option<&EntryBox> {
        let at = it.at();
        self.tables
            .get(it.db())?
            .find_by_hash(it.hash, |k| g.hash(k), |e| e.expires_at() == at)
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
    pub(crate) fn new(index: usize, databases: usize, instrument: bool) -> Self {
        Shard {
            lock: InstrumentedRwLock::new(ShardData::new(databases), instrument)
                .with_id(index as u32),
            counters: KeyspaceCounters::default(),
            hot: Mutex::new(TopK::default()),
            used_memory: AtomicU64::new(0),
            keys: AtomicU64::new(0),
            next_expiry: AtomicU64::new(u64::MAX),
        }
    }
}

/// A value to store: borrowed (copied into the entry) or owned (kept, if it goes in a
/// buffer of its own).
pub(crate) enum ValueSrc<'v> {
    Slice(&'v [u8]),
    Vec(Vec<u8>),
}

thread_local! {
    /// The shards this thread holds for a transaction (`Store::transaction`), or null.
    static HELD: Cell<*const HeldShards> = const { Cell::new(std::ptr::null()) };
}

/// Shards write-locked by a running transaction on this thread: while it runs, the store's
/// operations on this thread use these guards instead of locking again.
pub(crate) struct HeldShards {
    /// (shard, its data), sorted by the shard's address.
    pub(crate) held: Vec<(*const Shard, *mut ShardData)>,
}

impl HeldShards {
    /// Installs `self` as this thread's held set until the returned guard drops.
    pub(crate) fn install(&self) -> HeldReset {
        let prev = HELD.with(|h| h.replace(self));
        HeldReset(prev)
    }
}

/// Restores the previous held set when dropped (also on unwind).
pub(crate) struct HeldReset(*const HeldShards);

impl Drop for HeldReset {
    fn drop(&mut self) {
        HELD.with(|h| h.set(self.0));
    }
}

/// Whether this thread runs a transaction.
pub(crate) fn in_transaction() -> bool {
    HELD.with(|h| !h.get().is_null())
}

/// A shard's data for reading: locked now, or held by this thread's transaction.
pub(crate) enum ShardRead<'a> {
    Locked(ReadGuard<'a, ShardData>),
    Held(&'a ShardData),
}

impl Deref for ShardRead<'_> {
    type Target = ShardData;
    fn deref(&self) -> &ShardData {
        match self {
            ShardRead::Locked(g) => g,
            ShardRead::Held(d) => d,
        }
    }
}

/// A shard's data for writing: locked now, or held by this thread's transaction.
pub(crate) enum ShardWrite<'a> {
    Locked(WriteGuard<'a, ShardData>),
    Held(&'a mut ShardData),
}

impl Deref for ShardWrite<'_> {
    type Target = ShardData;
    fn deref(&self) -> &ShardData {
        match self {
            ShardWrite::Locked(g) => g,
            ShardWrite::Held(d) => d,
        }
    }
}

impl DerefMut for ShardWrite<'_> {
    fn deref_mut(&mut self) -> &mut ShardData {
        match self {
            ShardWrite::Locked(g) => g,
            ShardWrite::Held(d) => d,
        }
    }
}

impl Shard {
    /// This shard's data if this thread's transaction holds it.
    #[inline]
    fn held(&self) -> Option<*mut ShardData> {
        let set = HELD.with(Cell::get);
        if set.is_null() {
            return None;
        }
        // SAFETY: a non-null HELD points to the `HeldShards` of the transaction running on
        // this thread, alive until its `HeldReset` restores the previous value.
        let set = unsafe { &*set };
        let me = self as *const Shard;
        set.held
            .binary_search_by(|(s, _)| s.cmp(&me))
            .ok()
            .map(|i| set.held[i].1)
    }

    /// Shared access, counted (and sampled for hot keys) unless held by a transaction.
    #[inline]
    pub(crate) fn read_sampled(&self) -> (ShardRead<'_>, Option<u64>) {
        if let Some(d) = self.held() {
            // SAFETY: the transaction holds this shard's write lock for longer than this
            // borrow (store operations never outlive the transaction's closure), and store
            // operations do not nest, so no `&mut` to it exists meanwhile.
            return (ShardRead::Held(unsafe { &*d }), None);
        }
        let (g, prev) = self.lock.read_sampled();
        (ShardRead::Locked(g), prev)
    }

    /// Exclusive access, counted unless held by a transaction.
    #[inline]
    pub(crate) fn write_sampled(&self) -> (ShardWrite<'_>, Option<u64>) {
        if let Some(d) = self.held() {
            // SAFETY: as in `read_sampled`; one store operation at a time takes a shard
            // once, so this is the only reference to the data while it lives.
            return (ShardWrite::Held(unsafe { &mut *d }), None);
        }
        let (g, prev) = self.lock.write_sampled();
        (ShardWrite::Locked(g), prev)
    }

    #[inline]
    pub(crate) fn read(&self) -> ShardRead<'_> {
        self.read_sampled().0
    }

    #[inline]
    pub(crate) fn write(&self) -> ShardWrite<'_> {
        self.write_sampled().0
    }
}

/// A write-locked shard plus the store-wide settings mutations need. All mutations go
/// through here so accounting cannot be forgotten.
pub(crate) struct ShardMut<'a> {
    pub(crate) g: &'a Globals,
    pub(crate) shard: &'a Shard,
    pub(crate) data: &'a mut ShardData,
}

impl ShardMut<'_> {
    #[inline]
    pub(crate) fn find(&self, db: usize, hash: u64, key: &[u8]) -> Option<&EntryBox> {
        self.data.find(db, hash, key)
    }

    /// Applies a memory change of db `db` (`None`: the expiry index).
    fn mem(&mut self, db: Option<usize>, delta: i64) {
        if delta == 0 {
            return;
        }
        self.data.used = self.data.used.wrapping_add_signed(delta);
        self.shard.used_memory.store(self.data.used, Relaxed);
        if let Some(db) = db {
            self.data.dbs[db].used = self.data.dbs[db].used.wrapping_add_signed(delta);
        }
        self.data.unpublished += delta;
        if self.data.unpublished.abs() >= PUBLISH_MEMORY_EVERY {
            self.flush_memory();
        }
    }

    /// Adds the unpublished memory change to the store-wide total.
    pub(crate) fn flush_memory(&mut self) {
        let d = std::mem::take(&mut self.data.unpublished);
        if d > 0 {
            self.g.used_memory.0.fetch_add(d as u64, Relaxed);
        } else if d < 0 {
            self.g.used_memory.0.fetch_sub(d.unsigned_abs(), Relaxed);
        }
    }

    fn publish(&self) {
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
            if self.data.ttl_keys == 0 && !self.data.expiry.is_empty() {
                // No key of the shard has a TTL: every item left is stale.
                let before = self.data.expiry.capacity();
                self.data.expiry = BinaryHeap::new();
                self.heap_mem(before);
                self.set_next_expiry(u64::MAX);
            }
        }
    }

    fn set_next_expiry(&mut self, at: u64) {
        self.data.next_expiry = at;
        self.shard.next_expiry.store(at, Relaxed);
    }

    /// Charges the expiry index's capacity change since `before`.
    fn heap_mem(&mut self, before: usize) {
        let after = self.data.expiry.capacity();
        if after != before {
            let d = (after as i64 - before as i64) * EXPIRY_ITEM_BYTES as i64;
            self.mem(None, d);
        }
    }

    fn push_expiry(&mut self, db: usize, hash: u64, at: u64) {
        if at >= INDEX_LIMIT {
            return;
        }
        let before = self.data.expiry.capacity();
        self.data.expiry.push(ExpiryItem::new(at, db, hash));
        self.heap_mem(before);
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
        let before = self.data.expiry.capacity();
        let mut items = std::mem::take(&mut self.data.expiry).into_vec();
        items.retain(|it| self.data.find_item(self.g, it).is_some());
        items.sort_unstable();
        items.dedup();
        items.shrink_to(items.len() * 5 / 4);
        self.data.expiry = BinaryHeap::from(items);
        self.heap_mem(before);
        let next = self.data.expiry.peek().map_or(u64::MAX, ExpiryItem::at);
        self.set_next_expiry(next);
        tracing::trace!(items = self.data.expiry.len(), "compacted expiry index");
    }

    /// Marks the clients watching `key` (if anybody watches this shard).
    #[inline]
    fn touch_watchers(&self, db: usize, key: &[u8]) {
        if let Some(w) = &self.data.watches {
            w.touch(db, key);
        }
    }

    /// Inserts an entry known to be absent.
    fn insert(&mut self, db: usize, hash: u64, e: EntryBox) {
        self.touch_watchers(db, e.key());
        let at = e.expires_at();
        e.access().store(
            initial_access(self.g.policy().is_lfu(), self.g.coarse_now()),
            Relaxed,
        );
        let mem = e.memory() as i64;
        let g = self.g;
        let grown = self.data.tables[db].insert_unique(hash, e, |k| g.hash(k));
        self.data.len += 1;
        self.mem(Some(db), mem + grown);
        self.add_ttl(db, at);
        if at != 0 {
            self.push_expiry(db, hash, at);
        }
        self.publish();
    }

    /// Removes a key, keeping the accounting right. `pred` may veto the removal.
    pub(crate) fn remove_if(
        &mut self,
        db: usize,
        hash: u64,
        key: &[u8],
        pred: impl FnOnce(&EntryBox) -> bool,
    ) -> Option<EntryBox> {
        let (e, shrunk) = self.data.tables[db].remove_if(hash, key, pred)?;
        self.removed(db, &e, shrunk);
        Some(e)
    }

    /// Accounting for an entry that left db `db`'s table.
    fn removed(&mut self, db: usize, e: &EntryBox, shrunk: i64) {
        self.touch_watchers(db, e.key());
        self.data.len -= 1;
        self.mem(Some(db), shrunk - e.memory() as i64);
        self.sub_ttl(db, e.expires_at());
        self.publish();
    }

    /// Removes the entry an expiry item still describes.
    fn remove_item(&mut self, it: &ExpiryItem) -> Option<EntryBox> {
        let g = self.g;
        let at = it.at();
        let db = it.db();
        let (e, shrunk) = self.data.tables.get_mut(db)?.remove_by_hash(
            it.hash,
            |k| g.hash(k),
            |e| e.expires_at() == at,
        )?;
        self.removed(db, &e, shrunk);
        Some(e)
    }

    /// Removes the entry if it has expired (lazy expiry on the write path). Reads the clock
    /// only if the entry has a TTL.
    pub(crate) fn remove_if_expired(&mut self, db: usize, hash: u64, key: &[u8]) {
        // No key of this shard has a TTL (the common cache-without-TTL case): nothing can be
        // expired, so skip the extra probe.
        if self.data.ttl_keys == 0 {
            return;
        }
        let due = match self.find(db, hash, key) {
            Some(e) => {
                let at = e.expires_at();
                at != 0 && at <= self.g.now_ms()
            }
            None => false,
        };
        if due && self.remove_if(db, hash, key, |_| true).is_some() {
            self.shard.counters.expired.fetch_add(1, Relaxed);
        }
    }

    /// Inserts `new` (a fresh entry for `key`, its expiry already in it) or replaces the
    /// existing entry by it. With `keep_ttl`, an existing entry's TTL carries over (the new
    /// block is rebuilt with room for it if it has none). Returns the replaced entry, to be
    /// dropped by the caller (after the lock, where it can).
    pub(crate) fn put(
        &mut self,
        db: usize,
        hash: u64,
        key: &[u8],
        mut new: EntryBox,
        keep_ttl: bool,
    ) -> Option<EntryBox> {
        let at = new.expires_at();
        if at != 0 && at <= self.g.now_ms() {
            // `Expiry::At` in the past deletes, like Redis.
            return self.remove_if(db, hash, key, |_| true);
        }
        let lfu = self.g.policy().is_lfu();
        let coarse = self.g.coarse_now();
        let Some(slot) = self.data.tables[db].find_mut(hash, key) else {
            self.insert(db, hash, new);
            return None;
        };
        let old_at = slot.expires_at();
        if keep_ttl && old_at != 0 {
            if !new.has_ttl_room() {
                new = new.with_ttl_room();
            }
            new.set_expires_at(old_at);
        }
        let new_at = new.expires_at();
        // Redis keeps the LFU counter on overwrite but refreshes the LRU clock.
        let access = if lfu {
            slot.access().load(Relaxed)
        } else {
            coarse as u32
        };
        new.access().store(access, Relaxed);
        if let Some(w) = &self.data.watches {
            w.touch(db, key);
        }
        let delta = new.memory() as i64 - slot.memory() as i64;
        let old = std::mem::replace(slot, new);
        self.mem(Some(db), delta);
        if old_at != new_at {
            self.sub_ttl(db, old_at);
            self.add_ttl(db, new_at);
            if new_at != 0 {
                self.push_expiry(db, hash, new_at);
            }
        }
        self.publish();
        Some(old)
    }

    /// Inserts or replaces with `value`, applying `expiry`; the block is built here, under
    /// the lock (read-modify-write commands compute their value under it anyway).
    pub(crate) fn set_value(
        &mut self,
        db: usize,
        hash: u64,
        key: &[u8],
        value: ValueSrc<'_>,
        expiry: Expiry,
    ) -> Option<EntryBox> {
        let (room, at) = match expiry {
            Expiry::At(t) => (true, t),
            Expiry::Keep => (
                self.find(db, hash, key)
                    .is_some_and(|e| e.expires_at() != 0),
                0,
            ),
            Expiry::Persist => (false, 0),
        };
        let e = match value {
            ValueSrc::Slice(v) => EntryBox::new(key, v, room, at),
            ValueSrc::Vec(v) => EntryBox::from_vec(key, v, room, at),
        };
        self.put(db, hash, key, e, expiry == Expiry::Keep)
    }

    /// Sets (`Some`) or removes (`None`) the TTL of an existing key. A time not after now
    /// deletes the key. Returns false if the key is absent.
    pub(crate) fn set_expiry(&mut self, db: usize, hash: u64, key: &[u8], at: Option<u64>) -> bool {
        let new_at = at.unwrap_or(0);
        if new_at != 0 && new_at <= self.g.now_ms() {
            return self.remove_if(db, hash, key, |_| true).is_some();
        }
        let Some(e) = self.data.tables[db].find_mut(hash, key) else {
            return false;
        };
        let old_at = e.expires_at();
        if let Some(w) = &self.data.watches {
            w.touch(db, key);
        }
        if old_at == new_at {
            return true;
        }
        let mut delta = 0;
        if !e.has_ttl_room() {
            let grown = e.with_ttl_room();
            delta = grown.memory() as i64 - e.memory() as i64;
            *e = grown;
        }
        e.set_expires_at(new_at);
        self.mem(Some(db), delta);
        self.sub_ttl(db, old_at);
        self.add_ttl(db, new_at);
        if new_at != 0 {
            self.push_expiry(db, hash, new_at);
        }
        self.publish();
        true
    }

    /// Pops up to `max` due items from the expiry index, removing the entries they still
    /// describe. Returns (entries expired, whether more items are due).
    pub(crate) fn expire_some(&mut self, now: u64, max: usize) -> (usize, bool) {
        let mut expired = 0;
        let mut processed = 0;
        while processed < max {
            match self.data.expiry.peek() {
                Some(it) if it.at() <= now => {}
                _ => break,
            }
            let Some(it) = self.data.expiry.pop() else {
                break;
            };
            processed += 1;
            if self.remove_item(&it).is_some() {
                expired += 1;
            }
        }
        if self.data.expiry.is_empty() && self.data.expiry.capacity() > 0 {
            let before = self.data.expiry.capacity();
            self.data.expiry = BinaryHeap::new();
            self.heap_mem(before);
        }
        let next = self.data.expiry.peek().map_or(u64::MAX, ExpiryItem::at);
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
        while let Some(it) = self.data.expiry.peek() {
            if self.data.find_item(self.g, it).is_some() {
                break;
            }
            self.data.expiry.pop();
        }
        let next = self.data.expiry.peek().map_or(u64::MAX, ExpiryItem::at);
        self.set_next_expiry(next);
    }

    /// Empties database `db` in this shard, returning the old table (to drop elsewhere).
    pub(crate) fn take_db(&mut self, db: usize) -> Table {
        if let Some(w) = &self.data.watches {
            // Like Redis, a flush touches the watched keys that existed.
            for ((wdb, key), flags) in &w.keys {
                if *wdb as usize == db && self.data.tables[db].find(self.g.hash(key), key).is_some()
                {
                    flags.iter().for_each(|f| f.touch());
                }
            }
        }
        let old = std::mem::take(&mut self.data.tables[db]);
        let meta = std::mem::take(&mut self.data.dbs[db]);
        self.mem(None, -(meta.used as i64));
        self.data.ttl_keys -= meta.ttl_keys;
        self.data.len -= old.len() as u64;
        if meta.ttl_keys > 0 {
            let before = self.data.expiry.capacity();
            self.data.expiry.retain(|it| it.db() != db);
            if self.data.ttl_keys == 0 {
                self.data.expiry = BinaryHeap::new();
            }
            self.heap_mem(before);
        }
        self.flush_memory();
        let next = self.data.expiry.peek().map_or(u64::MAX, ExpiryItem::at);
        self.set_next_expiry(next);
        self.publish();
        old
    }
}
