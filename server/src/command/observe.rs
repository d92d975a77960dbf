//! Observability commands: HOTKEYS.

use bytes::Bytes;
use shardcache_protocol::reply;

use super::{eq_ic, parse_i64, CmdError, CmdResult, Ctx};

/// Default number of keys `HOTKEYS` lists.
const DEFAULT_COUNT: usize = 10;
/// Upper bound on `HOTKEYS COUNT` (the per-shard top-K is small anyway).
const MAX_COUNT: usize = 1000;

/// `HOTKEYS [COUNT n]`: the most accessed keys, estimated from a 1-in-128 sample of each
/// shard's lock acquisitions into a bounded space-saving top-K per shard. Works with any
/// eviction policy (Redis's `--hotkeys` needs an LFU policy). Each entry is an array:
/// key, shard, estimated share of all sampled accesses (string, 0..1), estimated accesses.
pub fn hotkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = match args {
        [_] => DEFAULT_COUNT,
        [_, opt, n] if eq_ic(opt, "count") => {
            let n = parse_i64(n)?;
            if n <= 0 {
                return Err(CmdError::msg("ERR COUNT must be > 0"));
            }
            usize::try_from(n).unwrap_or(MAX_COUNT).min(MAX_COUNT)
        }
        _ => return Err(CmdError::SYNTAX),
    };
    if !ctx.shared.config.lock_stats {
        return Err(CmdError::msg(
            "ERR HOTKEYS needs lock statistics: start shardcache with --lock-stats true",
        ));
    }
    let hot = ctx.shared.store.hot_keys(count);
    let out = &mut *ctx.out;
    reply::array_len(out, hot.len());
    for h in hot {
        reply::array_len(out, 4);
        reply::bulk(out, &h.key);
        reply::integer(out, h.shard as i64);
        reply::bulk(out, format!("{:.4}", h.estimated_share).as_bytes());
        reply::integer(out, i64::try_from(h.count).unwrap_or(i64::MAX));
    }
    Ok(())
}

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

/// `SLOWLOG GET [count] | LEN | RESET | HELP`, with Redis 7.0's replies and texts.
pub fn slowlog(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    use super::generic::{answered_help, sub_arity, unknown_sub};
    if answered_help(ctx, args, "slowlog", SLOWLOG_HELP)? {
        return Ok(());
    }
    let sub = &args[1];
    let log = &ctx.shared.slowlog;
    if eq_ic(sub, "get") {
        if args.len() > 3 {
            return Err(CmdError::msg(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
                String::from_utf8_lossy(sub)
            )));
        }
        let count = match args.get(2) {
            None => Some(10),
            Some(a) => {
                let n = super::parse_i64_strict(a).unwrap_or(i64::MIN);
                if n < -1 {
                    return Err(CmdError::msg(
                        "ERR count should be greater than or equal to -1",
                    ));
                }
                usize::try_from(n).ok()
            }
        };
        crate::slowlog::write_entries(ctx.out, &log.newest(count));
        Ok(())
    } else if eq_ic(sub, "len") {
        if args.len() != 2 {
            return Err(sub_arity("slowlog", sub));
        }
        ctx.int(log.len() as i64)
    } else if eq_ic(sub, "reset") {
        if args.len() != 2 {
            return Err(sub_arity("slowlog", sub));
        }
        log.reset();
        ctx.ok()
    } else {
        Err(unknown_sub("slowlog", sub))
    }
}
