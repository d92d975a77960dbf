//! The command table and dispatch.
//!
//! A request is looked up by name (case-insensitive, no allocation), its arity checked against
//! the table the way Redis does (positive: exact, negative: at least), the memory limit
//! enforced for commands flagged `denyoom`, and its handler run. Handlers write their reply
//! straight into the connection's output buffer, or return a [`CmdError`] whose text is Redis's.
//! The table also feeds `COMMAND`, `COMMAND COUNT` and `COMMAND DOCS`.

mod admin;
mod bits;
mod connection;
mod generic;
mod keys;
mod observe;
mod scripting;
mod server;
mod strings;
pub mod transaction;
pub mod unsupported;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use shardcache_protocol::{reply, Request, Version};

use crate::connection::ClientState;
use crate::state::Shared;
use crate::stats::WorkerStats;

/// The Redis version shardcache reports (`INFO`'s `redis_version`, `HELLO`'s `version`).
pub fn connection_compat_version() -> &'static str {
    connection::REDIS_COMPAT_VERSION
}

/// What the connection does after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving.
    Continue,
    /// Flush the replies so far and close (`QUIT`, protocol error).
    Close,
}

/// A command failed; the reply is an error with this text (which starts with the error code,
/// e.g. `ERR`, `WRONGTYPE`, `OOM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError(pub Cow<'static, str>);

impl CmdError {
    /// Redis's `-ERR syntax error`.
    pub const SYNTAX: CmdError = CmdError(Cow::Borrowed("ERR syntax error"));
    /// Redis's reply to a malformed or out-of-range integer argument.
    pub const NOT_INTEGER: CmdError =
        CmdError(Cow::Borrowed("ERR value is not an integer or out of range"));
    /// Redis's reply when a write would exceed `maxmemory` under `noeviction`.
    pub const OOM: CmdError = CmdError(Cow::Borrowed(
        "OOM command not allowed when used memory > 'maxmemory'.",
    ));

    /// An error with a computed message.
    pub fn msg(s: impl Into<String>) -> CmdError {
        CmdError(Cow::Owned(s.into()))
    }
}

/// What a handler returns: `Ok` once it has written its reply, or the error to send.
pub type CmdResult = Result<(), CmdError>;

/// Everything a handler may touch.
pub struct Ctx<'a> {
    /// Server-wide state.
    pub shared: &'a Shared,
    /// This connection's state.
    pub client: &'a mut ClientState,
    /// The reply buffer of the current batch.
    pub out: &'a mut BytesMut,
    /// Set by `QUIT`.
    pub flow: Flow,
}

impl Ctx<'_> {
    /// The connection's reply protocol.
    pub fn version(&self) -> Version {
        self.client.version
    }
    /// Writes `+OK`.
    pub fn ok(&mut self) -> CmdResult {
        reply::simple(self.out, b"OK");
        Ok(())
    }
    /// Writes a bulk string.
    pub fn bulk(&mut self, b: &[u8]) -> CmdResult {
        reply::bulk(self.out, b);
        Ok(())
    }
    /// Writes an integer.
    pub fn int(&mut self, n: i64) -> CmdResult {
        reply::integer(self.out, n);
        Ok(())
    }
    /// Writes the null bulk string (`$-1` / RESP3 `_`).
    pub fn null(&mut self) -> CmdResult {
        reply::null(self.out, self.client.version);
        Ok(())
    }
    /// For replies assembled from many values (`MGET`): whether a reply of `bytes` would
    /// exceed `client-output-buffer-limit`. If so the client is to be disconnected, as Redis
    /// does, *before* the reply is built, so one request cannot make the server copy an
    /// unbounded amount of data (e.g. `MGET` of one 512 MB key a thousand times).
    pub fn reply_too_large(&mut self, bytes: u64) -> bool {
        let limit = self.shared.runtime.output_buffer_limit();
        if limit == 0 || bytes <= limit {
            return false;
        }
        tracing::warn!(
            client = self.client.id,
            peer = %self.client.peer,
            reply_bytes = bytes,
            limit,
            "closing client whose reply would exceed client-output-buffer-limit"
        );
        self.flow = Flow::Close;
        true
    }

    /// Writes a bulk string, or null for `None`.
    pub fn opt_bulk(&mut self, b: Option<&[u8]>) -> CmdResult {
        match b {
            Some(b) => self.bulk(b),
            None => self.null(),
        }
    }
}

/// A handler: parses `args` (`args[0]` is the command name) and writes a reply.
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> CmdResult;

/// One row of the command table, in the shape `COMMAND` reports.
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: `n` exactly n arguments (name included), `-n` at least n.
    pub arity: i32,
    /// Redis command flags (`write`, `readonly`, `denyoom`, `fast`, …).
    pub flags: &'static [&'static str],
    /// First key argument position (0: no keys).
    pub first_key: i32,
    /// Last key position (-1: the last argument).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// Redis command group, for `COMMAND DOCS`.
    pub group: &'static str,
    /// One-line summary, for `COMMAND DOCS` and redis-cli's help.
    pub summary: &'static str,
    /// The function that runs it.
    pub handler: Handler,
}

impl CommandSpec {
    fn has_flag(&self, f: &str) -> bool {
        self.flags.contains(&f)
    }
}

macro_rules! cmd {
    ($name:literal, $arity:expr, [$($flag:literal),*], $fk:expr, $lk:expr, $step:expr, $group:literal, $summary:literal, $handler:path) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: &[$($flag),*],
            first_key: $fk,
            last_key: $lk,
            step: $step,
            group: $group,
            summary: $summary,
            handler: $handler,
        }
    };
}

/// Every command shardcache knows, sorted by name.
pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "append",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "Append a value to a key",
        strings::append
    ),
    cmd!(
        "auth",
        -2,
        ["noscript", "loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
        "connection",
        "Authenticate to the server",
        connection::auth
    ),
    cmd!(
        "bitcount",
        -2,
        ["readonly"],
        1,
        1,
        1,
        "bitmap",
        "Count set bits in a string",
        bits::bitcount
    ),
    cmd!(
        "bitfield",
        -2,
        ["write", "denyoom"],
        1,
        1,
        1,
        "bitmap",
        "Perform arbitrary bitfield integer operations on strings",
        bits::bitfield
    ),
    cmd!(
        "bitfield_ro",
        -2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "bitmap",
        "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
        bits::bitfield_ro
    ),
    cmd!(
        "bitop",
        -4,
        ["write", "denyoom"],
        2,
        -1,
        1,
        "bitmap",
        "Perform bitwise operations between strings",
        bits::bitop
    ),
    cmd!(
        "bitpos",
        -3,
        ["readonly"],
        1,
        1,
        1,
        "bitmap",
        "Find first bit set or clear in a string",
        bits::bitpos
    ),
    cmd!(
        "client",
        -2,
        ["admin", "noscript", "loading", "stale"],
        0,
        0,
        0,
        "connection",
        "A container for client connection commands",
        admin::client
    ),
    cmd!(
        "command",
        -1,
        ["loading", "stale"],
        0,
        0,
        0,
        "server",
        "Get array of command details",
        server::command
    ),
    cmd!(
        "config",
        -2,
        ["admin", "noscript", "loading", "stale"],
        0,
        0,
        0,
        "server",
        "Get or set configuration parameters",
        server::config
    ),
    cmd!(
        "copy",
        -3,
        ["write", "denyoom"],
        1,
        2,
        1,
        "generic",
        "Copy a key",
        generic::copy
    ),
    cmd!(
        "dbsize",
        1,
        ["readonly", "fast"],
        0,
        0,
        0,
        "server",
        "Return the number of keys in the selected database",
        server::dbsize
    ),
    cmd!(
        "decr",
        2,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "Decrement the integer value of a key by one",
        strings::decr
    ),
    cmd!(
        "decrby",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "Decrement the integer value of a key by the given number",
        strings::decrby
    ),
    cmd!(
        "del",
        -2,
        ["write"],
        1,
        -1,
        1,
        "generic",
        "Delete keys",
        keys::del
    ),
    cmd!(
        "discard",
        1,
        ["noscript", "loading", "stale", "fast", "allow_busy"],
        0,
        0,
        0,
        "transactions",
        "Discard all commands issued after MULTI",
        transaction::discard
    ),
    cmd!(
        "echo",
        2,
        ["fast"],
        0,
        0,
        0,
        "connection",
        "Echo the given string",
        connection::echo
    ),
    cmd!(
        "exec",
        1,
        ["noscript", "loading", "stale", "skip_slowlog"],
        0,
        0,
        0,
        "transactions",
        "Execute all commands issued after MULTI",
        transaction::exec
    ),
    cmd!(
        "exists",
        -2,
        ["readonly", "fast"],
        1,
        -1,
        1,
        "generic",
        "Determine if keys exist",
        keys::exists
    ),
    cmd!(
        "expire",
        -3,
        ["write", "fast"],
        1,
        1,
        1,
        "generic",
        "Set a key's time to live in seconds",
        keys::expire
    ),
    cmd!(
        "expireat",
        -3,
        ["write", "fast"],
        1,
        1,
        1,
        "generic",
        "Set the expiration for a key as a UNIX timestamp",
        keys::expireat
    ),
    cmd!(
        "expiretime",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "generic",
        "Get the expiration Unix timestamp for a key",
        keys::expiretime
    ),
    cmd!(
        "flushall",
        -1,
        ["write"],
        0,
        0,
        0,
        "server",
        "Remove all keys from all databases",
        server::flushall
    ),
    cmd!(
        "flushdb",
        -1,
        ["write"],
        0,
        0,
        0,
        "server",
        "Remove all keys from the current database",
        server::flushdb
    ),
    cmd!(
        "function",
        -2,
        [],
        0,
        0,
        0,
        "scripting",
        "A container for function commands",
        scripting::function
    ),
    cmd!(
        "get",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "string",
        "Get the value of a key",
        strings::get
    ),
    cmd!(
        "getbit",
        3,
        ["readonly", "fast"],
        1,
        1,
        1,
        "bitmap",
        "Returns the bit value at offset in the string value stored at key",
        bits::getbit
    ),
    cmd!(
        "getdel",
        2,
        ["write", "fast"],
        1,
        1,
        1,
        "string",
        "Get the value of a key and delete the key",
        strings::getdel
    ),
    cmd!(
        "getex",
        -2,
        ["write", "fast"],
        1,
        1,
        1,
        "string",
        "Get the value of a key and optionally set its expiration",
        strings::getex
    ),
    cmd!(
        "getrange",
        4,
        ["readonly"],
        1,
        1,
        1,
        "string",
        "Get a substring of the string stored at a key",
        strings::getrange
    ),
    cmd!(
        "getset",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "Set the string value of a key and return its old value",
        strings::getset
    ),
    cmd!(
        "hello",
        -1,
        ["noscript", "loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
        "connection",
        "Handshake with the server",
        connection::hello
    ),
    cmd!(
        "hotkeys",
        -1,
        ["readonly", "random"],
        0,
        0,
        0,
        "server",
        "List the most accessed keys (sampled), with their shard and estimated share",
        observe::hotkeys
    ),
    cmd!(
        "incr",
        2,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "Increment the integer value of a key by one",
        strings::incr
    ),
    cmd!(
        "incrby",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "Increment the integer value of a key by the given amount",
        strings::incrby
    ),
    cmd!(
        "incrbyfloat",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "Increment the float value of a key by the given amount",
        strings::incrbyfloat
    ),
    cmd!(
        "info",
        -1,
        ["loading", "stale"],
        0,
        0,
        0,
        "server",
        "Get information and statistics about the server",
        server::info
    ),
    cmd!(
        "keys",
        2,
        ["readonly"],
        0,
        0,
        0,
        "generic",
        "Find all keys matching the given pattern",
        keys::keys
    ),
    cmd!(
        "latency",
        -2,
        [],
        0,
        0,
        0,
        "server",
        "A container for latency diagnostics commands",
        observe::latency
    ),
    cmd!(
        "lcs",
        -3,
        ["readonly"],
        1,
        2,
        1,
        "string",
        "Find longest common substring",
        bits::lcs_command
    ),
    cmd!(
        "locklog",
        -2,
        ["admin", "noscript", "loading", "stale"],
        0,
        0,
        0,
        "server",
        "The commands that held a shard lock longest, whom they made wait, and for how long",
        observe::locklog
    ),
    cmd!(
        "memory",
        -2,
        [],
        0,
        0,
        0,
        "server",
        "A container for memory diagnostics commands",
        generic::memory
    ),
    cmd!(
        "mget",
        -2,
        ["readonly", "fast"],
        1,
        -1,
        1,
        "string",
        "Get the values of all the given keys",
        strings::mget
    ),
    cmd!(
        "monitor",
        1,
        ["admin", "noscript", "loading", "stale"],
        0,
        0,
        0,
        "server",
        "Listen for all requests received by the server in real time",
        observe::monitor
    ),
    cmd!(
        "move",
        3,
        ["write", "fast"],
        1,
        1,
        1,
        "generic",
        "Move a key to another database",
        generic::move_key
    ),
    cmd!(
        "mset",
        -3,
        ["write", "denyoom"],
        1,
        -1,
        2,
        "string",
        "Set multiple keys to multiple values",
        strings::mset
    ),
    cmd!(
        "msetnx",
        -3,
        ["write", "denyoom"],
        1,
        -1,
        2,
        "string",
        "Set multiple keys to multiple values, only if none of the keys exist",
        strings::msetnx
    ),
    cmd!(
        "multi",
        1,
        ["noscript", "loading", "stale", "fast", "allow_busy"],
        0,
        0,
        0,
        "transactions",
        "Mark the start of a transaction block",
        transaction::multi
    ),
    cmd!(
        "object",
        -2,
        [],
        0,
        0,
        0,
        "generic",
        "A container for object introspection commands",
        generic::object
    ),
    cmd!(
        "persist",
        2,
        ["write", "fast"],
        1,
        1,
        1,
        "generic",
        "Remove the expiration from a key",
        keys::persist
    ),
    cmd!(
        "pexpire",
        -3,
        ["write", "fast"],
        1,
        1,
        1,
        "generic",
        "Set a key's time to live in milliseconds",
        keys::pexpire
    ),
    cmd!(
        "pexpireat",
        -3,
        ["write", "fast"],
        1,
        1,
        1,
        "generic",
        "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
        keys::pexpireat
    ),
    cmd!(
        "pexpiretime",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "generic",
        "Get the expiration Unix timestamp for a key in milliseconds",
        keys::pexpiretime
    ),
    cmd!(
        "ping",
        -1,
        ["fast"],
        0,
        0,
        0,
        "connection",
        "Ping the server",
        connection::ping
    ),
    cmd!(
        "psetex",
        4,
        ["write", "denyoom"],
        1,
        1,
        1,
        "string",
        "Set the value and expiration in milliseconds of a key",
        strings::psetex
    ),
    cmd!(
        "pttl",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "generic",
        "Get the time to live for a key in milliseconds",
        keys::pttl
    ),
    cmd!(
        "quit",
        -1,
        ["fast", "no_auth"],
        0,
        0,
        0,
        "connection",
        "Close the connection",
        connection::quit
    ),
    cmd!(
        "randomkey",
        1,
        ["readonly"],
        0,
        0,
        0,
        "generic",
        "Return a random key from the keyspace",
        keys::randomkey
    ),
    cmd!(
        "rename",
        3,
        ["write"],
        1,
        2,
        1,
        "generic",
        "Rename a key",
        keys::rename
    ),
    cmd!(
        "renamenx",
        3,
        ["write", "fast"],
        1,
        2,
        1,
        "generic",
        "Rename a key, only if the new key does not exist",
        keys::renamenx
    ),
    cmd!(
        "reset",
        1,
        [
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy"
        ],
        0,
        0,
        0,
        "connection",
        "Reset the connection",
        scripting::reset
    ),
    cmd!(
        "scan",
        -2,
        ["readonly"],
        0,
        0,
        0,
        "generic",
        "Incrementally iterate the keys space",
        keys::scan
    ),
    cmd!(
        "script",
        -2,
        [],
        0,
        0,
        0,
        "scripting",
        "A container for Lua scripts management commands",
        scripting::script
    ),
    cmd!(
        "select",
        2,
        ["loading", "stale", "fast"],
        0,
        0,
        0,
        "connection",
        "Change the selected database",
        connection::select
    ),
    cmd!(
        "set",
        -3,
        ["write", "denyoom"],
        1,
        1,
        1,
        "string",
        "Set the string value of a key",
        strings::set
    ),
    cmd!(
        "setbit",
        4,
        ["write", "denyoom"],
        1,
        1,
        1,
        "bitmap",
        "Sets or clears the bit at offset in the string value stored at key",
        bits::setbit
    ),
    cmd!(
        "setex",
        4,
        ["write", "denyoom"],
        1,
        1,
        1,
        "string",
        "Set the value and expiration of a key",
        strings::setex
    ),
    cmd!(
        "setnx",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "Set the value of a key, only if the key does not exist",
        strings::setnx
    ),
    cmd!(
        "setrange",
        4,
        ["write", "denyoom"],
        1,
        1,
        1,
        "string",
        "Overwrite part of a string at key starting at the specified offset",
        strings::setrange
    ),
    cmd!(
        "shutdown",
        -1,
        [
            "admin",
            "noscript",
            "loading",
            "stale",
            "no_multi",
            "sentinel",
            "allow_busy"
        ],
        0,
        0,
        0,
        "server",
        "Synchronously save the dataset to disk and then shut down the server",
        server::shutdown
    ),
    cmd!(
        "slowlog",
        -2,
        [],
        0,
        0,
        0,
        "server",
        "A container for slow log commands",
        observe::slowlog
    ),
    cmd!(
        "strlen",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "string",
        "Get the length of the value stored in a key",
        strings::strlen
    ),
    cmd!(
        "swapdb",
        3,
        ["write", "fast"],
        0,
        0,
        0,
        "server",
        "Swaps two Redis databases",
        generic::swapdb
    ),
    cmd!(
        "time",
        1,
        ["loading", "stale", "fast"],
        0,
        0,
        0,
        "server",
        "Return the current server time",
        admin::time
    ),
    cmd!(
        "touch",
        -2,
        ["readonly", "fast"],
        1,
        -1,
        1,
        "generic",
        "Alters the last access time of a key(s). Returns the number of existing keys specified.",
        keys::touch
    ),
    cmd!(
        "ttl",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "generic",
        "Get the time to live for a key in seconds",
        keys::ttl
    ),
    cmd!(
        "type",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "generic",
        "Determine the type stored at key",
        keys::type_
    ),
    cmd!(
        "unlink",
        -2,
        ["write", "fast"],
        1,
        -1,
        1,
        "generic",
        "Delete a key asynchronously in another thread",
        keys::unlink
    ),
    cmd!(
        "unwatch",
        1,
        ["noscript", "loading", "stale", "fast", "allow_busy"],
        0,
        0,
        0,
        "transactions",
        "Forget about all watched keys",
        transaction::unwatch
    ),
    cmd!(
        "watch",
        -2,
        ["noscript", "loading", "stale", "fast", "allow_busy"],
        1,
        -1,
        1,
        "transactions",
        "Watch the given keys to determine execution of the MULTI/EXEC block",
        transaction::watch
    ),
];

/// What dispatch needs to know about a command, precomputed once so the hot path compares no
/// flag strings.
#[derive(Clone, Copy, Debug)]
struct Entry {
    index: usize,
    denyoom: bool,
    /// Runs before `AUTH` (Redis's `no_auth` flag: AUTH, HELLO, QUIT).
    no_auth: bool,
    /// Whether it leaves the event loop (see [`Dispatched::offload`]).
    offload: Offload,
}

impl Entry {
    fn of(index: usize, c: &CommandSpec) -> Entry {
        Entry {
            index,
            denyoom: c.has_flag("denyoom"),
            no_auth: c.has_flag("no_auth"),
            offload: Offload::of(c.name),
        }
    }
}

fn table() -> &'static HashMap<&'static [u8], Entry, ahash::RandomState> {
    static TABLE: OnceLock<HashMap<&'static [u8], Entry, ahash::RandomState>> = OnceLock::new();
    TABLE.get_or_init(|| {
        COMMANDS
            .iter()
            .enumerate()
            .map(|(index, c)| (c.name.as_bytes(), Entry::of(index, c)))
            .collect()
    })
}

/// Longest command name the dispatcher looks up (the built-in names and `--rename-command`
/// targets); longer names are unknown without further work.
const MAX_NAME_LEN: usize = 64;

/// The names one server answers to: [`COMMANDS`] after `--rename-command` and
/// `--disable-command`. Built once at start; looked up per request without allocating or
/// hashing: names are bucketed by length and first letter, so a lookup is one index and
/// (almost always) one case-insensitive comparison.
pub struct CommandNames {
    /// Indexed by [`name_slot`]; lower-case names.
    buckets: Box<[Vec<Named>]>,
    /// Every name answered, with its command's index, sorted by name: what `COMMAND` lists
    /// (renamed commands under their new names, disabled ones not at all).
    visible: Box<[(Box<str>, usize)]>,
}

/// A lower-case command name and what dispatch needs of it.
type Named = (Box<[u8]>, Entry);

/// Letters of the first byte that tell buckets apart (its low 5 bits, case folded).
const FIRST_SLOTS: usize = 32;

/// The bucket of a name: its length and first byte (`None` when empty or too long).
#[inline]
fn name_slot(name: &[u8]) -> Option<usize> {
    let first = *name.first()?;
    (name.len() <= MAX_NAME_LEN)
        .then(|| name.len() * FIRST_SLOTS + usize::from(first.to_ascii_lowercase() & 31))
}

impl CommandNames {
    /// Applies `renames` (flattened `NAME NEWNAME` pairs; an empty NEWNAME disables) and
    /// `disabled` to the full table.
    ///
    /// # Errors
    /// An unknown command name, a new name already taken or too long, an odd `renames`.
    pub fn new(renames: &[String], disabled: &[String]) -> Result<CommandNames, String> {
        let mut map: HashMap<Box<[u8]>, Entry, ahash::RandomState> = table()
            .iter()
            .map(|(name, e)| (Box::from(*name), *e))
            .collect();
        let mut take = |option: &str, name: &str| {
            map.remove(name.to_ascii_lowercase().as_bytes())
                .ok_or_else(|| format!("invalid value for --{option}: no such command '{name}'"))
        };
        let mut added = Vec::new();
        for pair in renames.chunks(2) {
            let [from, to] = pair else {
                return Err("invalid value for --rename-command: takes NAME NEWNAME".into());
            };
            let entry = take("rename-command", from)?;
            if !to.is_empty() {
                added.push((to.to_ascii_lowercase(), entry));
            }
        }
        for name in disabled.iter().filter(|n| !n.is_empty()) {
            take("disable-command", name)?;
        }
        for (to, entry) in added {
            if to.len() > MAX_NAME_LEN {
                return Err(format!(
                    "invalid value for --rename-command: '{to}' is longer than {MAX_NAME_LEN} bytes"
                ));
            }
            if map.insert(to.clone().into_bytes().into(), entry).is_some() {
                return Err(format!(
                    "invalid value for --rename-command: '{to}' is already a command name"
                ));
            }
        }
        let mut visible: Vec<(Box<str>, usize)> = map
            .iter()
            .map(|(n, e)| (String::from_utf8_lossy(n).into(), e.index))
            .collect();
        visible.sort_unstable();
        let mut buckets: Vec<Vec<Named>> = vec![Vec::new(); (MAX_NAME_LEN + 1) * FIRST_SLOTS];
        for (name, entry) in map {
            if let Some(slot) = name_slot(&name) {
                buckets[slot].push((name, entry));
            }
        }
        Ok(CommandNames {
            buckets: buckets.into(),
            visible: visible.into(),
        })
    }

    /// Every command this server answers to, by the name it answers to, sorted.
    pub fn visible(&self) -> impl ExactSizeIterator<Item = (&str, &'static CommandSpec)> {
        self.visible.iter().map(|(n, i)| (&**n, &COMMANDS[*i]))
    }

    /// The command answering to `name` (case-insensitive), with its index and the name it
    /// answers to.
    pub fn find(&self, name: &[u8]) -> Option<(usize, &str, &'static CommandSpec)> {
        let e = self.get(name)?;
        let shown = self
            .visible
            .iter()
            .find(|(n, i)| *i == e.index && n.as_bytes().eq_ignore_ascii_case(name))
            .map_or(COMMANDS[e.index].name, |(n, _)| &**n);
        Some((e.index, shown, &COMMANDS[e.index]))
    }

    /// Finds a command by name, case-insensitively, without allocating.
    #[inline]
    fn get(&self, name: &[u8]) -> Option<Entry> {
        self.buckets
            .get(name_slot(name)?)?
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, e)| *e)
    }
}

fn lookup_entry(name: &[u8]) -> Option<Entry> {
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    table().get(&*lower).copied()
}

/// The keys a command names, by its table row (`None` if its row declares none).
pub(crate) fn key_args(index: usize, args: &[Bytes]) -> Option<impl Iterator<Item = &[u8]>> {
    let spec = &COMMANDS[index];
    if spec.first_key <= 0 {
        return None;
    }
    let n = args.len() as i64;
    let first = i64::from(spec.first_key);
    let last = match i64::from(spec.last_key) {
        l if l < 0 => n + l,
        l => l,
    };
    let step = i64::from(spec.step.max(1));
    Some(
        (first..=last.min(n - 1))
            .step_by(step as usize)
            .map(move |i| &args[i as usize][..]),
    )
}

/// Commands `MONITOR` does not show, as Redis hides administrative ones.
fn hidden_from_monitor(index: usize) -> bool {
    let spec = &COMMANDS[index];
    spec.flags.contains(&"admin") || matches!(spec.name, "slowlog" | "latency" | "monitor")
}

/// The holder tag the store charges a command's lock holds and waits to: its index + 1
/// (0 is "no command"; see [`holder_name`]).
#[inline]
pub fn holder_tag(index: usize) -> u16 {
    u16::try_from(index + 1).unwrap_or(shardcache_storage::blame::TAG_NONE)
}

/// The command (or "other", "background") a holder tag stands for, as metrics label it.
pub fn holder_name(tag: u16) -> &'static str {
    match tag {
        shardcache_storage::blame::TAG_BACKGROUND => "background",
        0 => "other",
        t => COMMANDS.get(usize::from(t) - 1).map_or("other", |c| c.name),
    }
}

/// Whether every lock hold of the command is timed: the commands whose work under a lock
/// grows with their input (Redis's non-`fast` commands, and `APPEND`, which copies the
/// value). Others are timed one acquisition in `HOLD_SAMPLE`.
#[inline]
fn holds_timed(index: usize) -> bool {
    static TIMED: OnceLock<Box<[bool]>> = OnceLock::new();
    TIMED.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|c| !c.has_flag("fast") || c.name == "append")
            .collect()
    })[index]
}

/// Whether the command is flagged `fast` (the latency monitor's `fast-command` event).
pub fn is_fast(index: usize) -> bool {
    COMMANDS[index].flags.contains(&"fast")
}

/// For `CLIENT PAUSE`: `None` if the request is never paused (`CLIENT`, so that `UNPAUSE`
/// gets through), else whether it is a write.
pub fn pause_class(shared: &Shared, args: &[Bytes]) -> Option<bool> {
    let found = shared.commands.get(args.first()?)?;
    let spec = &COMMANDS[found.index];
    (spec.name != "client").then(|| spec.flags.contains(&"write"))
}

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<(usize, &'static CommandSpec)> {
    lookup_entry(name).map(|e| (e.index, &COMMANDS[e.index]))
}

/// A request that passed lookup, arity, authentication and the memory check: ready to run.
#[derive(Clone, Copy, Debug)]
pub struct Dispatched {
    /// Index of the command in [`COMMANDS`].
    pub index: usize,
    offload: Offload,
}

impl Dispatched {
    /// Whether this request may run long enough (a keyspace walk) that the worker should run
    /// it on its blocking pool rather than keep its other clients waiting.
    pub fn offload(&self, args: &[Bytes]) -> bool {
        match self.offload {
            Offload::Never => false,
            Offload::Always => true,
            Offload::BigScanPage => scan_count(args).is_some_and(|n| n >= BIG_SCAN_PAGE),
        }
    }
}

/// Which requests leave the worker's event loop for its blocking pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offload {
    /// Bounded work (the `fast` commands and the multi-key ones, bounded by the request size).
    Never,
    /// Walks or frees a whole keyspace, or scans every database (`INFO keyspace`).
    Always,
    /// `SCAN` with a `COUNT` of at least [`BIG_SCAN_PAGE`].
    BigScanPage,
}

/// Commands that may walk the whole keyspace: run off the worker's event loop.
const OFFLOADED: &[&str] = &["flushall", "flushdb", "info", "keys"];
/// A `SCAN` page this large is run off the worker's event loop.
const BIG_SCAN_PAGE: i64 = 1000;

impl Offload {
    fn of(name: &str) -> Offload {
        if name == "scan" {
            Offload::BigScanPage
        } else if OFFLOADED.contains(&name) {
            Offload::Always
        } else {
            Offload::Never
        }
    }
}

/// The `COUNT` argument of a `SCAN`, when present and an integer.
fn scan_count(args: &[Bytes]) -> Option<i64> {
    let i = args.iter().skip(2).position(|a| eq_ic(a, "count"))? + 2;
    parse_i64_strict(args.get(i + 1)?)
}

/// Looks the request up and checks arity, authentication and (for `denyoom` commands) the
/// memory limit, in Redis's order. On refusal the error reply is written, the refusal
/// counted in `stats`, and `None` returned.
pub fn dispatch(
    shared: &Shared,
    stats: &WorkerStats,
    client: &ClientState,
    args: &[Bytes],
    out: &mut BytesMut,
) -> Option<Dispatched> {
    let name = args.first()?;
    let Some(found) = shared.commands.get(name) else {
        stats.unknown_command();
        reply::error(out, &unknown_command(args));
        return None;
    };
    let spec = &COMMANDS[found.index];
    let argc = args.len() as i64;
    let arity = i64::from(spec.arity);
    if (arity > 0 && argc != arity) || argc < -arity {
        stats.rejected(found.index);
        let msg = format!("ERR wrong number of arguments for '{}' command", spec.name);
        reply::error(out, msg.as_bytes());
        return None;
    }
    // Redis's order: unknown command and arity first, then authentication. An authenticated
    // client pays this one bool test.
    if !client.authenticated && !found.no_auth && shared.auth.required() {
        stats.rejected(found.index);
        reply::error(out, crate::auth::NOAUTH.as_bytes());
        return None;
    }
    if found.denyoom && shared.store.reclaim_memory().is_err() {
        stats.rejected(found.index);
        reply::error(out, CmdError::OOM.0.as_bytes());
        return None;
    }
    Some(Dispatched {
        index: found.index,
        offload: found.offload,
    })
}

/// Runs a dispatched command's handler and writes its reply (or its error). Returns the flow
/// and whether the command failed; counting it is the caller's (the worker that owns the
/// statistics), so this may run on another thread.
pub fn run(
    shared: &Shared,
    client: &mut ClientState,
    index: usize,
    args: &[Bytes],
    out: &mut BytesMut,
) -> (Flow, bool) {
    let mut ctx = Ctx {
        shared,
        client,
        out,
        flow: Flow::Continue,
    };
    // `CLIENT NO-TOUCH on`: reads leave LRU/LFU alone, except `TOUCH` itself.
    let _no_touch = (ctx.client.no_touch && COMMANDS[index].name != "touch")
        .then(shardcache_storage::NoTouch::enter);
    // With lock statistics on, the store charges this command's lock holds and waits to it
    // (see `blame`), and its long holds go to LOCKLOG.
    let lock_stats = shared.config.lock_stats;
    let holder =
        lock_stats.then(|| shardcache_storage::blame::enter(holder_tag(index), holds_timed(index)));
    let result = (COMMANDS[index].handler)(&mut ctx, args);
    drop(holder);
    if lock_stats {
        shared.locklog.collect(
            COMMANDS[index].name,
            args,
            ctx.client.peer,
            ctx.client.name.as_deref(),
        );
    }
    if shared.monitors.any() && !hidden_from_monitor(index) {
        shared.monitors.feed(
            ctx.client.db,
            ctx.client.peer,
            args,
            shared.runtime.output_buffer_limit(),
        );
    }
    let flow = ctx.flow;
    match result {
        Ok(()) => (flow, false),
        Err(e) => {
            reply::error(out, e.0.as_bytes());
            (flow, true)
        }
    }
}

/// Executes one request and appends its reply to `out`, counting it in `stats` (but not
/// timing it: connections time whole batches, see `connection.rs`).
pub fn execute(
    shared: &Shared,
    stats: &WorkerStats,
    client: &mut ClientState,
    request: &Request,
    out: &mut BytesMut,
) -> Flow {
    let args = request.args();
    // As a connection does: a client in MULTI queues (or runs EXEC) before dispatch.
    if let Some(flow) = transaction::intercept(shared, stats, client, args, out) {
        return flow;
    }
    let Some(d) = dispatch(shared, stats, client, args, out) else {
        return Flow::Continue;
    };
    let (flow, failed) = run(shared, client, d.index, args, out);
    stats.call(d.index, failed);
    flow
}

/// Redis 7's text for an unknown command: the name, then up to 128 bytes of arguments, each
/// quoted and followed by a space; CR and LF become spaces. Bytes are echoed as sent (not
/// re-encoded as UTF-8), as Redis does.
fn unknown_command(args: &[Bytes]) -> Vec<u8> {
    if let Some(m) = unsupported::message(&args[0]) {
        return m.into_bytes();
    }
    let mut rest = Vec::new();
    for a in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        rest.push(b'\'');
        rest.extend_from_slice(truncate(c_str(a), room));
        rest.extend_from_slice(b"' ");
    }
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(truncate(c_str(&args[0]), 128));
    msg.extend_from_slice(b"', with args beginning with: ");
    msg.extend_from_slice(&rest);
    for c in &mut msg {
        if *c == b'\r' || *c == b'\n' {
            *c = b' ';
        }
    }
    msg
}

/// What C's `printf("%s")` prints of `b`: the bytes before the first NUL (Redis formats these
/// errors with `%.*s`).
fn c_str(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or_default()
}

fn truncate(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len().min(n)]
}

/// Parses an integer argument with Redis's strictness (no spaces, no `+`, no leading zeros).
///
/// # Errors
/// [`CmdError::NOT_INTEGER`].
pub fn parse_i64(b: &[u8]) -> Result<i64, CmdError> {
    parse_i64_strict(b).ok_or(CmdError::NOT_INTEGER)
}

/// Redis's `string2ll`: the exact decimal form of an `i64` and nothing else.
pub fn parse_i64_strict(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b {
        [] => return None,
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn eq_ic(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for w in COMMANDS.windows(2) {
            assert!(w[0].name < w[1].name, "{} / {}", w[0].name, w[1].name);
        }
        assert_eq!(table().len(), COMMANDS.len());
    }

    #[test]
    fn renamed_and_disabled_names() {
        let names = |r: &[&str], d: &[&str]| {
            let r: Vec<String> = r.iter().map(|s| s.to_string()).collect();
            let d: Vec<String> = d.iter().map(|s| s.to_string()).collect();
            CommandNames::new(&r, &d)
        };
        let t = names(&["FLUSHALL", "", "keys", "Admin-Keys"], &["config"]).unwrap();
        assert!(t.get(b"flushall").is_none());
        assert!(t.get(b"keys").is_none());
        assert!(t.get(b"config").is_none());
        let k = t.get(b"ADMIN-keys").unwrap();
        assert_eq!(COMMANDS[k.index].name, "keys");
        assert!(t.get(b"GET").is_some());
        assert!(t.get(&[b'a'; 100]).is_none());
        assert!(t.get(b"").is_none());
        assert!(t.get(b"gex").is_none());
        assert!(t.get(b"Gxt").is_none());
        let all = names(&[], &[]).unwrap();
        for c in COMMANDS {
            assert_eq!(
                all.get(c.name.to_uppercase().as_bytes()).map(|e| e.index),
                lookup(c.name.as_bytes()).map(|(i, _)| i)
            );
        }
        assert!(t.get(b"auth").unwrap().no_auth);
        assert!(!t.get(b"get").unwrap().no_auth);
        assert!(names(&["nosuch", "x"], &[]).is_err());
        assert!(names(&["keys", "get"], &[]).is_err());
        assert!(names(&["keys"], &[]).is_err());
        assert!(names(&[], &["nosuch"]).is_err());
        assert!(names(&[], &["get", ""]).is_ok());
    }

    #[test]
    fn keyspace_walks_are_offloaded() {
        let names = CommandNames::new(&[], &[]).unwrap();
        let of = |words: &[&str]| {
            let args: Vec<Bytes> = words.iter().map(|w| Bytes::from(w.to_string())).collect();
            let e = names.get(&args[0]).unwrap();
            Dispatched {
                index: e.index,
                offload: e.offload,
            }
            .offload(&args)
        };
        assert!(of(&["KEYS", "*"]));
        assert!(of(&["flushall"]));
        assert!(of(&["info"]));
        assert!(!of(&["get", "k"]));
        assert!(!of(&["scan", "0"]));
        assert!(!of(&["scan", "0", "count", "10"]));
        assert!(!of(&["scan", "0", "count", "x"]));
        assert!(!of(&["scan", "0", "match", "count"]));
        assert!(of(&["scan", "0", "MATCH", "a*", "COUNT", "5000"]));
    }

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"GeT").map(|(_, s)| s.name), Some("get"));
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
    }

    #[test]
    fn strict_integers() {
        let ok = [
            ("0", 0),
            ("-1", -1),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for (s, v) in ok {
            assert_eq!(parse_i64_strict(s.as_bytes()), Some(v), "{s}");
        }
        for s in [
            "",
            "-",
            "+1",
            "01",
            "-0",
            " 1",
            "1 ",
            "9223372036854775808",
            "1.0",
            "-9223372036854775809",
        ] {
            assert_eq!(parse_i64_strict(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn unknown_command_text_matches_redis() {
        let args: Vec<Bytes> = ["foo", "bar", "baz"]
            .iter()
            .map(|s| Bytes::from(*s))
            .collect();
        assert_eq!(
            unknown_command(&args),
            b"ERR unknown command 'foo', with args beginning with: 'bar' 'baz' "
        );
        let args = vec![Bytes::from("foo")];
        assert_eq!(
            unknown_command(&args),
            b"ERR unknown command 'foo', with args beginning with: "
        );
        let args = vec![
            Bytes::from_static(b"f\xffo\r\n"),
            Bytes::from_static(b"\x00"),
        ];
        assert_eq!(
            unknown_command(&args),
            b"ERR unknown command 'f\xffo  ', with args beginning with: '' "
        );
    }
}
