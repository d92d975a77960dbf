//! Server commands: COMMAND, CONFIG, DBSIZE, FLUSHDB, FLUSHALL, INFO.

use bytes::Bytes;
use shardcache_protocol::{reply, Version};

use super::{eq_ic, CmdError, CmdResult, Ctx};
use crate::info;
use crate::table::{key_args, CommandSpec};

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
    let names = &ctx.shared.commands;
    let out = &mut *ctx.out;
    let Some(sub) = args.get(1) else {
        reply::array_len(out, names.visible().len());
        for (name, spec) in names.visible() {
            write_command_info(out, name, spec, v);
        }
        return Ok(());
    };
    let rest = &args[2..];
    if eq_ic(sub, "count") && rest.is_empty() {
        reply::integer(out, names.visible().len() as i64);
    } else if eq_ic(sub, "list") && rest.is_empty() {
        reply::array_len(out, names.visible().len());
        for (name, _) in names.visible() {
            reply::bulk(out, name.as_bytes());
        }
    } else if eq_ic(sub, "info") {
        if rest.is_empty() {
            reply::array_len(out, names.visible().len());
            for (name, spec) in names.visible() {
                write_command_info(out, name, spec, v);
            }
        } else {
            reply::array_len(out, rest.len());
            for name in rest {
                match names.find(name) {
                    Some((_, shown, spec)) => write_command_info(out, shown, spec, v),
                    None => reply::null_array(out, v),
                }
            }
        }
    } else if eq_ic(sub, "docs") {
        let specs: Vec<(&str, &CommandSpec)> = if rest.is_empty() {
            names.visible().collect()
        } else {
            rest.iter()
                .filter_map(|n| names.find(n).map(|(_, shown, s)| (shown, s)))
                .collect()
        };
        reply::map_len(out, specs.len(), v);
        for (name, spec) in specs {
            reply::bulk(out, name.as_bytes());
            reply::map_len(out, 3, v);
            reply::bulk(out, b"summary");
            reply::bulk(out, spec.summary.as_bytes());
            reply::bulk(out, b"since");
            reply::bulk(out, b"1.0.0");
            reply::bulk(out, b"group");
            reply::bulk(out, spec.group.as_bytes());
        }
    } else if eq_ic(sub, "getkeys") {
        // Redis 7.0's `COMMAND GETKEYS command arg [arg ...]`.
        if rest.len() < 2 {
            return Err(CmdError::msg(
                "ERR wrong number of arguments for 'command|getkeys' command",
            ));
        }
        let Some((index, _, spec)) = names.find(&rest[0]) else {
            return Err(CmdError::msg("ERR Invalid command specified"));
        };
        let argc = rest.len() as i64;
        let arity = i64::from(spec.arity);
        if (arity > 0 && argc != arity) || argc < -arity {
            return Err(CmdError::msg(
                "ERR Invalid number of arguments specified for command",
            ));
        }
        let keys: Vec<&[u8]> = key_args(index, rest)
            .map(Iterator::collect)
            .unwrap_or_default();
        if keys.is_empty() {
            return Err(CmdError::msg("ERR The command has no key arguments"));
        }
        reply::array_len(out, keys.len());
        for k in keys {
            reply::bulk(out, k);
        }
    } else if eq_ic(sub, "count") {
        return Err(CmdError::msg(
            "ERR wrong number of arguments for 'command|count' command",
        ));
    } else if eq_ic(sub, "list") {
        // `COMMAND LIST FILTERBY …` is not supported; Redis answers a syntax error for any
        // argument it cannot parse.
        return Err(CmdError::SYNTAX);
    } else {
        return Err(CmdError::msg(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(())
}

/// One command's row in Redis 7's `COMMAND INFO` shape (10 fields).
fn write_command_info(out: &mut bytes::BytesMut, name: &str, spec: &CommandSpec, v: Version) {
    reply::array_len(out, 10);
    reply::bulk(out, name.as_bytes());
    reply::integer(out, i64::from(spec.arity));
    reply::set_len(out, spec.flags.len(), v);
    for f in spec.flags.names() {
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
    let rt = &ctx.shared.runtime;
    vec![
        ("appendonly", "no".into()),
        ("bind", c.bind.clone()),
        (
            "client-output-buffer-limit",
            format!(
                "normal {} 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
                rt.output_buffer_limit()
            ),
        ),
        (
            "client-query-buffer-limit",
            rt.query_buffer_limit().to_string(),
        ),
        ("databases", c.databases.to_string()),
        (
            "latency-monitor-threshold",
            ctx.shared.latency_monitor.threshold_ms().to_string(),
        ),
        (
            "lock-log-slower-than",
            ctx.shared.locklog.slower_than().to_string(),
        ),
        ("lock-log-max-len", ctx.shared.locklog.max_len().to_string()),
        ("maxclients", rt.maxclients().to_string()),
        ("maxmemory", store.maxmemory().to_string()),
        ("maxmemory-policy", store.policy().as_str().into()),
        ("maxmemory-samples", store.samples().to_string()),
        ("port", ctx.shared.port.to_string()),
        (
            "protected-mode",
            if rt.protected_mode() { "yes" } else { "no" }.into(),
        ),
        (
            "proto-max-bulk-len",
            c.proto_max_bulk_len.bytes().to_string(),
        ),
        ("requirepass", ctx.shared.auth.config_value()),
        ("save", String::new()),
        ("shards", store.shard_count().to_string()),
        (
            "slowlog-log-slower-than",
            ctx.shared.slowlog.slower_than().to_string(),
        ),
        ("slowlog-max-len", ctx.shared.slowlog.max_len().to_string()),
        ("timeout", rt.timeout_s().to_string()),
    ]
}

/// The parameters `CONFIG SET` may change at run time.
const SETTABLE: &[&str] = &[
    "client-output-buffer-limit",
    "client-query-buffer-limit",
    "latency-monitor-threshold",
    "maxclients",
    "protected-mode",
    "timeout",
    "maxmemory",
    "maxmemory-policy",
    "maxmemory-samples",
    "requirepass",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "lock-log-slower-than",
    "lock-log-max-len",
];

/// Redis's `CONFIG SET` failure text for one parameter.
fn config_set_failed(name: &str, why: &str) -> CmdError {
    CmdError::msg(format!(
        "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
    ))
}

/// A validated `CONFIG SET` change, applied only once every pair is valid.
enum Change {
    Maxmemory(u64),
    Policy(shardcache_storage::EvictionPolicy),
    Samples(usize),
    Requirepass(Vec<u8>),
    SlowerThan(i64),
    SlowlogMaxLen(usize),
    LockLogSlowerThan(i64),
    LockLogMaxLen(usize),
    Timeout(u64),
    Maxclients(usize),
    ProtectedMode(bool),
    QueryLimit(u64),
    OutputLimit(u64),
    /// A valid value that changes nothing here (`client-output-buffer-limit` without a
    /// `normal` class).
    Unchanged,
    LatencyThreshold(u64),
}

/// Redis's `client-output-buffer-limit` value: `<class> <hard> <soft> <seconds>` groups;
/// shardcache applies the `normal` class's hard limit (the others have no clients here).
fn output_limit_change(name: &str, text: &str) -> Result<Change, CmdError> {
    let fail = |why: &str| config_set_failed(name, why);
    let bad = || fail("Error in hard, soft or soft_seconds setting in buffer limit configuration.");
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err(fail(
            "Wrong number of arguments in buffer limit configuration.",
        ));
    }
    let mut normal = None;
    for g in words.chunks(4) {
        let class = g[0].to_ascii_lowercase();
        if !["normal", "slave", "replica", "pubsub"].contains(&class.as_str()) {
            return Err(fail(
                "Invalid client class specified in buffer limit configuration.",
            ));
        }
        let mut sizes = [0u64; 2];
        for (i, w) in g[1..3].iter().enumerate() {
            sizes[i] = shardcache_config::parse_memory(w).map_err(|_| bad())?;
        }
        g[3].parse::<u64>().map_err(|_| bad())?;
        if class == "normal" {
            normal = Some(sizes[0]);
        }
    }
    Ok(normal.map_or(Change::Unchanged, Change::OutputLimit))
}

fn parse_change(name: &str, value: &[u8]) -> Result<Change, CmdError> {
    let text = String::from_utf8_lossy(value);
    match name {
        "requirepass" => Ok(Change::Requirepass(value.to_vec())),
        "latency-monitor-threshold" => {
            let n = super::parse_i64_strict(value).ok_or_else(|| {
                config_set_failed(name, "argument couldn't be parsed into an integer")
            })?;
            u64::try_from(n).map(Change::LatencyThreshold).map_err(|_| {
                config_set_failed(
                    name,
                    "argument must be between 0 and 9223372036854775807 inclusive",
                )
            })
        }
        "protected-mode" => match text.to_ascii_lowercase().as_str() {
            "yes" => Ok(Change::ProtectedMode(true)),
            "no" => Ok(Change::ProtectedMode(false)),
            _ => Err(config_set_failed(name, "argument must be 'yes' or 'no'")),
        },
        "timeout" | "maxclients" => {
            let n = super::parse_i64_strict(value).ok_or_else(|| {
                config_set_failed(name, "argument couldn't be parsed into an integer")
            })?;
            let (lo, hi) = if name == "maxclients" {
                (1, i64::from(u32::MAX))
            } else {
                (0, i64::from(i32::MAX))
            };
            if !(lo..=hi).contains(&n) {
                return Err(config_set_failed(
                    name,
                    &format!("argument must be between {lo} and {hi} inclusive"),
                ));
            }
            Ok(if name == "timeout" {
                Change::Timeout(n as u64)
            } else {
                Change::Maxclients(n as usize)
            })
        }
        "client-query-buffer-limit" => match shardcache_config::parse_memory(&text) {
            Ok(n) if n >= 1024 * 1024 => Ok(Change::QueryLimit(n)),
            Ok(_) => Err(config_set_failed(
                name,
                "argument must be between 1048576 and 9223372036854775807 inclusive",
            )),
            Err(_) => Err(config_set_failed(name, "argument must be a memory value")),
        },
        "client-output-buffer-limit" => output_limit_change(name, &text),
        "slowlog-log-slower-than"
        | "slowlog-max-len"
        | "lock-log-slower-than"
        | "lock-log-max-len" => {
            let n = super::parse_i64_strict(value).ok_or_else(|| {
                config_set_failed(name, "argument couldn't be parsed into an integer")
            })?;
            match name {
                "slowlog-log-slower-than" => return Ok(Change::SlowerThan(n)),
                "lock-log-slower-than" => return Ok(Change::LockLogSlowerThan(n)),
                _ => {}
            }
            let lock_log = name == "lock-log-max-len";
            usize::try_from(n)
                .map(|n| {
                    if lock_log {
                        Change::LockLogMaxLen(n)
                    } else {
                        Change::SlowlogMaxLen(n)
                    }
                })
                .map_err(|_| {
                    config_set_failed(
                        name,
                        "argument must be between 0 and 9223372036854775807 inclusive",
                    )
                })
        }
        "maxmemory" => {
            let ok = !text.starts_with(|c: char| c.is_whitespace())
                && !text.ends_with(char::is_whitespace);
            match shardcache_config::parse_memory(&text) {
                Ok(n) if ok => Ok(Change::Maxmemory(n)),
                _ => Err(config_set_failed(name, "argument must be a memory value")),
            }
        }
        "maxmemory-policy" => text
            .to_ascii_lowercase()
            .parse()
            .map(Change::Policy)
            .map_err(|_| {
                config_set_failed(
                    name,
                    "argument(s) must be one of the following: volatile-lru, volatile-lfu, \
                     volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, \
                     noeviction",
                )
            }),
        _ => {
            let n = super::parse_i64_strict(value).ok_or_else(|| {
                config_set_failed(name, "argument couldn't be parsed into an integer")
            })?;
            if !(1..=i64::from(i32::MAX)).contains(&n) {
                return Err(config_set_failed(
                    name,
                    "argument must be between 1 and 2147483647 inclusive",
                ));
            }
            Ok(Change::Samples(n as usize))
        }
    }
}

/// `CONFIG GET pattern [pattern ...]`, `CONFIG SET name value [name value ...]`,
/// `CONFIG RESETSTAT`, `CONFIG REWRITE`, with Redis 7.0's replies and error texts.
pub fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let arity = |s: &str| {
        CmdError::msg(format!(
            "ERR wrong number of arguments for 'config|{s}' command"
        ))
    };
    if eq_ic(sub, "get") {
        if args.len() < 3 {
            return Err(arity("get"));
        }
        config_get(ctx, &args[2..])
    } else if eq_ic(sub, "set") {
        if args.len() < 4 {
            return Err(arity("set"));
        }
        if args.len() & 1 == 1 {
            return Err(CmdError::SYNTAX);
        }
        let params = config_params(ctx);
        let mut seen: Vec<&str> = Vec::new();
        let mut changes = Vec::new();
        for pair in args[2..].chunks(2) {
            let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
            let Some(&known) = params.iter().map(|(n, _)| n).find(|n| **n == name) else {
                return Err(CmdError::msg(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                    String::from_utf8_lossy(&pair[0])
                )));
            };
            if seen.contains(&known) {
                return Err(config_set_failed(known, "duplicate parameter"));
            }
            seen.push(known);
            if !SETTABLE.contains(&known) {
                return Err(config_set_failed(known, "can't set immutable config"));
            }
            changes.push(parse_change(known, &pair[1])?);
        }
        let store = &ctx.shared.store;
        for c in changes {
            match c {
                Change::Maxmemory(n) => store.set_maxmemory(n),
                Change::Policy(p) => store.set_policy(p),
                Change::Samples(n) => store.set_samples(n),
                Change::Requirepass(p) => ctx.shared.auth.set(Some(&p)),
                Change::SlowerThan(n) => ctx.shared.slowlog.set_slower_than(n),
                Change::SlowlogMaxLen(n) => ctx.shared.slowlog.set_max_len(n),
                Change::LockLogSlowerThan(n) => ctx.shared.locklog.set_slower_than(n),
                Change::LockLogMaxLen(n) => ctx.shared.locklog.set_max_len(n),
                Change::Timeout(n) => ctx.shared.runtime.set_timeout_s(n),
                Change::Maxclients(n) => ctx.shared.runtime.set_maxclients(n),
                Change::ProtectedMode(b) => ctx.shared.runtime.set_protected_mode(b),
                Change::QueryLimit(n) => ctx.shared.runtime.set_query_buffer_limit(n),
                Change::OutputLimit(n) => ctx.shared.runtime.set_output_buffer_limit(n),
                Change::Unchanged => {}
                Change::LatencyThreshold(n) => ctx.shared.latency_monitor.set_threshold_ms(n),
            }
        }
        ctx.ok()
    } else if eq_ic(sub, "resetstat") {
        if args.len() != 2 {
            return Err(arity("resetstat"));
        }
        ctx.shared.reset_stats();
        ctx.ok()
    } else if eq_ic(sub, "rewrite") {
        if args.len() != 2 {
            return Err(arity("rewrite"));
        }
        Err(CmdError::msg(
            "ERR The server is running without a config file",
        ))
    } else {
        Err(CmdError::msg(format!(
            "ERR unknown subcommand '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(sub)
        )))
    }
}

/// `CONFIG GET`: each parameter once, whichever patterns match it; a pattern without glob
/// characters names its parameter as typed, as Redis does.
fn config_get(ctx: &mut Ctx<'_>, patterns: &[Bytes]) -> CmdResult {
    let params = config_params(ctx);
    let mut matched: Vec<(String, &str)> = Vec::new();
    for p in patterns {
        let lower = p.to_ascii_lowercase();
        let literal = !lower
            .iter()
            .any(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'));
        for (name, value) in &params {
            if matched.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                continue;
            }
            if literal && lower == name.as_bytes() {
                matched.push((String::from_utf8_lossy(p).into_owned(), value));
            } else if !literal && shardcache_storage::glob_match(&lower, name.as_bytes()) {
                matched.push((name.to_string(), value));
            }
        }
    }
    let v = ctx.client.version;
    reply::map_len(ctx.out, matched.len(), v);
    for (name, value) in matched {
        reply::bulk(ctx.out, name.as_bytes());
        reply::bulk(ctx.out, value.as_bytes());
    }
    Ok(())
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: the same graceful stop as SIGTERM
/// (connections finish and flush their batch, then the process exits 0). The client that
/// asked gets no reply: its connection closes, as with Redis. shardcache keeps nothing on
/// disk, so `SAVE` is refused with a clear error; there is never a shutdown to `ABORT`.
pub fn shutdown(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (mut nosave, mut save, mut other, mut abort) = (false, false, false, false);
    for a in &args[1..] {
        if eq_ic(a, "nosave") {
            nosave = true;
        } else if eq_ic(a, "save") {
            save = true;
        } else if eq_ic(a, "now") || eq_ic(a, "force") {
            other = true;
        } else if eq_ic(a, "abort") {
            abort = true;
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    if (abort && (nosave || save || other)) || (nosave && save) {
        return Err(CmdError::SYNTAX);
    }
    if abort {
        return Err(CmdError::msg("ERR No shutdown in progress."));
    }
    if save {
        return Err(CmdError::msg(
            "ERR shardcache has no persistence, so SHUTDOWN SAVE has nothing to save (use \
             SHUTDOWN or SHUTDOWN NOSAVE)",
        ));
    }
    tracing::warn!(
        client = ctx.client.id,
        peer = %ctx.client.peer,
        "SHUTDOWN: stopping as on SIGTERM"
    );
    ctx.shared.shutdown_request.notify_one();
    ctx.flow = super::Flow::Close;
    Ok(())
}
