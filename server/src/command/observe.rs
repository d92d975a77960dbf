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
