//! What operators reach for: `SHUTDOWN` (and `redis-cli shutdown`), and several instances on
//! one host that differ only by `--port` (the metrics port follows it: port + 3000).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use shardcache_tests::{read_replies, redis_cli_output, require, resp, Server};

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
    // Started as an operator would: only --port differs (the harness then leaves the metrics
    // address at its default, port + 3000).
    let instances: Vec<Server> = ports
        .iter()
        .map(|p| Server::start(&["--port", &p.to_string()]))
        .collect();
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
    // The old form, by the peer address as CLIENT LIST shows it (a reply first: the server
    // has registered the connection).
    assert_eq!(cmd(&mut other, &["PING"]), "+PONG\r\n");
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

#[test]
fn slowlog_texts_match_redis() {
    require!("redis-server");
    shardcache_tests::compare_script(
        "slowlog",
        "
        CONFIG SET slowlog-log-slower-than -1
        SLOWLOG RESET
        SLOWLOG LEN
        SLOWLOG GET
        SLOWLOG GET -1
        SLOWLOG GET -2
        SLOWLOG GET x
        SLOWLOG GET 1 2
        SLOWLOG LEN x
        SLOWLOG RESET x
        SLOWLOG HELP
        SLOWLOG NOPE
        SLOWLOG
        CONFIG GET slowlog-max-len
        CONFIG SET slowlog-max-len x
        CONFIG SET slowlog-max-len -1
        CONFIG SET slowlog-log-slower-than abc
        CONFIG SET slowlog-max-len 128
        CONFIG SET slowlog-log-slower-than 10000
        CONFIG GET slowlog-log-slower-than
        ",
    );
}

#[test]
fn slowlog_records_commands_as_redis_formats_them() {
    let server = Server::start(&["--slowlog-log-slower-than", "0"]);
    let mut c = server.connect();
    assert_eq!(cmd(&mut c, &["CLIENT", "SETNAME", "app"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["SLOWLOG", "RESET"]), "+OK\r\n");
    cmd(&mut c, &["SET", "k", "v"]);
    let me = c.local_addr().unwrap().to_string();
    let r = cmd(&mut c, &["SLOWLOG", "GET", "1"]);
    // [[id, time, micros, [SET, k, v], addr, name]]
    let lines: Vec<&str> = r.split("\r\n").collect();
    assert_eq!(lines[0], "*1", "{r}");
    assert_eq!(lines[1], "*6", "{r}");
    assert!(lines[2].starts_with(':') && lines[3].starts_with(':') && lines[4].starts_with(':'));
    assert_eq!(
        &lines[5..12],
        ["*3", "$3", "SET", "$1", "k", "$1", "v"],
        "{r}"
    );
    assert_eq!(lines[13], me, "{r}");
    assert_eq!(lines[15], "app", "{r}");
    // Truncation: 32 arguments at most, 128 bytes each.
    let long = "x".repeat(200);
    let mut args: Vec<&str> = vec!["MSET"];
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    for k in &keys {
        args.push(k);
        args.push(&long);
    }
    cmd(&mut c, &args);
    let r = cmd(&mut c, &["SLOWLOG", "GET", "1"]);
    assert!(r.contains("... (72 more bytes)"), "{r}");
    assert!(r.contains("... (50 more arguments)"), "{r}");
    // A negative threshold logs nothing; -1 lists everything.
    cmd(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    let n = cmd(&mut c, &["SLOWLOG", "LEN"]);
    cmd(&mut c, &["GET", "k"]);
    assert_eq!(cmd(&mut c, &["SLOWLOG", "LEN"]), n);
    assert!(cmd(&mut c, &["SLOWLOG", "GET", "-1"])
        .starts_with(&format!("*{}", n.trim_start_matches(':').trim())));
}

/// (`CONFIG SET port` differs on purpose: Redis rebinds, shardcache refuses, see README.)
#[test]
fn config_set_of_runtime_options_matches_redis() {
    require!("redis-server");
    shardcache_tests::compare_script(
        "config set",
        "
        CONFIG SET timeout 30
        CONFIG GET timeout
        CONFIG SET timeout -1
        CONFIG SET timeout x
        CONFIG SET timeout 0
        CONFIG SET maxclients 0
        CONFIG SET maxclients 500
        CONFIG GET maxclients
        CONFIG SET maxclients 10000
        CONFIG SET protected-mode no
        CONFIG GET protected-mode
        CONFIG SET protected-mode maybe
        CONFIG SET protected-mode yes
        CONFIG SET client-query-buffer-limit 2mb
        CONFIG GET client-query-buffer-limit
        CONFIG SET client-query-buffer-limit 1gb
        CONFIG SET client-output-buffer-limit bogus
        CONFIG SET client-output-buffer-limit normal 1mb
        CONFIG SET client-output-buffer-limit bogus 1 2 3
        CONFIG SET client-output-buffer-limit normal x 0 0
        CONFIG SET databases 4
        CONFIG SET nosuchoption 1
        ",
    );
}

#[test]
fn runtime_limits_take_effect() {
    let server = Server::start(&[]);
    let mut admin = server.connect();
    // maxclients: new connections beyond it are refused with Redis's text.
    assert_eq!(
        cmd(&mut admin, &["CONFIG", "SET", "maxclients", "1"]),
        "+OK\r\n"
    );
    let mut extra = server.connect();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = extra.read_to_end(&mut buf);
    assert!(
        String::from_utf8_lossy(&buf).starts_with("-ERR max number of clients reached"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    assert_eq!(
        cmd(&mut admin, &["CONFIG", "SET", "maxclients", "100"]),
        "+OK\r\n"
    );
    // client-output-buffer-limit: a reply above the normal class's hard limit closes.
    assert_eq!(
        cmd(
            &mut admin,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "normal 1mb 0 0"
            ]
        ),
        "+OK\r\n"
    );
    let mut c = server.connect();
    let big = "x".repeat(600 * 1024);
    cmd(&mut c, &["SET", "a", &big]);
    cmd(&mut c, &["SET", "b", &big]);
    c.write_all(&resp(&[b"MGET", b"a", b"b"])).unwrap();
    let mut buf = Vec::new();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.read_to_end(&mut buf);
    assert!(buf.is_empty(), "closed without the oversized reply");
    // timeout: an idle client is closed after it.
    assert_eq!(
        cmd(&mut admin, &["CONFIG", "SET", "timeout", "1"]),
        "+OK\r\n"
    );
    let mut idle = server.connect();
    assert_eq!(cmd(&mut idle, &["PING"]), "+PONG\r\n");
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = idle.read_to_end(&mut buf);
    assert!(buf.is_empty());
}

#[test]
fn command_lists_renamed_commands_by_their_new_names_and_hides_disabled_ones() {
    let server = Server::start(&[
        "--rename-command",
        "keys",
        "admin-keys",
        "--disable-command",
        "flushall",
    ]);
    let mut c = server.connect();
    let list = cmd(&mut c, &["COMMAND", "LIST"]);
    assert!(list.contains("\r\nadmin-keys\r\n"), "{list}");
    assert!(
        !list.contains("\r\nkeys\r\n") && !list.contains("\r\nflushall\r\n"),
        "{list}"
    );
    let n: usize = list.lines().next().unwrap()[1..].parse().unwrap();
    assert_eq!(cmd(&mut c, &["COMMAND", "COUNT"]), format!(":{n}\r\n"));
    let info = cmd(
        &mut c,
        &["COMMAND", "INFO", "ADMIN-KEYS", "keys", "flushall"],
    );
    assert!(
        info.starts_with("*3\r\n*10\r\n$10\r\nadmin-keys\r\n"),
        "{info}"
    );
    assert!(info.ends_with("*-1\r\n*-1\r\n"), "{info}");
    let all = cmd(&mut c, &["COMMAND"]);
    assert!(all.starts_with(&format!("*{n}\r\n")));
    assert!(!all.contains("$8\r\nflushall\r\n"));
    assert_eq!(
        cmd(&mut c, &["COMMAND", "GETKEYS", "admin-keys", "x"]),
        "-ERR The command has no key arguments\r\n"
    );
}

/// (`LATENCY HELP` differs on purpose: shardcache has no `DOCTOR` or `GRAPH`.)
#[test]
fn latency_texts_match_redis() {
    require!("redis-server");
    shardcache_tests::compare_script(
        "latency",
        "
        LATENCY RESET
        LATENCY LATEST
        LATENCY HISTORY command
        LATENCY HISTORY
        LATENCY RESET command nothing
        LATENCY LATEST x
        LATENCY NOPE
        CONFIG GET latency-monitor-threshold
        CONFIG SET latency-monitor-threshold -1
        CONFIG SET latency-monitor-threshold x
        CONFIG SET latency-monitor-threshold 0
        ",
    );
}

#[test]
fn latency_monitor_and_histogram_report_what_ran() {
    let server = Server::start(&["--latency-monitor-threshold", "1"]);
    let mut c = server.connect();
    // A command slower than 1 ms: KEYS over many keys (a debug build, at least).
    let mut mset = vec!["MSET".to_string()];
    for i in 0..20_000 {
        mset.push(format!("key:{i}"));
        mset.push("v".into());
    }
    let args: Vec<&str> = mset.iter().map(String::as_str).collect();
    cmd(&mut c, &args);
    for _ in 0..3 {
        cmd(&mut c, &["KEYS", "*9*9*"]);
    }
    let latest = cmd(&mut c, &["LATENCY", "LATEST"]);
    assert!(latest.contains("$7\r\ncommand\r\n"), "{latest}");
    let history = cmd(&mut c, &["LATENCY", "HISTORY", "command"]);
    // One sample per second in which a slow command ran: [time, ms] pairs.
    assert!(
        !history.starts_with("*0") && history.contains("\r\n*2\r\n:"),
        "{history}"
    );
    assert_eq!(cmd(&mut c, &["LATENCY", "RESET"]), ":1\r\n");
    // Histograms: calls per command and cumulative counts.
    let h = cmd(&mut c, &["LATENCY", "HISTOGRAM", "keys", "mset"]);
    // A map of two commands (RESP2: an array of four).
    assert!(h.starts_with("*4\r\n"), "{h}");
    assert!(
        h.contains("$4\r\nkeys\r\n*4\r\n$5\r\ncalls\r\n:3\r\n$14\r\nhistogram_usec\r\n"),
        "{h}"
    );
}

fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if s.read(&mut b).unwrap_or(0) == 0 {
            break;
        }
        line.push(b[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

#[test]
fn monitor_streams_commands_as_redis_formats_them() {
    let server = Server::start(&[]);
    let mut mon = server.connect();
    mon.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(cmd(&mut mon, &["MONITOR"]), "+OK\r\n");
    let mut c = server.connect();
    let addr = c.local_addr().unwrap().to_string();
    cmd(&mut c, &["SELECT", "2"]);
    cmd(&mut c, &["SET", "k", "a \"b\"\n\u{1}"]);
    cmd(&mut c, &["CONFIG", "GET", "maxmemory"]);
    cmd(&mut c, &["GET", "k"]);
    let lines: Vec<String> = (0..3).map(|_| read_line(&mut mon)).collect();
    // +<secs>.<micros> [<db> <addr>] "arg" ...; CONFIG (admin) is not shown.
    assert!(
        lines[0].starts_with('+') && lines[0].contains(&format!(" [2 {addr}] \"SELECT\" \"2\"")),
        "{lines:?}"
    );
    assert!(
        lines[1].ends_with(&format!(
            "[2 {addr}] \"SET\" \"k\" \"a \\\"b\\\"\\n\\x01\"\r\n"
        )),
        "{lines:?}"
    );
    assert!(
        lines[2].ends_with(&format!("[2 {addr}] \"GET\" \"k\"\r\n")),
        "{lines:?}"
    );
    // The monitor can still quit.
    assert_eq!(cmd(&mut mon, &["QUIT"]), "+OK\r\n");
}

#[test]
fn a_monitor_that_does_not_read_is_dropped_not_buffered() {
    let server = Server::start(&["--client-output-buffer-limit", "1mb"]);
    let mut mon = server.connect();
    assert_eq!(cmd(&mut mon, &["MONITOR"]), "+OK\r\n");
    // The monitor never reads; another client sends ~24 MB of commands.
    let mut c = server.connect();
    let v = "x".repeat(4096);
    for i in 0..6000 {
        assert_eq!(cmd(&mut c, &["SET", &format!("k{i}"), &v]), "+OK\r\n");
    }
    // Dropped once its backlog in the server passed 1 MB: it reads what the kernel's socket
    // buffers already held (a few MB on loopback), then end of file, not all 24 MB.
    mon.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sink = Vec::new();
    let _ = mon.read_to_end(&mut sink);
    // Measured: 4.8 MiB read, RSS 38 MiB (24 MB of it the values stored); bounds about twice.
    eprintln!(
        "unread monitor: read {} KiB, server RSS {} KiB",
        sink.len() / 1024,
        server.rss_bytes() / 1024
    );
    assert!(sink.len() < 12 << 20, "read {} bytes", sink.len());
    assert!(
        server.rss_bytes() < 80 << 20,
        "RSS {} KiB",
        server.rss_bytes() / 1024
    );
}
