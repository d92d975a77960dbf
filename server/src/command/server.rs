//! Server commands: COMMAND, CONFIG, DBSIZE, FLUSHDB, FLUSHALL, INFO.

use bytes::Bytes;
use shardcache_protocol::{reply, Version};

use super::{eq_ic, lookup, CmdError, CmdResult, CommandSpec, Ctx, COMMANDS};
use crate::info;

/// `DBSIZE`.
pub fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let n = ctx.shared.store.dbsize(ctx.client.db);
    ctx.int(n as i64)
}

/// Reads the optional `ASYNC|SYNC` of FLUSHDB / FLUSHALL: `true` for lazy freeing.
fn flush_mode(args: &[Bytes]) -> Result<bool, CmdError> {
    match args {
        [_] => Ok(false),
        [_, m] if eq_ic(m, "async") => Ok(true),
        [_, m] if eq_ic(m, "sync") => Ok(false),
        _ => Err(CmdError::SYNTAX),
    }
}

/// `FLUSHDB [ASYNC|SYNC]`.
pub fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let lazy = flush_mode(args)?;
    ctx.shared.store.flush_db(ctx.client.db, lazy);
    ctx.ok()
}

/// `FLUSHALL [ASYNC|SYNC]`.
pub fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let lazy = flush_mode(args)?;
    ctx.shared.store.flush_all(lazy);
    ctx.ok()
}

/// `INFO [section ...]`.
pub fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sections: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let text = info::render(ctx.shared, &sections);
    reply::verbatim(ctx.out, b"txt", text.as_bytes(), ctx.client.version);
    Ok(())
}

/// `COMMAND`, `COMMAND COUNT`, `COMMAND INFO name...`, `COMMAND DOCS [name...]`,
/// `COMMAND LIST`: enough for redis-cli's hints and for client libraries that introspect.
pub fn command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let v = ctx.client.version;
    let out = &mut *ctx.out;
    let Some(sub) = args.get(1) else {
        reply::array_len(out, COMMANDS.len());
        for spec in COMMANDS {
            write_command_info(out, spec, v);
        }
        return Ok(());
    };
    let rest = &args[2..];
    if eq_ic(sub, "count") && rest.is_empty() {
        reply::integer(out, COMMANDS.len() as i64);
    } else if eq_ic(sub, "list") && rest.is_empty() {
        reply::array_len(out, COMMANDS.len());
        for spec in COMMANDS {
            reply::bulk(out, spec.name.as_bytes());
        }
    } else if eq_ic(sub, "info") {
        if rest.is_empty() {
            reply::array_len(out, COMMANDS.len());
            for spec in COMMANDS {
                write_command_info(out, spec, v);
            }
        } else {
            reply::array_len(out, rest.len());
            for name in rest {
                match lookup(name) {
                    Some((_, spec)) => write_command_info(out, spec, v),
                    None => reply::null_array(out, v),
                }
            }
        }
    } else if eq_ic(sub, "docs") {
        let specs: Vec<&CommandSpec> = if rest.is_empty() {
            COMMANDS.iter().collect()
        } else {
            rest.iter()
                .filter_map(|n| lookup(n).map(|(_, s)| s))
                .collect()
        };
        reply::map_len(out, specs.len(), v);
        for spec in specs {
            reply::bulk(out, spec.name.as_bytes());
            reply::map_len(out, 3, v);
            reply::bulk(out, b"summary");
            reply::bulk(out, spec.summary.as_bytes());
            reply::bulk(out, b"since");
            reply::bulk(out, b"1.0.0");
            reply::bulk(out, b"group");
            reply::bulk(out, spec.group.as_bytes());
        }
    } else {
        return Err(CmdError::msg(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(())
}

/// One command's row in Redis 7's `COMMAND INFO` shape (10 fields).
fn write_command_info(out: &mut bytes::BytesMut, spec: &CommandSpec, v: Version) {
    reply::array_len(out, 10);
    reply::bulk(out, spec.name.as_bytes());
    reply::integer(out, i64::from(spec.arity));
    reply::set_len(out, spec.flags.len(), v);
    for f in spec.flags {
        reply::simple(out, f.as_bytes());
    }
    reply::integer(out, i64::from(spec.first_key));
    reply::integer(out, i64::from(spec.last_key));
    reply::integer(out, i64::from(spec.step));
    reply::set_len(out, 0, v); // ACL categories
    reply::set_len(out, 0, v); // tips
    reply::array_len(out, 0); // key specs
    reply::array_len(out, 0); // subcommands
}

/// The configuration parameters `CONFIG GET` reports: name and current value.
fn config_params(ctx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    let c = &ctx.shared.config;
    let store = &ctx.shared.store;
    vec![
        ("appendonly", "no".into()),
        ("bind", c.bind.clone()),
        ("databases", c.databases.to_string()),
        ("maxclients", c.maxclients.to_string()),
        ("maxmemory", store.maxmemory().to_string()),
        ("maxmemory-policy", store.policy().as_str().into()),
        ("maxmemory-samples", store.samples().to_string()),
        ("port", ctx.shared.port.to_string()),
        (
            "proto-max-bulk-len",
            c.proto_max_bulk_len.bytes().to_string(),
        ),
        ("save", String::new()),
        ("shards", store.shard_count().to_string()),
        ("timeout", "0".into()),
    ]
}

/// `CONFIG GET pattern [pattern ...]`, `CONFIG RESETSTAT`.
pub fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "get") && args.len() >= 3 {
        let params = config_params(ctx);
        let matched: Vec<&(&str, String)> = params
            .iter()
            .filter(|(name, _)| {
                args[2..].iter().any(|p| {
                    shardcache_storage::glob_match(&p.to_ascii_lowercase(), name.as_bytes())
                })
            })
            .collect();
        let v = ctx.client.version;
        reply::map_len(ctx.out, matched.len(), v);
        for (name, value) in matched {
            reply::bulk(ctx.out, name.as_bytes());
            reply::bulk(ctx.out, value.as_bytes());
        }
        Ok(())
    } else if eq_ic(sub, "resetstat") && args.len() == 2 {
        ctx.ok()
    } else {
        Err(CmdError::msg(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(sub)
        )))
    }
}
