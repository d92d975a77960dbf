//! Limits on what one client can make the server hold: output (a client that never reads its
//! replies), `client-output-buffer-limit`, `client-query-buffer-limit`, `timeout`, and accept
//! errors at the open-files limit (EMFILE back-off).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardcache_tests::{
    exchange_keep_open, require, resp, resp_str, roundtrip, wait_until, Server,
};

const T: Duration = Duration::from_secs(5);
const MIB: u64 = 1024 * 1024;

/// The server still answers a fresh client correctly.
fn assert_serves(s: &Server) {
    let mut c = s.connect();
    let r = roundtrip(&mut c, b"SET probe 1\r\nGET probe\r\n", 2);
    assert_eq!(r, [b"+OK\r\n".to_vec(), b"$1\r\n1\r\n".to_vec()]);
}

/// The proof: a client that pipelines `GET` of a 1 MiB value as fast as the socket
/// accepts, for 8 s, and never reads, adds about 1 MiB to the server's RSS (measured by
/// `scripts/measure-unread-rss.sh`); the bound is 3 MiB, about three times
/// that: one 1 MiB reply in flight, the 64 KiB output batch and allocator noise. Other clients are served meanwhile.
#[test]
fn unread_replies_do_not_grow_memory() {
    let s = Server::start(&[]);
    let value = vec![b'v'; MIB as usize];
    let mut c = s.connect();
    let r = roundtrip(&mut c, &resp(&[b"SET", b"big", &value]), 1);
    assert_eq!(r[0], b"+OK\r\n");
    let base = s.rss_bytes();

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let port = s.port();
    let flood = {
        let stop = Arc::clone(&stop);
        let sent = Arc::clone(&sent);
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            c.set_write_timeout(Some(Duration::from_millis(50))).ok();
            let batch = resp_str(&["GET", "big"]).repeat(256);
            while !stop.load(Ordering::Relaxed) {
                match c.write(&batch) {
                    Ok(n) => {
                        sent.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            c // kept open (never read) until the test ends
        })
    };
    let start = Instant::now();
    let mut peak = base;
    let mut served = 0;
    while start.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(250));
        peak = peak.max(s.rss_bytes());
        // Others are served meanwhile.
        assert_serves(&s);
        served += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let growth = peak.saturating_sub(base);
    eprintln!(
        "unread 1 MiB GETs: {} bytes of requests sent in 8 s; RSS base {} KiB, peak {} KiB, growth {} KiB; {served} probes served",
        sent.load(Ordering::Relaxed),
        base / 1024,
        peak / 1024,
        growth / 1024
    );
    assert!(growth < 3 * MIB, "RSS grew by {} KiB", growth / 1024);
    let conn = flood.join().expect("flood thread");
    drop(conn);
    assert_serves(&s);
}

#[test]
fn reply_over_output_limit_closes_the_client() {
    let mut s = Server::start(&["--client-output-buffer-limit", "1mb"]);
    let mut c = s.connect();
    let value = vec![b'x'; 100 * 1024];
    let mut keys = Vec::new();
    for i in 0..20 {
        let k = format!("k{i}");
        let r = roundtrip(&mut c, &resp(&[b"SET", k.as_bytes(), &value]), 1);
        assert_eq!(r[0], b"+OK\r\n");
        keys.push(k);
    }
    // One value larger than the limit is still sent: it is one bulk string.
    let big = vec![b'y'; 3 * MIB as usize];
    assert_eq!(
        roundtrip(&mut c, &resp(&[b"SET", b"big", &big]), 1)[0],
        b"+OK\r\n"
    );
    let r = roundtrip(&mut c, &resp_str(&["GET", "big"]), 1);
    assert_eq!(
        r[0].len(),
        big.len() + format!("${}\r\n\r\n", big.len()).len()
    );
    // An MGET of 2 MB: over the limit, the connection closes (earlier replies still arrive).
    let mut req = resp_str(&["PING"]);
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    req.extend(resp_str(&mget));
    let (got, closed) = exchange_keep_open(s.port(), &req, T);
    assert_eq!(got, b"+PONG\r\n");
    assert!(closed);
    wait_until("a client-output-buffer-limit warning", T, || {
        s.log()
            .iter()
            .any(|l| l.contains("WARN") && l.contains("client-output-buffer-limit"))
    });
    assert_serves(&s);
}

/// A multi-value reply is refused before it is built: `MGET` of one 8 MiB key 100 times
/// (800 MiB of reply) must not make the server copy 800 MiB.
#[test]
fn huge_multi_value_reply_is_refused_before_it_is_built() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let big = vec![b'z'; 8 * MIB as usize];
    assert_eq!(
        roundtrip(&mut c, &resp(&[b"SET", b"big", &big]), 1)[0],
        b"+OK\r\n"
    );
    let before = s.rss_bytes();
    let mut words = vec!["MGET"];
    words.extend(std::iter::repeat_n("big", 100));
    let (got, closed) = exchange_keep_open(s.port(), &resp_str(&words), T);
    assert!(got.is_empty() && closed, "no reply, connection closed");
    let grown = s.rss_bytes().saturating_sub(before);
    // Measured: 24-140 KiB; one copy of the 8 MiB value would break the 2 MiB bound.
    eprintln!("refused 800 MiB MGET: RSS growth {} KiB", grown / 1024);
    assert!(grown < 2 * MIB, "RSS grew {} KiB", grown / 1024);
    assert_serves(&s);
}

#[test]
fn query_buffer_limit_closes_the_client() {
    let mut s = Server::start(&["--client-query-buffer-limit", "1mb"]);
    let mut c = s.connect();
    // A 4 MB bulk is within proto-max-bulk-len, but buffering it exceeds the 1 MB limit.
    let _ = c.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4000000\r\n");
    let chunk = vec![b'z'; 64 * 1024];
    let mut closed = false;
    for _ in 0..64 {
        if c.write_all(&chunk).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if !closed {
        c.set_read_timeout(Some(T)).ok();
        let mut b = [0u8; 16];
        closed = matches!(c.read(&mut b), Ok(0) | Err(_));
    }
    assert!(closed, "the server closes the connection");
    wait_until("a client-query-buffer-limit warning", T, || {
        s.log()
            .iter()
            .any(|l| l.contains("WARN") && l.contains("client-query-buffer-limit"))
    });
    assert_serves(&s);
}

#[test]
fn idle_and_half_sent_clients_time_out() {
    let s = Server::start(&["--timeout", "1"]);
    // Closed by the server (the 30 s read limit is a liveness bound), and not before the
    // timeout: a lower bound only, which a loaded machine cannot break.
    let start = Instant::now();
    let (got, closed) = exchange_keep_open(s.port(), b"", Duration::from_secs(30));
    assert!(got.is_empty() && closed, "idle client closed");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    // A half-sent request (slowloris) does not hold the connection past the timeout either.
    let (got, closed) = exchange_keep_open(
        s.port(),
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nab",
        Duration::from_secs(30),
    );
    assert!(got.is_empty() && closed);
    // An active client is not closed: a request every 200 ms (well inside the 1 s timeout,
    // so a loaded machine's late wake-ups do not matter) for 2.6 s.
    let mut c = s.connect();
    for _ in 0..13 {
        assert_eq!(roundtrip(&mut c, b"PING\r\n", 1)[0], b"+PONG\r\n");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// CPU time (user + system) of a process, in clock ticks, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// At the open-files limit `accept` fails with EMFILE; the server backs off instead of spinning,
/// keeps serving its connected clients, and accepts again once descriptors are free.
#[test]
fn emfile_backs_off_and_recovers() {
    require!("prlimit");
    let mut s = Server::start(&[]);
    let pid = s.pid().to_string();
    let st = Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=64:64"])
        .status()
        .expect("prlimit");
    assert!(st.success());
    let mut held = Vec::new();
    let mut first = s.connect();
    assert_eq!(roundtrip(&mut first, b"PING\r\n", 1)[0], b"+PONG\r\n");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.port()));
    for _ in 0..200 {
        // Once the listen backlog is full too, a connect would wait for SYN retries.
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(c) => held.push(c),
            Err(_) => break,
        }
    }
    wait_until("the server to hit EMFILE", Duration::from_secs(30), || {
        s.log().iter().any(|l| l.contains("accept failed"))
    });
    let before = cpu_ticks(s.pid());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(s.pid()) - before;
    // A spinning accept loop burns ~200 ticks (2 s of one core); backing off uses almost none.
    assert!(used < 40, "server used {used} ticks in 2 s while at EMFILE");
    // Connected clients are still served.
    assert_eq!(roundtrip(&mut first, b"PING\r\n", 1)[0], b"+PONG\r\n");
    assert!(s.log().iter().any(|l| l.contains("accept failed")));
    eprintln!(
        "held {} connections; {used} ticks in 2 s at EMFILE",
        held.len()
    );
    drop(held);
    let t = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = s.connect();
        c.set_read_timeout(Some(Duration::from_secs(3))).ok();
        if c.write_all(b"PING\r\n").is_ok() {
            let mut b = [0u8; 7];
            if c.read_exact(&mut b).is_ok() && &b == b"+PONG\r\n" {
                break;
            }
        }
        assert!(Instant::now() < deadline, "never accepted again");
    }
    eprintln!("served again {:?} after the clients closed", t.elapsed());
}

/// `KEYS *` whose reply is over `client-output-buffer-limit` closes that client (as Redis
/// does for a normal client over its hard limit), logs a warning, and the server keeps serving.
#[test]
fn keys_reply_over_output_limit_closes_the_client() {
    let mut s = Server::start(&["--client-output-buffer-limit", "1mb"]);
    let mut c = s.connect();
    // 30,000 keys of 40 bytes: KEYS * answers about 1.4 MB.
    let mut batch = Vec::new();
    for i in 0..30_000 {
        batch.extend(resp_str(&["SET", &format!("{:040}", i), "v"]));
    }
    c.write_all(&batch).unwrap();
    assert!(shardcache_tests::read_replies(&mut c, 30_000)
        .iter()
        .all(|r| r == b"+OK\r\n"));
    // A narrower pattern under the limit is answered.
    let few = roundtrip(
        &mut c,
        &resp_str(&["KEYS", "000000000000000000000000000000000000000*"]),
        1,
    );
    assert!(few[0].starts_with(b"*10\r\n"), "{:?}", &few[0][..10]);
    let mut req = resp_str(&["PING"]);
    req.extend(resp_str(&["KEYS", "*"]));
    let (got, closed) = exchange_keep_open(s.port(), &req, Duration::from_secs(30));
    assert_eq!(got, b"+PONG\r\n", "no part of the KEYS reply is sent");
    assert!(closed);
    wait_until("a client-output-buffer-limit warning", T, || {
        s.log()
            .iter()
            .any(|l| l.contains("WARN") && l.contains("client-output-buffer-limit"))
    });
    assert_serves(&s);
}

/// Values at `proto-max-bulk-len` and one byte over, on shardcache and `redis-server` with the
/// same limit (1 MiB, its minimum): the same replies for a bulk at the limit, over it (a
/// protocol error that closes the connection), and for `APPEND` / `SETRANGE` that would grow
/// a string past it.
#[test]
fn values_at_proto_max_bulk_len_match_redis() {
    require!("redis-server");
    let limit = MIB as usize;
    let redis = shardcache_tests::RedisServer::start(&["--proto-max-bulk-len", "1mb"]);
    let ours = Server::start(&["--proto-max-bulk-len", "1mb"]);
    let at_limit = vec![b'a'; limit];
    let over_header = format!("*3\r\n$3\r\nSET\r\n$2\r\nk2\r\n${}\r\n", limit + 1).into_bytes();
    let off_last = (limit - 1).to_string();
    let off_over = limit.to_string();
    let mut replies = Vec::new();
    for port in [ours.port(), redis.port()] {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut got = Vec::new();
        for req in [
            resp(&[b"SET", b"k", &at_limit]),
            resp_str(&["STRLEN", "k"]),
            resp_str(&["APPEND", "k", "x"]),
            resp_str(&["APPEND", "k", ""]),
            resp_str(&["SETRANGE", "k", &off_last, "z"]),
            resp_str(&["SETRANGE", "k", &off_over, "z"]),
            resp_str(&["SETRANGE", "new", &off_over, "z"]),
            resp_str(&["SETRANGE", "new", &off_last, "z"]),
            resp_str(&["STRLEN", "new"]),
            resp_str(&["GETRANGE", "k", "-3", "-1"]),
        ] {
            got.push(roundtrip(&mut c, &req, 1).remove(0));
        }
        // One byte over the limit: a protocol error, then the server closes the connection.
        // (Only the header is sent: the server answers it before any of the body.)
        let (over_reply, closed) = exchange_keep_open(port, &over_header, Duration::from_secs(30));
        got.push(over_reply);
        assert!(
            closed,
            "port {port}: connection left open after the protocol error"
        );
        replies.push(got);
    }
    let show = |r: &[u8]| String::from_utf8_lossy(&r[..r.len().min(80)]).into_owned();
    for (i, (a, b)) in replies[0].iter().zip(&replies[1]).enumerate() {
        assert_eq!(
            a,
            b,
            "step {i}: shardcache {:?}, redis {:?}",
            show(a),
            show(b)
        );
    }
}
