//! Connection commands: PING, ECHO, QUIT, AUTH, HELLO, SELECT.

use bytes::Bytes;
use shardcache_protocol::{reply, Version};

use super::{eq_ic, parse_i64, CmdError, CmdResult, Ctx, Flow};
use crate::table::REDIS_COMPAT_VERSION;

/// `PING [message]`.
pub fn ping(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match args {
        [_] => {
            reply::simple(ctx.out, b"PONG");
            Ok(())
        }
        [_, msg] => ctx.bulk(msg),
        _ => Err(CmdError::msg(
            "ERR wrong number of arguments for 'ping' command",
        )),
    }
}

/// `ECHO message`.
pub fn echo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.bulk(&args[1])
}

/// `QUIT`: reply OK, then close once the batch is flushed.
pub fn quit(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.flow = Flow::Close;
    ctx.ok()
}

/// `AUTH [username] password`: Redis 6+'s forms; only the `default` user exists.
pub fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (user, pass) = match args {
        [_, pass] => (None, pass),
        [_, user, pass] => (Some(&user[..]), pass),
        _ => return Err(CmdError::SYNTAX),
    };
    if user.is_none() && !ctx.shared.auth.required() {
        return Err(CmdError(std::borrow::Cow::Borrowed(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        )));
    }
    if !ctx.shared.auth.authenticate(user, pass) {
        tracing::debug!(client = ctx.client.id, peer = %ctx.client.peer, "AUTH failed");
        return Err(CmdError(std::borrow::Cow::Borrowed(crate::auth::WRONGPASS)));
    }
    ctx.client.authenticated = true;
    ctx.ok()
}

/// `SELECT index`.
pub fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let db = parse_i64(&args[1])?;
    if i32::try_from(db).is_err() {
        // Redis's `getIntFromObjectOrReply` text.
        return Err(CmdError::msg(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    let Some(db) = usize::try_from(db)
        .ok()
        .filter(|&d| d < ctx.shared.store.databases())
    else {
        return Err(CmdError::msg("ERR DB index is out of range"));
    };
    ctx.client.db = db;
    ctx.shared.clients.update(ctx.client.id, |c| c.db = db);
    ctx.ok()
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`: switches between RESP2 and
/// RESP3 and answers the server's identity as a map.
pub fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut version = ctx.client.version;
    let mut setname = None;
    let mut credentials = None;
    if let Some(v) = args.get(1) {
        let v = super::parse_i64_strict(v).ok_or_else(|| {
            CmdError::msg("ERR Protocol version is not an integer or out of range")
        })?;
        version = match v {
            2 => Version::Resp2,
            3 => Version::Resp3,
            _ => return Err(CmdError::msg("NOPROTO unsupported protocol version")),
        };
        let mut i = 2;
        while i < args.len() {
            let more = args.len() - i - 1;
            if eq_ic(&args[i], "auth") && more >= 2 {
                credentials = Some((&args[i + 1], &args[i + 2]));
                i += 3;
            } else if eq_ic(&args[i], "setname") && more >= 1 {
                setname = Some(args[i + 1].clone());
                i += 2;
            } else {
                return Err(CmdError::msg(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[i])
                )));
            }
        }
    }
    // Redis's order: options parsed, then AUTH, then the authenticated check, then SETNAME.
    if let Some((user, pass)) = credentials {
        if !ctx.shared.auth.authenticate(Some(user), pass) {
            return Err(CmdError(std::borrow::Cow::Borrowed(crate::auth::WRONGPASS)));
        }
        ctx.client.authenticated = true;
    }
    if !ctx.client.authenticated && ctx.shared.auth.required() {
        return Err(CmdError(std::borrow::Cow::Borrowed(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
             the RESP protocol version at the same time",
        )));
    }
    if let Some(name) = setname {
        ctx.client.name = super::admin::client_name(&name)?;
    }
    ctx.client.version = version;
    let (name, resp) = (
        ctx.client.name.clone(),
        if version == Version::Resp3 { 3 } else { 2 },
    );
    ctx.shared.clients.update(ctx.client.id, |c| {
        c.name = name;
        c.resp = resp;
    });
    let out = &mut *ctx.out;
    reply::map_len(out, 7, version);
    reply::bulk(out, b"server");
    reply::bulk(out, b"redis");
    reply::bulk(out, b"version");
    reply::bulk(out, REDIS_COMPAT_VERSION.as_bytes());
    reply::bulk(out, b"proto");
    reply::integer(out, if version == Version::Resp3 { 3 } else { 2 });
    reply::bulk(out, b"id");
    reply::integer(out, ctx.client.id as i64);
    reply::bulk(out, b"mode");
    reply::bulk(out, b"standalone");
    reply::bulk(out, b"role");
    reply::bulk(out, b"master");
    reply::bulk(out, b"modules");
    reply::array_len(out, 0);
    Ok(())
}
