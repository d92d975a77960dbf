//! Keyspace commands that move or describe keys: `COPY`, `MOVE`, `SWAPDB`, `OBJECT`,
//! `MEMORY USAGE`. Texts and argument rules follow Redis 7.0 (`db.c`, `object.c`).

use bytes::Bytes;
use shardcache_protocol::reply;
use shardcache_storage::{EvictionPolicy, Expiry};

use super::{eq_ic, parse_i64_strict, CmdError, CmdResult, Ctx};

const SAME_OBJECT: &str = "ERR source and destination objects are the same";
const DB_RANGE: &str = "ERR DB index is out of range";

/// Redis's `getIntFromObjectOrReply`: an `int`, with Redis's texts (or `msg` for both
/// failures when given).
fn int_arg(arg: &[u8], msg: Option<&str>) -> Result<i64, CmdError> {
    let err =
        |default: &str| CmdError::msg(msg.map_or(default.to_string(), |m| format!("ERR {m}")));
    let v =
        parse_i64_strict(arg).ok_or_else(|| err("ERR value is not an integer or out of range"))?;
    if i32::try_from(v).is_err() {
        return Err(err(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    Ok(v)
}

/// A database index that exists, or Redis's out-of-range error.
fn db_index(ctx: &Ctx<'_>, v: i64) -> Result<usize, CmdError> {
    usize::try_from(v)
        .ok()
        .filter(|&d| d < ctx.shared.store.databases())
        .ok_or(CmdError(std::borrow::Cow::Borrowed(DB_RANGE)))
}

/// `COPY source destination [DB destination-db] [REPLACE]`: the value and its TTL, atomic
/// (both keys' shards are held for the copy).
pub fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let src_db = ctx.client.db;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        if eq_ic(&args[j], "replace") {
            replace = true;
        } else if eq_ic(&args[j], "db") && j + 1 < args.len() {
            let v = int_arg(&args[j + 1], None)?;
            dst_db = db_index(ctx, v)?;
            j += 1;
        } else {
            return Err(CmdError::SYNTAX);
        }
        j += 1;
    }
    let (src, dst) = (&args[1][..], &args[2][..]);
    if src_db == dst_db && src == dst {
        return Err(CmdError(std::borrow::Cow::Borrowed(SAME_OBJECT)));
    }
    let store = &ctx.shared.store;
    let copied = store.transaction(Some(&[src, dst]), || {
        let Some((value, at)) = store.read(src_db, src, |e| {
            e.map(|e| (e.value_bytes(), e.expires_at_ms))
        }) else {
            return false;
        };
        store.write(dst_db, dst, |slot| {
            if slot.exists() && !replace {
                return false;
            }
            let expiry = if at == 0 {
                Expiry::Persist
            } else {
                Expiry::At(at)
            };
            slot.set(&value, expiry);
            true
        })
    });
    ctx.int(i64::from(copied))
}

/// `MOVE key db`: moves the key and its TTL to another database unless it exists there.
pub fn move_key(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let v = int_arg(&args[2], None)?;
    let dst_db = db_index(ctx, v)?;
    let src_db = ctx.client.db;
    if src_db == dst_db {
        return Err(CmdError(std::borrow::Cow::Borrowed(SAME_OBJECT)));
    }
    let key = &args[1][..];
    let store = &ctx.shared.store;
    // One key: both databases' entries live in the same shard.
    let moved = store.transaction(Some(&[key]), || {
        let Some((value, at)) = store.write(src_db, key, |slot| {
            slot.get_bytes().map(|v| (v, slot.expires_at_ms()))
        }) else {
            return false;
        };
        if store.peek(dst_db, key, |e| e.is_some()) {
            return false;
        }
        let expiry = if at == 0 {
            Expiry::Persist
        } else {
            Expiry::At(at)
        };
        store.write(dst_db, key, |slot| slot.set(&value, expiry));
        store.delete(src_db, key);
        true
    });
    ctx.int(i64::from(moved))
}

/// `SWAPDB index1 index2`.
pub fn swapdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let a = int_arg(&args[1], Some("invalid first DB index"))?;
    let b = int_arg(&args[2], Some("invalid second DB index"))?;
    let (a, b) = (db_index(ctx, a)?, db_index(ctx, b)?);
    ctx.shared.store.swap_db(a, b);
    ctx.ok()
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// Answers `<cmd> HELP` with `lines` (checking that it has no argument) and returns true;
/// returns false for any other subcommand.
fn answered_help(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    cmd: &str,
    lines: &[&str],
) -> Result<bool, CmdError> {
    if !eq_ic(&args[1], "help") {
        return Ok(false);
    }
    if args.len() != 2 {
        return Err(sub_arity(cmd, &args[1]));
    }
    reply::array_len(ctx.out, lines.len());
    for l in lines {
        reply::simple(ctx.out, l.as_bytes());
    }
    Ok(true)
}

fn sub_arity(cmd: &str, sub: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "ERR wrong number of arguments for '{cmd}|{}' command",
        String::from_utf8_lossy(sub).to_lowercase()
    ))
}

fn unknown_sub(cmd: &str, sub: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        cmd.to_uppercase()
    ))
}

/// Redis shares the integers 0..9999 (reference count `INT_MAX`) unless an LRU/LFU policy
/// needs a per-key access word.
fn refcount(policy: EvictionPolicy, maxmemory: u64, value: &[u8], encoding: &str) -> i64 {
    let small = encoding == "int"
        && std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .is_some_and(|n| (0..10_000).contains(&n));
    let no_shared = maxmemory != 0
        && !matches!(
            policy,
            EvictionPolicy::NoEviction
                | EvictionPolicy::AllKeysRandom
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        );
    if small && !no_shared {
        i64::from(i32::MAX)
    } else {
        1
    }
}

/// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key`, `OBJECT HELP`.
pub fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if answered_help(ctx, args, "object", OBJECT_HELP)? {
        return Ok(());
    }
    let sub = &args[1];
    let known = ["encoding", "freq", "idletime", "refcount"];
    if !known.iter().any(|k| eq_ic(sub, k)) {
        return Err(unknown_sub("object", sub));
    }
    if args.len() != 3 {
        return Err(sub_arity("object", sub));
    }
    let store = &ctx.shared.store;
    let policy = store.policy();
    let info = store.peek(ctx.client.db, &args[2], |e| {
        e.map(|e| (e.encoding(), e.access_word(), e.value.to_vec()))
    });
    let Some((encoding, word, value)) = info else {
        return ctx.null();
    };
    if eq_ic(sub, "encoding") {
        ctx.bulk(encoding.as_bytes())
    } else if eq_ic(sub, "refcount") {
        let n = refcount(policy, store.maxmemory(), &value, encoding);
        ctx.int(n)
    } else if eq_ic(sub, "idletime") {
        if policy.is_lfu() {
            return Err(CmdError::msg(
                "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note \
                 that when switching between policies at runtime LRU and LFU data will take \
                 some time to adjust.",
            ));
        }
        ctx.int((store.object_idle_ms(word) / 1000) as i64)
    } else {
        if !policy.is_lfu() {
            return Err(CmdError::msg(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
                 Please note that when switching between policies at runtime LRU and LFU data \
                 will take some time to adjust.",
            ));
        }
        ctx.int(i64::from(store.object_freq(word)))
    }
}

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// `MEMORY USAGE key [SAMPLES count]`, `MEMORY HELP`. The figure is shardcache's own
/// accounting for the entry (its block at the allocator's size class, a value buffer if
/// any, and its table slot), not Redis's. `MEMORY DOCTOR|STATS|MALLOC-STATS|PURGE` are not
/// implemented (`INFO memory` has the figures), so `MEMORY HELP` lists only these two.
pub fn memory(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if answered_help(ctx, args, "memory", MEMORY_HELP)? {
        return Ok(());
    }
    let sub = &args[1];
    if !eq_ic(sub, "usage") {
        return Err(unknown_sub("memory", sub));
    }
    if args.len() < 3 {
        return Err(sub_arity("memory", sub));
    }
    let mut j = 3;
    while j < args.len() {
        if eq_ic(&args[j], "samples") && j + 1 < args.len() {
            let n = parse_i64_strict(&args[j + 1]).ok_or(CmdError::NOT_INTEGER)?;
            if n < 0 {
                return Err(CmdError::SYNTAX);
            }
            j += 2;
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    // One pointer slot in the table per key.
    let bytes = ctx
        .shared
        .store
        .peek(ctx.client.db, &args[2], |e| e.map(|e| e.memory() + 8));
    match bytes {
        Some(n) => ctx.int(n as i64),
        None => ctx.null(),
    }
}
