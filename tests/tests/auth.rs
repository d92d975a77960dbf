//! Authentication and exposure: `--requirepass` (NOAUTH, WRONGPASS, AUTH, HELLO AUTH,
//! `redis-cli -a`, `CONFIG SET requirepass`), protected mode, `--rename-command` and
//! `--disable-command`, compared byte for byte with a real `redis-server` where Redis has the
//! same feature.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use shardcache_tests::{
    exchange_keep_open, read_replies, redis_cli_output, require, resp_str, roundtrip, RedisServer,
    Server,
};

const T: Duration = Duration::from_secs(5);

/// Sends `script` (one request per line, words split on spaces) on one connection to each port
/// and returns the replies of each, in order.
fn replies(port: u16, script: &[&str]) -> Vec<String> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    script
        .iter()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            c.write_all(&resp_str(&words)).expect("write");
            let r = read_replies(&mut c, 1).remove(0);
            String::from_utf8_lossy(&r).into_owned()
        })
        .collect()
}

fn assert_same(ours: u16, theirs: u16, script: &[&str]) {
    let a = replies(ours, script);
    let b = replies(theirs, script);
    for ((line, x), y) in script.iter().zip(&a).zip(&b) {
        assert_eq!(x, y, "{line}: shardcache {x:?} vs redis {y:?}");
    }
}

/// Before AUTH: Redis's order (unknown command, arity, then NOAUTH), AUTH's and HELLO's error
/// texts, and the state after a failed AUTH, all as in Redis 7.
#[test]
fn noauth_and_wrongpass_match_redis() {
    require!("redis-server");
    // The harness waits for PONG, which a password would prevent: set it once started.
    let redis = RedisServer::start(&[]);
    let mut c = TcpStream::connect(("127.0.0.1", redis.port())).expect("connect");
    let r = roundtrip(
        &mut c,
        &resp_str(&["CONFIG", "SET", "requirepass", "s3cret"]),
        1,
    );
    assert_eq!(r[0], b"+OK\r\n");
    let ours = Server::start(&["--requirepass", "s3cret"]);
    assert_same(
        ours.port(),
        redis.port(),
        &[
            "GET k",
            "GET",
            "FOO bar",
            "SET k v",
            "PING",
            "CONFIG GET maxmemory",
            "AUTH wrong",
            "AUTH default wrong",
            "AUTH bob s3cret",
            "AUTH Default s3cret",
            "AUTH a b c",
            "HELLO",
            "HELLO 3",
            "HELLO 3 AUTH default wrong",
            "HELLO 4 AUTH default s3cret",
            "HELLO 3 SETNAME x",
            "GET k",
            "AUTH s3cret",
            "GET k",
            "AUTH wrong",
            "GET k",
            "AUTH default s3cret",
            "SET k v",
            "GET k",
            "DEL k",
        ],
    );
    // QUIT works before AUTH.
    let (got, closed) = exchange_keep_open(ours.port(), b"GET k\r\nQUIT\r\n", T);
    assert_eq!(got, b"-NOAUTH Authentication required.\r\n+OK\r\n");
    assert!(closed);
}

#[test]
fn auth_without_a_password_matches_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let ours = Server::start(&[]);
    assert_same(
        ours.port(),
        redis.port(),
        &[
            "AUTH x",
            "AUTH default x",
            "AUTH bob x",
            "AUTH a b c",
            "HELLO 2 AUTH bob x",
            "PING",
        ],
    );
}

#[test]
fn hello_auth_authenticates_and_switches_protocol() {
    let s = Server::start(&["--requirepass", "pw"]);
    let mut c = s.connect();
    let r = roundtrip(
        &mut c,
        &resp_str(&["HELLO", "3", "AUTH", "default", "pw"]),
        1,
    );
    let text = String::from_utf8_lossy(&r[0]).into_owned();
    assert!(text.starts_with("%7\r\n"), "{text}");
    assert!(text.contains("$5\r\nproto\r\n:3\r\n"), "{text}");
    let r = roundtrip(&mut c, &resp_str(&["GET", "nope"]), 1);
    assert_eq!(r[0], b"_\r\n", "RESP3 null after HELLO 3");
    // SETNAME with AUTH in the same HELLO.
    let mut c = s.connect();
    let r = roundtrip(
        &mut c,
        &resp_str(&["HELLO", "2", "AUTH", "default", "pw", "SETNAME", "app"]),
        1,
    );
    assert!(r[0].starts_with(b"*14\r\n"));
}

#[test]
fn redis_cli_dash_a() {
    require!("redis-cli");
    let s = Server::start(&["--requirepass", "pw"]);
    let p = s.port();
    let out = redis_cli_output(p, &["-a", "pw", "SET", "k", "v"], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\n");
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("Using a password with '-a'"),
        "redis-cli's warning: {warning}"
    );
    let out = redis_cli_output(p, &["--no-auth-warning", "-a", "pw", "GET", "k"], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let out = redis_cli_output(p, &["GET", "k"], None);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        "NOAUTH Authentication required."
    );
    let out = redis_cli_output(p, &["--no-auth-warning", "-a", "bad", "GET", "k"], None);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("WRONGPASS"), "{all}");
    // The environment variable works as well (redis-cli's REDISCLI_AUTH).
    let out = Command::new("redis-cli")
        .args(["-p", &p.to_string(), "GET", "k"])
        .env("REDISCLI_AUTH", "pw")
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v\n");
}

#[test]
fn config_set_requirepass() {
    let s = Server::start(&[]);
    let mut admin = s.connect();
    let r = roundtrip(
        &mut admin,
        &resp_str(&["CONFIG", "SET", "requirepass", "newpw"]),
        1,
    );
    assert_eq!(r[0], b"+OK\r\n");
    // The connection that set it stays authenticated, as in Redis.
    assert_eq!(roundtrip(&mut admin, b"PING\r\n", 1)[0], b"+PONG\r\n");
    let r = roundtrip(&mut admin, &resp_str(&["CONFIG", "GET", "requirepass"]), 1);
    assert_eq!(r[0], b"*2\r\n$11\r\nrequirepass\r\n$5\r\nnewpw\r\n");
    let mut c = s.connect();
    let r = roundtrip(&mut c, b"PING\r\nAUTH newpw\r\nPING\r\n", 3);
    assert_eq!(r[0], b"-NOAUTH Authentication required.\r\n");
    assert_eq!(r[1], b"+OK\r\n");
    assert_eq!(r[2], b"+PONG\r\n");
    // Clearing it lets new connections in without AUTH.
    let r = roundtrip(
        &mut admin,
        &resp_str(&["CONFIG", "SET", "requirepass", ""]),
        1,
    );
    assert_eq!(r[0], b"+OK\r\n");
    let mut c = s.connect();
    assert_eq!(roundtrip(&mut c, b"PING\r\n", 1)[0], b"+PONG\r\n");
}

#[test]
fn requirepass_from_the_environment_is_hidden_in_help() {
    let out = Command::new(shardcache_tests::shardcache_bin())
        .arg("--help")
        .env("SHARDCACHE_REQUIREPASS", "topsecret")
        .output()
        .expect("shardcache --help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--requirepass"), "{help}");
    assert!(
        !help.contains("topsecret"),
        "the password leaked into --help"
    );
}

/// The first IPv4 address of this machine that is not loopback (e.g. a container's eth0).
fn non_loopback_ipv4() -> Option<IpAddr> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.position(|x| x == "inet")?;
            w.next()?.split('/').next()?.parse::<IpAddr>().ok()
        })
        .find(|ip| !ip.is_loopback())
}

/// Connects from `ip` to `ip:port` (the peer is then not loopback), sends PING, returns what
/// came back and whether the server closed.
fn ping_from(ip: IpAddr, port: u16) -> (Vec<u8>, bool) {
    let mut c = TcpStream::connect_timeout(&SocketAddr::new(ip, port), T).expect("connect");
    let _ = c.write_all(b"PING\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    c.set_read_timeout(Some(Duration::from_secs(2))).ok();
    loop {
        match std::io::Read::read(&mut c, &mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

#[test]
fn protected_mode_denies_non_loopback_peers() {
    require!("ip");
    let Some(ip) = non_loopback_ipv4() else {
        shardcache_tests::skip("this machine has no non-loopback IPv4 address (ip -4 addr)");
        return;
    };
    let s = Server::start(&["--bind", "0.0.0.0"]);
    let (got, closed) = ping_from(ip, s.port());
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."),
        "{text}"
    );
    assert!(text.contains("--protected-mode no"), "{text}");
    assert!(text.ends_with("\r\n") && closed, "{text}");
    // Loopback peers are served.
    let mut c = s.connect();
    assert_eq!(roundtrip(&mut c, b"PING\r\n", 1)[0], b"+PONG\r\n");

    // With a password, non-loopback peers may connect (and must authenticate).
    let s = Server::start(&["--bind", "0.0.0.0", "--requirepass", "pw"]);
    let (got, _) = ping_from(ip, s.port());
    assert_eq!(got, b"-NOAUTH Authentication required.\r\n");

    // --protected-mode no lets them in without one.
    let s = Server::start(&["--bind", "0.0.0.0", "--protected-mode", "no"]);
    let (got, _) = ping_from(ip, s.port());
    assert_eq!(got, b"+PONG\r\n");

    // Bound to that address only (not loopback): still protected.
    let bind = ip.to_string();
    let s = Server::start(&["--bind", &bind]);
    let (got, _) = ping_from(ip, s.port());
    assert!(got.starts_with(b"-DENIED "));
}

/// Renamed-away and disabled commands answer exactly what Redis answers for a renamed-away
/// command; the new name works.
#[test]
fn rename_and_disable_commands_match_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[
        "--rename-command",
        "flushall",
        "",
        "--rename-command",
        "keys",
        "mykeys",
        "--rename-command",
        "config",
        "",
    ]);
    let ours = Server::start(&[
        "--rename-command",
        "flushall",
        "",
        "--rename-command",
        "KEYS",
        "mykeys",
        "--disable-command",
        "config",
    ]);
    assert_same(
        ours.port(),
        redis.port(),
        &[
            "SET a 1",
            "FLUSHALL",
            "flushall async",
            "KEYS *",
            "MYKEYS *",
            "mykeys",
            "CONFIG GET maxmemory",
            "GET a",
        ],
    );
}

#[test]
fn bad_rename_fails_at_start() {
    let e = Server::try_start(&["--rename-command", "nosuch", "x"])
        .err()
        .expect("must not start");
    assert!(e.contains("rename-command") && e.contains("nosuch"), "{e}");
    let e = Server::try_start(&["--rename-command", "keys", "get"])
        .err()
        .expect("must not start");
    assert!(e.contains("already a command"), "{e}");
    let e = Server::try_start(&["--disable-command", "nosuch"])
        .err()
        .expect("must not start");
    assert!(e.contains("disable-command"), "{e}");
}
