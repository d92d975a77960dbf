//! String commands.
//!
//! Values are copied out of the connection's read buffer *before* a shard lock is taken (the
//! one allocation a write makes), and replies are encoded *after* it is released: a lock is
//! held only for the table operation itself.

use bytes::Bytes;
use shardcache_storage::Expiry;

use super::{eq_ic, parse_i64, CmdError, CmdResult, Ctx};

/// `GET key`.
pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let value = ctx.shared.store.get(ctx.client.db, &args[1]);
    ctx.opt_bulk(value.as_deref())
}

/// Which of `NX` / `XX` a write carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Condition {
    /// Write unconditionally.
    #[default]
    Always,
    /// Only if the key does not exist.
    IfAbsent,
    /// Only if the key exists.
    IfPresent,
}

/// The parsed options of `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL]`.
#[derive(Debug, Default)]
struct SetOptions {
    condition: Condition,
    get: bool,
    keepttl: bool,
    expire: Option<(ExpireUnit, Bytes)>,
}

/// How an expire argument is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireUnit {
    /// Relative seconds (`EX`).
    Seconds,
    /// Relative milliseconds (`PX`).
    Millis,
    /// Absolute unix seconds (`EXAT`).
    UnixSeconds,
    /// Absolute unix milliseconds (`PXAT`).
    UnixMillis,
}

/// Parses `SET`'s options exactly as Redis 7.0's `parseExtendedStringArgumentsOrReply`: a
/// repeated or conflicting option is a syntax error.
fn parse_set_options(args: &[Bytes]) -> Result<SetOptions, CmdError> {
    let mut o = SetOptions::default();
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let next = args.get(j + 1);
        let has_expire = o.expire.is_some();
        if eq_ic(opt, "nx") && o.condition != Condition::IfPresent {
            o.condition = Condition::IfAbsent;
        } else if eq_ic(opt, "xx") && o.condition != Condition::IfAbsent {
            o.condition = Condition::IfPresent;
        } else if eq_ic(opt, "get") {
            o.get = true;
        } else if eq_ic(opt, "keepttl") && !has_expire {
            o.keepttl = true;
        } else if let (Some(unit), Some(next)) = (expire_unit(opt), next) {
            if o.keepttl || o.expire.as_ref().is_some_and(|(u, _)| *u != unit) {
                return Err(CmdError::SYNTAX);
            }
            o.expire = Some((unit, next.clone()));
            j += 1;
        } else {
            return Err(CmdError::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

fn expire_unit(opt: &[u8]) -> Option<ExpireUnit> {
    if eq_ic(opt, "ex") {
        Some(ExpireUnit::Seconds)
    } else if eq_ic(opt, "px") {
        Some(ExpireUnit::Millis)
    } else if eq_ic(opt, "exat") {
        Some(ExpireUnit::UnixSeconds)
    } else if eq_ic(opt, "pxat") {
        Some(ExpireUnit::UnixMillis)
    } else {
        None
    }
}

/// Turns an expire argument into an absolute unix-ms deadline, with Redis's checks and texts
/// (`command` names the command in "invalid expire time in '<command>' command").
///
/// # Errors
/// Not an integer; zero or negative; overflowing.
pub fn expire_deadline(
    now_ms: u64,
    unit: ExpireUnit,
    arg: &[u8],
    command: &str,
) -> Result<u64, CmdError> {
    let n = parse_i64(arg)?;
    let invalid = || CmdError::msg(format!("ERR invalid expire time in '{command}' command"));
    let seconds = matches!(unit, ExpireUnit::Seconds | ExpireUnit::UnixSeconds);
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(invalid());
    }
    let ms = if seconds { n * 1000 } else { n };
    let when = match unit {
        ExpireUnit::Seconds | ExpireUnit::Millis => {
            ms.checked_add(now_ms as i64).ok_or_else(invalid)?
        }
        ExpireUnit::UnixSeconds | ExpireUnit::UnixMillis => ms,
    };
    if when <= 0 {
        return Err(invalid());
    }
    Ok(when as u64)
}

/// `SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT t|KEEPTTL]`.
pub fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let opts = parse_set_options(args)?;
    let store = &ctx.shared.store;
    let expiry = match &opts.expire {
        Some((unit, arg)) => Expiry::At(expire_deadline(store.now_ms(), *unit, arg, "set")?),
        None if opts.keepttl => Expiry::Keep,
        None => Expiry::Persist,
    };
    let value = Bytes::copy_from_slice(&args[2]);
    let (written, old) = store.write(ctx.client.db, &args[1], |slot| {
        let old = if opts.get { slot.get().cloned() } else { None };
        let allowed = match opts.condition {
            Condition::Always => true,
            Condition::IfAbsent => !slot.exists(),
            Condition::IfPresent => slot.exists(),
        };
        if allowed {
            slot.set(value, expiry);
        }
        (allowed, old)
    });
    if opts.get {
        ctx.opt_bulk(old.as_deref())
    } else if written {
        ctx.ok()
    } else {
        ctx.null()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(s: &str) -> Result<SetOptions, CmdError> {
        let args: Vec<Bytes> = s
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        parse_set_options(&args)
    }

    #[test]
    fn set_option_grammar_follows_redis() {
        assert!(opts("set k v nx").is_ok());
        assert!(opts("set k v NX GET EX 10").is_ok());
        assert!(opts("set k v nx nx").is_ok());
        assert_eq!(opts("set k v nx xx").unwrap_err(), CmdError::SYNTAX);
        assert_eq!(opts("set k v ex 1 px 1").unwrap_err(), CmdError::SYNTAX);
        assert_eq!(opts("set k v ex").unwrap_err(), CmdError::SYNTAX);
        assert_eq!(opts("set k v keepttl ex 1").unwrap_err(), CmdError::SYNTAX);
        assert_eq!(opts("set k v ex 1 keepttl").unwrap_err(), CmdError::SYNTAX);
        assert_eq!(opts("set k v foo").unwrap_err(), CmdError::SYNTAX);
    }

    #[test]
    fn expire_deadlines() {
        assert_eq!(
            expire_deadline(1000, ExpireUnit::Seconds, b"2", "set"),
            Ok(3000)
        );
        assert_eq!(
            expire_deadline(1000, ExpireUnit::Millis, b"2", "set"),
            Ok(1002)
        );
        assert_eq!(
            expire_deadline(1000, ExpireUnit::UnixSeconds, b"2", "set"),
            Ok(2000)
        );
        assert_eq!(
            expire_deadline(1000, ExpireUnit::UnixMillis, b"2", "set"),
            Ok(2)
        );
        let invalid = CmdError::msg("ERR invalid expire time in 'set' command");
        assert_eq!(
            expire_deadline(1000, ExpireUnit::Seconds, b"0", "set"),
            Err(invalid.clone())
        );
        assert_eq!(
            expire_deadline(1000, ExpireUnit::Seconds, b"-5", "set"),
            Err(invalid.clone())
        );
        assert_eq!(
            expire_deadline(1000, ExpireUnit::Seconds, b"9223372036854775807", "set"),
            Err(invalid.clone())
        );
        assert_eq!(
            expire_deadline(1000, ExpireUnit::Millis, b"9223372036854775807", "set"),
            Err(invalid)
        );
        assert_eq!(
            expire_deadline(1000, ExpireUnit::Millis, b"x", "set"),
            Err(CmdError::NOT_INTEGER)
        );
    }
}
