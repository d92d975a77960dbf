//! Every command shardcache answers, compared with a real `redis-server` in RESP2 and in RESP3
//! (`HELLO 3`) through [`compare_script`]: this file's script covers what the other scripts do
//! not, and `every_command_is_in_a_compared_script` checks, from `COMMAND LIST`, that each
//! command appears in some `compare_script` script of `tests/tests/` or is listed in
//! [`NOT_COMPARED`] with the reason its reply cannot be byte-identical.

use shardcache_tests::{command, compare_script, require, Server};

/// Commands no script compares byte for byte, and why; each is tested elsewhere.
const NOT_COMPARED: &[(&str, &str)] = &[
    (
        "hello",
        "its map names the server and version (auth.rs compares its errors)",
    ),
    ("info", "its text is shardcache's own fields"),
    ("time", "the clock"),
    ("hotkeys", "shardcache's own command (observability tests)"),
    ("locklog", "shardcache's own command (lock_blame.rs)"),
    (
        "monitor",
        "a feed of other clients' commands (observe tests)",
    ),
    ("shutdown", "ends the server (operators.rs)"),
];

/// Commands not covered by another file's script, each with its errors, in one script.
const SCRIPT: &str = "
    PING
    PING hello
    PING a b
    ECHO hi
    ECHO
    AUTH x
    AUTH a b c d
    SET n 10
    DECR n
    DECRBY n 3
    DECRBY n x
    DECR missing:n
    INCRBY n 5
    INCRBY n 9223372036854775807
    INCRBYFLOAT n 1.5
    INCRBYFLOAT n x
    SET s hello
    DECR s
    GETRANGE s 1 3
    GETRANGE s -3 -1
    GETRANGE s 10 20
    GETRANGE s x 1
    GETSET s world
    GETSET missing:s v
    GETDEL missing:s
    GETDEL s
    GET s
    SETNX s a
    SETNX s b
    GET s
    SETEX e 100 v
    SETEX e 0 v
    SETEX e x v
    PSETEX p 100000 v
    PSETEX p -1 v
    TTL e
    PTTL missing
    PTTL s
    EXPIRE s 100
    EXPIRE s 100 NX
    EXPIRE s 200 GT
    EXPIRE s 50 LT
    EXPIRE s 100 XX NX
    EXPIRE s x
    PEXPIRE s 100000
    EXPIREAT s 4102444800
    EXPIRETIME s
    PEXPIREAT s 4102444800000
    PEXPIRETIME s
    EXPIRETIME missing
    PEXPIRETIME n
    PERSIST s
    PERSIST s
    TTL s
    GETEX s EX 100
    GETEX s PERSIST
    GETEX s PX 0
    GETEX s EX 10 PX 10
    GETEX missing
    MSET a 1 b 2 c 3
    MSET a
    MGET a b missing c
    MSETNX a 9 z 9
    MSETNX y 1 z 2
    MGET y z
    EXISTS a b missing a
    TOUCH a b missing
    TYPE a
    TYPE missing
    DEL a missing
    UNLINK b c missing
    RENAME y y2
    RENAME missing x
    RENAMENX z y2
    RENAMENX z z2
    GET z2
    SETBIT bits 7 1
    GETBIT bits 7
    GETBIT bits 100
    GETBIT bits x
    BITCOUNT bits
    BITCOUNT bits 0 -1 BIT
    BITPOS bits 1
    BITPOS bits 0 0 -1 BYTE
    BITOP AND dest bits missing
    BITOP NOT dest bits
    BITOP XOR
    BITFIELD_RO bits GET u8 0
    BITFIELD_RO bits SET u8 0 1
    SET l1 ohmytext
    SET l2 mynewtext
    LCS l1 l2
    LCS l1 l2 LEN
    LCS l1 l2 IDX MINMATCHLEN 2 WITHMATCHLEN
    FLUSHDB
    SET only one
    RANDOMKEY
    KEYS *
    KEYS o*
    KEYS nope*
    SCAN 0
    SCAN 0 MATCH o* COUNT 100
    SCAN x
    DEL only
    RANDOMKEY
    SCAN 0
    WATCH k
    UNWATCH
    MULTI
    DISCARD
    DISCARD
    FLUSHALL
    FLUSHALL ASYNC
    FLUSHALL bogus
    FLUSHDB SYNC
    DBSIZE
    QUIT
";

#[test]
fn remaining_commands_match_redis_in_resp2_and_resp3() {
    require!("redis-server");
    compare_script("every command", SCRIPT);
}

/// The script bodies of every `compare_script(name, text)` call in `source` (a plain or raw
/// string literal as second argument).
fn scripts_in(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("compare_script(") {
        rest = &rest[at + "compare_script(".len()..];
        // Skip the name: up to the first comma outside a string literal.
        let mut in_str = false;
        let mut escaped = false;
        let mut comma = None;
        for (i, ch) in rest.char_indices() {
            match ch {
                _ if escaped => escaped = false,
                '\\' if in_str => escaped = true,
                '"' => in_str = !in_str,
                ',' if !in_str => {
                    comma = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(comma) = comma else { break };
        let arg = rest[comma + 1..].trim_start();
        let (open, close) = if arg.starts_with("r#\"") {
            ("r#\"", "\"#")
        } else if arg.starts_with("r\"") {
            ("r\"", "\"")
        } else if arg.starts_with('"') {
            ("\"", "\"")
        } else {
            // A constant: its text is found where it is defined (a `const … = "…"`).
            continue;
        };
        let body = &arg[open.len()..];
        if let Some(end) = body.find(close) {
            out.push(body[..end].to_string());
        }
    }
    // Script constants (`const SCRIPT: &str = "…";`) passed by name.
    for (at, _) in source.match_indices(": &str = \"") {
        let body = &source[at + ": &str = \"".len()..];
        if let Some(end) = body.find("\";") {
            out.push(body[..end].to_string());
        }
    }
    out
}

#[test]
fn every_command_is_in_a_compared_script() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut covered = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("tests/tests") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path).expect("read a test file");
            for script in scripts_in(&source) {
                for line in script.lines().map(str::trim) {
                    let line = line.strip_prefix("B:").map_or(line, str::trim);
                    if let Some(word) = line.split_whitespace().next() {
                        if !line.starts_with("sleep ") {
                            covered.insert(word.to_ascii_lowercase());
                        }
                    }
                }
            }
        }
    }
    let server = Server::start(&[]);
    let mut c = server.connect();
    let list = String::from_utf8_lossy(&command(&mut c, &["COMMAND", "LIST"])).into_owned();
    let names: Vec<String> = list
        .lines()
        .filter(|l| !l.starts_with(['*', '$']))
        .map(|l| l.trim().to_ascii_lowercase())
        .collect();
    assert!(names.len() > 50, "COMMAND LIST: {list}");
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !covered.contains(*n) && !NOT_COMPARED.iter().any(|(x, _)| x == n))
        .collect();
    assert!(
        missing.is_empty(),
        "commands no compare_script script covers (add them to a script, or to NOT_COMPARED \
         with the reason): {missing:?}"
    );
    let stale: Vec<&str> = NOT_COMPARED
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !names.iter().any(|x| x == n))
        .collect();
    assert!(stale.is_empty(), "NOT_COMPARED names no command: {stale:?}");
}
