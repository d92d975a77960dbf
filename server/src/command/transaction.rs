//! Transactions: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`, with Redis 7.0's semantics.
//!
//! While a client is in `MULTI`, [`intercept`] runs before normal dispatch: every command
//! but `EXEC`, `DISCARD`, `MULTI`, `WATCH`, `QUIT` and `RESET` is checked as usual (unknown
//! command, arity, authentication, memory) and queued with `+QUEUED`; a rejection answers
//! its error and marks the transaction, so that `EXEC` answers `-EXECABORT`. `EXEC` takes
//! the write lock of every shard its queued commands name, once each, in ascending order
//! ([`shardcache_storage::Store::transaction`]; every shard if a queued command names no
//! keys, such as `FLUSHDB` or `DBSIZE`), runs them in order, and releases: no other client
//! observes part of a transaction. Runtime errors are returned in place and the rest runs.
//!
//! `WATCH` registers the client's [`WatchFlag`] with the keys' shards; any change to a
//! watched key by anyone sets it, and `EXEC` then answers a null array. A client that never
//! watches costs nothing: shards without watchers pay one branch per mutation.

use std::sync::Arc;

use bytes::Bytes;
use shardcache_protocol::reply;
use shardcache_storage::WatchFlag;

use super::{dispatch, run, CmdError, CmdResult, Ctx, Flow};
use crate::client::{ClientState, WatchState};
use crate::stats::WorkerStats;
use crate::table::{holder_of, key_args, Flags, COMMANDS};
use crate::Shared;

const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

/// `MULTI`.
pub fn multi(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::msg("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Box::default());
    ctx.ok()
}

/// `EXEC` outside a transaction (inside one, [`intercept`] runs it).
pub fn exec(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Err(CmdError::msg("ERR EXEC without MULTI"))
}

/// `DISCARD`.
pub fn discard(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(CmdError::msg("ERR DISCARD without MULTI"));
    }
    ctx.client.watching = None;
    ctx.ok()
}

/// `WATCH key [key ...]`.
pub fn watch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::msg("ERR WATCH inside MULTI is not allowed"));
    }
    let store = &ctx.shared.store;
    let db = ctx.client.db;
    let w = ctx.client.watching.get_or_insert_with(|| {
        Box::new(WatchState {
            store: Arc::clone(store),
            flag: Arc::new(WatchFlag::default()),
            keys: Vec::new(),
        })
    });
    for key in &args[1..] {
        if w.keys.iter().any(|(d, k, _)| *d == db && k == key) {
            continue;
        }
        let expired = store.watch(db, key, &w.flag);
        w.keys.push((db, Bytes::copy_from_slice(key), expired));
    }
    ctx.ok()
}

/// `UNWATCH`.
pub fn unwatch(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.client.watching = None;
    ctx.ok()
}

/// Runs before normal dispatch. Returns `None` when the client is not in `MULTI` (one
/// branch), else handles the request: queues it, or runs `EXEC` and the commands that act
/// at once inside a transaction.
pub fn intercept(
    shared: &Shared,
    stats: &WorkerStats,
    client: &mut ClientState,
    args: &[Bytes],
    out: &mut bytes::BytesMut,
) -> Option<Flow> {
    client.multi.as_ref()?;
    let Some(d) = dispatch(shared, stats, client, args, out) else {
        flag(client);
        return Some(Flow::Continue);
    };
    match COMMANDS[d.index].name {
        "exec" => Some(run_exec(shared, stats, client, d.index, out)),
        "multi" | "discard" | "watch" | "quit" | "reset" => {
            let (flow, failed) = run(shared, client, d.index, d.holder, args, out);
            stats.call(d.index, failed);
            Some(flow)
        }
        _ if COMMANDS[d.index].flags.contains(Flags::NO_MULTI) => {
            stats.rejected(d.index);
            reply::error(out, b"ERR Command not allowed inside a transaction");
            flag(client);
            Some(Flow::Continue)
        }
        _ => {
            // Redis refuses to queue anything while over maxmemory (not only `denyoom`
            // commands): queuing itself takes memory.
            if shared.store.maxmemory() != 0 && shared.store.reclaim_memory().is_err() {
                stats.rejected(d.index);
                reply::error(out, CmdError::OOM.0.as_bytes());
                flag(client);
                return Some(Flow::Continue);
            }
            let limit = usize::try_from(shared.runtime.query_buffer_limit()).unwrap_or(usize::MAX);
            let size: usize = args.iter().map(|a| a.len() + 16).sum();
            let m = client.multi.as_mut()?;
            if m.bytes.saturating_add(size) > limit {
                reply::error(
                    out,
                    b"ERR transaction queue exceeds client-query-buffer-limit",
                );
                m.dirty = true;
                return Some(Flow::Continue);
            }
            m.bytes += size;
            // Each argument is copied out of the read buffer, so a long transaction holds
            // what it queued, not every read buffer it came in.
            m.queue.push((
                d.index,
                args.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
            ));
            reply::simple(out, b"QUEUED");
            Some(Flow::Continue)
        }
    }
}

fn flag(client: &mut ClientState) {
    if let Some(m) = client.multi.as_mut() {
        m.dirty = true;
    }
}

fn run_exec(
    shared: &Shared,
    stats: &WorkerStats,
    client: &mut ClientState,
    exec_index: usize,
    out: &mut bytes::BytesMut,
) -> Flow {
    let Some(m) = client.multi.take() else {
        return Flow::Continue;
    };
    let watching = client.watching.take();
    if m.dirty {
        stats.call(exec_index, true);
        reply::error(out, EXECABORT.as_bytes());
        return Flow::Continue;
    }
    let denyoom = m
        .queue
        .iter()
        .any(|(i, _)| COMMANDS[*i].flags.contains(Flags::DENYOOM));
    if denyoom && shared.store.reclaim_memory().is_err() {
        stats.call(exec_index, true);
        reply::error(out, CmdError::OOM.0.as_bytes());
        return Flow::Continue;
    }
    // The shards to hold: every key the queued commands name, and the watched keys (their
    // flags are checked under the same locks, so nothing can change them in between).
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut all = false;
    for (i, args) in &m.queue {
        match key_args(*i, args) {
            Some(k) => keys.extend(k),
            None => all = true,
        }
    }
    if let Some(w) = &watching {
        keys.extend(w.keys.iter().map(|(_, k, _)| &k[..]));
    }
    let mut flow = Flow::Continue;
    shared.store.transaction((!all).then_some(&keys[..]), || {
        if watching.as_ref().is_some_and(|w| w.broken()) {
            reply::null_array(out, client.version);
            return;
        }
        reply::array_len(out, m.queue.len());
        for (i, args) in &m.queue {
            let t0 = shared.times_commands().then(std::time::Instant::now);
            let (f, failed) = run(shared, client, *i, holder_of(*i), args, out);
            if let Some(t0) = t0 {
                shared.command_took(*i, t0.elapsed().as_nanos() as u64, args, client);
            }
            stats.call(*i, failed);
            if matches!(f, Flow::Close) {
                flow = Flow::Close;
            }
        }
    });
    // Unwatched after the locks are released (the transaction's own writes set the flag,
    // which no longer matters).
    drop(watching);
    stats.call(exec_index, false);
    flow
}
