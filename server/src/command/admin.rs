//! `CLIENT` and `TIME`.
//!
//! `CLIENT LIST` reads the server's client registry ([`crate::state::ClientRegistry`]): a copy
//! is taken under its mutex and formatted after the lock is released. Fields shardcache does
//! not track (buffers, memory, idle time) are reported as Redis reports an idle client: 0.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use shardcache_protocol::{reply, Version};

use super::{eq_ic, parse_i64_strict, CmdError, CmdResult, Ctx};
use crate::state::ClientInfo;

/// Redis 7.0's reply to a known subcommand with the wrong number of arguments.
fn sub_arity(sub: &str) -> CmdError {
    CmdError::msg(format!(
        "ERR wrong number of arguments for 'client|{sub}' command"
    ))
}

/// `CLIENT ID|SETNAME|GETNAME|LIST|INFO|KILL|PAUSE|UNPAUSE|NO-EVICT|NO-TOUCH|SETINFO`.
pub fn client(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let n = args.len();
    if eq_ic(sub, "id") {
        if n != 2 {
            return Err(sub_arity("id"));
        }
        ctx.int(ctx.client.id as i64)
    } else if eq_ic(sub, "getname") {
        if n != 2 {
            return Err(sub_arity("getname"));
        }
        let name = ctx.client.name.clone();
        ctx.opt_bulk(name.as_deref().map(str::as_bytes))
    } else if eq_ic(sub, "setname") {
        if n != 3 {
            return Err(sub_arity("setname"));
        }
        let name = client_name(&args[2])?;
        ctx.client.name.clone_from(&name);
        ctx.shared.clients.update(ctx.client.id, |c| c.name = name);
        ctx.ok()
    } else if eq_ic(sub, "info") {
        if n != 2 {
            return Err(sub_arity("info"));
        }
        let mut text = String::new();
        let me = own_info(ctx);
        write_line(&mut text, ctx.client.id, &me, "client|info");
        reply::verbatim(ctx.out, b"txt", text.as_bytes(), ctx.client.version);
        Ok(())
    } else if eq_ic(sub, "list") {
        client_list(ctx, args)
    } else if eq_ic(sub, "kill") {
        client_kill(ctx, args)
    } else if eq_ic(sub, "pause") {
        if !(3..=4).contains(&n) {
            return Err(sub_arity("pause"));
        }
        let ms = parse_i64_strict(&args[2])
            .ok_or_else(|| CmdError::msg("ERR timeout is not an integer or out of range"))?;
        if ms < 0 {
            return Err(CmdError::msg("ERR timeout is negative"));
        }
        let all = match args.get(3) {
            None => true,
            Some(m) if eq_ic(m, "all") => true,
            Some(m) if eq_ic(m, "write") => false,
            Some(_) => return Err(CmdError::msg("ERR CLIENT PAUSE mode must be WRITE or ALL")),
        };
        ctx.shared.pause.pause(ms as u64, all);
        ctx.ok()
    } else if eq_ic(sub, "unpause") {
        if n != 2 {
            return Err(sub_arity("unpause"));
        }
        ctx.shared.pause.unpause();
        ctx.ok()
    } else if eq_ic(sub, "no-evict") || eq_ic(sub, "no-touch") {
        let which = if eq_ic(sub, "no-evict") {
            "no-evict"
        } else {
            "no-touch"
        };
        if n != 3 {
            return Err(sub_arity(which));
        }
        let on = if eq_ic(&args[2], "on") {
            true
        } else if eq_ic(&args[2], "off") {
            false
        } else {
            return Err(CmdError::SYNTAX);
        };
        if which == "no-touch" {
            ctx.client.no_touch = on;
            ctx.shared
                .clients
                .update(ctx.client.id, |c| c.no_touch = on);
        } else {
            // shardcache never evicts clients (`maxmemory` applies to keys); the flag is kept
            // and shown, as libraries set it on connect.
            ctx.shared
                .clients
                .update(ctx.client.id, |c| c.no_evict = on);
        }
        ctx.ok()
    } else if eq_ic(sub, "setinfo") {
        if n != 4 {
            return Err(sub_arity("setinfo"));
        }
        let attr = &args[2];
        let lib = eq_ic(attr, "lib-name");
        if !lib && !eq_ic(attr, "lib-ver") {
            return Err(CmdError::msg(format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(attr)
            )));
        }
        let v = &args[3];
        if v.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
            return Err(CmdError::msg(format!(
                "ERR {} cannot contain spaces, newlines or special characters.",
                if lib { "lib-name" } else { "lib-ver" }
            )));
        }
        let v = (!v.is_empty()).then(|| String::from_utf8_lossy(v).into_owned());
        ctx.shared.clients.update(ctx.client.id, |c| {
            if lib {
                c.lib_name = v;
            } else {
                c.lib_ver = v;
            }
        });
        ctx.ok()
    } else {
        Err(CmdError::msg(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(sub)
        )))
    }
}

/// Redis's `clientSetNameOrReply` check, shared by `CLIENT SETNAME` and `HELLO … SETNAME`:
/// printable ASCII without spaces (a name is one field of a `CLIENT LIST` line); the empty
/// name clears it.
///
/// # Errors
/// Redis's text for a name with a space, a newline or another special character.
pub fn client_name(name: &[u8]) -> Result<Option<String>, CmdError> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::msg(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok((!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned()))
}

/// The caller's own entry, from its connection state (always current).
fn own_info(ctx: &Ctx<'_>) -> ClientInfo {
    let registered = ctx.shared.clients.get(ctx.client.id);
    ClientInfo {
        addr: ctx.client.peer,
        laddr: registered.as_ref().and_then(|c| c.laddr),
        name: ctx.client.name.clone(),
        db: ctx.client.db,
        created: registered
            .as_ref()
            .map_or_else(std::time::Instant::now, |c| c.created),
        resp: if ctx.client.version == Version::Resp3 {
            3
        } else {
            2
        },
        no_evict: registered.as_ref().is_some_and(|c| c.no_evict),
        no_touch: ctx.client.no_touch,
        lib_name: registered.as_ref().and_then(|c| c.lib_name.clone()),
        lib_ver: registered.and_then(|c| c.lib_ver),
    }
}

/// A `TYPE` filter of `CLIENT LIST`/`KILL`: whether it selects normal clients (the only
/// kind shardcache has), or Redis's error for an unknown type.
fn is_normal_type(t: &[u8]) -> Result<bool, CmdError> {
    if eq_ic(t, "normal") {
        Ok(true)
    } else if ["master", "replica", "slave", "pubsub"]
        .iter()
        .any(|w| eq_ic(t, w))
    {
        Ok(false)
    } else {
        Err(CmdError::msg(format!(
            "ERR Unknown client type '{}'",
            String::from_utf8_lossy(t)
        )))
    }
}

/// `CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]`.
fn client_list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut normal_only = true;
    let mut i = 2;
    while i < args.len() {
        if eq_ic(&args[i], "type") && i + 1 < args.len() {
            normal_only = is_normal_type(&args[i + 1])?;
            i += 2;
        } else if eq_ic(&args[i], "id") && i + 1 < args.len() {
            let mut v = Vec::new();
            for a in &args[i + 1..] {
                // Like Redis, any integer is accepted; one that is no client's ID (zero,
                // negative) matches nothing.
                let Some(n) = parse_i64_strict(a) else {
                    return Err(CmdError::msg("ERR Invalid client ID"));
                };
                if let Ok(n) = u64::try_from(n) {
                    v.push(n);
                }
            }
            ids = Some(v);
            i = args.len();
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    let me = own_info(ctx);
    let mut text = String::new();
    if normal_only {
        for (id, info) in ctx.shared.clients.snapshot() {
            if ids.as_ref().is_some_and(|ids| !ids.contains(&id)) {
                continue;
            }
            if id == ctx.client.id {
                write_line(&mut text, id, &me, "client|list");
            } else {
                write_line(&mut text, id, &info, "NULL");
            }
        }
    }
    reply::verbatim(ctx.out, b"txt", text.as_bytes(), ctx.client.version);
    Ok(())
}

/// `CLIENT KILL ip:port` (Redis's old form: `+OK` or an error) and `CLIENT KILL <filter>
/// <value> ...` with `ID`, `ADDR`, `LADDR`, `USER`, `SKIPME`, `MAXAGE`, `TYPE` (the number
/// killed). The caller is skipped unless `SKIPME no`; killing itself closes its connection
/// after the reply.
fn client_kill(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = args.len();
    if n < 3 {
        return Err(sub_arity("kill"));
    }
    let me = ctx.client.id;
    if n == 3 {
        let addr = String::from_utf8_lossy(&args[2]).into_owned();
        let mine = ctx.client.peer.to_string() == addr;
        let killed = ctx
            .shared
            .clients
            .kill(Some(me), |_, c| c.addr.to_string() == addr);
        if killed == 0 && !mine {
            return Err(CmdError::msg("ERR No such client"));
        }
        if mine {
            ctx.flow = super::Flow::Close;
        }
        return ctx.ok();
    }
    if !n.is_multiple_of(2) {
        return Err(CmdError::SYNTAX);
    }
    let (mut id, mut addr, mut laddr, mut maxage) = (None, None, None, None);
    let mut skipme = true;
    let mut normal = true;
    for pair in args[2..].chunks(2) {
        let (k, v) = (&pair[0], &pair[1]);
        if eq_ic(k, "id") {
            let i = parse_i64_strict(v)
                .filter(|&i| i > 0)
                .ok_or_else(|| CmdError::msg("ERR client-id should be greater than 0"))?;
            id = Some(i as u64);
        } else if eq_ic(k, "type") {
            normal = is_normal_type(v)?;
        } else if eq_ic(k, "addr") {
            addr = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq_ic(k, "laddr") {
            laddr = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq_ic(k, "user") {
            if &v[..] != b"default" {
                return Err(CmdError::msg(format!(
                    "ERR No such user '{}'",
                    String::from_utf8_lossy(v)
                )));
            }
        } else if eq_ic(k, "skipme") {
            skipme = if eq_ic(v, "yes") {
                true
            } else if eq_ic(v, "no") {
                false
            } else {
                return Err(CmdError::SYNTAX);
            };
        } else if eq_ic(k, "maxage") {
            let a = parse_i64_strict(v).ok_or(CmdError::NOT_INTEGER)?;
            maxage = Some(a.max(0) as u64);
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    let matches = |cid: u64, c: &ClientInfo| {
        normal
            && id.is_none_or(|i| i == cid)
            && addr.as_ref().is_none_or(|a| c.addr.to_string() == *a)
            && laddr
                .as_ref()
                .is_none_or(|a| c.laddr.is_some_and(|l| l.to_string() == *a))
            && maxage.is_none_or(|m| c.created.elapsed().as_secs() >= m)
    };
    let mut killed = ctx.shared.clients.kill(Some(me), matches);
    if !skipme {
        let own = own_info(ctx);
        if matches(me, &own) {
            killed += 1;
            ctx.flow = super::Flow::Close;
        }
    }
    ctx.int(killed as i64)
}

/// One line of `CLIENT LIST` / `CLIENT INFO`, in Redis 7.0's field order.
fn write_line(out: &mut String, id: u64, c: &ClientInfo, cmd: &str) {
    let laddr = c.laddr.map_or_else(String::new, |a| a.to_string());
    let age = c.created.elapsed().as_secs();
    let _ = writeln!(
        out,
        "id={id} addr={} laddr={laddr} fd=-1 name={} age={age} idle=0 flags={} db={} sub=0 \
         psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 \
         oll=0 omem=0 tot-mem=0 events=r cmd={cmd} user=default redir=-1 resp={} lib-name={} \
         lib-ver={}",
        c.addr,
        c.name.as_deref().unwrap_or(""),
        flags(c),
        c.db,
        c.resp,
        c.lib_name.as_deref().unwrap_or(""),
        c.lib_ver.as_deref().unwrap_or(""),
    );
}

/// Redis's `flags=` field: `e` (no-evict), `T` (no-touch), or `N` for none.
fn flags(c: &ClientInfo) -> String {
    let mut f = String::new();
    if c.no_evict {
        f.push('e');
    }
    if c.no_touch {
        f.push('T');
    }
    if f.is_empty() {
        f.push('N');
    }
    f
}

/// `TIME`: unix seconds and microseconds, as two bulk strings.
pub fn time(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    reply::array_len(ctx.out, 2);
    reply::bulk(ctx.out, now.as_secs().to_string().as_bytes());
    reply::bulk(ctx.out, now.subsec_micros().to_string().as_bytes());
    Ok(())
}
