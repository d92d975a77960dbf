//! Stored entries: one heap block per key, and the LRU / LFU access word inside it.
//!
//! # Layout
//!
//! A shard's table slot is one pointer ([`EntryBox`], 8 bytes). It owns one allocation, the
//! *block*, 8-byte aligned:
//!
//! ```text
//! offset 0   access: AtomicU32        LRU clock or LFU counter (see below)
//!        4   flags:  u8               TTL | EXTERNAL | LONG_KEY
//!        5   klen:   u8               key length when it is < 256
//!        6   vlen:   u16              inline value length
//!        8   [klen: u32, pad: u32]    only with LONG_KEY (keys of 256 bytes or more)
//!        .   [expires_at_ms: u64]     only with TTL (0 = room for a TTL, none set)
//!        .   [value: Bytes]           only with EXTERNAL: a handle to a separate buffer
//!        .   key bytes
//!        .   value bytes              only without EXTERNAL (inline)
//! ```
//!
//! So a 16-byte key with a 32-byte value and no TTL is one 56-byte block: 8 bytes of header
//! and the payload. The hash is not stored: the process's `ahash` seed is fixed, so a table
//! that grows recomputes it from the key. Keys with a TTL carry 8 more bytes; keys without
//! one carry nothing for it.
//!
//! A value is stored *inline* unless it is larger than [`INLINE_MAX`] or a separate buffer
//! costs less memory under the allocator's size classes ([`prefer_external`]);
//! an external value is a `Bytes` made with `Bytes::from_owner`, whose shared header is
//! allocated when the value is stored, never lazily on a read.
//!
//! # Ownership
//!
//! The table owns the block; dropping the [`EntryBox`] frees it (and releases the external
//! value's reference). Blocks are created before a shard's write lock is taken where the
//! value is known (`SET`), and replaced blocks are freed after it is released where the
//! caller allows (`Store::set`); either way a block is freed only by the holder of the write
//! lock or after the block has left the table, so no reader holding the read lock can see a
//! freed block. Readers copy inline values while they hold the read lock; an external value
//! is cloned (one reference count) and may outlive the entry.
//!
//! # Access word
//!
//! An `AtomicU32` updated with `Relaxed` loads/stores under the shard's *read* lock. Like
//! Redis's `robj.lru` it is interpreted according to the current eviction policy:
//!
//! * LRU (all non-LFU policies): the low 32 bits of the coarse clock in milliseconds at the
//!   last access. Idle time is `now - word` (wrapping; idle times above ~49 days alias).
//! * LFU: `minutes << 8 | counter` — Redis's 8-bit logarithmic counter (`lfu-log-factor`
//!   10, initial value 5) and 16-bit "last decrement" time in minutes (`lfu-decay-time` 1).
//!
//! Switching policy reinterprets existing words, as in Redis; they converge as keys are
//! touched.

use crate::memory::{alloc_size, external_cost};
use bytes::Bytes;
use rand::Rng;
use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Values larger than this are always stored in a separate buffer, so a reader copies at
/// most this many bytes while it holds a shard's read lock.
pub const INLINE_MAX: usize = 8 * 1024;

const F_TTL: u8 = 1;
const F_EXTERNAL: u8 = 2;
const F_LONG_KEY: u8 = 4;
/// The block was allocated with an 8-byte alignment request (see [`alloc_block`]).
const F_ALIGNED_REQUEST: u8 = 8;
/// The value was built by the caller (`APPEND`, `SETRANGE`, bit operations): Redis keeps such
/// strings `raw`, never `int` or `embstr` (`OBJECT ENCODING`).
const F_RAW: u8 = 16;
const HEADER: usize = 8;
const LONG_KEY_FIELD: usize = 8;
const TTL_FIELD: usize = 8;
const EXTERNAL_FIELD: usize = std::mem::size_of::<Bytes>();
const ALIGN: usize = 8;

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

/// The shape of a block: which optional fields it has and where each part starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    flags: u8,
    klen: usize,
    /// Inline value length (0 when external).
    vlen: usize,
}

impl Shape {
    /// The shape for a key of `klen` bytes and a value of `vlen` bytes, with room for a TTL
    /// if `ttl`, storing the value externally if `external`.
    pub(crate) fn new(klen: usize, vlen: usize, ttl: bool, external: bool) -> Shape {
        let mut flags = 0;
        if ttl {
            flags |= F_TTL;
        }
        if external {
            flags |= F_EXTERNAL;
        }
        if klen > u8::MAX as usize {
            flags |= F_LONG_KEY;
        }
        Shape {
            flags,
            klen,
            vlen: if external { 0 } else { vlen },
        }
    }

    /// The shape a new entry gets: the value inline or in a buffer of its own, whichever
    /// [`prefer_external`] picks.
    pub(crate) fn for_value(klen: usize, vlen: usize, ttl: bool) -> Shape {
        Shape::new(klen, vlen, ttl, prefer_external(klen, vlen, ttl))
    }

    /// Bytes this shape holds on the heap: the block at its size class, plus an external
    /// value's buffer of `vlen` bytes and its owner header.
    fn memory(self, external_len: usize) -> u64 {
        let ext = if self.flags & F_EXTERNAL != 0 {
            external_cost(external_len)
        } else {
            0
        };
        alloc_size(self.size()) + ext
    }

    #[inline]
    fn ttl_off(self) -> usize {
        HEADER
            + if self.flags & F_LONG_KEY != 0 {
                LONG_KEY_FIELD
            } else {
                0
            }
    }
    #[inline]
    fn ext_off(self) -> usize {
        self.ttl_off()
            + if self.flags & F_TTL != 0 {
                TTL_FIELD
            } else {
                0
            }
    }
    #[inline]
    fn key_off(self) -> usize {
        self.ext_off()
            + if self.flags & F_EXTERNAL != 0 {
                EXTERNAL_FIELD
            } else {
                0
            }
    }
    #[inline]
    fn value_off(self) -> usize {
        self.key_off() + self.klen
    }
    /// Bytes of the block.
    #[inline]
    pub(crate) fn size(self) -> usize {
        self.value_off() + self.vlen
    }
    #[inline]
    fn layout(self) -> Layout {
        let align = if self.flags & F_ALIGNED_REQUEST != 0 {
            ALIGN
        } else {
            1
        };
        // The size is bounded by the request limits (keys and inline values are small, a
        // `proto-max-bulk-len` key at most 4 GiB), far from `isize::MAX`.
        match Layout::from_size_align(self.size(), align) {
            Ok(l) => l,
            Err(_) => handle_alloc_error(Layout::new::<u64>()),
        }
    }
}

/// Allocates a block for `shape`, setting [`F_ALIGNED_REQUEST`] in its flags if needed.
///
/// The block needs 8-byte alignment. It is first requested *without* an alignment: malloc-
/// style allocators (mimalloc, glibc) align every block of 8 bytes or more to at least 8
/// anyway, and mimalloc serves an aligned request whose page has no free block at hand by
/// over-allocating `align - 1` bytes, which moves blocks near a size-class boundary into the
/// next class (measured: most 43–48-byte requests became 64-byte blocks). Only if the
/// returned address is not 8-aligned (an allocator without that guarantee) is the block
/// requested again with the alignment; the flag records which layout to free it with.
fn alloc_block(shape: &mut Shape) -> NonNull<u8> {
    let layout = shape.layout();
    if let Some(ptr) = take_spare(layout) {
        return ptr;
    }
    // SAFETY: the layout has a non-zero size (the header alone is 8 bytes).
    let raw = unsafe { alloc(layout) };
    let Some(ptr) = NonNull::new(raw) else {
        handle_alloc_error(layout)
    };
    if (ptr.as_ptr() as usize) & (ALIGN - 1) == 0 {
        return ptr;
    }
    // SAFETY: allocated just above with `layout`.
    unsafe { dealloc(ptr.as_ptr(), layout) };
    shape.flags |= F_ALIGNED_REQUEST;
    let layout = shape.layout();
    // SAFETY: as above.
    let raw = unsafe { alloc(layout) };
    NonNull::new(raw).unwrap_or_else(|| handle_alloc_error(layout))
}

/// Freed entry blocks up to this size may be kept as the thread's spare (see [`SPARE`]).
const SPARE_MAX: usize = 512;

/// A thread's spare entry block and the layout it was allocated with; freed at thread exit.
struct Spare(Cell<Option<(NonNull<u8>, Layout)>>);

impl Drop for Spare {
    fn drop(&mut self) {
        if let Some((ptr, layout)) = self.0.take() {
            // SAFETY: the spare was allocated with `layout` and nothing else refers to it.
            unsafe { dealloc(ptr.as_ptr(), layout) };
        }
    }
}

thread_local! {
    /// The last small entry block this thread freed, handed to its next entry of the same
    /// layout. Overwriting a key frees one block and allocates one of the same size, and
    /// mimalloc serves an allocation from blocks freed on the same page since its last
    /// collection only through its slow path (a page collection, ~440 instructions; callgrind
    /// saw it for one SET in three under `redis-benchmark -t set -P 16`); reusing the block
    /// skips both the allocation and the free. At most
    /// [`SPARE_MAX`] bytes a thread, outside `used_memory`.
    static SPARE: Spare = const { Spare(Cell::new(None)) };
}

/// This thread's spare block, if it has exactly `layout` (then 8-aligned: every entry block
/// is, see [`alloc_block`]).
#[inline]
fn take_spare(layout: Layout) -> Option<NonNull<u8>> {
    SPARE
        .try_with(|s| match s.0.get() {
            Some((ptr, l)) if l == layout => {
                s.0.set(None);
                Some(ptr)
            }
            _ => None,
        })
        .ok()
        .flatten()
}

/// Frees an entry block allocated with `layout`, or keeps it as this thread's spare (freeing
/// the previous spare instead).
///
/// # Safety
/// `ptr` was allocated with `layout`, is not used after this call, and is freed only here.
#[inline]
unsafe fn free_block(ptr: NonNull<u8>, layout: Layout) {
    let to_free = if layout.size() <= SPARE_MAX {
        match SPARE.try_with(|s| s.0.replace(Some((ptr, layout)))) {
            Ok(previous) => previous,
            // The thread is exiting and its spare is gone: free the block itself.
            Err(_) => Some((ptr, layout)),
        }
    } else {
        Some((ptr, layout))
    };
    if let Some((p, l)) = to_free {
        // SAFETY: `p` was allocated with `l` (the caller's block, or the previous spare, kept
        // with its layout) and nothing refers to it any more.
        unsafe { dealloc(p.as_ptr(), l) };
    }
}

/// One stored key/value pair: an owning pointer to its block (see the module doc).
pub(crate) struct EntryBox(NonNull<u8>);

// SAFETY: an `EntryBox` owns its block exclusively (like a `Box`); the only field mutated
// through a shared reference is the atomic access word.
unsafe impl Send for EntryBox {}
// SAFETY: as above; `&EntryBox` only reads immutable fields or the atomic word.
unsafe impl Sync for EntryBox {}

/// Asks the CPU to start loading the cache line at `p` (a hint: no effect on the program's
/// meaning, and none on targets without a prefetch instruction).
#[inline(always)]
pub(crate) fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and does not access memory in the language's sense.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl EntryBox {
    /// Starts loading the block's first two cache lines (header, key and a small value),
    /// without reading them.
    #[inline(always)]
    pub(crate) fn prefetch(&self) {
        let p = self.0.as_ptr().cast_const();
        prefetch_line(p);
        prefetch_line(p.wrapping_add(64));
    }

    /// Allocates a block for `key` and `value` with the given shape.
    fn build(mut shape: Shape, key: &[u8], value: &[u8], external: Option<Bytes>, at: u64) -> Self {
        debug_assert_eq!(shape.klen, key.len());
        let ptr = alloc_block(&mut shape);
        // SAFETY: `ptr` is a fresh allocation of `shape.size()` bytes, 8-aligned; every write
        // below is in bounds by construction of the offsets, and each field is written before
        // the box is handed out.
        unsafe {
            let p = ptr.as_ptr();
            p.cast::<AtomicU32>().write(AtomicU32::new(0));
            p.add(4).write(shape.flags);
            p.add(5).write(if shape.flags & F_LONG_KEY != 0 {
                0
            } else {
                shape.klen as u8
            });
            p.add(6).cast::<u16>().write(shape.vlen as u16);
            if shape.flags & F_LONG_KEY != 0 {
                p.add(HEADER).cast::<u64>().write(shape.klen as u64);
            }
            if shape.flags & F_TTL != 0 {
                p.add(shape.ttl_off()).cast::<u64>().write(at);
            }
            if shape.flags & F_EXTERNAL != 0 {
                let b = external.unwrap_or_else(|| external_value(value));
                p.add(shape.ext_off()).cast::<Bytes>().write(b);
            } else {
                std::ptr::copy_nonoverlapping(
                    value.as_ptr(),
                    p.add(shape.value_off()),
                    value.len(),
                );
            }
            std::ptr::copy_nonoverlapping(key.as_ptr(), p.add(shape.key_off()), key.len());
        }
        EntryBox(ptr)
    }

    /// A new entry for `key` = `value`, expiring at `at` (0 = none), with room for a TTL if
    /// `ttl_room` (or if `at != 0`).
    pub(crate) fn new(key: &[u8], value: &[u8], ttl_room: bool, at: u64) -> Self {
        let shape = Shape::for_value(key.len(), value.len(), ttl_room || at != 0);
        Self::build(shape, key, value, None, at)
    }

    /// Like [`EntryBox::new`], taking ownership of the value: a value stored in its own
    /// buffer keeps `value`'s allocation instead of a copy (for values built by the caller,
    /// `APPEND`, `SETRANGE`).
    pub(crate) fn from_vec(key: &[u8], value: Vec<u8>, ttl_room: bool, at: u64) -> Self {
        let mut shape = Shape::for_value(key.len(), value.len(), ttl_room || at != 0);
        shape.flags |= F_RAW;
        if shape.flags & F_EXTERNAL != 0 && !value.is_empty() {
            let b = Bytes::from_owner(value.into_boxed_slice());
            Self::build(shape, key, &[], Some(b), at)
        } else {
            Self::build(shape, key, &value, None, at)
        }
    }

    /// A copy of this entry with room for a TTL (the value buffer is shared, not copied, when
    /// external).
    pub(crate) fn with_ttl_room(&self) -> Self {
        let old = self.shape();
        let mut shape = Shape::new(
            old.klen,
            self.value().len(),
            true,
            old.flags & F_EXTERNAL != 0,
        );
        shape.flags |= old.flags & F_RAW;
        let ext = self.external().cloned();
        let e = Self::build(shape, self.key(), self.value(), ext, 0);
        e.access().store(self.access().load(Relaxed), Relaxed);
        e
    }

    #[inline]
    fn flags(&self) -> u8 {
        // SAFETY: the block is live and at least HEADER bytes long.
        unsafe { *self.0.as_ptr().add(4) }
    }

    #[inline]
    pub(crate) fn shape(&self) -> Shape {
        let flags = self.flags();
        let p = self.0.as_ptr();
        // SAFETY: header fields are in bounds and initialized; the long key field exists iff
        // its flag is set.
        unsafe {
            let klen = if flags & F_LONG_KEY != 0 {
                p.add(HEADER).cast::<u64>().read() as usize
            } else {
                *p.add(5) as usize
            };
            let vlen = p.add(6).cast::<u16>().read() as usize;
            Shape { flags, klen, vlen }
        }
    }

    /// The LRU/LFU word.
    #[inline]
    pub(crate) fn access(&self) -> &AtomicU32 {
        // SAFETY: offset 0 holds an initialized, 4-aligned AtomicU32 for the block's life.
        unsafe { &*self.0.as_ptr().cast::<AtomicU32>() }
    }

    /// The key.
    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        let s = self.shape();
        // SAFETY: `klen` key bytes were written at `key_off`.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(s.key_off()), s.klen) }
    }

    fn external(&self) -> Option<&Bytes> {
        let s = self.shape();
        (s.flags & F_EXTERNAL != 0).then(|| {
            // SAFETY: with F_EXTERNAL an initialized `Bytes` sits at `ext_off` (8-aligned).
            unsafe { &*self.0.as_ptr().add(s.ext_off()).cast::<Bytes>() }
        })
    }

    /// The value.
    #[inline]
    pub(crate) fn value(&self) -> &[u8] {
        let s = self.shape();
        if s.flags & F_EXTERNAL != 0 {
            // SAFETY: see `external`.
            unsafe { &*self.0.as_ptr().add(s.ext_off()).cast::<Bytes>() }
        } else {
            // SAFETY: `vlen` value bytes were written at `value_off`.
            unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(s.value_off()), s.vlen) }
        }
    }

    /// The value as an owned handle: a reference count for an external value, a copy of an
    /// inline one.
    pub(crate) fn value_bytes(&self) -> Bytes {
        match self.external() {
            Some(b) => b.clone(),
            None => Bytes::copy_from_slice(self.value()),
        }
    }

    /// Whether the value lives in its own buffer.
    pub(crate) fn is_external(&self) -> bool {
        self.flags() & F_EXTERNAL != 0
    }

    /// Marks the value `raw` (`OBJECT ENCODING`), as Redis does to a string a bit command
    /// writes to even when no bit changes.
    pub(crate) fn set_raw(&mut self) {
        // SAFETY: the flags byte is in bounds; `&mut self` excludes readers.
        unsafe { *self.0.as_ptr().add(4) |= F_RAW }
    }

    /// Redis's encoding name for this string: `int` for a canonical 64-bit integer of at
    /// most 20 characters, `embstr` up to 44 bytes, else `raw` (and always `raw` for a
    /// value built by `APPEND`, `SETRANGE` or a bit operation, as Redis keeps those).
    pub(crate) fn encoding(&self) -> &'static str {
        let v = self.value();
        if self.flags() & F_RAW != 0 {
            "raw"
        } else if v.len() <= 20 && is_canonical_i64(v) {
            "int"
        } else if v.len() <= 44 {
            "embstr"
        } else {
            "raw"
        }
    }

    /// Absolute expiry in unix ms, 0 = no TTL.
    #[inline]
    pub(crate) fn expires_at(&self) -> u64 {
        let s = self.shape();
        if s.flags & F_TTL == 0 {
            return 0;
        }
        // SAFETY: with F_TTL an initialized u64 sits at `ttl_off` (8-aligned).
        unsafe { self.0.as_ptr().add(s.ttl_off()).cast::<u64>().read() }
    }

    /// Whether the block has room for a TTL.
    #[inline]
    pub(crate) fn has_ttl_room(&self) -> bool {
        self.flags() & F_TTL != 0
    }

    /// Sets the expiry; the block must have room for it ([`EntryBox::has_ttl_room`]).
    pub(crate) fn set_expires_at(&mut self, at: u64) {
        let s = self.shape();
        assert!(s.flags & F_TTL != 0, "entry has no TTL field");
        // SAFETY: as in `expires_at`; `&mut self` excludes readers.
        unsafe { self.0.as_ptr().add(s.ttl_off()).cast::<u64>().write(at) }
    }

    /// Whether the entry is expired at `now_ms`.
    #[inline]
    pub(crate) fn expired_at(&self, now_ms: u64) -> bool {
        let at = self.expires_at();
        at != 0 && at <= now_ms
    }

    /// Bytes this entry holds on the heap under the allocator's size classes (block, plus
    /// the external buffer and its shared header).
    pub(crate) fn memory(&self) -> u64 {
        self.shape().memory(self.value().len())
    }
}

impl Drop for EntryBox {
    fn drop(&mut self) {
        let s = self.shape();
        // SAFETY: the block was allocated with `s.layout()` (the shape is read back from the
        // header written at build time) and is dropped exactly once; the external handle is
        // initialized iff its flag is set.
        unsafe {
            if s.flags & F_EXTERNAL != 0 {
                std::ptr::drop_in_place(self.0.as_ptr().add(s.ext_off()).cast::<Bytes>());
            }
            free_block(self.0, s.layout());
        }
    }
}

/// Whether `v` is the canonical decimal form of an `i64` (Redis's `string2l`).
fn is_canonical_i64(v: &[u8]) -> bool {
    let digits = match v {
        [b'-', rest @ ..] => rest,
        _ => v,
    };
    match digits {
        [] => false,
        [b'0'] => v.len() == 1,
        [b'0', ..] => false,
        _ => {
            digits.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(v).is_ok_and(|s| s.parse::<i64>().is_ok())
        }
    }
}

/// Whether a value of `value_len` bytes is stored in its own buffer: always above
/// [`INLINE_MAX`], and otherwise when that costs less memory than inline (mimalloc's classes
/// are exact at powers of two, so a 1 KiB value fits a 1 KiB buffer while a block holding it
/// and its key would round up to 1.25 KiB).
pub(crate) fn prefer_external(key_len: usize, value_len: usize, ttl: bool) -> bool {
    if value_len > INLINE_MAX {
        return true;
    }
    if value_len < 256 {
        return false;
    }
    let inline = Shape::new(key_len, value_len, ttl, false).memory(0);
    let external = Shape::new(key_len, value_len, ttl, true).memory(value_len);
    external < inline
}

/// Accounted bytes of one entry (without its share of the table, see [`crate::memory`]): a
/// key of `key_len` bytes, a value of `value_len` bytes, with room for a TTL if `ttl`.
pub fn entry_memory(key_len: usize, value_len: usize, ttl: bool) -> u64 {
    Shape::for_value(key_len, value_len, ttl).memory(value_len)
}

/// A value buffer for an external value: exactly `value.len()` bytes plus a shared header
/// allocated now (so that cloning it later, under a read lock, allocates nothing).
fn external_value(value: &[u8]) -> Bytes {
    if value.is_empty() {
        return Bytes::new();
    }
    Bytes::from_owner(Box::<[u8]>::from(value))
}

/// An owned entry taken out of the store ([`crate::Slot::remove`]); derefs to its value. Its
/// block is freed when it is dropped, after the shard lock is released.
pub struct Removed(pub(crate) EntryBox);

impl Removed {
    /// The key.
    pub fn key(&self) -> &[u8] {
        self.0.key()
    }
    /// The value.
    pub fn value(&self) -> &[u8] {
        self.0.value()
    }
    /// The value as `Bytes` (a reference count if external, else a copy).
    pub fn into_bytes(self) -> Bytes {
        self.0.value_bytes()
    }
    /// Expiry time in unix ms, 0 = none.
    pub fn expires_at_ms(&self) -> u64 {
        self.0.expires_at()
    }
}

impl std::ops::Deref for Removed {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.value()
    }
}

impl std::fmt::Debug for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Removed")
            .field("key_len", &self.key().len())
            .field("value_len", &self.value().len())
            .finish()
    }
}

/// A read-only view of a live entry, handed to [`crate::Store::read`] closures. Valid only
/// while the closure runs (the shard's read lock is held).
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value. Copy it, or take [`EntryRef::value_bytes`], to keep it beyond the closure.
    pub value: &'a [u8],
    /// Absolute expiry time in unix ms; 0 = no TTL.
    pub expires_at_ms: u64,
    entry: &'a EntryBox,
}

impl<'a> EntryRef<'a> {
    pub(crate) fn from_entry(e: &'a EntryBox) -> Self {
        EntryRef {
            key: e.key(),
            value: e.value(),
            expires_at_ms: e.expires_at(),
            entry: e,
        }
    }

    /// The value as an owned `Bytes`: a reference count for a value stored in its own buffer
    /// (larger ones, see [`INLINE_MAX`]), a copy of an inline one. Readers that only write
    /// the value into a reply should copy [`EntryRef::value`] instead: for a small value
    /// that is cheaper and allocates nothing.
    pub fn value_bytes(&self) -> Bytes {
        self.entry.value_bytes()
    }

    /// Whether the value is in its own buffer (cloning it is a reference count, not a copy).
    pub fn is_external(&self) -> bool {
        self.entry.is_external()
    }

    /// Redis's `OBJECT ENCODING` for this string (`int`, `embstr` or `raw`).
    pub fn encoding(&self) -> &'static str {
        self.entry.encoding()
    }

    /// The raw LRU/LFU access word (see [`crate::Store::object_idle_ms`] and
    /// [`crate::Store::object_freq`]).
    pub fn access_word(&self) -> u32 {
        self.entry.access().load(Relaxed)
    }

    /// Accounted bytes of the entry (its block and any value buffer), without its table
    /// slot.
    pub fn memory(&self) -> u64 {
        self.entry.memory()
    }
}

impl std::fmt::Debug for EntryRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryRef")
            .field("key", &self.key)
            .field("value_len", &self.value.len())
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
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
    fn entry_model() {
        // 16-byte key, 32-byte value: one 56-byte block in the 64-byte class; a TTL fits the
        // same class.
        assert_eq!(entry_memory(16, 32, false), 64);
        assert_eq!(entry_memory(16, 32, true), 64);
        // 1 KiB values go to their own exact-size buffer.
        assert!(prefer_external(16, 1024, false));
        assert_eq!(entry_memory(16, 1024, false), 64 + 1024 + 32);
        // Large values are always external.
        assert!(prefer_external(1, INLINE_MAX + 1, false));
        assert_eq!(entry_memory(0, 0, false), 8);
    }

    #[test]
    fn blocks_round_trip() {
        let long_key = vec![b'k'; 300];
        for (key, value, at) in [
            (&b"key"[..], &b"value"[..], 0),
            (&b""[..], &b""[..], 0),
            (&b"k"[..], &[7u8; 20_000][..], 0),
            (&long_key[..], &b"v"[..], 42),
            (&b"k2"[..], &[1u8; 1024][..], 99),
        ] {
            let mut e = EntryBox::new(key, value, false, at);
            assert_eq!(e.key(), key);
            assert_eq!(e.value(), value);
            assert_eq!(e.expires_at(), at);
            assert_eq!(&e.value_bytes()[..], value);
            assert_eq!(e.memory(), entry_memory(key.len(), value.len(), at != 0));
            let mut grown = e.with_ttl_room();
            grown.set_expires_at(7);
            assert_eq!(
                (grown.key(), grown.value(), grown.expires_at()),
                (key, value, 7)
            );
            if e.has_ttl_room() {
                e.set_expires_at(0);
                assert_eq!(e.expires_at(), 0);
            }
        }
    }

    #[test]
    fn encodings_follow_redis() {
        let enc = |v: &[u8]| EntryBox::new(b"k", v, false, 0).encoding();
        assert_eq!(enc(b"123"), "int");
        assert_eq!(enc(b"-9223372036854775808"), "int");
        assert_eq!(enc(b"9223372036854775808"), "embstr");
        assert_eq!(enc(b"0123"), "embstr");
        assert_eq!(enc(b"-0"), "embstr");
        assert_eq!(enc(b"0"), "int");
        assert_eq!(enc(b""), "embstr");
        assert_eq!(enc(&[b'x'; 44]), "embstr");
        assert_eq!(enc(&[b'x'; 45]), "raw");
        assert_eq!(
            EntryBox::from_vec(b"k", b"12".to_vec(), false, 0).encoding(),
            "raw"
        );
    }

    #[test]
    fn lru_stores_clock() {
        let a = AtomicU32::new(initial_access(false, 5));
        touch(&a, false, 1234);
        assert_eq!(a.load(Relaxed), 1234);
    }
}
