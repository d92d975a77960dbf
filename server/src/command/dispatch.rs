//! Dispatch: lookup through the server's [`CommandNames`](crate::table::CommandNames), arity,
//! authentication and the memory check in Redis's order; running a handler; counting.

use bytes::{Bytes, BytesMut};
use shardcache_protocol::{reply, Request};
use shardcache_storage::blame;

use super::args::{eq_ic, parse_i64_strict};
use super::ctx::{CmdError, Ctx, Flow};
use super::handlers::HANDLERS;
use super::{transaction, unsupported};
use crate::client::ClientState;
use crate::state::Shared;
use crate::stats::WorkerStats;
use crate::table::{hidden_from_monitor, Flags, Offload, BIG_SCAN_PAGE, COMMANDS};

/// For `CLIENT PAUSE`: `None` if the request is never paused (`CLIENT`, so that `UNPAUSE`
/// gets through), else whether it is a write.
pub fn pause_class(shared: &Shared, args: &[Bytes]) -> Option<bool> {
    let found = shared.commands.get(args.first()?)?;
    let spec = &COMMANDS[found.index];
    (spec.name != "client").then(|| spec.flags.contains(Flags::WRITE))
}

/// A request that passed lookup, arity, authentication and the memory check: ready to run.
#[derive(Clone, Copy, Debug)]
pub struct Dispatched {
    /// Index of the command in [`COMMANDS`].
    pub index: usize,
    offload: Offload,
    /// Whom the store charges the command's lock holds and waits to.
    pub holder: blame::Holder,
}

impl Dispatched {
    /// Whether this request may run long enough (a keyspace walk) that the worker should run
    /// it on its blocking pool rather than keep its other clients waiting.
    pub fn offload(&self, args: &[Bytes]) -> bool {
        match self.offload {
            Offload::Never => false,
            Offload::Always => true,
            Offload::BigScanPage => scan_count(args).is_some_and(|n| n >= BIG_SCAN_PAGE),
        }
    }
}

/// The `COUNT` argument of a `SCAN`, when present and an integer.
fn scan_count(args: &[Bytes]) -> Option<i64> {
    let i = args.iter().skip(2).position(|a| eq_ic(a, "count"))? + 2;
    parse_i64_strict(args.get(i + 1)?)
}

/// Looks the request up and checks arity, authentication and (for `denyoom` commands) the
/// memory limit, in Redis's order. On refusal the error reply is written, the refusal
/// counted in `stats`, and `None` returned.
pub fn dispatch(
    shared: &Shared,
    stats: &WorkerStats,
    client: &ClientState,
    args: &[Bytes],
    out: &mut BytesMut,
) -> Option<Dispatched> {
    let name = args.first()?;
    let Some(found) = shared.commands.get(name) else {
        stats.unknown_command();
        reply::error(out, &unknown_command(args));
        return None;
    };
    let spec = &COMMANDS[found.index];
    let argc = args.len() as i64;
    let arity = i64::from(spec.arity);
    if (arity > 0 && argc != arity) || argc < -arity {
        stats.rejected(found.index);
        let msg = format!("ERR wrong number of arguments for '{}' command", spec.name);
        reply::error(out, msg.as_bytes());
        return None;
    }
    // Redis's order: unknown command and arity first, then authentication. An authenticated
    // client pays this one bool test.
    if !client.authenticated && !found.no_auth && shared.auth.required() {
        stats.rejected(found.index);
        reply::error(out, crate::auth::NOAUTH.as_bytes());
        return None;
    }
    if found.denyoom && shared.store.reclaim_memory().is_err() {
        stats.rejected(found.index);
        reply::error(out, CmdError::OOM.0.as_bytes());
        return None;
    }
    Some(Dispatched {
        index: found.index,
        offload: found.offload,
        holder: found.holder,
    })
}

/// Runs a dispatched command's handler and writes its reply (or its error). Returns the flow
/// and whether the command failed; counting it is the caller's (the worker that owns the
/// statistics), so this may run on another thread.
pub fn run(
    shared: &Shared,
    client: &mut ClientState,
    index: usize,
    holder: blame::Holder,
    args: &[Bytes],
    out: &mut BytesMut,
) -> (Flow, bool) {
    let mut ctx = Ctx {
        shared,
        client,
        out,
        flow: Flow::Continue,
    };
    // `CLIENT NO-TOUCH on`: reads leave LRU/LFU alone, except `TOUCH` itself.
    let _no_touch = (ctx.client.no_touch && COMMANDS[index].name != "touch")
        .then(shardcache_storage::NoTouch::enter);
    // With lock statistics on, the store charges this command's lock holds and waits to it
    // (see `blame`), and its long holds go to LOCKLOG.
    let lock_stats = shared.config.lock_stats;
    let scope = lock_stats.then(|| blame::enter(holder));
    let result = (HANDLERS[index].1)(&mut ctx, args);
    drop(scope);
    if lock_stats && blame::long_holds_pending() {
        shared.locklog.collect(
            COMMANDS[index].name,
            args,
            ctx.client.peer,
            ctx.client.name.as_deref(),
        );
    }
    if shared.monitors.any() && !hidden_from_monitor(index) {
        shared.monitors.feed(
            ctx.client.db,
            ctx.client.peer,
            args,
            shared.runtime.output_buffer_limit(),
        );
    }
    let flow = ctx.flow;
    match result {
        Ok(()) => (flow, false),
        Err(e) => {
            reply::error(out, e.0.as_bytes());
            (flow, true)
        }
    }
}

/// Executes one request and appends its reply to `out`, counting it in `stats` (but not
/// timing it: connections time whole batches, see `connection.rs`).
pub fn execute(
    shared: &Shared,
    stats: &WorkerStats,
    client: &mut ClientState,
    request: &Request,
    out: &mut BytesMut,
) -> Flow {
    let args = request.args();
    // As a connection does: a client in MULTI queues (or runs EXEC) before dispatch.
    if let Some(flow) = transaction::intercept(shared, stats, client, args, out) {
        return flow;
    }
    let Some(d) = dispatch(shared, stats, client, args, out) else {
        return Flow::Continue;
    };
    let (flow, failed) = run(shared, client, d.index, d.holder, args, out);
    stats.call(d.index, failed);
    flow
}

/// Redis 7's text for an unknown command: the name, then up to 128 bytes of arguments, each
/// quoted and followed by a space; CR and LF become spaces. Bytes are echoed as sent (not
/// re-encoded as UTF-8), as Redis does.
fn unknown_command(args: &[Bytes]) -> Vec<u8> {
    if let Some(m) = unsupported::message(&args[0]) {
        return m.into_bytes();
    }
    let mut rest = Vec::new();
    for a in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        rest.push(b'\'');
        rest.extend_from_slice(truncate(c_str(a), room));
        rest.extend_from_slice(b"' ");
    }
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(truncate(c_str(&args[0]), 128));
    msg.extend_from_slice(b"', with args beginning with: ");
    msg.extend_from_slice(&rest);
    for c in &mut msg {
        if *c == b'\r' || *c == b'\n' {
            *c = b' ';
        }
    }
    msg
}

/// What C's `printf("%s")` prints of `b`: the bytes before the first NUL (Redis formats these
/// errors with `%.*s`).
fn c_str(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or_default()
}

fn truncate(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len().min(n)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::CommandNames;

    #[test]
    fn keyspace_walks_are_offloaded() {
        let names = CommandNames::new(&[], &[]).unwrap();
        let of = |words: &[&str]| {
            let args: Vec<Bytes> = words.iter().map(|w| Bytes::from(w.to_string())).collect();
            let e = names.get(&args[0]).unwrap();
            Dispatched {
                index: e.index,
                offload: e.offload,
                holder: e.holder,
            }
            .offload(&args)
        };
        assert!(of(&["KEYS", "*"]));
        assert!(of(&["flushall"]));
        assert!(of(&["info"]));
        assert!(!of(&["get", "k"]));
        assert!(!of(&["scan", "0"]));
        assert!(!of(&["scan", "0", "count", "10"]));
        assert!(!of(&["scan", "0", "count", "x"]));
        assert!(!of(&["scan", "0", "match", "count"]));
        assert!(of(&["scan", "0", "MATCH", "a*", "COUNT", "5000"]));
    }

    #[test]
    fn unknown_command_text_matches_redis() {
        let args: Vec<Bytes> = ["foo", "bar", "baz"]
            .iter()
            .map(|s| Bytes::from(*s))
            .collect();
        assert_eq!(
            unknown_command(&args),
            b"ERR unknown command 'foo', with args beginning with: 'bar' 'baz' "
        );
        let args = vec![Bytes::from("foo")];
        assert_eq!(
            unknown_command(&args),
            b"ERR unknown command 'foo', with args beginning with: "
        );
        let args = vec![
            Bytes::from_static(b"f\xffo\r\n"),
            Bytes::from_static(b"\x00"),
        ];
        assert_eq!(
            unknown_command(&args),
            b"ERR unknown command 'f\xffo  ', with args beginning with: '' "
        );
    }
}
