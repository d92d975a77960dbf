//! Shutdown under load: clients write continuously; SIGTERM arrives; every reply a client
//! receives is complete (each byte stream ends on a RESP reply boundary), every acknowledged
//! write is readable by a client connected until the close, and the exit code is 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shardcache_tests::{reply_len, resp_str, wait_until, Server};

const WRITERS: usize = 8;
const BATCH: u64 = 32;

fn value(w: usize, seq: u64) -> String {
    format!("val:{w}:{seq}:{}", "p".repeat(512))
}

/// Splits `bytes` into complete replies; returns them and the length of an incomplete tail.
fn split_replies(mut bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut out = Vec::new();
    while let Some(n) = reply_len(bytes) {
        out.push(bytes[..n].to_vec());
        bytes = &bytes[n..];
    }
    (out, bytes.len())
}

/// Pipelines `SET w:{w}:{seq}` in batches, counting acknowledgements, until the server closes.
/// Returns everything received and the number of acknowledged writes.
fn writer(port: u16, w: usize, acked: Arc<AtomicU64>) -> (Vec<u8>, u64) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut all = Vec::new();
    let mut pending = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut seq = 0u64;
    'outer: loop {
        let mut req = Vec::new();
        for i in 0..BATCH {
            req.extend(resp_str(&[
                "SET",
                &format!("w:{w}:{}", seq + i),
                &value(w, seq + i),
            ]));
        }
        if c.write_all(&req).is_err() {
            break;
        }
        let mut got = 0;
        while got < BATCH {
            if let Some(n) = reply_len(&pending) {
                pending.drain(..n);
                got += 1;
                acked.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => break 'outer,
                Ok(n) => {
                    all.extend_from_slice(&chunk[..n]);
                    pending.extend_from_slice(&chunk[..n]);
                }
            }
        }
        seq += BATCH;
    }
    (all, acked.load(Ordering::SeqCst))
}

/// Reads back acknowledged writes until the server closes; returns every byte received and
/// the requests' expected replies, in order.
fn reader(
    port: u16,
    acked: Vec<Arc<AtomicU64>>,
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut all = Vec::new();
    let mut want = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut req = Vec::new();
        let mut expect = 0;
        for (w, a) in acked.iter().enumerate() {
            let n = a.load(Ordering::SeqCst);
            for k in [n.saturating_sub(1), round % n.max(1)] {
                if n == 0 {
                    continue;
                }
                req.extend(resp_str(&["GET", &format!("w:{w}:{k}")]));
                let v = value(w, k);
                want.push(format!("${}\r\n{v}\r\n", v.len()).into_bytes());
                expect += 1;
            }
        }
        if c.write_all(&req).is_err() {
            break;
        }
        let before = split_replies(&all).0.len();
        let mut closed = false;
        while split_replies(&all).0.len() < before + expect {
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    closed = true;
                    break;
                }
                Ok(n) => all.extend_from_slice(&chunk[..n]),
            }
        }
        if closed {
            break;
        }
        round += 1;
        rounds.store(round, Ordering::SeqCst);
    }
    (all, want)
}

#[test]
fn sigterm_under_load_truncates_nothing() {
    let mut server = Server::start(&[]);
    let port = server.port();
    let acked: Vec<Arc<AtomicU64>> = (0..WRITERS).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let a = Arc::clone(&acked[w]);
            std::thread::spawn(move || writer(port, w, a))
        })
        .collect();
    // Every writer is under way (several batches acknowledged)...
    wait_until("every writer acknowledged", Duration::from_secs(60), || {
        acked.iter().all(|a| a.load(Ordering::SeqCst) >= 4 * BATCH)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let rd = {
        let acked = acked.clone();
        let (stop, rounds) = (Arc::clone(&stop), Arc::clone(&rounds));
        std::thread::spawn(move || reader(port, acked, stop, rounds))
    };
    // ...and so is the reader, when SIGTERM arrives.
    wait_until("the reader's first rounds", Duration::from_secs(60), || {
        rounds.load(Ordering::SeqCst) >= 4
    });
    let status = server.terminate(Duration::from_secs(15));
    stop.store(true, Ordering::Relaxed);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit status {status:?}"
    );

    let mut total = 0;
    for (w, t) in writers.into_iter().enumerate() {
        let (bytes, acks) = t.join().expect("writer");
        let (replies, tail) = split_replies(&bytes);
        assert_eq!(tail, 0, "writer {w}: a truncated reply at the end");
        assert_eq!(replies.len() as u64, acks, "writer {w}");
        assert!(replies.iter().all(|r| r == b"+OK\r\n"), "writer {w}");
        total += acks;
    }
    let (bytes, want) = rd.join().expect("reader");
    let (replies, tail) = split_replies(&bytes);
    assert_eq!(tail, 0, "reader: a truncated reply at the end");
    assert!(
        !replies.is_empty(),
        "the reader was served before the close"
    );
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(
            r, &want[i],
            "reader reply {i}: an acknowledged write is not readable"
        );
    }
    eprintln!(
        "{total} writes acknowledged by {WRITERS} writers; {} reads of acknowledged keys, all correct; exit 0",
        replies.len()
    );
}

/// `--shutdown-timeout` bounds a stop that a client holds up: it pipelines `GET`s of a 1 MiB
/// value and never reads, so its connection is stuck writing when SIGTERM arrives. The server
/// waits the timeout, logs that it closes the connections still open, and exits 0; a client
/// that does read is served until the stop.
#[test]
fn shutdown_timeout_closes_a_client_that_never_reads() {
    let mut server = Server::start(&["--shutdown-timeout", "1"]);
    let mut c = server.connect();
    let big = vec![b'v'; 1 << 20];
    let set = shardcache_tests::resp(&[b"SET", b"big", &big]);
    assert_eq!(shardcache_tests::roundtrip(&mut c, &set, 1)[0], b"+OK\r\n");
    // Write GETs until a write blocks: the server has stopped reading this client because
    // its replies are not being read.
    let mut stuck = server.connect();
    stuck
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let batch = resp_str(&["GET", "big"]).repeat(64);
    let mut blocked = false;
    for _ in 0..100_000 {
        if let Err(e) = stuck.write_all(&batch) {
            assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{e}"
            );
            blocked = true;
            break;
        }
    }
    assert!(
        blocked,
        "the server kept reading from a client that never reads"
    );
    assert_eq!(
        shardcache_tests::roundtrip(&mut c, b"PING\r\n", 1)[0],
        b"+PONG\r\n"
    );
    let status = server
        .terminate(Duration::from_secs(60))
        .expect("the server exits once the shutdown timeout has passed");
    assert_eq!(status.code(), Some(0));
    let log = server.log().join("\n");
    assert!(
        log.contains("connections still open at the shutdown deadline; closing them"),
        "{log}"
    );
    assert!(log.contains("shardcache stopped"), "{log}");
    drop(stuck);
}
