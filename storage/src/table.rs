//! One database's keys in one shard: a segmented hash table of entry pointers.
//!
//! The table is split into [`SEGMENTS`] hashbrown tables, picked by hash bits 48..56 (the
//! shard uses bits 32..48, hashbrown the low bits for the bucket and the top 7 for the tag,
//! so none of them is constant within a segment). Growth is therefore per segment: when a
//! segment doubles it moves only its own entries, 1/256 of the shard's, so a write that pays
//! for a resize waits for microseconds, not for the whole shard to be rehashed under its
//! write lock. The segment array is allocated on the first insert, so unused databases cost
//! nothing.
//!
//! Slots hold one pointer ([`EntryBox`]); the hash is not stored and is recomputed from the
//! key when a segment grows (`hasher`).

use crate::entry::EntryBox;
use crate::memory::alloc_size;
use hashbrown::HashTable;

/// Segments per (shard, database) table.
pub(crate) const SEGMENTS: usize = 256;
/// Bit position of the segment index in the hash.
pub(crate) const SEGMENT_SHIFT: u32 = 48;

/// Bytes a segment holds from the allocator (its one allocation, at its size class).
#[inline]
fn seg_memory(seg: &HashTable<EntryBox>) -> u64 {
    alloc_size(seg.allocation_size())
}

/// The segment of a hash.
#[inline]
pub(crate) fn segment_of(hash: u64) -> usize {
    ((hash >> SEGMENT_SHIFT) as usize) & (SEGMENTS - 1)
}

/// A database's entries in one shard.
#[derive(Default)]
pub(crate) struct Table {
    segs: Box<[HashTable<EntryBox>]>,
    len: usize,
}

impl Table {
    /// Entries in the table.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The segments (empty slice before the first insert).
    #[inline]
    pub(crate) fn segments(&self) -> &[HashTable<EntryBox>] {
        &self.segs
    }

    /// Finds `key` (whose hash is `hash`).
    #[inline]
    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<&EntryBox> {
        self.segs
            .get(segment_of(hash))?
            .find(hash, |e| e.key() == key)
    }

    /// Starts loading what finding a key of hash `hash` will read: the blocks of the entries
    /// whose control tag matches (usually just the one sought), found without reading them.
    /// The probe itself brings the segment's control bytes and slots into cache.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        if let Some(seg) = self.segs.get(segment_of(hash)) {
            let _ = seg.find(hash, |e| {
                e.prefetch();
                false
            });
        }
    }

    /// Finds `key` for mutation.
    #[inline]
    pub(crate) fn find_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut EntryBox> {
        self.segs
            .get_mut(segment_of(hash))?
            .find_mut(hash, |e| e.key() == key)
    }

    /// Finds an entry with this hash for which `pred` holds (for index items, which know a
    /// hash but not the key).
    pub(crate) fn find_by_hash(
        &self,
        hash: u64,
        hasher: impl Fn(&[u8]) -> u64,
        pred: impl Fn(&EntryBox) -> bool,
    ) -> Option<&EntryBox> {
        self.segs
            .get(segment_of(hash))?
            .find(hash, |e| pred(e) && hasher(e.key()) == hash)
    }

    /// Inserts an entry known to be absent. Returns the change in the table's allocated
    /// bytes (a segment grew).
    pub(crate) fn insert_unique(
        &mut self,
        hash: u64,
        e: EntryBox,
        hasher: impl Fn(&[u8]) -> u64,
    ) -> i64 {
        if self.segs.is_empty() {
            self.segs = (0..SEGMENTS).map(|_| HashTable::new()).collect();
        }
        let seg = &mut self.segs[segment_of(hash)];
        if seg.len() < seg.capacity() {
            seg.insert_unique(hash, e, |e| hasher(e.key()));
            self.len += 1;
            return 0;
        }
        let before = seg_memory(seg);
        seg.insert_unique(hash, e, |e| hasher(e.key()));
        self.len += 1;
        seg_memory(seg) as i64 - before as i64
    }

    /// Removes the entry for `key` if `pred` allows. Returns it and the change in allocated
    /// bytes (a segment that became empty gives its memory back).
    pub(crate) fn remove_if(
        &mut self,
        hash: u64,
        key: &[u8],
        pred: impl FnOnce(&EntryBox) -> bool,
    ) -> Option<(EntryBox, i64)> {
        let seg = self.segs.get_mut(segment_of(hash))?;
        let occ = seg.find_entry(hash, |e| e.key() == key).ok()?;
        if !pred(occ.get()) {
            return None;
        }
        let (e, _) = occ.remove();
        Some((e, self.after_remove(hash)))
    }

    /// Removes an entry with this hash for which `pred` holds (see [`Table::find_by_hash`]).
    pub(crate) fn remove_by_hash(
        &mut self,
        hash: u64,
        hasher: impl Fn(&[u8]) -> u64,
        pred: impl Fn(&EntryBox) -> bool,
    ) -> Option<(EntryBox, i64)> {
        let seg = self.segs.get_mut(segment_of(hash))?;
        let occ = seg
            .find_entry(hash, |e| pred(e) && hasher(e.key()) == hash)
            .ok()?;
        let (e, _) = occ.remove();
        Some((e, self.after_remove(hash)))
    }

    /// Bookkeeping after a removal from `hash`'s segment; returns the memory change.
    fn after_remove(&mut self, hash: u64) -> i64 {
        self.len -= 1;
        let seg = &mut self.segs[segment_of(hash)];
        if seg.is_empty() && seg.allocation_size() > 0 {
            let d = -(seg_memory(seg) as i64);
            *seg = HashTable::new();
            d
        } else {
            0
        }
    }

    /// Every entry.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &EntryBox> + Clone {
        self.segs.iter().flat_map(|s| s.iter())
    }

    /// Bytes the segments have allocated (recomputed from their capacities).
    pub(crate) fn allocated(&self) -> u64 {
        self.segs.iter().map(seg_memory).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(k: &[u8]) -> u64 {
        // A fixed, well-mixed hash for the test.
        let mut x = 0xcbf2_9ce4_8422_2325u64;
        for &b in k {
            x = (x ^ b as u64).wrapping_mul(0x1000_0000_01b3);
        }
        x ^ (x >> 29) ^ (x << 31)
    }

    #[test]
    fn insert_find_remove_and_memory() {
        let mut t = Table::default();
        let mut mem = 0i64;
        for i in 0..10_000u32 {
            let k = format!("key:{i}");
            mem += t.insert_unique(
                h(k.as_bytes()),
                EntryBox::new(k.as_bytes(), b"v", false, 0),
                h,
            );
        }
        assert_eq!(t.len(), 10_000);
        assert_eq!(mem as u64, t.allocated());
        assert!(t.find(h(b"key:77"), b"key:77").is_some());
        assert!(t.find(h(b"nope"), b"nope").is_none());
        for i in 0..10_000u32 {
            let k = format!("key:{i}");
            let (e, d) = t
                .remove_if(h(k.as_bytes()), k.as_bytes(), |_| true)
                .unwrap();
            assert_eq!(e.key(), k.as_bytes());
            mem += d;
        }
        assert!(t.is_empty());
        assert_eq!(mem, 0);
        assert_eq!(t.allocated(), 0);
    }
}
