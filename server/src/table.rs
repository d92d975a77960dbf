//! The command table: what shardcache knows about each command apart from the code that runs
//! it. Name, arity, flags, key positions, group and summary, in the shape Redis's `COMMAND`
//! reports; the names a server answers to after `--rename-command` and `--disable-command`
//! ([`CommandNames`]), which dispatch and `COMMAND` (`INFO`, `COUNT`, `LIST`, `DOCS`,
//! `GETKEYS`) both read; and what follows from a row (its keys, whether it is `fast`).
//!
//! No handlers here: they are attached by index in `command::handlers`, whose order a
//! compile-time check ties to [`COMMANDS`]. This module sits at the bottom of the crate, so
//! statistics, `INFO` and `/metrics` can read the table without depending on the commands.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use shardcache_storage::blame::Holder;

/// The Redis version shardcache reports (`INFO`'s `redis_version`, `HELLO`'s `version`,
/// the `shardcache_build_info` metric): the Redis whose command table this follows.
pub const REDIS_COMPAT_VERSION: &str = "7.0.0";

/// Redis command flags, as a bitmask. Only the flags some command of the table carries are
/// defined; [`Flags::names`] lists them in the order `COMMAND` prints them (Redis's order).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u32);

impl Flags {
    /// No flags.
    pub const NONE: Flags = Flags(0);
    /// `write`: may modify the keyspace.
    pub const WRITE: Flags = Flags(1 << 0);
    /// `readonly`: reads keys only.
    pub const READONLY: Flags = Flags(1 << 1);
    /// `denyoom`: refused when over `maxmemory` (under `noeviction`).
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// `admin`: administrative (hidden from `MONITOR`).
    pub const ADMIN: Flags = Flags(1 << 3);
    /// `noscript`: not allowed in scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 4);
    /// `random`: the reply may differ for the same keyspace (Redis 6's flag).
    pub const RANDOM: Flags = Flags(1 << 5);
    /// `loading`: allowed while loading the dataset.
    pub const LOADING: Flags = Flags(1 << 6);
    /// `stale`: allowed on a replica with stale data.
    pub const STALE: Flags = Flags(1 << 7);
    /// `skip_slowlog`: not logged by the slow log.
    pub const SKIP_SLOWLOG: Flags = Flags(1 << 8);
    /// `fast`: O(1) or O(log N) (the latency monitor's `fast-command` event).
    pub const FAST: Flags = Flags(1 << 9);
    /// `no_auth`: runs before `AUTH` (AUTH, HELLO, QUIT).
    pub const NO_AUTH: Flags = Flags(1 << 10);
    /// `no_multi`: not allowed inside `MULTI`.
    pub const NO_MULTI: Flags = Flags(1 << 11);
    /// `sentinel`: also a Sentinel command.
    pub const SENTINEL: Flags = Flags(1 << 12);
    /// `allow_busy`: allowed while a script is busy.
    pub const ALLOW_BUSY: Flags = Flags(1 << 13);

    /// Every flag with its Redis name, in the order `COMMAND` lists flags.
    const NAMES: [(Flags, &'static str); 14] = [
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::ADMIN, "admin"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::RANDOM, "random"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::SKIP_SLOWLOG, "skip_slowlog"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::NO_MULTI, "no_multi"),
        (Flags::SENTINEL, "sentinel"),
        (Flags::ALLOW_BUSY, "allow_busy"),
    ];

    /// These flags and `other`'s.
    #[must_use]
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// How many flags are set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The Redis names of the flags set, in `COMMAND`'s order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// One row of the command table, in the shape `COMMAND` reports.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: `n` exactly n arguments (name included), `-n` at least n.
    pub arity: i32,
    /// Redis command flags (`write`, `readonly`, `denyoom`, `fast`, …).
    pub flags: Flags,
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
}

macro_rules! cmd {
    ($name:literal, $arity:expr, [$($flag:ident),*], $fk:expr, $lk:expr, $step:expr, $group:literal, $summary:literal) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: Flags::NONE$(.with(Flags::$flag))*,
            first_key: $fk,
            last_key: $lk,
            step: $step,
            group: $group,
            summary: $summary,
        }
    };
}

/// Every command shardcache knows, sorted by name. `command::handlers` lists their handlers
/// in the same order (checked at compile time).
pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "append",
        3,
        [WRITE, DENYOOM, FAST],
        1,
        1,
        1,
        "string",
        "Append a value to a key"
    ),
    cmd!(
        "auth",
        -2,
        [NOSCRIPT, LOADING, STALE, FAST, NO_AUTH],
        0,
        0,
        0,
        "connection",
        "Authenticate to the server"
    ),
    cmd!(
        "bitcount",
        -2,
        [READONLY],
        1,
        1,
        1,
        "bitmap",
        "Count set bits in a string"
    ),
    cmd!(
        "bitfield",
        -2,
        [WRITE, DENYOOM],
        1,
        1,
        1,
        "bitmap",
        "Perform arbitrary bitfield integer operations on strings"
    ),
    cmd!(
        "bitfield_ro",
        -2,
        [READONLY, FAST],
        1,
        1,
        1,
        "bitmap",
        "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD"
    ),
    cmd!(
        "bitop",
        -4,
        [WRITE, DENYOOM],
        2,
        -1,
        1,
        "bitmap",
        "Perform bitwise operations between strings"
    ),
    cmd!(
        "bitpos",
        -3,
        [READONLY],
        1,
        1,
        1,
        "bitmap",
        "Find first bit set or clear in a string"
    ),
    cmd!(
        "client",
        -2,
        [ADMIN, NOSCRIPT, LOADING, STALE],
        0,
        0,
        0,
        "connection",
        "A container for client connection commands"
    ),
    cmd!(
        "command",
        -1,
        [LOADING, STALE],
        0,
        0,
        0,
        "server",
        "Get array of command details"
    ),
    cmd!(
        "config",
        -2,
        [ADMIN, NOSCRIPT, LOADING, STALE],
        0,
        0,
        0,
        "server",
        "Get or set configuration parameters"
    ),
    cmd!(
        "copy",
        -3,
        [WRITE, DENYOOM],
        1,
        2,
        1,
        "generic",
        "Copy a key"
    ),
    cmd!(
        "dbsize",
        1,
        [READONLY, FAST],
        0,
        0,
        0,
        "server",
        "Return the number of keys in the selected database"
    ),
    cmd!(
        "decr",
        2,
        [WRITE, DENYOOM, FAST],
        1,
        1,
        1,
        "string",
        "Decrement the integer value of a key by one"
    ),
    cmd!(
        "decrby",
        3,
        [WRITE, DENYOOM, FAST],
        1,
        1,
        1,
        "string",
        "Decrement the integer value of a key by the given number"
    ),
    cmd!("del", -2, [WRITE], 1, -1, 1, "generic", "Delete keys"),
    cmd!(
        "discard",
        1,
        [NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY],
        0,
        0,
        0,
        "transactions",
        "Discard all commands issued after MULTI"
    ),
    cmd!(
        "echo",
        2,
        [FAST],
        0,
        0,
        0,
        "connection",
        "Echo the given string"
    ),
    cmd!(
        "exec",
        1,
        [NOSCRIPT, LOADING, STALE, SKIP_SLOWLOG],
        0,
        0,
        0,
        "transactions",
        "Execute all commands issued after MULTI"
    ),
    cmd!(
        "exists",
        -2,
        [READONLY, FAST],
        1,
        -1,
        1,
        "generic",
        "Determine if keys exist"
    ),
    cmd!(
        "expire",
        -3,
        [WRITE, FAST],
        1,
        1,
        1,
        "generic",
        "Set a key's time to live in seconds"
    ),
    cmd!(
        "expireat",
        -3,
        [WRITE, FAST],
        1,
        1,
        1,
        "generic",
        "Set the expiration for a key as a UNIX timestamp"
    ),
    cmd!(
        "expiretime",
        2,
        [READONLY, FAST],
        1,
        1,
        1,
        "generic",
        "Get the expiration Unix timestamp for a key"
    ),
    cmd!(
        "flushall",
        -1,
        [WRITE],
        0,
        0,
        0,
        "server",
        "Remove all keys from all databases"
    ),
    cmd!(
        "flushdb",
        -1,
        [WRITE],
        0,
        0,
        0,
        "server",
        "Remove all keys from the current database"
    ),
    cmd!(
        "function",
        -2,
        [],
        0,
        0,
        0,
        "scripting",
        "A container for function commands"
    ),
    cmd!(
        "get",
        2,
        [READONLY, FAST],
        1,
        1,
        1,
        "string",
        "Get the value of a key"
    ),
    cmd!(
        "getbit",
        3,
        [READONLY, FAST],
        1,
        1,
        1,
        "bitmap",
        "Returns the bit value at offset in the string value stored at key"
    ),
    cmd!(
        "getdel",
        2,
        [WRITE, FAST],
        1,
        1,
        1,
        "string",
        "Get the value of a key and delete the key"
    ),
    cmd!(
        "getex",
        -2,
        [WRITE, FAST],
        1,
        1,
        1,
        "string",
        "Get the value of a key and optionally set its expiration"
    ),
    cmd!(
        "getrange",
        4,
        [READONLY],
        1,
        1,
        1,
        "string",
        "Get a substring of the string stored at a key"
    ),
    cmd!(
        "getset",
        3,
        [WRITE, DENYOOM, FAST],
        1,
        1,
        1,
        "string",
        "Set the string value of a key and return its old value"
    ),
    cmd!(
        "hello",
        -1,
        [NOSCRIPT, LOADING, STALE, FAST, NO_AUTH],
        0,
        0,
        0,
        "connection",
        "Handshake with the server"
    ),
    cmd!(
        "hotkeys",
        -1,
        [READONLY, RANDOM],
        0,
        0,
        0,
        "server",
        "List the most accessed keys (sampled), with their shard and estimated share"
    ),
    cmd!(
        "incr",
        2,
        [WRITE, DENYOOM, FAST],
        1,
        1,
        1,
        "string",
        "Increment the integer value of a key by one"
    ),
    cmd!(
        "incrby",
        3,
        [WRITE, DENYOOM, FAST],
        1,
        1,
        1,
        "string",
        "Increment the integer value of a key by the given amount"
    ),
    cmd!(
        "incrbyfloat",
        3,
        [WRITE, DENYOOM, FAST],
        1,
        1,
        1,
        "string",
        "Increment the float value of a key by the given amount"
    ),
    cmd!(
        "info",
        -1,
        [LOADING, STALE],
        0,
        0,
        0,
        "server",
        "Get information and statistics about the server"
    ),
    cmd!(
        "keys",
        2,
        [READONLY],
        0,
        0,
        0,
        "generic",
        "Find all keys matching the given pattern"
    ),
    cmd!(
        "latency",
        -2,
        [],
        0,
        0,
        0,
        "server",
        "A container for latency diagnostics commands"
    ),
    cmd!(
        "lcs",
        -3,
        [READONLY],
        1,
        2,
        1,
        "string",
        "Find longest common substring"
    ),
    cmd!(
        "locklog",
        -2,
        [ADMIN, NOSCRIPT, LOADING, STALE],
        0,
        0,
        0,
        "server",
        "The commands that held a shard lock longest, whom they made wait, and for how long"
    ),
    cmd!(
        "memory",
        -2,
        [],
        0,
        0,
        0,
        "server",
        "A container for memory diagnostics commands"
    ),
    cmd!(
        "mget",
        -2,
        [READONLY, FAST],
        1,
        -1,
        1,
        "string",
        "Get the values of all the given keys"
    ),
    cmd!(
        "monitor",
        1,
        [ADMIN, NOSCRIPT, LOADING, STALE],
        0,
        0,
        0,
        "server",
        "Listen for all requests received by the server in real time"
    ),
    cmd!(
        "move",
        3,
        [WRITE, FAST],
        1,
        1,
        1,
        "generic",
        "Move a key to another database"
    ),
    cmd!(
        "mset",
        -3,
        [WRITE, DENYOOM],
        1,
        -1,
        2,
        "string",
        "Set multiple keys to multiple values"
    ),
    cmd!(
        "msetnx",
        -3,
        [WRITE, DENYOOM],
        1,
        -1,
        2,
        "string",
        "Set multiple keys to multiple values, only if none of the keys exist"
    ),
    cmd!(
        "multi",
        1,
        [NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY],
        0,
        0,
        0,
        "transactions",
        "Mark the start of a transaction block"
    ),
    cmd!(
        "object",
        -2,
        [],
        0,
        0,
        0,
        "generic",
        "A container for object introspection commands"
    ),
    cmd!(
        "persist",
        2,
        [WRITE, FAST],
        1,
        1,
        1,
        "generic",
        "Remove the expiration from a key"
    ),
    cmd!(
        "pexpire",
        -3,
        [WRITE, FAST],
        1,
        1,
        1,
        "generic",
        "Set a key's time to live in milliseconds"
    ),
    cmd!(
        "pexpireat",
        -3,
        [WRITE, FAST],
        1,
        1,
        1,
        "generic",
        "Set the expiration for a key as a UNIX timestamp specified in milliseconds"
    ),
    cmd!(
        "pexpiretime",
        2,
        [READONLY, FAST],
        1,
        1,
        1,
        "generic",
        "Get the expiration Unix timestamp for a key in milliseconds"
    ),
    cmd!("ping", -1, [FAST], 0, 0, 0, "connection", "Ping the server"),
    cmd!(
        "psetex",
        4,
        [WRITE, DENYOOM],
        1,
        1,
        1,
        "string",
        "Set the value and expiration in milliseconds of a key"
    ),
    cmd!(
        "pttl",
        2,
        [READONLY, FAST],
        1,
        1,
        1,
        "generic",
        "Get the time to live for a key in milliseconds"
    ),
    cmd!(
        "quit",
        -1,
        [FAST, NO_AUTH],
        0,
        0,
        0,
        "connection",
        "Close the connection"
    ),
    cmd!(
        "randomkey",
        1,
        [READONLY],
        0,
        0,
        0,
        "generic",
        "Return a random key from the keyspace"
    ),
    cmd!("rename", 3, [WRITE], 1, 2, 1, "generic", "Rename a key"),
    cmd!(
        "renamenx",
        3,
        [WRITE, FAST],
        1,
        2,
        1,
        "generic",
        "Rename a key, only if the new key does not exist"
    ),
    cmd!(
        "reset",
        1,
        [NOSCRIPT, LOADING, STALE, FAST, NO_AUTH, ALLOW_BUSY],
        0,
        0,
        0,
        "connection",
        "Reset the connection"
    ),
    cmd!(
        "scan",
        -2,
        [READONLY],
        0,
        0,
        0,
        "generic",
        "Incrementally iterate the keys space"
    ),
    cmd!(
        "script",
        -2,
        [],
        0,
        0,
        0,
        "scripting",
        "A container for Lua scripts management commands"
    ),
    cmd!(
        "select",
        2,
        [LOADING, STALE, FAST],
        0,
        0,
        0,
        "connection",
        "Change the selected database"
    ),
    cmd!(
        "set",
        -3,
        [WRITE, DENYOOM],
        1,
        1,
        1,
        "string",
        "Set the string value of a key"
    ),
    cmd!(
        "setbit",
        4,
        [WRITE, DENYOOM],
        1,
        1,
        1,
        "bitmap",
        "Sets or clears the bit at offset in the string value stored at key"
    ),
    cmd!(
        "setex",
        4,
        [WRITE, DENYOOM],
        1,
        1,
        1,
        "string",
        "Set the value and expiration of a key"
    ),
    cmd!(
        "setnx",
        3,
        [WRITE, DENYOOM, FAST],
        1,
        1,
        1,
        "string",
        "Set the value of a key, only if the key does not exist"
    ),
    cmd!(
        "setrange",
        4,
        [WRITE, DENYOOM],
        1,
        1,
        1,
        "string",
        "Overwrite part of a string at key starting at the specified offset"
    ),
    cmd!(
        "shutdown",
        -1,
        [ADMIN, NOSCRIPT, LOADING, STALE, NO_MULTI, SENTINEL, ALLOW_BUSY],
        0,
        0,
        0,
        "server",
        "Synchronously save the dataset to disk and then shut down the server"
    ),
    cmd!(
        "slowlog",
        -2,
        [],
        0,
        0,
        0,
        "server",
        "A container for slow log commands"
    ),
    cmd!(
        "strlen",
        2,
        [READONLY, FAST],
        1,
        1,
        1,
        "string",
        "Get the length of the value stored in a key"
    ),
    cmd!(
        "swapdb",
        3,
        [WRITE, FAST],
        0,
        0,
        0,
        "server",
        "Swaps two Redis databases"
    ),
    cmd!(
        "time",
        1,
        [LOADING, STALE, FAST],
        0,
        0,
        0,
        "server",
        "Return the current server time"
    ),
    cmd!(
        "touch",
        -2,
        [READONLY, FAST],
        1,
        -1,
        1,
        "generic",
        "Alters the last access time of a key(s). Returns the number of existing keys specified."
    ),
    cmd!(
        "ttl",
        2,
        [READONLY, FAST],
        1,
        1,
        1,
        "generic",
        "Get the time to live for a key in seconds"
    ),
    cmd!(
        "type",
        2,
        [READONLY, FAST],
        1,
        1,
        1,
        "generic",
        "Determine the type stored at key"
    ),
    cmd!(
        "unlink",
        -2,
        [WRITE, FAST],
        1,
        -1,
        1,
        "generic",
        "Delete a key asynchronously in another thread"
    ),
    cmd!(
        "unwatch",
        1,
        [NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY],
        0,
        0,
        0,
        "transactions",
        "Forget about all watched keys"
    ),
    cmd!(
        "watch",
        -2,
        [NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY],
        1,
        -1,
        1,
        "transactions",
        "Watch the given keys to determine execution of the MULTI/EXEC block"
    ),
];

/// What dispatch needs to know about a command, precomputed once so the hot path reads one
/// small copy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// Index of the command in [`COMMANDS`].
    pub(crate) index: usize,
    /// Refused over `maxmemory` (Redis's `denyoom` flag).
    pub(crate) denyoom: bool,
    /// Runs before `AUTH` (Redis's `no_auth` flag: AUTH, HELLO, QUIT).
    pub(crate) no_auth: bool,
    /// Whether it leaves the event loop (see `command::Dispatched::offload`).
    pub(crate) offload: Offload,
    /// The lock holder the store charges its holds and waits to (its tag, and whether its
    /// holds are timed).
    pub(crate) holder: Holder,
}

impl Entry {
    fn of(index: usize, c: &CommandSpec) -> Entry {
        Entry {
            index,
            holder: holder_of(index),
            denyoom: c.flags.contains(Flags::DENYOOM),
            no_auth: c.flags.contains(Flags::NO_AUTH),
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
    pub(crate) fn get(&self, name: &[u8]) -> Option<Entry> {
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
pub(crate) fn hidden_from_monitor(index: usize) -> bool {
    let spec = &COMMANDS[index];
    spec.flags.contains(Flags::ADMIN) || matches!(spec.name, "slowlog" | "latency" | "monitor")
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

/// Command `index`'s lock holder word, as its [`Entry`] carries it (for commands run without
/// a fresh dispatch: a transaction's queued ones).
pub(crate) fn holder_of(index: usize) -> Holder {
    Holder::new(holder_tag(index), holds_timed(index))
}

/// Whether every lock hold of the command is timed: the commands whose work under a lock
/// grows with their input. Those are Redis's non-`fast` commands except the `SET` family
/// (whose entry is built before the lock: O(1) under it), those that take any number of keys
/// (`MGET` holds its shards for all of them), and `APPEND`, which copies the value. Others
/// are timed one acquisition in `HOLD_SAMPLE`. Computed once per command, into its [`Entry`]
/// (see [`holder_of`]).
fn holds_timed(index: usize) -> bool {
    let c = &COMMANDS[index];
    let o1_write = matches!(c.name, "set" | "setex" | "psetex");
    (!c.flags.contains(Flags::FAST) && !o1_write)
        || (c.first_key > 0 && c.last_key < 0)
        || c.name == "append"
}

/// Whether the command is flagged `fast` (the latency monitor's `fast-command` event).
pub fn is_fast(index: usize) -> bool {
    COMMANDS[index].flags.contains(Flags::FAST)
}

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<(usize, &'static CommandSpec)> {
    lookup_entry(name).map(|e| (e.index, &COMMANDS[e.index]))
}

/// Which requests leave the worker's event loop for its blocking pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offload {
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
pub(crate) const BIG_SCAN_PAGE: i64 = 1000;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_of_input_sized_commands_are_timed() {
        let timed = |name: &str| holds_timed(lookup(name.as_bytes()).expect(name).0);
        for name in [
            "keys", "scan", "flushdb", "setrange", "exec", "mget", "mset", "del", "append",
        ] {
            assert!(timed(name), "{name}");
        }
        for name in ["get", "set", "setex", "incr", "strlen", "ttl", "expire"] {
            assert!(!timed(name), "{name}");
        }
        assert_eq!(holder_name(holder_tag(lookup(b"keys").unwrap().0)), "keys");
        assert_eq!(
            holder_name(shardcache_storage::blame::TAG_BACKGROUND),
            "background"
        );
        assert_eq!(holder_name(0), "other");
    }

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
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"GeT").map(|(_, s)| s.name), Some("get"));
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
    }

    #[test]
    fn flags_are_listed_in_redis_order() {
        let (_, set) = lookup(b"set").unwrap();
        assert_eq!(set.flags.names().collect::<Vec<_>>(), ["write", "denyoom"]);
        let (_, auth) = lookup(b"auth").unwrap();
        assert_eq!(
            auth.flags.names().collect::<Vec<_>>(),
            ["noscript", "loading", "stale", "fast", "no_auth"]
        );
        assert_eq!(auth.flags.len(), 5);
        assert!(auth.flags.contains(Flags::NO_AUTH.with(Flags::FAST)));
        assert!(!auth.flags.contains(Flags::WRITE));
        for c in COMMANDS {
            assert_eq!(c.flags.names().count(), c.flags.len(), "{}", c.name);
        }
    }
}
