//! A client declaring huge sizes without sending the bytes must not make the decoders allocate
//! anything proportional to the declared size. Counted with a global allocator, so this file is
//! its own test binary with a single test (tests in one binary run in parallel).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use shardcache_protocol::{FrameDecoder, Limits, RequestDecoder};
use tokio_util::codec::Decoder;

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated while running `f`.
fn allocated_by(f: impl FnOnce()) -> usize {
    let before = ALLOCATED.load(Ordering::Relaxed);
    f();
    ALLOCATED.load(Ordering::Relaxed) - before
}

#[test]
fn declared_sizes_do_not_drive_allocation() {
    const BUDGET: usize = 256 * 1024;
    let inputs: [&[u8]; 4] = [
        b"*2147483647\r\n$536870912\r\nabc",
        b"*1000000000\r\n",
        b"*2147483647\r\n*2147483647\r\n%2147483647\r\n$536870912\r\nabc",
        b"$536870912\r\nabc",
    ];
    for input in inputs {
        let mut buf = BytesMut::from(input);
        let mut requests = RequestDecoder::new(Limits::default());
        let used = allocated_by(|| {
            let _ = requests.decode(&mut buf);
            let _ = requests.decode(&mut buf);
        });
        assert!(
            used < BUDGET,
            "request decoder allocated {used} bytes for {input:?}"
        );

        let mut buf = BytesMut::from(input);
        let mut frames = FrameDecoder::default();
        let used = allocated_by(|| {
            let _ = frames.decode(&mut buf);
            let _ = frames.decode(&mut buf);
        });
        assert!(
            used < BUDGET,
            "frame decoder allocated {used} bytes for {input:?}"
        );
    }
}
