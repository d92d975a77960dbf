//! The memory accounting (`shardcache_storage::memory::alloc_size`) models the size classes
//! of the binary's global allocator, mimalloc. Checked here against the allocator itself:
//! for every request size up to 16 KiB and a sample above, 64 live blocks of that size are
//! allocated as the store allocates entries and value buffers (no alignment requested, see
//! `storage/src/entry.rs`), and every one must have the usable size the model charges and
//! be 8-aligned.

use std::alloc::{alloc, dealloc, Layout};

use mimalloc::MiMalloc;
use shardcache_storage::memory::{alloc_size, LARGE_OBJECT};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// How many of `n` live blocks of `size` bytes have the model's usable size and are
/// 8-aligned.
fn matching(size: usize, n: usize) -> usize {
    let layout = Layout::from_size_align(size, 1).expect("layout");
    let model = alloc_size(size);
    let mut blocks = Vec::with_capacity(n);
    let mut ok = 0;
    for _ in 0..n {
        // SAFETY: non-zero size; every block is freed below with the same layout.
        let p = unsafe { alloc(layout) };
        assert!(!p.is_null());
        // SAFETY: `p` was allocated by mimalloc.
        if unsafe { GLOBAL.usable_size(p) } as u64 == model && (p as usize).is_multiple_of(8) {
            ok += 1;
        }
        blocks.push(p);
    }
    for p in blocks {
        // SAFETY: allocated above with `layout`.
        unsafe { dealloc(p, layout) };
    }
    ok
}

#[test]
fn model_matches_mimalloc_usable_size() {
    const N: usize = 64;
    let sizes = (8..=16 * 1024)
        .chain((LARGE_OBJECT..=4 << 20).step_by(65_521))
        .chain((16 * 1024..=LARGE_OBJECT).step_by(997))
        .chain([LARGE_OBJECT, LARGE_OBJECT + 1, 1 << 20, (1 << 20) + 12_345]);
    let mut wrong = Vec::new();
    for size in sizes {
        let ok = matching(size, N);
        if ok < N {
            let layout = Layout::from_size_align(size, 1).expect("layout");
            // SAFETY: non-zero size, freed with the same layout.
            let real = unsafe {
                let p = alloc(layout);
                let u = GLOBAL.usable_size(p);
                dealloc(p, layout);
                u
            };
            wrong.push((size, alloc_size(size), real, ok));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} sizes where a block differs from the model (size, model, mimalloc, matching of {N}), \
         first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}
