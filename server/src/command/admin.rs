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

/// `CLIENT ID|SETNAME|GETNAME|LIST|INFO`.
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
        created: registered.map_or_else(std::time::Instant::now, |c| c.created),
        resp: if ctx.client.version == Version::Resp3 {
            3
        } else {
            2
        },
    }
}

/// `CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]`.
fn client_list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut normal_only = true;
    let mut i = 2;
    while i < args.len() {
        if eq_ic(&args[i], "type") && i + 1 < args.len() {
            let t = &args[i + 1];
            if eq_ic(t, "normal") {
                normal_only = true;
            } else if ["master", "replica", "slave", "pubsub"]
                .iter()
                .any(|w| eq_ic(t, w))
            {
                normal_only = false;
            } else {
                return Err(CmdError::msg(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(t)
                )));
            }
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

/// One line of `CLIENT LIST` / `CLIENT INFO`, in Redis 7.0's field order.
fn write_line(out: &mut String, id: u64, c: &ClientInfo, cmd: &str) {
    let laddr = c.laddr.map_or_else(String::new, |a| a.to_string());
    let age = c.created.elapsed().as_secs();
    let _ = writeln!(
        out,
        "id={id} addr={} laddr={laddr} fd=-1 name={} age={age} idle=0 flags=N db={} sub=0 \
         psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 \
         oll=0 omem=0 tot-mem=0 events=r cmd={cmd} user=default redir=-1 resp={}",
        c.addr,
        c.name.as_deref().unwrap_or(""),
        c.db,
        c.resp,
    );
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
