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
    let shared = ctx.shared;
    log_command(ctx, args, "slowlog", SLOWLOG_HELP, &*shared.slowlog)
}

/// SLOWLOG's subcommands over `log` (also LOCKLOG's), with Redis 7.0's texts.
fn log_command(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    name: &str,
    help: &[&str],
    log: &dyn crate::slowlog::LogCommands,
) -> CmdResult {
    use super::generic::{answered_help, sub_arity, unknown_sub};
    if answered_help(ctx, args, name, help)? {
        return Ok(());
    }
    let sub = &args[1];
    if eq_ic(sub, "get") {
        if args.len() > 3 {
            return Err(CmdError::msg(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
                String::from_utf8_lossy(sub),
                name.to_ascii_uppercase()
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
        log.write_newest(ctx.out, count);
        Ok(())
    } else if eq_ic(sub, "len") {
        if args.len() != 2 {
            return Err(sub_arity(name, sub));
        }
        ctx.int(log.entries() as i64)
    } else if eq_ic(sub, "reset") {
        if args.len() != 2 {
            return Err(sub_arity(name, sub));
        }
        log.clear();
        ctx.ok()
    } else {
        Err(unknown_sub(name, sub))
    }
}

const LOCKLOG_HELP: &[&str] = &[
    "LOCKLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the lock log (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, hold time in microseconds, shards array, lock mode,",
    "    acquisitions waiting at release, their total wait in microseconds,",
    "    arguments array, client IP and port, client name",
    "LEN",
    "    Return the length of the lock log.",
    "RESET",
    "    Reset the lock log.",
    "HELP",
    "    Prints this help.",
];

/// `LOCKLOG GET [count] | LEN | RESET | HELP`: SLOWLOG's interface over the lock log.
pub fn locklog(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let shared = ctx.shared;
    log_command(ctx, args, "locklog", LOCKLOG_HELP, &*shared.locklog)
}

const LATENCY_HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

/// `LATENCY LATEST | HISTORY event | RESET [event ...] | HISTOGRAM [command ...] | HELP`:
/// the latency monitor (`latency-monitor-threshold`) and the per-command latency
/// histograms. `DOCTOR` and `GRAPH` are not implemented.
pub fn latency(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    use super::generic::{answered_help, sub_arity, unknown_sub};
    if answered_help(ctx, args, "latency", LATENCY_HELP)? {
        return Ok(());
    }
    let sub = &args[1];
    let m = &ctx.shared.latency_monitor;
    if eq_ic(sub, "latest") {
        if args.len() != 2 {
            return Err(sub_arity("latency", sub));
        }
        let latest = m.latest();
        reply::array_len(ctx.out, latest.len());
        for (name, (time, ms), max) in latest {
            reply::array_len(ctx.out, 4);
            reply::bulk(ctx.out, name.as_bytes());
            reply::integer(ctx.out, time as i64);
            reply::integer(ctx.out, ms as i64);
            reply::integer(ctx.out, max as i64);
        }
        Ok(())
    } else if eq_ic(sub, "history") {
        if args.len() != 3 {
            return Err(sub_arity("latency", sub));
        }
        let h = m.history(&args[2]);
        reply::array_len(ctx.out, h.len());
        for (time, ms) in h {
            reply::array_len(ctx.out, 2);
            reply::integer(ctx.out, time as i64);
            reply::integer(ctx.out, ms as i64);
        }
        Ok(())
    } else if eq_ic(sub, "reset") {
        let events: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
        ctx.int(m.reset(&events) as i64)
    } else if eq_ic(sub, "histogram") {
        latency_histogram(ctx, &args[2..]);
        Ok(())
    } else {
        Err(unknown_sub("latency", sub))
    }
}

/// `LATENCY HISTOGRAM`: per command with calls, its call count and cumulative counts at
/// power-of-two microsecond bounds (where the count grows), as Redis 7.0 replies.
fn latency_histogram(ctx: &mut Ctx<'_>, names: &[Bytes]) {
    let totals = ctx.shared.stats.totals();
    let v = ctx.client.version;
    let wanted: Vec<_> = totals
        .called()
        .filter(|(spec, _)| names.is_empty() || names.iter().any(|n| eq_ic(n, spec.name)))
        .collect();
    // 1024 ns << k, as Redis's `hdr_iter_log_init(.., 1024, 2)`.
    let bounds: Vec<u64> = (0..40).map(|k| 1024u64 << k).collect();
    reply::map_len(ctx.out, wanted.len(), v);
    for (spec, c) in wanted {
        reply::bulk(ctx.out, spec.name.as_bytes());
        reply::map_len(ctx.out, 2, v);
        reply::bulk(ctx.out, b"calls");
        reply::integer(ctx.out, c.calls as i64);
        reply::bulk(ctx.out, b"histogram_usec");
        let cum = c.duration.cumulative(&bounds);
        let mut points = Vec::new();
        let mut prev = 0;
        for (b, n) in bounds.iter().zip(cum) {
            if n > prev {
                points.push((b / 1000, n));
            }
            prev = n;
            if n == c.duration.count() {
                break;
            }
        }
        reply::map_len(ctx.out, points.len(), v);
        for (us, n) in points {
            reply::integer(ctx.out, us as i64);
            reply::integer(ctx.out, n as i64);
        }
    }
}

/// `MONITOR`: from now on this connection also receives every command any client runs
/// (administrative ones excepted), one status line each, as Redis formats them.
pub fn monitor(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.client.monitor = Some(ctx.shared.monitors.subscribe(ctx.client.id));
    ctx.ok()
}
