//! The io_uring backend (`--io-backend io_uring`), end to end: what the connection loop must
//! keep on it (pipelining, large requests and replies, the receive paused and resumed under a
//! client that does not read, idle clients woken at shutdown, CLIENT KILL, offloaded commands
//! beside other clients of the same worker), and the fall-back to epoll when io_uring cannot be
//! set up.
//!
//! io_uring is the default (`auto`) where the kernel allows it, so the whole suite runs on it;
//! `SHARDCACHE_IO_BACKEND=epoll cargo test -p shardcache-tests` runs it on epoll (the servers
//! the harness starts inherit the variable; CI runs the I/O-heavy part of the suite both ways).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use shardcache_tests::{read_replies, resp, resp_str, roundtrip, Server};

const T: Duration = Duration::from_secs(10);

/// Starts a server on io_uring (skips, returning `None`, where the kernel refuses it: the
/// server then says it fell back, which `falls_back_to_epoll_when_setup_fails` covers).
fn start_uring(extra: &[&str]) -> Option<Server> {
    let mut args = vec!["--io-backend", "io_uring"];
    args.extend_from_slice(extra);
    let mut s = Server::start(&args);
    // The harness is done when the server answers PING; the ready line may still be on its
    // way through the log pipe.
    let mut ready = String::new();
    shardcache_tests::wait_until("the ready line", T, || {
        ready = s.log().join("\n");
        ready.contains("ready to accept connections")
    });
    if ready.contains("io=\"epoll\"") {
        shardcache_tests::skip(&format!("io_uring unavailable here: {ready}"));
        return None;
    }
    assert!(ready.contains("io=\"io_uring\""), "{ready}");
    Some(s)
}

fn cmd(s: &mut TcpStream, words: &[&str]) -> Vec<u8> {
    roundtrip(s, &resp_str(words), 1).remove(0)
}

#[test]
fn pipelines_and_large_values() {
    let Some(s) = start_uring(&[]) else { return };
    let mut c = s.connect();
    // 5000 pipelined requests in one write, replies in order.
    let mut batch = Vec::new();
    for i in 0..2500 {
        batch.extend(resp_str(&["SET", &format!("k{i}"), &format!("v{i}")]));
        batch.extend(resp_str(&["GET", &format!("k{i}")]));
    }
    let r = roundtrip(&mut c, &batch, 5000);
    for i in 0..2500 {
        assert_eq!(r[2 * i], b"+OK\r\n");
        assert_eq!(
            r[2 * i + 1],
            format!("${}\r\nv{i}\r\n", format!("v{i}").len()).as_bytes()
        );
    }
    // A 20 MB value: many receive buffers in, one long send out.
    let big: Vec<u8> = (0..20_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        roundtrip(&mut c, &resp(&[b"SET", b"big", &big]), 1)[0],
        b"+OK\r\n"
    );
    let r = roundtrip(&mut c, &resp_str(&["GET", "big"]), 1);
    let header = format!("${}\r\n", big.len());
    assert_eq!(&r[0][..header.len()], header.as_bytes());
    assert!(r[0][header.len()..header.len() + big.len()] == big[..]);
    // Many clients at once, each pipelining.
    let port = s.port();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                for round in 0..20 {
                    let mut batch = Vec::new();
                    for i in 0..50 {
                        batch.extend(resp_str(&["INCR", &format!("t{t}")]));
                        let _ = i;
                    }
                    let r = roundtrip(&mut c, &batch, 50);
                    assert_eq!(r[49], format!(":{}\r\n", (round + 1) * 50).as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

/// A client that pipelines without reading its replies: the server stops receiving from it
/// (TCP throttles it) instead of buffering without bound, serves others meanwhile, and serves
/// it again, every reply in full, once it reads.
#[test]
fn unread_replies_pause_the_receive_and_it_resumes() {
    unread_replies_pause_and_resume(&[]);
}

/// The same where the kernel refuses a receive's byte limit (before 6.17): single-shot
/// receives of one buffer each.
#[test]
fn unread_replies_pause_single_shot_receives_where_the_kernel_has_no_byte_limit() {
    unread_replies_pause_and_resume(&["--io-uring-recv-limit", "false"]);
}

fn unread_replies_pause_and_resume(extra: &[&str]) {
    let mut args = vec!["--threads", "1"];
    args.extend_from_slice(extra);
    let Some(s) = start_uring(&args) else {
        return;
    };
    let mut c = s.connect();
    let value = vec![b'v'; 4096];
    assert_eq!(
        roundtrip(&mut c, &resp(&[b"SET", b"big", &value]), 1)[0],
        b"+OK\r\n"
    );
    let base = s.rss_bytes();
    const BATCHES: usize = 2000;
    const PER_BATCH: usize = 64;
    let mut flood = s.connect();
    let mut writer = flood.try_clone().expect("clone");
    let batch = resp_str(&["GET", "big"]).repeat(PER_BATCH);
    let sender = std::thread::spawn(move || {
        for _ in 0..BATCHES {
            writer.write_all(&batch).expect("write a batch");
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    // The others are served meanwhile, and the server holds little for the flood.
    assert_eq!(cmd(&mut c, &["PING"]), b"+PONG\r\n");
    let growth = s.rss_bytes().saturating_sub(base);
    assert!(growth < 256 * 1024 * 1024, "RSS grew by {growth} bytes");
    // Read every reply: all arrive, in full.
    let reply = value.len() + format!("${}\r\n\r\n", value.len()).len();
    let want = reply * BATCHES * PER_BATCH;
    flood.set_read_timeout(Some(T)).ok();
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    while total < want {
        match flood.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    assert_eq!(total, want);
    sender.join().expect("sender");
    assert_eq!(cmd(&mut flood, &["PING"]), b"+PONG\r\n");
}

#[test]
fn limits_timeout_and_offloaded_commands() {
    let Some(mut s) = start_uring(&[
        "--threads",
        "1",
        "--client-query-buffer-limit",
        "1mb",
        "--timeout",
        "2",
    ]) else {
        return;
    };
    // Query buffer limit.
    let mut q = s.connect();
    let _ = q.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4000000\r\n");
    let chunk = vec![b'z'; 64 * 1024];
    let mut closed = false;
    for _ in 0..64 {
        if q.write_all(&chunk).is_err() {
            closed = true;
            break;
        }
    }
    if !closed {
        q.set_read_timeout(Some(T)).ok();
        let mut b = [0u8; 16];
        closed = matches!(q.read(&mut b), Ok(0) | Err(_));
    }
    assert!(closed, "query buffer limit closes the client");
    // Offloaded KEYS while another client of the same (only) worker is served, replies in
    // order on both.
    let mut a = s.connect();
    let mut b = s.connect();
    let mut batch = Vec::new();
    for i in 0..20000 {
        batch.extend(resp_str(&["SET", &format!("key:{i}"), "x"]));
    }
    let r = roundtrip(&mut a, &batch, 20000);
    assert!(r.iter().all(|r| r == b"+OK\r\n"));
    let mut batch = resp_str(&["KEYS", "key:1999*"]);
    batch.extend(resp_str(&["PING"]));
    a.write_all(&batch).expect("write");
    assert_eq!(cmd(&mut b, &["GET", "key:5"]), b"$1\r\nx\r\n");
    let r = read_replies(&mut a, 2);
    assert!(
        r[0].starts_with(b"*11\r\n"),
        "{}",
        String::from_utf8_lossy(&r[0])
    );
    assert_eq!(r[1], b"+PONG\r\n");
    // CLIENT KILL closes the other client.
    let id = String::from_utf8_lossy(&cmd(&mut b, &["CLIENT", "ID"]))
        .trim_start_matches(':')
        .trim()
        .to_string();
    assert_eq!(cmd(&mut a, &["CLIENT", "KILL", "ID", &id]), b":1\r\n");
    b.set_read_timeout(Some(T)).ok();
    let mut buf = [0u8; 16];
    assert!(
        matches!(b.read(&mut buf), Ok(0) | Err(_)),
        "killed client closed"
    );
    // Idle timeout: a silent client is closed after ~2 s.
    let mut idle = s.connect();
    idle.set_read_timeout(Some(T)).ok();
    let start = Instant::now();
    assert!(matches!(idle.read(&mut buf), Ok(0) | Err(_)));
    let took = start.elapsed();
    // Not before the timeout (a lower bound, which load cannot break); closed at all is the
    // read's own (10 s) liveness bound.
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(s
        .log()
        .iter()
        .any(|l| l.contains("client-query-buffer-limit")));
}

#[test]
fn shutdown_wakes_idle_clients_and_quit_flushes() {
    let Some(mut s) = start_uring(&["--threads", "2", "--shutdown-timeout", "3600"]) else {
        return;
    };
    let mut q = s.connect();
    q.write_all(b"SET a 1\r\nQUIT\r\n").expect("write");
    q.set_read_timeout(Some(T)).ok();
    let mut got = Vec::new();
    let _ = q.read_to_end(&mut got);
    assert_eq!(got, b"+OK\r\n+OK\r\n");
    let mut idle: Vec<TcpStream> = (0..6).map(|_| s.connect()).collect();
    for c in idle.iter_mut() {
        assert_eq!(roundtrip(c, b"PING\r\n", 1)[0], b"+PONG\r\n");
    }
    idle[0]
        .write_all(b"*2\r\n$3\r\nGET\r\n")
        .expect("half a request");
    let status = s
        .terminate(Duration::from_secs(60))
        .expect("exits without waiting for the idle clients");
    assert_eq!(status.code(), Some(0));
    for c in idle.iter_mut() {
        let mut buf = [0u8; 16];
        c.set_read_timeout(Some(T)).ok();
        assert_eq!(c.read(&mut buf).unwrap_or(0), 0, "connection closed");
    }
}

#[test]
fn maxclients_on_uring() {
    let Some(s) = start_uring(&["--threads", "2", "--maxclients", "3"]) else {
        return;
    };
    let mut held: Vec<TcpStream> = (0..3).map(|_| s.connect()).collect();
    for c in held.iter_mut() {
        assert_eq!(roundtrip(c, b"PING\r\n", 1)[0], b"+PONG\r\n");
    }
    let mut extra = s.connect();
    extra.set_read_timeout(Some(T)).ok();
    let mut got = Vec::new();
    let _ = extra.read_to_end(&mut got);
    assert_eq!(got, b"-ERR max number of clients reached\r\n");
    held.pop();
    let deadline = Instant::now() + T;
    loop {
        assert!(
            Instant::now() < deadline,
            "a closed client's place is not released"
        );
        let mut c = s.connect();
        c.set_read_timeout(Some(T)).ok();
        if roundtrip(&mut c, b"PING\r\n", 1)[0] == b"+PONG\r\n" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn falls_back_to_epoll_when_setup_fails() {
    let mut s = Server::start(&["--io-backend", "io_uring", "--io-uring-fail-setup", "true"]);
    let mut log = String::new();
    shardcache_tests::wait_until("the ready line", T, || {
        log = s.log().join("\n");
        log.contains("ready to accept connections")
    });
    assert!(log.contains("falling back to epoll"), "{log}");
    assert!(log.contains("io=\"epoll\""), "{log}");
    let mut c = s.connect();
    let r = roundtrip(&mut c, b"SET a 1\r\nGET a\r\n", 2);
    assert_eq!(r, [b"+OK\r\n".to_vec(), b"$1\r\n1\r\n".to_vec()]);
}

#[test]
fn auto_prefers_io_uring_and_falls_back_quietly() {
    // The default: io_uring where it can be set up, and INFO says which backend runs.
    let mut s = Server::start(&["--io-backend", "auto"]);
    let mut log = String::new();
    shardcache_tests::wait_until("the ready line", T, || {
        log = s.log().join("\n");
        log.contains("ready to accept connections")
    });
    let api = if log.contains("io=\"io_uring\"") {
        "io_uring"
    } else {
        shardcache_tests::skip(&format!("io_uring unavailable here: {log}"));
        "epoll"
    };
    let mut c = s.connect();
    let info = String::from_utf8_lossy(&cmd(&mut c, &["INFO", "server"])).into_owned();
    assert!(
        info.contains(&format!("multiplexing_api:{api}\r\n")),
        "{info}"
    );

    // Where io_uring cannot be set up: epoll, said once at info level, no warning.
    let mut s = Server::start(&["--io-backend", "auto", "--io-uring-fail-setup", "true"]);
    shardcache_tests::wait_until("the ready line", T, || {
        log = s.log().join("\n");
        log.contains("ready to accept connections")
    });
    assert!(
        log.contains("io_uring is unavailable; using epoll"),
        "{log}"
    );
    assert!(!log.contains("falling back"), "{log}");
    assert!(log.contains("io=\"epoll\""), "{log}");
    let mut c = s.connect();
    let info = String::from_utf8_lossy(&cmd(&mut c, &["INFO", "server"])).into_owned();
    assert!(info.contains("multiplexing_api:epoll\r\n"), "{info}");
    let r = roundtrip(&mut c, b"SET a 1\r\nGET a\r\n", 2);
    assert_eq!(r, [b"+OK\r\n".to_vec(), b"$1\r\n1\r\n".to_vec()]);
}

/// Sends are write-behind on io_uring (the connection goes on before its send completes): a
/// client that half-closes after its last requests still gets every reply before the end of
/// the stream. Here the connection meets the end of the stream and ends while its last send,
/// 32 MiB (more than the socket buffers hold), is still going out, and the client starts
/// reading only after that: the rest leaves in sends issued after the connection ended.
#[test]
fn half_closed_client_gets_its_last_replies() {
    let Some(s) = start_uring(&[]) else { return };
    let mut c = s.connect();
    let value = "v".repeat(32 << 20);
    assert_eq!(cmd(&mut c, &["SET", "big", &value]), b"+OK\r\n");
    c.write_all(&resp_str(&["PING"])).expect("write");
    c.write_all(&resp_str(&["GET", "big"])).expect("write");
    c.shutdown(std::net::Shutdown::Write).expect("half-close");
    std::thread::sleep(Duration::from_millis(300));
    c.set_read_timeout(Some(T)).ok();
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("read to the end");
    let mut want = b"+PONG\r\n".to_vec();
    want.extend_from_slice(format!("${}\r\n{value}\r\n", value.len()).as_bytes());
    assert_eq!(got.len(), want.len());
    assert!(got == want, "replies differ");
}
