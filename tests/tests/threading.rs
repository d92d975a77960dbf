//! Thread per core, end to end: the real binary with several worker threads. Connections are
//! spread over the workers, so these check what must hold across threads: statistics summed
//! from every worker (and reset by CONFIG RESETSTAT), maxclients counted over all workers,
//! idle clients on every worker woken at shutdown, long commands run off the event loop with
//! their replies still in order, CLIENT LIST seeing every worker's clients.
//!
//! (Every other end-to-end test also runs with `--threads 2`: see `DEFAULT_TEST_THREADS`.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use shardcache_tests::{exchange_keep_open, read_replies, resp_str, roundtrip, Server};

const T: Duration = Duration::from_secs(10);

fn cmd(s: &mut TcpStream, words: &[&str]) -> Vec<u8> {
    roundtrip(s, &resp_str(words), 1).remove(0)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn field(info: &str, name: &str) -> Option<String> {
    shardcache_tests::info_value(info, name).map(str::to_string)
}

/// The names of the server process's threads.
fn thread_names(pid: u32) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in dir.flatten() {
            if let Ok(n) = std::fs::read_to_string(t.path().join("comm")) {
                names.push(n.trim().to_string());
            }
        }
    }
    names
}

#[test]
fn workers_start_and_are_reported() {
    let s = Server::start(&["--threads", "4"]);
    let mut c = s.connect();
    let info = text(&cmd(&mut c, &["INFO", "server"]));
    assert_eq!(field(&info, "threads").as_deref(), Some("4"), "{info}");
    if std::path::Path::new("/proc/self/task").exists() {
        // A thread names itself once it runs, which may be after the server answers: wait
        // for the names (a liveness bound only).
        let named = |names: &[String]| {
            (0..4).all(|i| names.iter().any(|n| n == &format!("shardcache-w{i}")))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut names = thread_names(s.pid());
        while !named(&names) {
            assert!(
                std::time::Instant::now() < deadline,
                "workers missing: {names:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
            names = thread_names(s.pid());
        }
    }
}

#[test]
fn statistics_are_summed_over_workers_and_reset() {
    let s = Server::start_with_metrics(&["--threads", "3"]);
    // Six connections: the acceptor gives each to the least loaded worker, so two per worker.
    let mut conns: Vec<TcpStream> = (0..6).map(|_| s.connect()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let mut batch = Vec::new();
        for j in 0..50 {
            batch.extend(resp_str(&["SET", &format!("k{i}:{j}"), "v"]));
            batch.extend(resp_str(&["GET", &format!("k{i}:{j}")]));
        }
        batch.extend(resp_str(&["NOSUCHCOMMAND"]));
        batch.extend(resp_str(&["GET"]));
        let replies = roundtrip(c, &batch, 102);
        assert_eq!(replies[0], b"+OK\r\n");
        assert_eq!(replies[1], b"$1\r\nv\r\n");
    }
    let mut c = s.connect();
    let stats = text(&cmd(&mut c, &["INFO", "commandstats"]));
    assert!(
        stats.contains("cmdstat_set:calls=300,"),
        "SETs of all workers: {stats}"
    );
    assert!(
        stats.contains("cmdstat_get:calls=300,") && stats.contains("rejected_calls=6,"),
        "GETs and rejected GETs of all workers: {stats}"
    );
    let info = text(&cmd(&mut c, &["INFO", "stats"]));
    // 600 calls, 6 rejected, 6 unknown, plus the INFO commandstats just run and the
    // harness's readiness PING.
    assert_eq!(
        field(&info, "total_commands_processed").as_deref(),
        Some("614"),
        "{info}"
    );
    let input: u64 = field(&info, "total_net_input_bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(input > 6 * 100 * 20, "{info}");
    let latency = text(&cmd(&mut c, &["INFO", "latencystats"]));
    assert!(
        latency.contains("latency_percentiles_usec_set:"),
        "{latency}"
    );
    let body = metrics(s.metrics_port());
    assert!(
        body.contains("shardcache_commands_total{command=\"set\"} 300"),
        "{body}"
    );
    assert!(
        body.contains("shardcache_command_duration_seconds_count{command=\"get\"} 300"),
        "{body}"
    );

    assert_eq!(cmd(&mut c, &["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    let stats = text(&cmd(&mut c, &["INFO", "commandstats"]));
    assert!(!stats.contains("cmdstat_set"), "after RESETSTAT: {stats}");
    assert!(!stats.contains("cmdstat_get"), "after RESETSTAT: {stats}");
    // Counting resumes from zero on every worker.
    for c in conns.iter_mut() {
        assert_eq!(cmd(c, &["GET", "k0:0"]), b"$1\r\nv\r\n");
    }
    let stats = text(&cmd(&mut c, &["INFO", "commandstats"]));
    assert!(stats.contains("cmdstat_get:calls=6,"), "{stats}");
    let body = metrics(s.metrics_port());
    assert!(
        body.contains("shardcache_command_duration_seconds_count{command=\"get\"} 6"),
        "{body}"
    );
}

fn metrics(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect metrics");
    s.set_read_timeout(Some(T)).ok();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read metrics");
    body
}

#[test]
fn maxclients_counts_clients_of_every_worker() {
    let s = Server::start(&["--threads", "3", "--maxclients", "7"]);
    let mut held = Vec::new();
    for _ in 0..7 {
        let mut c = s.connect();
        assert_eq!(roundtrip(&mut c, b"PING\r\n", 1)[0], b"+PONG\r\n");
        held.push(c);
    }
    let (got, closed) = exchange_keep_open(s.port(), b"", T);
    assert_eq!(got, b"-ERR max number of clients reached\r\n");
    assert!(closed);
    // Closing clients on any worker frees their places.
    held.truncate(4);
    let deadline = Instant::now() + T;
    let mut accepted = 0;
    while accepted < 3 {
        assert!(Instant::now() < deadline, "closed clients not released");
        let mut c = s.connect();
        if roundtrip(&mut c, b"PING\r\n", 1)[0] == b"+PONG\r\n" {
            held.push(c);
            accepted += 1;
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut c = held.pop().expect("a client");
    let info = text(&cmd(&mut c, &["INFO", "stats"]));
    assert_ne!(field(&info, "rejected_connections").as_deref(), Some("0"));
}

#[test]
fn client_list_shows_clients_of_every_worker() {
    let s = Server::start(&["--threads", "4"]);
    let mut conns: Vec<TcpStream> = (0..8).map(|_| s.connect()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        assert_eq!(
            cmd(c, &["CLIENT", "SETNAME", &format!("client{i}")]),
            b"+OK\r\n"
        );
    }
    let list = text(&cmd(&mut conns[0], &["CLIENT", "LIST"]));
    for i in 0..8 {
        assert!(list.contains(&format!(" name=client{i} ")), "{list}");
    }
    assert_eq!(list.lines().filter(|l| l.starts_with("id=")).count(), 8);
}

#[test]
fn shutdown_wakes_idle_clients_on_every_worker() {
    // A long shutdown-timeout: the process can only exit soon if idle clients are woken.
    let mut s = Server::start(&["--threads", "3", "--shutdown-timeout", "3600"]);
    let mut idle: Vec<TcpStream> = (0..6).map(|_| s.connect()).collect();
    for c in idle.iter_mut() {
        assert_eq!(roundtrip(c, b"PING\r\n", 1)[0], b"+PONG\r\n");
    }
    // One client with a request half sent: it is idle too, waiting for the rest.
    idle[0]
        .write_all(b"*2\r\n$3\r\nGET\r\n")
        .expect("half a request");
    let status = s
        .terminate(Duration::from_secs(60))
        .expect("exits without waiting for the idle clients' shutdown-timeout");
    assert_eq!(status.code(), Some(0));
    for c in idle.iter_mut() {
        let mut buf = [0u8; 16];
        c.set_read_timeout(Some(T)).ok();
        assert_eq!(c.read(&mut buf).unwrap_or(0), 0, "connection closed");
    }
    let log = s.log().join("\n");
    assert!(log.contains("open_connections=6"), "{log}");
    assert!(log.contains("shardcache stopped"), "{log}");
}

#[test]
fn long_commands_leave_the_event_loop_and_keep_reply_order() {
    let s = Server::start(&["--threads", "2"]);
    let mut c = s.connect();
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.extend(resp_str(&["SET", &format!("key:{i}"), "x"]));
    }
    let replies = roundtrip(&mut c, &batch, 2000);
    assert!(replies.iter().all(|r| r == b"+OK\r\n"));
    // Offloaded (KEYS, INFO, big SCAN page, FLUSHDB) and inline commands, pipelined: the
    // replies come back in request order.
    let mut batch = Vec::new();
    batch.extend(resp_str(&["SET", "a", "1"]));
    batch.extend(resp_str(&["KEYS", "key:1999"]));
    batch.extend(resp_str(&["GET", "a"]));
    batch.extend(resp_str(&["INFO", "keyspace"]));
    batch.extend(resp_str(&["SCAN", "0", "COUNT", "100000"]));
    batch.extend(resp_str(&["SELECT", "1"]));
    batch.extend(resp_str(&["KEYS", "*"]));
    batch.extend(resp_str(&["SELECT", "0"]));
    batch.extend(resp_str(&["FLUSHDB"]));
    batch.extend(resp_str(&["DBSIZE"]));
    batch.extend(resp_str(&["PING"]));
    c.write_all(&batch).expect("write batch");
    let r = read_replies(&mut c, 11);
    assert_eq!(r[0], b"+OK\r\n");
    assert_eq!(r[1], b"*1\r\n$8\r\nkey:1999\r\n");
    assert_eq!(r[2], b"$1\r\n1\r\n");
    assert!(text(&r[3]).contains("db0:keys=2001,"), "{}", text(&r[3]));
    // A full scan page in one call: cursor 0 and every key.
    assert!(
        r[4].starts_with(b"*2\r\n$1\r\n0\r\n*2001\r\n"),
        "{}",
        text(&r[4][..40])
    );
    assert_eq!(r[5], b"+OK\r\n");
    // KEYS ran in database 1 (the SELECT before it, carried to the blocking pool).
    assert_eq!(r[6], b"*0\r\n");
    assert_eq!(r[7], b"+OK\r\n");
    assert_eq!(r[8], b"+OK\r\n");
    assert_eq!(r[9], b":0\r\n");
    assert_eq!(r[10], b"+PONG\r\n");
}
