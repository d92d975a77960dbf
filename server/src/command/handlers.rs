//! The handlers of the command table, attached by index: [`HANDLERS`] lists them in the order
//! of [`COMMANDS`], and a compile-time check fails the build if a row is out of place.

use bytes::Bytes;

use super::ctx::{CmdResult, Ctx};
use super::{
    admin, bits, connection, generic, keys, observe, scripting, server, strings, transaction,
};
use crate::table::{CommandSpec, COMMANDS};

/// A handler: parses `args` (`args[0]` is the command name) and writes a reply.
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> CmdResult;

/// Each command's name and handler, in the order of [`COMMANDS`].
pub static HANDLERS: &[(&str, Handler)] = &[
    ("append", strings::append),
    ("auth", connection::auth),
    ("bitcount", bits::bitcount),
    ("bitfield", bits::bitfield),
    ("bitfield_ro", bits::bitfield_ro),
    ("bitop", bits::bitop),
    ("bitpos", bits::bitpos),
    ("client", admin::client),
    ("command", server::command),
    ("config", server::config),
    ("copy", generic::copy),
    ("dbsize", server::dbsize),
    ("decr", strings::decr),
    ("decrby", strings::decrby),
    ("del", keys::del),
    ("discard", transaction::discard),
    ("echo", connection::echo),
    ("exec", transaction::exec),
    ("exists", keys::exists),
    ("expire", keys::expire),
    ("expireat", keys::expireat),
    ("expiretime", keys::expiretime),
    ("flushall", server::flushall),
    ("flushdb", server::flushdb),
    ("function", scripting::function),
    ("get", strings::get),
    ("getbit", bits::getbit),
    ("getdel", strings::getdel),
    ("getex", strings::getex),
    ("getrange", strings::getrange),
    ("getset", strings::getset),
    ("hello", connection::hello),
    ("hotkeys", observe::hotkeys),
    ("incr", strings::incr),
    ("incrby", strings::incrby),
    ("incrbyfloat", strings::incrbyfloat),
    ("info", server::info),
    ("keys", keys::keys),
    ("latency", observe::latency),
    ("lcs", bits::lcs_command),
    ("locklog", observe::locklog),
    ("memory", generic::memory),
    ("mget", strings::mget),
    ("monitor", observe::monitor),
    ("move", generic::move_key),
    ("mset", strings::mset),
    ("msetnx", strings::msetnx),
    ("multi", transaction::multi),
    ("object", generic::object),
    ("persist", keys::persist),
    ("pexpire", keys::pexpire),
    ("pexpireat", keys::pexpireat),
    ("pexpiretime", keys::pexpiretime),
    ("ping", connection::ping),
    ("psetex", strings::psetex),
    ("pttl", keys::pttl),
    ("quit", connection::quit),
    ("randomkey", keys::randomkey),
    ("rename", keys::rename),
    ("renamenx", keys::renamenx),
    ("reset", scripting::reset),
    ("scan", keys::scan),
    ("script", scripting::script),
    ("select", connection::select),
    ("set", strings::set),
    ("setbit", bits::setbit),
    ("setex", strings::setex),
    ("setnx", strings::setnx),
    ("setrange", strings::setrange),
    ("shutdown", server::shutdown),
    ("slowlog", observe::slowlog),
    ("strlen", strings::strlen),
    ("swapdb", generic::swapdb),
    ("time", admin::time),
    ("touch", keys::touch),
    ("ttl", keys::ttl),
    ("type", keys::type_),
    ("unlink", keys::unlink),
    ("unwatch", transaction::unwatch),
    ("watch", transaction::watch),
];

/// Whether `a` and `b` are the same string (`==` is not `const`).
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `handlers` names the commands of `table`, position by position.
const fn in_table_order(handlers: &[(&str, Handler)], table: &[CommandSpec]) -> bool {
    if handlers.len() != table.len() {
        return false;
    }
    let mut i = 0;
    while i < handlers.len() {
        if !same(handlers[i].0, table[i].name) {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = assert!(
    in_table_order(HANDLERS, COMMANDS),
    "command::handlers::HANDLERS must list the commands of table::COMMANDS in the same order"
);
