//! Memory accounting model.
//!
//! `used_memory` is what `maxmemory` enforces, so it must track what the process really
//! holds, not just the payload. It is the sum of:
//!
//! * **each entry's block** (see [`crate::entry_memory`]), charged at the allocator's size
//!   class for its size — [`alloc_size`] models mimalloc's bins (the server's global allocator; the
//!   server's `mimalloc_model` test checks the model against `mi_usable_size`): 8 bytes,
//!   then multiples of 16 up to 64, then four bins per power of two (~12.5% worst internal
//!   waste), 64 KiB slices above [`LARGE_OBJECT`] and 256 KiB slices above [`HUGE_OBJECT`]. (An 8-aligned request that finds
//!   its page without a free block is over-allocated by 7 bytes, which can move it up a bin;
//!   that happens once per page refill and is not modelled);
//! * for a value stored in its own buffer, that buffer's size class and the 32-byte
//!   `Bytes` owner header allocated with it — [`external_cost`];
//! * **the tables**: each segment's real allocation (`buckets` pointers of 8 bytes and
//!   `buckets + 16` control bytes, as hashbrown reports it), charged when it grows or is
//!   freed, so the load factor's empty slots are counted;
//! * **the expiry index**: its vector's capacity, 16 bytes per item.
//!
//! Not charged: per-shard and per-connection fixed structures (a few KiB each), the
//! allocator's own metadata and partly-filled pages. Charging real capacities keeps the
//! model within a few percent of RSS growth for any mix of sizes (`scripts/bench-memory.sh`
//! prints the ratio).

/// Largest object served from mimalloc's size classes; above it, 64 KiB slices.
pub const LARGE_OBJECT: usize = 512 * 1024;
/// Objects above this size are rounded to 256 KiB (mimalloc's arena slices).
pub const HUGE_OBJECT: usize = 2 * 1024 * 1024;

/// Bytes of a `Bytes::from_owner` header for a boxed slice (reference count, drop function,
/// the box's pointer and length).
pub const EXTERNAL_HEADER_BYTES: u64 = 32;

/// Bytes of one expiry index item.
pub const EXPIRY_ITEM_BYTES: u64 = 16;

/// The allocator's size class for a request of `n` bytes (0 for 0): mimalloc's bins.
#[inline]
pub fn alloc_size(n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    if n > HUGE_OBJECT {
        return (n as u64).next_multiple_of(256 * 1024);
    }
    if n > LARGE_OBJECT {
        return (n as u64).next_multiple_of(64 * 1024);
    }
    let words = n.div_ceil(8) as u64;
    if words <= 8 {
        // x86-64 and aarch64 have 16-byte `max_align_t`: mimalloc rounds to even words.
        return if words == 1 {
            8
        } else {
            words.next_multiple_of(2) * 8
        };
    }
    let w = words - 1;
    let b = 63 - w.leading_zeros();
    (((w >> (b - 2)) + 1) << (b - 2)) * 8
}

/// Memory of a value of `n` bytes kept in its own buffer: the buffer and its owner header.
#[inline]
pub fn external_cost(n: usize) -> u64 {
    if n == 0 {
        0
    } else {
        alloc_size(n) + EXTERNAL_HEADER_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mimalloc_bins() {
        assert_eq!(alloc_size(0), 0);
        assert_eq!(alloc_size(1), 8);
        assert_eq!(alloc_size(9), 16);
        assert_eq!(alloc_size(17), 32);
        assert_eq!(alloc_size(56), 64);
        assert_eq!(alloc_size(64), 64);
        assert_eq!(alloc_size(65), 80);
        assert_eq!(alloc_size(81), 96);
        assert_eq!(alloc_size(129), 160);
        assert_eq!(alloc_size(1024), 1024);
        assert_eq!(alloc_size(1048), 1280);
        assert_eq!(alloc_size(LARGE_OBJECT + 1), LARGE_OBJECT as u64 + 65536);
    }
}
