//! Memory accounting model.
//!
//! `used_memory` is an *estimate* of the heap the store's entries occupy, computed the same
//! way for every entry so that it is cheap (a few integer operations per write), exact in
//! the sense of being reversible (insert then delete returns to 0) and close enough to RSS
//! growth to make `maxmemory` meaningful. Per entry we charge:
//!
//! * **the hash table slot**: `size_of::<Entry>()` (key and value `Bytes` handles, the expiry
//!   time, the stored hash and the LRU/LFU word: 88 bytes on 64-bit) plus 1 control byte of
//!   the SwissTable — [`SLOT_BYTES`];
//! * **the key and value buffers** as glibc malloc chunks: a request of `n > 0` bytes takes
//!   `max(32, round_up(n + 8, 16))` bytes (8-byte chunk header, 16-byte granularity, 32-byte
//!   minimum chunk) — [`malloc_chunk`]. Empty buffers are static and cost nothing;
//! * **the `Bytes` shared header** (`bytes::Shared`: buffer pointer, capacity, refcount =
//!   24 bytes, a 32-byte chunk) for each non-empty buffer. A `Bytes` made from a `Vec`
//!   allocates it lazily on first clone, which the store does on every GET, so we always
//!   charge it — [`SHARED_HEADER_BYTES`].
//!
//! So `entry_memory(k, v) = key_len + value_len + ENTRY_OVERHEAD + rounding(k) + rounding(v)`
//! where [`ENTRY_OVERHEAD`] = slot + two shared headers + two chunk headers (for non-empty
//! buffers) and `rounding` is the malloc size-class waste.
//!
//! Not charged (documented approximations): the table's unused slots (load factor <= 7/8,
//! power-of-two capacities, so up to ~2x of the slot cost after a resize), the expiry index
//! (48 bytes per TTL'd write, reclaimed lazily), per-shard fixed structures, and sharing
//! between a stored value and a handle a client still holds.

use crate::entry::Entry;

/// Bytes of one SwissTable slot holding an entry (88 bytes on 64-bit) plus one control byte.
pub const SLOT_BYTES: u64 = std::mem::size_of::<Entry>() as u64 + 1;

/// Charge for one `Bytes` shared header: a 24-byte struct in a 32-byte malloc chunk.
pub const SHARED_HEADER_BYTES: u64 = 32;

/// glibc malloc chunk header on 64-bit.
const MALLOC_HEADER: u64 = 8;

/// Fixed per-entry overhead for an entry with a non-empty key and value: the slot, two
/// `Bytes` shared headers, and two malloc chunk headers. Size-class rounding is extra.
pub const ENTRY_OVERHEAD: u64 = SLOT_BYTES + 2 * SHARED_HEADER_BYTES + 2 * MALLOC_HEADER;

/// Size of the glibc malloc chunk serving a request of `n` bytes (0 for `n == 0`: empty
/// `Bytes` do not allocate).
#[inline]
pub fn malloc_chunk(n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    let n = n as u64;
    (n.saturating_add(MALLOC_HEADER + 15) & !15).max(32)
}

/// Charge for one `Bytes` buffer of `n` bytes: its malloc chunk plus its shared header.
#[inline]
fn bytes_cost(n: usize) -> u64 {
    if n == 0 {
        0
    } else {
        malloc_chunk(n) + SHARED_HEADER_BYTES
    }
}

/// Accounted memory of one entry with a key of `key_len` and a value of `value_len` bytes.
#[inline]
pub fn entry_memory(key_len: usize, value_len: usize) -> u64 {
    SLOT_BYTES + bytes_cost(key_len) + bytes_cost(value_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_size_classes() {
        assert_eq!(malloc_chunk(0), 0);
        assert_eq!(malloc_chunk(1), 32);
        assert_eq!(malloc_chunk(24), 32);
        assert_eq!(malloc_chunk(25), 48);
        assert_eq!(malloc_chunk(40), 48);
        assert_eq!(malloc_chunk(41), 64);
        assert_eq!(malloc_chunk(1000), 1008);
        assert_eq!(malloc_chunk(usize::MAX) % 16, 0);
    }

    #[test]
    fn entry_model() {
        assert_eq!(std::mem::size_of::<Entry>(), 88);
        assert_eq!(SLOT_BYTES, 89);
        // 8-byte key and 8-byte value: 89 + 2 * (32 + 32).
        assert_eq!(entry_memory(8, 8), 89 + 128);
        assert_eq!(entry_memory(8, 8), 8 + 8 + ENTRY_OVERHEAD + 2 * (32 - 16));
        assert_eq!(entry_memory(0, 0), SLOT_BYTES);
    }
}
