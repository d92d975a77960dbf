//! What can be answered truthfully about scripts without running any, and `RESET`.
//!
//! Client libraries and test harnesses call `SCRIPT FLUSH`, `FUNCTION FLUSH` or
//! `FUNCTION LIST` on setup; shardcache has no scripts, so those answer as an empty Redis
//! would. Everything that would load or run a script keeps the clear "does not support"
//! error (see README: What shardcache is not).

use bytes::Bytes;
use shardcache_protocol::{reply, Version};

use super::{eq_ic, CmdError, CmdResult, Ctx};

const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";

fn unsupported(cmd: &str, sub: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "ERR shardcache does not support '{cmd} {}': shardcache runs no scripts (see README: \
         What shardcache is not)",
        String::from_utf8_lossy(sub).to_lowercase()
    ))
}

fn sub_arity(cmd: &str, sub: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "ERR wrong number of arguments for '{cmd}|{}' command",
        String::from_utf8_lossy(sub).to_lowercase()
    ))
}

/// `FLUSH [ASYNC|SYNC]`'s argument check, with the command's own text.
fn flush_args(args: &[Bytes], err: &'static str) -> Result<(), CmdError> {
    match args.len() {
        2 => Ok(()),
        3 if eq_ic(&args[2], "async") || eq_ic(&args[2], "sync") => Ok(()),
        _ => Err(CmdError::msg(err)),
    }
}

/// `SCRIPT FLUSH [ASYNC|SYNC]` (`+OK`), `SCRIPT EXISTS sha1 [sha1 ...]` (all zeros),
/// `SCRIPT KILL` (nothing runs); `LOAD`, `DEBUG`: unsupported.
pub fn script(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "flush") {
        flush_args(args, "ERR SCRIPT FLUSH only support SYNC|ASYNC option")?;
        ctx.ok()
    } else if eq_ic(sub, "exists") {
        if args.len() < 3 {
            return Err(sub_arity("script", sub));
        }
        reply::array_len(ctx.out, args.len() - 2);
        for _ in 2..args.len() {
            reply::integer(ctx.out, 0);
        }
        Ok(())
    } else if eq_ic(sub, "kill") {
        if args.len() != 2 {
            return Err(sub_arity("script", sub));
        }
        Err(CmdError::msg(NOTBUSY))
    } else {
        Err(unsupported("script", sub))
    }
}

/// `FUNCTION FLUSH [ASYNC|SYNC]` (`+OK`), `FUNCTION LIST [WITHCODE] [LIBRARYNAME pattern]`
/// (empty), `FUNCTION KILL` (nothing runs); `LOAD`, `DELETE`, `DUMP`, `RESTORE`, `STATS`:
/// unsupported.
pub fn function(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "flush") {
        flush_args(args, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option")?;
        ctx.ok()
    } else if eq_ic(sub, "list") {
        let mut j = 2;
        while j < args.len() {
            if eq_ic(&args[j], "withcode") {
                j += 1;
            } else if eq_ic(&args[j], "libraryname") && j + 1 < args.len() {
                j += 2;
            } else {
                return Err(CmdError::msg(format!(
                    "ERR Unknown argument {}",
                    String::from_utf8_lossy(&args[j])
                )));
            }
        }
        reply::array_len(ctx.out, 0);
        Ok(())
    } else if eq_ic(sub, "kill") {
        if args.len() != 2 {
            return Err(sub_arity("function", sub));
        }
        Err(CmdError::msg(NOTBUSY))
    } else {
        Err(unsupported("function", sub))
    }
}

/// `RESET`: the connection as new (`+RESET`): no transaction or watched keys, database 0,
/// RESP2, no name, and not authenticated when a password is set.
pub fn reset(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.client.multi = None;
    ctx.client.watching = None;
    ctx.client.db = 0;
    ctx.client.version = Version::Resp2;
    ctx.client.name = None;
    ctx.client.authenticated = !ctx.shared.auth.required();
    let id = ctx.client.id;
    ctx.shared.clients.update(id, |c| {
        c.db = 0;
        c.name = None;
        c.resp = 2;
    });
    reply::simple(ctx.out, b"RESET");
    Ok(())
}
