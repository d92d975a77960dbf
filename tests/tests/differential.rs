//! Differential tests: the same commands to a real `redis-server` and to shardcache, replies
//! compared byte for byte.

use std::net::TcpStream;

use shardcache_tests::{read_replies, require, resp, RedisServer, Server};

/// Sends `commands` (one request each) to both servers on one connection each and returns the
/// pairs of raw replies that differ.
fn diff(ours: u16, theirs: u16, commands: &[Vec<Vec<u8>>]) -> Vec<(String, String, String)> {
    let mut a = TcpStream::connect(("127.0.0.1", ours)).unwrap();
    let mut b = TcpStream::connect(("127.0.0.1", theirs)).unwrap();
    let mut out = Vec::new();
    for cmd in commands {
        let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
        let req = resp(&args);
        use std::io::Write;
        a.write_all(&req).unwrap();
        b.write_all(&req).unwrap();
        let ra = read_replies(&mut a, 1).remove(0);
        let rb = read_replies(&mut b, 1).remove(0);
        if ra != rb {
            let shown: Vec<String> = cmd
                .iter()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            out.push((
                shown.join(" "),
                String::from_utf8_lossy(&ra).into_owned(),
                String::from_utf8_lossy(&rb).into_owned(),
            ));
        }
    }
    out
}

fn words(lines: &str) -> Vec<Vec<Vec<u8>>> {
    lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(' ').map(|w| w.as_bytes().to_vec()).collect())
        .collect()
}

#[test]
fn foundation_commands_match_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&[]);
    let script = words(
        "
        PING
        PING hello
        PING a b
        ECHO
        ECHO hi
        SET k v
        GET k
        GET nope
        SET k v2 NX
        SET k v3 XX
        GET k
        SET n 1 NX XX
        SET k v EX 0
        SET k v EX -1
        SET k v PX abc
        SET k v EX 10 PX 10
        SET k v KEEPTTL
        SET k v GET
        SET k v EX 100 KEEPTTL
        SET k v foo
        SET k
        SET new v XX GET
        EXISTS k
        EXISTS k k nope
        DEL k nope k
        DEL
        EXISTS
        DBSIZE
        SELECT 1
        SET k db1
        DBSIZE
        SELECT 0
        DBSIZE
        SELECT 16
        SELECT -1
        SELECT abc
        SELECT 01
        FLUSHDB
        FLUSHDB ASYNC
        FLUSHDB SYNC
        FLUSHDB FOO
        FLUSHALL
        FLUSHALL ASYNC
        DBSIZE
        GET
        get a b
        NOSUCH a b c
        nosuch
        HELLO 4
        HELLO abc
        HELLO 2 FOO
        COMMAND FOO
        COMMAND COUNT x
        COMMAND LIST x
        ",
    );
    let diffs = diff(ours.port(), redis.port(), &script);
    assert!(
        diffs.is_empty(),
        "{} replies differ (command | ours | redis):\n{}",
        diffs.len(),
        diffs
            .iter()
            .map(|(c, a, b)| format!("{c} | {a:?} | {b:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Non-UTF-8 bytes in an unknown command are echoed as sent, as Redis does.
#[test]
fn unknown_binary_command_matches_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&[]);
    let commands = vec![
        vec![b"f\xffo".to_vec(), b"\x00\xfe".to_vec()],
        vec![b"caf\xc3\xa9".to_vec()],
        vec![vec![b'x'; 200], vec![b'y'; 200]],
    ];
    let diffs = diff(ours.port(), redis.port(), &commands);
    assert!(diffs.is_empty(), "{diffs:?}");
}
