//! The hot path allocates nothing per command but the stored entry: decoding and executing
//! pipelined GETs allocates nothing at all (also the first GET of a freshly written key), and
//! a SET allocates one block holding key and value. Counted with a global allocator that counts the
//! allocations of the measuring thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

use bytes::BytesMut;
use clap::Parser;
use shardcache_config::Config;
use shardcache_protocol::{Limits, RequestDecoder};
use shardcache_server::client::ClientState;
use shardcache_server::command;
use shardcache_server::Shared;
use tokio_util::codec::Decoder;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocations made by `f` on this thread.
fn count(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    COUNT.with(Cell::get)
}

struct Harness {
    shared: Shared,
    client: ClientState,
    decoder: RequestDecoder,
    out: BytesMut,
}

impl Harness {
    fn new() -> Harness {
        let config = Config::parse_from(["shardcache", "--shards", "16", "--metrics-addr", ""]);
        let shared = Shared::new(config, 0).expect("shared state");
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let client = ClientState::new(1, peer, &shared.auth);
        Harness {
            shared,
            client,
            decoder: RequestDecoder::new(Limits::default()),
            out: BytesMut::with_capacity(4 << 20),
        }
    }

    /// Decodes and executes every request in `input`, as a connection does with a batch.
    fn run(&mut self, input: &mut BytesMut) -> usize {
        let mut n = 0;
        while let Ok(Some(req)) = self.decoder.decode(input) {
            command::execute(
                &self.shared,
                self.shared.stats.worker(0),
                &mut self.client,
                &req,
                &mut self.out,
            );
            n += 1;
        }
        n
    }
}

fn batch(n: usize, f: impl Fn(usize) -> String) -> BytesMut {
    let mut b = BytesMut::with_capacity(n * 64);
    for i in 0..n {
        b.extend_from_slice(f(i).as_bytes());
    }
    b
}

#[test]
fn pipelined_gets_allocate_nothing() {
    let mut h = Harness::new();
    let mut warm = batch(2, |_| {
        "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n".into()
    });
    h.run(&mut warm);
    let mut input = batch(1001, |_| "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n".into());
    // The first request of a fresh buffer shares the buffer (one allocation per read buffer,
    // not per command); measure the 1,000 after it.
    let mut first = input.split_to(input.len() / 1001);
    first.unsplit(BytesMut::new());
    h.run(&mut first);
    h.out.clear();
    let mut executed = 0;
    let n = count(|| executed = h.run(&mut input));
    assert_eq!(executed, 1000);
    assert_eq!(n, 0, "allocations for 1,000 pipelined GETs");
    assert!(h.out.starts_with(b"$5\r\nvalue\r\n"));
}

#[test]
fn first_get_after_set_allocates_nothing() {
    let mut h = Harness::new();
    let mut sets = batch(1000, |i| {
        let k = format!("key:{i:06}");
        format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n$32\r\n{:032}\r\n",
            k.len(),
            i
        )
    });
    h.run(&mut sets);
    let mut gets = batch(1001, |i| {
        let k = format!("key:{:06}", i % 1000);
        format!("*2\r\n$3\r\nGET\r\n${}\r\n{k}\r\n", k.len())
    });
    let mut first = gets.split_to(gets.len() / 1001);
    first.unsplit(BytesMut::new());
    h.run(&mut first);
    h.out.clear();
    let mut executed = 0;
    // Each key is read for the first time since it was written: a small value is copied into
    // the reply under the read lock, and no handle is created or promoted.
    let n = count(|| executed = h.run(&mut gets));
    assert_eq!(executed, 1000);
    assert_eq!(n, 0, "allocations for the first GET of 1,000 fresh keys");
    assert!(h
        .out
        .starts_with(b"$32\r\n00000000000000000000000000000001\r\n"));
}

#[test]
fn set_allocates_only_the_entry() {
    let mut h = Harness::new();
    let set = |range: std::ops::Range<usize>, v: &'static str| {
        batch(range.len(), move |i| {
            let k = format!("key:{:06}", range.start + i);
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                k.len(),
                v.len()
            )
        })
    };
    // Fill the tables first, so what follows measures the steady state rather than the first
    // allocation of each table segment.
    h.run(&mut set(0..50_000, "value"));
    let mut input = set(50_000..52_000, "value");
    let mut executed = 0;
    let new_keys = count(|| executed = h.run(&mut input));
    assert_eq!(executed, 2000);
    // One per new key (its entry: key and value in one block), plus the table segments'
    // amortized growth (4,096 segments of ~12 keys; growing the keys by 4% makes a few hundred
    // of them double), the hot-key sampler (below) and the read buffer's one-time sharing.
    assert!(
        (2000..=2000 + 500).contains(&new_keys),
        "allocations for 2,000 SETs of new keys: {new_keys}"
    );
    // Overwrites with a value of another size: one per overwrite (the new entry, built before
    // the lock), plus the hot-key sampler copying a key when it enters a shard's top-K: one in
    // 128 lock acquisitions of each of the 16 shards, so at most 2000 / 128 + 16.
    let mut input = set(50_000..52_000, "other value");
    let overwrites = count(|| executed = h.run(&mut input));
    assert_eq!(executed, 2000);
    assert!(
        (2000..=2000 + 2000 / 128 + 16).contains(&overwrites),
        "allocations for 2,000 overwrites with a longer value: {overwrites}"
    );
    // Overwrites with a value of the same size: each new entry takes the block the previous
    // overwrite freed (the thread's spare), so only the first allocates, plus the sampler.
    let mut input = set(50_000..52_000, "third value");
    let same_size = count(|| executed = h.run(&mut input));
    assert_eq!(executed, 2000);
    assert!(
        same_size <= 1 + 2000 / 128 + 16,
        "allocations for 2,000 same-size overwrites: {same_size}"
    );
}
