//! The foundation, end to end: the real binary, real redis-cli and nc, raw sockets.

use std::io::Write;
use std::time::Duration;

use shardcache_tests::{
    exchange, exchange_keep_open, nc, read_replies, redis_cli, require, resp, resp_str, roundtrip,
    RedisServer, Server,
};

const T: Duration = Duration::from_secs(5);

#[test]
fn redis_cli_set_get_del() {
    require!("redis-cli");
    let s = Server::start(&[]);
    let p = s.port();
    assert_eq!(redis_cli(p, &["SET", "greeting", "hello"]), "OK\n");
    assert_eq!(redis_cli(p, &["GET", "greeting"]), "hello\n");
    assert_eq!(
        redis_cli(p, &["EXISTS", "greeting", "greeting", "nope"]),
        "2\n"
    );
    assert_eq!(redis_cli(p, &["DEL", "greeting"]), "1\n");
    assert_eq!(redis_cli(p, &["GET", "greeting"]), "\n");
    assert_eq!(redis_cli(p, &["PING"]), "PONG\n");
    assert_eq!(redis_cli(p, &["DBSIZE"]), "0\n");
}

/// The README's `nc` session, byte for byte.
#[test]
fn readme_nc_session() {
    require!("nc");
    let s = Server::start(&[]);
    let got = nc(
        s.port(),
        b"PING\r\nSET user:1 \"Ada Lovelace\"\r\nGET user:1\r\nEXISTS user:1 user:2\r\nDEL user:1\r\nGET user:1\r\nQUIT\r\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&got),
        "+PONG\r\n+OK\r\n$12\r\nAda Lovelace\r\n:1\r\n:1\r\n$-1\r\n+OK\r\n"
    );
}

#[test]
fn ten_thousand_pipelined_requests_in_one_write() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let mut batch = Vec::new();
    for i in 0..5000 {
        batch.extend(resp_str(&["SET", &format!("k{i}"), &format!("v{i}")]));
        batch.extend(resp_str(&["GET", &format!("k{i}")]));
    }
    let replies = roundtrip(&mut c, &batch, 10_000);
    for i in 0..5000 {
        assert_eq!(replies[2 * i], b"+OK\r\n");
        let v = format!("v{i}");
        assert_eq!(
            replies[2 * i + 1],
            format!("${}\r\n{v}\r\n", v.len()).as_bytes()
        );
    }
}

#[test]
fn binary_safe_keys_and_values() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let key: &[u8] = b"k\r\n\0ey";
    let val: &[u8] = b"\0\r\nvalue\r\n\xff\x00";
    let r = roundtrip(
        &mut c,
        &[resp(&[b"SET", key, val]), resp(&[b"GET", key])].concat(),
        2,
    );
    assert_eq!(r[0], b"+OK\r\n");
    let mut want = format!("${}\r\n", val.len()).into_bytes();
    want.extend_from_slice(val);
    want.extend_from_slice(b"\r\n");
    assert_eq!(r[1], want);
}

#[test]
fn inline_commands_follow_redis_quoting() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let r = roundtrip(
        &mut c,
        b"SET \"a b\" \"x\\x41\\n\"\r\nGET \"a b\"\r\nSET 'q' 'it\\'s'\r\nGET q\nECHO \"\\t\"\r\n",
        5,
    );
    assert_eq!(r[0], b"+OK\r\n");
    assert_eq!(r[1], b"$3\r\nxA\n\r\n");
    assert_eq!(r[2], b"+OK\r\n");
    assert_eq!(r[3], b"$4\r\nit's\r\n");
    assert_eq!(r[4], b"$1\r\n\t\r\n");
}

/// Each malformed input gets Redis's exact error, compared with a real redis-server, and the
/// connection is closed; meanwhile another client keeps being served.
#[test]
fn protocol_errors_match_redis_and_close() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let s = Server::start(&[]);
    let mut bystander = s.connect();
    let big_inline = vec![b'a'; 70 * 1024];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "multibulk",
            b"*abc\r\n".to_vec(),
            "invalid multibulk length",
        ),
        ("bulk", b"*1\r\n$abc\r\n".to_vec(), "invalid bulk length"),
        (
            "negative bulk",
            b"*1\r\n$-5\r\n".to_vec(),
            "invalid bulk length",
        ),
        (
            "huge bulk",
            b"*1\r\n$600000000\r\n".to_vec(),
            "invalid bulk length",
        ),
        (
            "dollar",
            b"*1\r\n+foo\r\n".to_vec(),
            "expected '$', got '+'",
        ),
        (
            "quotes",
            b"SET \"unbalanced\r\n".to_vec(),
            "unbalanced quotes in request",
        ),
        ("inline", big_inline, "too big inline request"),
    ];
    for (name, input, text) in cases {
        let (ours, closed) = exchange_keep_open(s.port(), &input, T);
        let (theirs, _) = exchange_keep_open(redis.port(), &input, T);
        let want = format!("-ERR Protocol error: {text}\r\n");
        assert_eq!(String::from_utf8_lossy(&ours), want, "{name}");
        assert_eq!(ours, theirs, "{name}: differs from redis-server");
        assert!(closed, "{name}: connection must close");
        assert_eq!(roundtrip(&mut bystander, b"PING\r\n", 1)[0], b"+PONG\r\n");
    }
}

#[test]
fn replies_before_a_protocol_error_are_flushed() {
    let s = Server::start(&[]);
    let (got, closed) = exchange_keep_open(s.port(), b"PING\r\nPING\r\n*1\r\n$x\r\nPING\r\n", T);
    assert_eq!(
        String::from_utf8_lossy(&got),
        "+PONG\r\n+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(closed);
}

#[test]
fn declared_but_unsent_sizes_allocate_nothing() {
    let s = Server::start(&[]);
    let mut mark = s.input_mark();
    let before = s.rss_bytes();
    let mut conns = Vec::new();
    let head = b"*1000000000\r\n$500000000\r\nabc";
    for _ in 0..50 {
        let mut c = s.connect();
        c.write_all(head).unwrap();
        conns.push(c);
    }
    // Measured once the server has read all of it.
    mark.wait_read(50 * head.len() as u64);
    let grown = s.rss_bytes().saturating_sub(before);
    // Measured: about 1.5 MiB; the bound is under three times that.
    eprintln!(
        "50 half-sent giant requests: RSS growth {} KiB",
        grown / 1024
    );
    assert!(
        grown < 4 << 20,
        "RSS grew {grown} bytes for 50 half-sent giant requests"
    );
    let mut c = s.connect();
    assert_eq!(roundtrip(&mut c, b"PING\r\n", 1)[0], b"+PONG\r\n");
}

#[test]
fn wrong_arity_and_unknown_command_texts() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let r = roundtrip(
        &mut c,
        &[
            resp_str(&["GET"]),
            resp_str(&["get", "a", "b"]),
            resp_str(&["FOO", "bar"]),
            resp_str(&["foo"]),
            resp_str(&["SELECT", "99"]),
            resp_str(&["SET", "k", "v", "EX", "0"]),
        ]
        .concat(),
        6,
    );
    assert_eq!(
        r[0],
        b"-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        r[1],
        b"-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        r[2],
        b"-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n"
    );
    assert_eq!(
        r[3],
        b"-ERR unknown command 'foo', with args beginning with: \r\n"
    );
    assert_eq!(r[4], b"-ERR DB index is out of range\r\n");
    assert_eq!(r[5], b"-ERR invalid expire time in 'set' command\r\n");
}

#[test]
fn maxclients_refuses_the_eleventh() {
    let s = Server::start(&["--maxclients", "10"]);
    let mut first = s.connect();
    // The harness's readiness probe has gone: this is the only client.
    s.wait_connected_clients(&mut first, 1);
    let mut held = vec![first];
    for _ in 1..10 {
        let mut c = s.connect();
        assert_eq!(roundtrip(&mut c, b"PING\r\n", 1)[0], b"+PONG\r\n");
        held.push(c);
    }
    let (got, closed) = exchange_keep_open(s.port(), b"", T);
    assert_eq!(got, b"-ERR max number of clients reached\r\n");
    assert!(closed);
    drop(held.pop());
    s.wait_connected_clients(&mut held[0], 9);
    let mut c = s.connect();
    assert_eq!(roundtrip(&mut c, b"PING\r\n", 1)[0], b"+PONG\r\n");
}

#[test]
fn sigterm_exits_zero_and_logs_the_stop() {
    let mut s = Server::start(&[]);
    let mut c = s.connect();
    assert_eq!(roundtrip(&mut c, b"SET a 1\r\n", 1)[0], b"+OK\r\n");
    let status = s
        .terminate(Duration::from_secs(10))
        .expect("exits within 10 s");
    assert_eq!(status.code(), Some(0));
    let log = s.log().join("\n");
    assert!(log.contains("received SIGTERM"), "{log}");
    assert!(log.contains("shardcache stopped"), "{log}");
}

#[test]
fn sigint_exits_zero() {
    let mut s = Server::start(&[]);
    s.signal(2);
    let status = s.wait(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn shard_counts_serve() {
    for shards in ["1", "2", "64", "1024"] {
        let s = Server::start(&["--shards", shards]);
        let mut c = s.connect();
        let mut batch = Vec::new();
        for i in 0..200 {
            batch.extend(resp_str(&["SET", &format!("key:{i}"), &i.to_string()]));
        }
        batch.extend(resp_str(&["DBSIZE"]));
        batch.extend(resp_str(&["GET", "key:199"]));
        let r = roundtrip(&mut c, &batch, 202);
        assert_eq!(r[200], b":200\r\n", "shards={shards}");
        assert_eq!(r[201], b"$3\r\n199\r\n");
        let info =
            String::from_utf8_lossy(&roundtrip(&mut c, b"INFO server\r\n", 1)[0]).into_owned();
        assert!(info.contains(&format!("shards:{shards}\r\n")), "{info}");
    }
}

#[test]
fn concurrent_clients_lose_no_write() {
    let s = Server::start(&["--shards", "4"]);
    let port = s.port();
    let threads: Vec<_> = (0..32)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                let mut batch = Vec::new();
                for i in 0..500 {
                    batch.extend(resp_str(&[
                        "SET",
                        &format!("t{t}:k{i}"),
                        &format!("{t}-{i}"),
                    ]));
                }
                let r = roundtrip(&mut c, &batch, 500);
                assert!(r.iter().all(|x| x == b"+OK\r\n"));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut c = s.connect();
    assert_eq!(roundtrip(&mut c, b"DBSIZE\r\n", 1)[0], b":16000\r\n");
    let mut batch = Vec::new();
    for t in 0..32 {
        batch.extend(resp_str(&["GET", &format!("t{t}:k499")]));
    }
    c.write_all(&batch).unwrap();
    let r = read_replies(&mut c, 32);
    for (t, got) in r.iter().enumerate() {
        let v = format!("{t}-499");
        assert_eq!(got, format!("${}\r\n{v}\r\n", v.len()).as_bytes());
    }
}

#[test]
fn quit_flushes_then_closes() {
    let s = Server::start(&[]);
    let (got, closed) = exchange_keep_open(s.port(), b"PING\r\nQUIT\r\nPING\r\n", T);
    assert_eq!(got, b"+PONG\r\n+OK\r\n");
    assert!(closed);
}

#[test]
fn hello_3_switches_to_resp3() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let r = roundtrip(
        &mut c,
        b"HELLO 3\r\nGET missing\r\nHELLO 2\r\nGET missing\r\nHELLO 4\r\n",
        5,
    );
    assert!(
        r[0].starts_with(b"%7\r\n"),
        "{}",
        String::from_utf8_lossy(&r[0])
    );
    assert_eq!(r[1], b"_\r\n");
    assert!(r[2].starts_with(b"*14\r\n"));
    assert_eq!(r[3], b"$-1\r\n");
    assert_eq!(r[4], b"-NOPROTO unsupported protocol version\r\n");
}

#[test]
fn empty_and_half_closed_connections_are_harmless() {
    let s = Server::start(&[]);
    let (got, closed) = exchange(s.port(), b"", T);
    assert!(got.is_empty() && closed);
    let (got, closed) = exchange(s.port(), b"PING\r\nGET", T);
    assert_eq!(got, b"+PONG\r\n");
    assert!(closed);
    let mut c = s.connect();
    assert_eq!(roundtrip(&mut c, b"PING\r\n", 1)[0], b"+PONG\r\n");
}
