//! The metrics endpoint's HTTP side: a malformed request gets 400, a wrong method 405, an
//! unknown path 404; at most `MAX_SCRAPES` exchanges run at once (the next connection gets
//! 503 at once); exchanges in flight do not hold up the server's shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use shardcache_tests::Server;

/// Sends `request` raw and returns the status line of the answer.
fn status(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(request).expect("write");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn bad_requests_get_http_errors() {
    let s = Server::start_with_metrics(&[]);
    let port = s.metrics_port();
    let ok = status(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(ok, "HTTP/1.1 200 OK");
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /metrics\r\n\r\n",
        b"GET metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    ] {
        assert_eq!(status(port, bad), "HTTP/1.1 400 Bad Request", "{bad:?}");
    }
    assert_eq!(
        status(port, b"POST /metrics HTTP/1.1\r\n\r\n"),
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert_eq!(
        status(port, b"GET /nope HTTP/1.1\r\n\r\n"),
        "HTTP/1.1 404 Not Found"
    );
}

#[test]
fn concurrent_exchanges_are_bounded_and_end_with_the_server() {
    let mut s = Server::start_with_metrics(&[]);
    let port = s.metrics_port();
    // Four connections that send half a request and wait: they hold every slot.
    let mut hung: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            c.write_all(b"GET /metrics HTTP/1.1\r\n").expect("write");
            c
        })
        .collect();
    // The server has taken them all once a fifth is refused; until then a slot may still
    // have been free (the accept loop is asynchronous), so poll.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = status(port, b"GET /metrics HTTP/1.1\r\n\r\n");
        if st == "HTTP/1.1 503 Service Unavailable" {
            break;
        }
        assert_eq!(st, "HTTP/1.1 200 OK");
        assert!(Instant::now() < deadline, "never refused a fifth exchange");
    }
    // One slot frees up when a hung client goes away.
    drop(hung.remove(0));
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(port, b"GET /metrics HTTP/1.1\r\n\r\n") != "HTTP/1.1 200 OK" {
        assert!(Instant::now() < deadline, "the slot was not released");
    }
    // Three exchanges still hang (each allowed 10 s): SIGTERM does not wait for them.
    let started = Instant::now();
    let st = s.terminate(Duration::from_secs(20)).expect("stopped");
    drop(hung);
    assert!(st.success(), "{st:?}");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "shutdown waited for hung metrics exchanges: {:?}",
        started.elapsed()
    );
}
