//! What operators reach for: `SHUTDOWN` (and `redis-cli shutdown`), and several instances on
//! one host that differ only by `--port` (the metrics port follows it: port + 3000).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shardcache_tests::{read_replies, redis_cli_output, require, resp, shardcache_bin, Server};

fn cmd(s: &mut TcpStream, args: &[&str]) -> String {
    let a: Vec<&[u8]> = args.iter().map(|x| x.as_bytes()).collect();
    s.write_all(&resp(&a)).unwrap();
    String::from_utf8_lossy(&read_replies(s, 1).remove(0)).into_owned()
}

#[test]
fn shutdown_command_stops_gracefully_with_status_0() {
    require!("redis-cli");
    let mut server = Server::start(&[]);
    let mut s = server.connect();
    assert_eq!(
        cmd(&mut s, &["SHUTDOWN", "ABORT"]),
        "-ERR No shutdown in progress.\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["SHUTDOWN", "NOSAVE", "SAVE"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        cmd(&mut s, &["SHUTDOWN", "ABORT", "NOW"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(cmd(&mut s, &["SHUTDOWN", "bogus"]), "-ERR syntax error\r\n");
    assert!(cmd(&mut s, &["SHUTDOWN", "SAVE"]).starts_with("-ERR shardcache has no persistence"));
    assert_eq!(cmd(&mut s, &["MULTI"]), "+OK\r\n");
    assert_eq!(
        cmd(&mut s, &["SHUTDOWN"]),
        "-ERR Command not allowed inside a transaction\r\n"
    );
    assert!(cmd(&mut s, &["EXEC"]).starts_with("-EXECABORT"));
    assert_eq!(cmd(&mut s, &["SET", "still", "here"]), "+OK\r\n");
    // What an operator types.
    let out = redis_cli_output(server.port(), &["shutdown"], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let status = server.wait(Duration::from_secs(10)).expect("server exits");
    assert_eq!(status.code(), Some(0), "{:?}", server.log());
    assert!(server
        .log()
        .iter()
        .any(|l| l.contains("SHUTDOWN requested by a client")));
}

#[test]
fn shutdown_needs_auth_when_a_password_is_set() {
    let mut server = Server::start(&["--requirepass", "secret"]);
    let mut s = server.connect();
    assert!(cmd(&mut s, &["SHUTDOWN"]).starts_with("-NOAUTH"));
    assert_eq!(cmd(&mut s, &["AUTH", "secret"]), "+OK\r\n");
    s.write_all(&resp(&[b"SHUTDOWN", b"NOSAVE"])).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "no reply, the connection closes");
    assert_eq!(
        server.wait(Duration::from_secs(10)).and_then(|s| s.code()),
        Some(0)
    );
}

/// A port `p` such that `p` and `p + 3000` are both free right now.
fn port_pair() -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p < 60_000 && TcpListener::bind(("127.0.0.1", p + 3000)).is_ok() {
            return p;
        }
    }
    panic!("no pair of free ports");
}

struct Instance(Child);

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ping(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port))
        .ok()
        .map(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2))).ok();
            cmd(&mut s, &["PING"]) == "+PONG\r\n"
        })
        .unwrap_or(false)
}

fn metrics(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn instances_differing_only_by_port_run_side_by_side() {
    let ports: Vec<u16> = (0..3).map(|_| port_pair()).collect();
    let instances: Vec<Instance> = ports
        .iter()
        .map(|p| {
            Instance(
                Command::new(shardcache_bin())
                    .args(["--port", &p.to_string(), "--log-level", "warn"])
                    .env_remove("SHARDCACHE_METRICS_ADDR")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ports.iter().all(|&p| ping(p)) {
        assert!(Instant::now() < deadline, "instances did not all start");
        std::thread::sleep(Duration::from_millis(50));
    }
    for (i, &p) in ports.iter().enumerate() {
        let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
        cmd(&mut s, &["SET", &format!("only-on-{i}"), "v"]);
        let info = cmd(&mut s, &["INFO", "server"]);
        assert!(
            info.contains(&format!("metrics_port:{}\r\n", p + 3000)),
            "{info}"
        );
    }
    for (i, &p) in ports.iter().enumerate() {
        let body = metrics(p + 3000);
        assert!(
            body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
            "{body}"
        );
        // Each endpoint is its own instance's: one key each.
        assert!(
            body.lines().any(|l| l == "shardcache_keys 1"),
            "instance {i}: {}",
            body.lines()
                .filter(|l| l.starts_with("shardcache_keys"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    drop(instances);
}

#[test]
fn port_0_gives_an_ephemeral_metrics_port_and_an_explicit_taken_one_fails() {
    let mut s = Server::start(&["--metrics-addr", "127.0.0.1:0"]);
    let mut c = s.connect();
    let info = cmd(&mut c, &["INFO", "server"]);
    let line = info
        .lines()
        .find(|l| l.starts_with("metrics_port:"))
        .expect("metrics_port line");
    let port: u16 = line["metrics_port:".len()..].trim().parse().unwrap();
    assert!(port > 0);
    assert!(metrics(port).contains("shardcache_keys"));
    drop(c);
    s.terminate(Duration::from_secs(10));
    // An explicit address that is taken fails at start with one clear line.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = Server::try_start(&["--metrics-addr", &addr])
        .err()
        .expect("must fail");
    assert!(err.contains(&addr), "{err}");
}

/// `CLIENT NO-TOUCH` and `CLIENT SETINFO` are Redis 7.2's (7.0 answers "unknown
/// subcommand"), so they are tested on their own below.
#[test]
fn client_kill_pause_and_flags_match_redis_texts() {
    require!("redis-server");
    shardcache_tests::compare_script(
        "client kill/pause/no-evict/no-touch",
        "
        CLIENT KILL 1.2.3.4:5
        CLIENT KILL
        CLIENT KILL ID
        CLIENT KILL ID 0
        CLIENT KILL ID -3
        CLIENT KILL ID x
        CLIENT KILL ID 999999
        CLIENT KILL ADDR 1.2.3.4:5
        CLIENT KILL LADDR 1.2.3.4:5
        CLIENT KILL TYPE bogus
        CLIENT KILL TYPE pubsub
        CLIENT KILL USER nobody
        CLIENT KILL SKIPME maybe
        CLIENT KILL FOO bar
        CLIENT PAUSE
        CLIENT PAUSE x
        CLIENT PAUSE -1
        CLIENT PAUSE 10 BOGUS
        CLIENT PAUSE 10 WRITE
        CLIENT UNPAUSE
        CLIENT UNPAUSE x
        CLIENT NO-EVICT on
        CLIENT NO-EVICT off
        CLIENT NO-EVICT maybe
        ",
    );
}

#[test]
fn client_kill_by_id_and_address_closes_those_connections() {
    let server = Server::start(&[]);
    let mut me = server.connect();
    let mut victim = server.connect();
    let mut other = server.connect();
    let vid = cmd(&mut victim, &["CLIENT", "ID"]);
    let vid = vid.trim_start_matches(':').trim().to_string();
    assert_eq!(cmd(&mut me, &["CLIENT", "KILL", "ID", &vid]), ":1\r\n");
    let mut rest = Vec::new();
    victim
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        victim.read_to_end(&mut rest).unwrap_or(0),
        0,
        "killed: closed"
    );
    // The old form, by the peer address as CLIENT LIST shows it.
    let addr = other.local_addr().unwrap().to_string();
    assert_eq!(cmd(&mut me, &["CLIENT", "KILL", &addr]), "+OK\r\n");
    let mut rest = Vec::new();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(other.read_to_end(&mut rest).unwrap_or(0), 0);
    // SKIPME yes (the default) spares the caller; the caller is still served.
    let my_addr = me.local_addr().unwrap().to_string();
    assert_eq!(
        cmd(&mut me, &["CLIENT", "KILL", "ADDR", &my_addr]),
        ":0\r\n"
    );
    assert_eq!(cmd(&mut me, &["PING"]), "+PONG\r\n");
    assert_eq!(
        cmd(
            &mut me,
            &["CLIENT", "KILL", "ADDR", &my_addr, "SKIPME", "no"]
        ),
        ":1\r\n"
    );
    let mut rest = Vec::new();
    let _ = me.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

#[test]
fn client_pause_write_holds_writes_until_unpause() {
    let server = Server::start(&[]);
    let mut admin = server.connect();
    let mut writer = server.connect();
    assert_eq!(
        cmd(&mut admin, &["CLIENT", "PAUSE", "60000", "WRITE"]),
        "+OK\r\n"
    );
    // Reads go on.
    assert_eq!(cmd(&mut writer, &["GET", "k"]), "$-1\r\n");
    writer.write_all(&resp(&[b"SET", b"k", b"v"])).unwrap();
    writer
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(writer.read(&mut buf).is_err(), "the SET waits while paused");
    assert_eq!(cmd(&mut admin, &["CLIENT", "UNPAUSE"]), "+OK\r\n");
    writer
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(read_replies(&mut writer, 1).remove(0), b"+OK\r\n");
    assert_eq!(cmd(&mut admin, &["GET", "k"]), "$1\r\nv\r\n");
}

#[test]
fn no_touch_setinfo_and_flags_show_in_client_list() {
    let server = Server::start(&["--maxmemory-policy", "allkeys-lfu"]);
    let mut c = server.connect();
    cmd(&mut c, &["SET", "k", "v"]);
    let freq = |c: &mut TcpStream| cmd(c, &["OBJECT", "FREQ", "k"]);
    let start = freq(&mut c);
    assert_eq!(cmd(&mut c, &["CLIENT", "NO-TOUCH", "on"]), "+OK\r\n");
    for _ in 0..3 {
        cmd(&mut c, &["GET", "k"]);
    }
    assert_eq!(
        freq(&mut c),
        start,
        "no-touch reads leave the LFU counter alone"
    );
    cmd(&mut c, &["TOUCH", "k"]);
    assert_ne!(freq(&mut c), start, "TOUCH still touches");
    assert_eq!(cmd(&mut c, &["CLIENT", "NO-EVICT", "on"]), "+OK\r\n");
    assert_eq!(
        cmd(&mut c, &["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]),
        "+OK\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CLIENT", "SETINFO", "lib-ver", "5.0.1"]),
        "+OK\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CLIENT", "SETINFO", "bogus", "x"]),
        "-ERR Unrecognized option 'bogus'\r\n"
    );
    assert!(
        cmd(&mut c, &["CLIENT", "SETINFO", "lib-name", "a b"]).starts_with("-ERR lib-name cannot")
    );
    let info = cmd(&mut c, &["CLIENT", "INFO"]);
    assert!(info.contains(" flags=eT "), "{info}");
    assert!(info.contains(" lib-name=redis-py lib-ver=5.0.1"), "{info}");
    let list = cmd(&mut c, &["CLIENT", "LIST"]);
    assert!(list.contains("lib-name=redis-py"), "{list}");
}
