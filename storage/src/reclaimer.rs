//! The background expiry thread.

use crate::blame;
use crate::store::Store;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Keys removed per shard per pass of the background cycle.
pub const RECLAIM_BUDGET_PER_SHARD: usize = 2_000;

/// Handle to the background expiry thread started by [`Reclaimer::spawn`]. Dropping it (or
/// calling [`Reclaimer::stop`]) stops the thread and waits for it.
#[derive(Debug)]
pub struct Reclaimer {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Reclaimer {
    /// Starts the background expiry thread (`shardcache-expire`) for `store`: every
    /// `interval` it runs [`Store::expire_cycle`] with a budget of
    /// [`RECLAIM_BUDGET_PER_SHARD`] keys per shard, repeating while shards still have due
    /// keys (up to half the interval), advances the LRU clock, and evicts if used memory is
    /// above `maxmemory`. It holds only a weak reference: it ends when the store is dropped.
    ///
    /// # Panics
    /// If the OS cannot spawn a thread.
    pub fn spawn(store: &Arc<Store>, interval: Duration) -> Reclaimer {
        spawn(Arc::downgrade(store), interval)
    }

    /// Stops the thread and waits for its current pass to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Reclaimer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn spawn(store: Weak<Store>, interval: Duration) -> Reclaimer {
    let (tx, rx) = mpsc::channel::<()>();
    let interval = interval.max(Duration::from_millis(1));
    let handle = std::thread::Builder::new()
        .name("shardcache-expire".into())
        .spawn(move || loop {
            // Its holds are blamed on "background" and always timed (a pass can be long).
            let _holder = blame::enter(blame::Holder::new(blame::TAG_BACKGROUND, true));
            match rx.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            let Some(store) = store.upgrade() else {
                return;
            };
            run_tick(&store, interval);
        })
        .expect("failed to spawn the shardcache-expire thread");
    Reclaimer {
        stop: Some(tx),
        handle: Some(handle),
    }
}

/// One tick: expire adaptively (repeat while a pass used its whole budget, for at most
/// half the interval), then evict if above `maxmemory`.
fn run_tick(store: &Arc<Store>, interval: Duration) {
    let start = Instant::now();
    let mut removed = 0;
    loop {
        let (n, saturated) = store.expire_cycle_inner(RECLAIM_BUDGET_PER_SHARD);
        removed += n;
        if !saturated || start.elapsed() >= interval / 2 {
            break;
        }
    }
    if removed > 0 {
        tracing::trace!(removed, "active expiry");
    }
    if store.reclaim_memory().is_err() {
        tracing::debug!("above maxmemory and nothing evictable");
    }
    // No command to log them under: long background holds are counted (hold histograms,
    // blame), and only logged here.
    for h in blame::take_long_holds() {
        tracing::debug!(
            shard = h.lock,
            hold_ns = h.hold_ns,
            waiters = h.waiters,
            "long background lock hold"
        );
    }
}
