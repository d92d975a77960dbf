//! Keyspace commands.

use bytes::Bytes;
use shardcache_protocol::reply;
use shardcache_storage::Expiry;

use super::{eq_ic, parse_i64, CmdError, CmdResult, Ctx};

/// Borrowed key slices of `args[from..]`, for the multi-key store calls.
pub fn key_slices(args: &[Bytes]) -> smallvec::SmallVec<[&[u8]; 8]> {
    args.iter().map(|a| &a[..]).collect()
}

/// `DEL key [key ...]`: atomic across shards (every involved shard is locked, in ascending
/// order, for the whole deletion).
pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = if args.len() == 2 {
        usize::from(ctx.shared.store.delete(ctx.client.db, &args[1]))
    } else {
        let keys = key_slices(&args[1..]);
        ctx.shared.store.write_many(ctx.client.db, &keys, |slots| {
            (0..slots.len())
                .filter(|&i| slots.slot(i).remove().is_some())
                .count()
        })
    };
    ctx.int(n as i64)
}

/// `EXISTS key [key ...]`: a key named twice counts twice, as in Redis. Like Redis's
/// `LOOKUP_NOTOUCH`, it does not refresh the keys' LRU/LFU data.
pub fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    count_existing(ctx, &args[1..], false)
}

/// How many of `keys` exist; with `touch`, each found key's LRU/LFU data is refreshed.
fn count_existing(ctx: &mut Ctx<'_>, keys: &[Bytes], touch: bool) -> CmdResult {
    let db = ctx.client.db;
    let store = &ctx.shared.store;
    let n = keys
        .iter()
        .filter(|k| {
            if touch {
                store.read(db, k, |e| e.is_some())
            } else {
                store.peek(db, k, |e| e.is_some())
            }
        })
        .count();
    ctx.int(n as i64)
}

/// `UNLINK key [key ...]`: DEL (values are freed inline; dropping a `Bytes` is cheap).
pub fn unlink(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    del(ctx, args)
}

/// `TOUCH key [key ...]`: the number of existing keys, each touched for LRU/LFU.
pub fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    count_existing(ctx, &args[1..], true)
}

/// `TYPE key`: `string` or `none` (shardcache stores strings only).
pub fn type_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let exists = ctx
        .shared
        .store
        .peek(ctx.client.db, &args[1], |e| e.is_some());
    reply::simple(ctx.out, if exists { b"string" } else { b"none" });
    Ok(())
}

/// The `NX|XX|GT|LT` of the EXPIRE family.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Redis 7.0's `parseExtendedExpireArgumentsOrReply`.
fn parse_expire_flags(args: &[Bytes]) -> Result<ExpireFlags, CmdError> {
    let mut f = ExpireFlags::default();
    for opt in args.get(3..).unwrap_or_default() {
        if eq_ic(opt, "nx") {
            f.nx = true;
        } else if eq_ic(opt, "xx") {
            f.xx = true;
        } else if eq_ic(opt, "gt") {
            f.gt = true;
        } else if eq_ic(opt, "lt") {
            f.lt = true;
        } else {
            return Err(CmdError::msg(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(CmdError::msg(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if f.gt && f.lt {
        return Err(CmdError::msg(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(f)
}

/// The shared body of EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT (Redis's
/// `expireGenericCommand`): `relative` adds now, `seconds` multiplies by 1000.
fn expire_generic(ctx: &mut Ctx<'_>, args: &[Bytes], relative: bool, seconds: bool) -> CmdResult {
    let flags = parse_expire_flags(args)?;
    let mut when = parse_i64(&args[2])?;
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let invalid = || CmdError::msg(format!("ERR invalid expire time in '{name}' command"));
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(invalid());
        }
        when *= 1000;
    }
    let store = &ctx.shared.store;
    let now = store.now_ms() as i64;
    if relative {
        when = when.checked_add(now).ok_or_else(invalid)?;
    }
    let done = store.write(ctx.client.db, &args[1], |slot| {
        if !slot.exists() {
            return false;
        }
        let current = match slot.expires_at_ms() {
            0 => None,
            t => Some(t as i64),
        };
        let refused = (flags.nx && current.is_some())
            || (flags.xx && current.is_none())
            || (flags.gt && !matches!(current, Some(c) if when > c))
            || (flags.lt && current.is_some_and(|c| when >= c));
        if refused {
            return false;
        }
        if when <= now {
            slot.remove();
        } else {
            slot.set_expiry(Some(when as u64));
        }
        true
    });
    ctx.int(i64::from(done))
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`.
pub fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, true, true)
}

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`.
pub fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, true, false)
}

/// `EXPIREAT key unix-seconds [NX|XX|GT|LT]`.
pub fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, false, true)
}

/// `PEXPIREAT key unix-ms [NX|XX|GT|LT]`.
pub fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, false, false)
}

/// The shared body of TTL / PTTL / EXPIRETIME / PEXPIRETIME: -2 no key, -1 no TTL.
fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], ms: bool, absolute: bool) -> CmdResult {
    let store = &ctx.shared.store;
    let at = store.peek(ctx.client.db, key, |e| e.map(|e| e.expires_at_ms));
    let n = match at {
        None => -2,
        Some(0) => -1,
        Some(at) => {
            let t = if absolute {
                at as i64
            } else {
                (at as i64 - store.now_ms() as i64).max(0)
            };
            if ms {
                t
            } else {
                // Redis's `(ttl+500)/1000` overflows for a PXAT near i64::MAX, and its build
                // answers the mathematically exact value: so do we.
                ((i128::from(t) + 500) / 1000) as i64
            }
        }
    };
    ctx.int(n)
}

/// `TTL key`.
pub fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], false, false)
}

/// `PTTL key`.
pub fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], true, false)
}

/// `EXPIRETIME key`.
pub fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], false, true)
}

/// `PEXPIRETIME key`.
pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], true, true)
}

/// `PERSIST key`: 1 if a TTL was removed.
pub fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let done = ctx.shared.store.write(ctx.client.db, &args[1], |slot| {
        if slot.exists() && slot.expires_at_ms() != 0 {
            slot.set_expiry(None);
            true
        } else {
            false
        }
    });
    ctx.int(i64::from(done))
}

/// `RENAME key newkey`.
pub fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match rename_generic(ctx, args, false)? {
        true => ctx.ok(),
        false => ctx.int(0),
    }
}

/// `RENAMENX key newkey`.
pub fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let done = rename_generic(ctx, args, true)?;
    ctx.int(i64::from(done))
}

/// Redis's `renameGenericCommand`, atomic across the two shards: the value and its TTL move.
fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> Result<bool, CmdError> {
    let keys = key_slices(&args[1..3]);
    let same = args[1] == args[2];
    ctx.shared.store.write_many(ctx.client.db, &keys, |slots| {
        let Some(value) = slots.slot(0).get_bytes() else {
            return Err(CmdError::msg("ERR no such key"));
        };
        if same {
            return Ok(!nx);
        }
        if nx && slots.slot(1).exists() {
            return Ok(false);
        }
        let at = slots.slot(0).expires_at_ms();
        slots.slot(0).remove();
        let expiry = if at == 0 {
            Expiry::Persist
        } else {
            Expiry::At(at)
        };
        slots.slot(1).set(value, expiry);
        Ok(true)
    })
}

/// `KEYS pattern`.
pub fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let keys = ctx.shared.store.keys(ctx.client.db, &args[1]);
    reply::array_len(ctx.out, keys.len());
    for k in &keys {
        reply::bulk(ctx.out, k);
    }
    Ok(())
}

/// Redis's `parseScanCursorOrReply` (`strtoul`: optional sign, a negative wraps, no digits at
/// all is 0, leading space or trailing garbage or overflow is an error).
fn parse_cursor(b: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::msg("ERR invalid cursor");
    if b.first()
        .is_some_and(|c| c.is_ascii_whitespace() || *c == 0x0b)
    {
        return Err(invalid());
    }
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() {
        return if b.is_empty() { Ok(0) } else { Err(invalid()) };
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(invalid());
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
pub fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[1])?;
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut type_ok = true;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i >= 2;
        if eq_ic(&args[i], "count") && more {
            let n = parse_i64(&args[i + 1])?;
            if n < 1 {
                return Err(CmdError::SYNTAX);
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if eq_ic(&args[i], "match") && more {
            pattern = Some(&args[i + 1]);
        } else if eq_ic(&args[i], "type") && more {
            type_ok = eq_ic(&args[i + 1], "string");
        } else {
            return Err(CmdError::SYNTAX);
        }
        i += 2;
    }
    let (next, keys) = ctx.shared.store.scan(ctx.client.db, cursor, count, pattern);
    let keys = if type_ok { keys } else { Vec::new() };
    reply::array_len(ctx.out, 2);
    reply::bulk(ctx.out, next.to_string().as_bytes());
    reply::array_len(ctx.out, keys.len());
    for k in &keys {
        reply::bulk(ctx.out, k);
    }
    Ok(())
}

/// `RANDOMKEY`.
pub fn randomkey(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let k = ctx.shared.store.random_key(ctx.client.db);
    ctx.opt_bulk(k.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Ok(0));
        assert_eq!(parse_cursor(b""), Ok(0));
        assert_eq!(parse_cursor(b"+5"), Ok(5));
        assert_eq!(parse_cursor(b"-1"), Ok(u64::MAX));
        assert!(parse_cursor(b" 1").is_err());
        assert!(parse_cursor(b"1x").is_err());
        assert!(parse_cursor(b"+").is_err());
        assert!(parse_cursor(b"18446744073709551616").is_err());
    }

    #[test]
    fn expire_flag_rules() {
        let a = |s: &str| -> Vec<Bytes> {
            s.split(' ')
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect()
        };
        assert!(parse_expire_flags(&a("expire k 1 xx gt")).is_ok());
        assert!(parse_expire_flags(&a("expire k 1 nx xx")).is_err());
        assert!(parse_expire_flags(&a("expire k 1 gt lt")).is_err());
        assert_eq!(
            parse_expire_flags(&a("expire k 1 foo")),
            Err(CmdError::msg("ERR Unsupported option foo"))
        );
    }
}
