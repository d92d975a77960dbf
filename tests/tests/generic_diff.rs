//! `COPY`, `MOVE`, `SWAPDB`, `OBJECT` and `MEMORY` against a real `redis-server`: the same
//! scripts, byte-identical replies in RESP2 and RESP3. `MEMORY USAGE`'s figure is
//! shardcache's own accounting (a different layout from Redis's), so only its shape is
//! compared: an integer for a key, null for a missing one, and Redis's errors. `MEMORY HELP`
//! differs on purpose: shardcache lists only `USAGE` and `HELP`, the subcommands it has.

use std::io::Write;
use std::net::TcpStream;

use shardcache_tests::{compare_script, read_replies, require, resp, Server};

#[test]
fn copy_move_swapdb_match_redis() {
    require!("redis-server");
    compare_script(
        "copy/move/swapdb",
        "
        SET a 1
        SET t v EX 100
        COPY a b
        GET b
        COPY a b
        COPY a b REPLACE
        COPY a a
        COPY a a DB 1
        SELECT 1
        GET a
        SELECT 0
        COPY t t2
        TTL t2
        COPY missing x
        COPY a b DB
        COPY a b DB x
        COPY a b DB 99
        COPY a b DB -1
        COPY a b DB 99999999999
        COPY a b FOO
        COPY a b REPLACE REPLACE
        COPY a
        MOVE a 1
        MOVE a 1
        MOVE b 0
        MOVE b x
        MOVE b 16
        MOVE missing 1
        SET c 1
        SELECT 1
        SET c 2
        SELECT 0
        MOVE c 1
        GET c
        MOVE t 2
        SELECT 2
        TTL t
        GET t
        SELECT 0
        SWAPDB 0 2
        GET t
        DBSIZE
        SWAPDB 0 2
        SWAPDB 0 0
        SWAPDB x 1
        SWAPDB 1 x
        SWAPDB 0 16
        SWAPDB -1 0
        SWAPDB 0
        ",
    );
}

#[test]
fn swapdb_touches_watched_keys_like_redis() {
    require!("redis-server");
    compare_script(
        "swapdb/watch",
        "
        SET w 1
        SELECT 1
        SET w 2
        SELECT 0
        WATCH w
        B: SWAPDB 0 1
        MULTI
        GET w
        EXEC
        WATCH nothere
        B: SWAPDB 0 1
        MULTI
        GET w
        EXEC
        ",
    );
}

#[test]
fn object_matches_redis() {
    require!("redis-server");
    compare_script(
        "object",
        "
        SET i 123
        SET neg -42
        SET big 9223372036854775808
        SET lead 0123
        SET s hello
        SET long aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
        SET e44 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
        SET e45 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
        APPEND app 12
        SET ap2 12
        APPEND ap2 3
        SETRANGE sr 0 5
        INCR counter
        OBJECT ENCODING i
        OBJECT ENCODING neg
        OBJECT ENCODING big
        OBJECT ENCODING lead
        OBJECT ENCODING s
        OBJECT ENCODING long
        OBJECT ENCODING e44
        OBJECT ENCODING e45
        OBJECT ENCODING app
        OBJECT ENCODING ap2
        OBJECT ENCODING sr
        OBJECT ENCODING counter
        OBJECT ENCODING missing
        OBJECT REFCOUNT i
        OBJECT REFCOUNT s
        OBJECT REFCOUNT big
        OBJECT REFCOUNT missing
        OBJECT IDLETIME s
        OBJECT IDLETIME missing
        OBJECT FREQ s
        OBJECT HELP
        OBJECT HELP x
        OBJECT ENCODING
        OBJECT ENCODING a b
        OBJECT NOPE x
        OBJECT
        CONFIG SET maxmemory-policy allkeys-lfu
        OBJECT FREQ s
        OBJECT IDLETIME s
        CONFIG SET maxmemory-policy noeviction
        MEMORY NOPE
        MEMORY USAGE
        MEMORY USAGE missing
        MEMORY USAGE s SAMPLES
        MEMORY USAGE s SAMPLES x
        MEMORY USAGE s FOO 1
        ",
    );
}

#[test]
fn memory_usage_reports_the_entry() {
    let ours = Server::start(&[]);
    let mut c = TcpStream::connect(("127.0.0.1", ours.port())).unwrap();
    let mut cmd = |args: &[&[u8]]| {
        c.write_all(&resp(args)).unwrap();
        read_replies(&mut c, 1).remove(0)
    };
    cmd(&[b"SET", b"key:000000000001", &[b'v'; 32]]);
    cmd(&[b"SET", b"k1k", &[b'v'; 1024]]);
    // 16-byte key, 32-byte value: one 56-byte block in the 64-byte class, plus its slot.
    assert_eq!(cmd(&[b"MEMORY", b"USAGE", b"key:000000000001"]), b":72\r\n");
    // A 1 KiB value in a buffer of its own: block, buffer, owner header, slot.
    let r = cmd(&[b"MEMORY", b"USAGE", b"k1k", b"SAMPLES", b"0"]);
    assert_eq!(r, format!(":{}\r\n", 16 + 1024 + 32 + 8 + 32).into_bytes());
    assert_eq!(cmd(&[b"MEMORY", b"USAGE", b"nope"]), b"$-1\r\n");
}

#[test]
fn script_function_reset_getkeys_match_redis() {
    require!("redis-server");
    compare_script(
        "script/function/reset/getkeys",
        "
        SCRIPT FLUSH
        SCRIPT FLUSH ASYNC
        SCRIPT FLUSH SYNC
        SCRIPT FLUSH x
        SCRIPT EXISTS 1234 abcd
        SCRIPT EXISTS
        SCRIPT KILL
        FUNCTION FLUSH
        FUNCTION FLUSH ASYNC
        FUNCTION FLUSH nope
        FUNCTION LIST
        FUNCTION LIST WITHCODE
        FUNCTION LIST LIBRARYNAME lib*
        FUNCTION LIST bogus
        FUNCTION KILL
        SELECT 3
        CLIENT SETNAME me
        MULTI
        SET x 1
        RESET
        EXEC
        CLIENT GETNAME
        SET here 1
        SELECT 3
        GET here
        RESET
        GET here
        COMMAND GETKEYS SET k v
        COMMAND GETKEYS MSET a 1 b 2
        COMMAND GETKEYS MGET a b c
        COMMAND GETKEYS COPY a b
        COMMAND GETKEYS GET
        COMMAND GETKEYS NOSUCH a
        COMMAND GETKEYS PING
        COMMAND GETKEYS
        ",
    );
}
