//! Scale-out on an existing engine: three shardcache nodes behind twemproxy (`nutcracker`, with
//! `redis: true` and `distribution: ketama`, as in docker/twemproxy/nutcracker.yml).
//! `redis-benchmark` drives the proxy; every node must then hold a fair share of the keys, keys
//! must read back through the proxy, the commands twemproxy splits across nodes (MGET, MSET,
//! DEL, EXISTS) must work, and single-key commands must answer through the proxy exactly as
//! they do directly.
//!
//! Skipped with a message where nutcracker or the Redis tools are missing, unless `CI` is set.

mod deploy_util;

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deploy_util::{repo_root, run_ok, TempDir};
use shardcache_tests::{free_port, read_replies, require, resp_str, Server};

/// The running proxy; killed on drop.
struct Nutcracker {
    child: Child,
    port: u16,
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The proxy configuration, as in docker/twemproxy/nutcracker.yml, for nodes on loopback.
fn config(listen: u16, nodes: &[u16]) -> String {
    let mut c = format!(
        "shardcache:\n  listen: 127.0.0.1:{listen}\n  hash: fnv1a_64\n  hash_tag: \"{{}}\"\n  \
         distribution: ketama\n  redis: true\n  auto_eject_hosts: false\n  \
         server_retry_timeout: 2000\n  server_failure_limit: 3\n  timeout: 5000\n  \
         preconnect: true\n  server_connections: 1\n  servers:\n"
    );
    for (i, port) in nodes.iter().enumerate() {
        c.push_str(&format!("    - 127.0.0.1:{port}:1 shardcache-{}\n", i + 1));
    }
    c
}

/// Checks the configuration, starts `nutcracker` and waits until a SET goes through it.
fn start_proxy(dir: &Path, nodes: &[u16]) -> Nutcracker {
    let port = free_port();
    let conf = dir.join("nutcracker.yml");
    std::fs::write(&conf, config(port, nodes)).expect("write nutcracker.yml");
    run_ok(
        Command::new("nutcracker").arg("-t").arg("-c").arg(&conf),
        Duration::from_secs(10),
    );
    let log = dir.join("nutcracker.log");
    let child = Command::new("nutcracker")
        .arg("-c")
        .arg(&conf)
        .arg("-o")
        .arg(&log)
        .args(["-s", &free_port().to_string(), "-a", "127.0.0.1"])
        .arg("-p")
        .arg(dir.join("nutcracker.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nutcracker");
    let proxy = Nutcracker { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            if let Ok(r) = try_command(&mut s, &["SET", "proxy:ready", "1"]) {
                if r == b"+OK\r\n" {
                    return proxy;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "nutcracker not ready on {port}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One command on `s`, its raw reply; `Err` when the connection fails.
fn try_command(s: &mut TcpStream, words: &[&str]) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    s.write_all(&resp_str(words))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while shardcache_tests::reply_len(&buf).is_none() {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}

/// A connection with a read timeout.
fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s
}

/// Sends every command pipelined and returns the raw replies, in order.
fn pipeline(s: &mut TcpStream, cmds: &[Vec<String>]) -> Vec<Vec<u8>> {
    use std::io::Write;
    let mut out = Vec::new();
    for c in cmds {
        let words: Vec<&str> = c.iter().map(String::as_str).collect();
        out.extend_from_slice(&resp_str(&words));
    }
    s.write_all(&out).expect("write pipeline");
    read_replies(s, cmds.len())
}

fn words(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|w| w.to_string()).collect()
}

/// DBSIZE of one node, asked directly.
fn dbsize(port: u16) -> i64 {
    let r = try_command(&mut connect(port), &["DBSIZE"]).expect("DBSIZE");
    std::str::from_utf8(&r[1..r.len() - 2])
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("DBSIZE reply {:?}", String::from_utf8_lossy(&r)))
}

#[test]
fn three_nodes_behind_nutcracker_share_the_keys() {
    require!("nutcracker");
    require!("redis-benchmark");
    let nodes: Vec<Server> = (0..3).map(|_| Server::start(&[])).collect();
    let ports: Vec<u16> = nodes.iter().map(Server::port).collect();
    let dir = TempDir::new("shardcache-twemproxy");
    let proxy = start_proxy(dir.path(), &ports);

    // The shipped example must stay a valid configuration too.
    run_ok(
        Command::new("nutcracker")
            .arg("-t")
            .arg("-c")
            .arg(repo_root().join("docker/twemproxy/nutcracker.yml")),
        Duration::from_secs(10),
    );

    // Load through the proxy: 10000 random keys.
    let bench = run_ok(
        Command::new("redis-benchmark").args([
            "-p",
            &proxy.port.to_string(),
            "-t",
            "set,get",
            "-n",
            "20000",
            "-r",
            "10000",
            "-c",
            "20",
            "-q",
        ]),
        Duration::from_secs(180),
    );
    eprintln!("redis-benchmark through nutcracker:\n{}", bench.trim());
    assert!(
        bench.contains("SET:") && bench.contains("GET:"),
        "redis-benchmark output: {bench}"
    );

    // Every node holds a fair share (ketama over three names: about a third each).
    let sizes: Vec<i64> = ports.iter().map(|&p| dbsize(p)).collect();
    let total: i64 = sizes.iter().sum();
    eprintln!("keys per node after the benchmark: {sizes:?} (total {total})");
    assert!(total > 5000, "too few keys in total: {sizes:?}");
    for (i, &n) in sizes.iter().enumerate() {
        assert!(
            n * 5 > total,
            "node {} holds {n} of {total} keys: ketama should give each about a third ({sizes:?})",
            i + 1
        );
    }

    // Keys written through the proxy read back through it, and each lives on exactly one node.
    let mut p = connect(proxy.port);
    // The varying part is not at the end of the key: twemproxy computes `fnv1a_64` in 32 bits,
    // so keys differing only in their last two or three bytes land close together on the ring
    // (`user:0` … `user:299` all but miss one node). See the README.
    let keys: Vec<String> = (0..300).map(|i| format!("user:{i}:name")).collect();
    let sets: Vec<Vec<String>> = keys
        .iter()
        .map(|k| words(&["SET", k, &format!("value-of-{k}")]))
        .collect();
    assert!(pipeline(&mut p, &sets).iter().all(|r| r == b"+OK\r\n"));
    let gets: Vec<Vec<String>> = keys.iter().map(|k| words(&["GET", k])).collect();
    for (k, r) in keys.iter().zip(pipeline(&mut p, &gets)) {
        let want = format!("value-of-{k}");
        assert_eq!(
            r,
            format!("${}\r\n{want}\r\n", want.len()).into_bytes(),
            "{k}"
        );
    }
    let mut holders = [0usize; 3];
    let mut node_of = Vec::new();
    for k in &keys {
        let on: Vec<usize> = ports
            .iter()
            .enumerate()
            .filter(|(_, &port)| {
                try_command(&mut connect(port), &["EXISTS", k]).expect("EXISTS") == b":1\r\n"
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(on.len(), 1, "{k} is on nodes {on:?}");
        holders[on[0]] += 1;
        node_of.push(on[0]);
    }
    eprintln!("user:N:name keys per node: {holders:?}");
    // `user:0` … `user:299` on the same ring (the client's ketama routes exactly as nutcracker
    // does: ketama_nutcracker.rs): the ring depends on the node names only, and one node gets
    // none of them.
    let ring = shardcache_client::Ketama::new(
        ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                shardcache_client::KetamaNode::parse_twemproxy(&format!(
                    "127.0.0.1:{port}:1 shardcache-{}",
                    i + 1
                ))
                .expect("a twemproxy server line")
            })
            .collect(),
    );
    let mut plain = [0usize; 3];
    for i in 0..300 {
        plain[ring.node_for(format!("user:{i}").as_bytes())] += 1;
    }
    eprintln!("user:N keys per node (ketama): {plain:?}");
    assert!(plain.contains(&0), "user:N keys per node: {plain:?}");
    assert!(
        holders.iter().all(|&n| n * 5 > keys.len()),
        "keys per node: {holders:?}"
    );

    // The commands twemproxy splits per node and merges.
    let some: Vec<&str> = keys[..60].iter().map(String::as_str).collect();
    let spanned: BTreeSet<usize> = node_of[..60].iter().copied().collect();
    assert_eq!(spanned.len(), 3, "the MGET/DEL keys should span every node");
    let mut mget = vec!["MGET"];
    mget.extend(&some);
    let r = try_command(&mut p, &mget).expect("MGET");
    let mut want = b"*60\r\n".to_vec();
    for k in &some {
        let v = format!("value-of-{k}");
        want.extend_from_slice(format!("${}\r\n{v}\r\n", v.len()).as_bytes());
    }
    assert_eq!(
        String::from_utf8_lossy(&r),
        String::from_utf8_lossy(&want),
        "MGET across nodes"
    );
    // twemproxy 0.5 does not split a multi-key EXISTS: it goes whole to the first key's node,
    // which counts only its own keys (README: "Running more than one node"). A proxy that splits
    // it would answer 60.
    let mut exists = vec!["EXISTS"];
    exists.extend(&some);
    let first_node = node_of[..60].iter().filter(|&&n| n == node_of[0]).count();
    let r = try_command(&mut p, &exists).expect("EXISTS");
    assert!(
        r == format!(":{first_node}\r\n").into_bytes() || r == b":60\r\n",
        "multi-key EXISTS through nutcracker: {:?}",
        String::from_utf8_lossy(&r)
    );
    let mut del = vec!["DEL"];
    del.extend(&some);
    del.push("user:no-such-key");
    assert_eq!(try_command(&mut p, &del).expect("DEL"), b":60\r\n");
    let r = try_command(&mut p, &mget).expect("MGET after DEL");
    assert_eq!(r, [&b"*60\r\n"[..], &b"$-1\r\n".repeat(60)].concat());
    let mut mset = vec!["MSET"];
    for k in &some {
        mset.push(k);
        mset.push("m");
    }
    assert_eq!(try_command(&mut p, &mset).expect("MSET"), b"+OK\r\n");
    let r = try_command(&mut p, &mget).expect("MGET after MSET");
    assert_eq!(r, [&b"*60\r\n"[..], &b"$1\r\nm\r\n".repeat(60)].concat());

    // Hash tags keep related keys on one node.
    let tagged: Vec<Vec<String>> = (0..20)
        .map(|i| words(&["SET", &format!("{{cart:42}}:item:{i}"), "x"]))
        .collect();
    pipeline(&mut p, &tagged);
    let with_tag: Vec<i64> = ports
        .iter()
        .map(|&port| {
            let mut s = connect(port);
            (0..20)
                .filter(|i| {
                    try_command(&mut s, &["EXISTS", &format!("{{cart:42}}:item:{i}")])
                        .expect("EXISTS")
                        == b":1\r\n"
                })
                .count() as i64
        })
        .collect();
    assert!(
        with_tag.contains(&20),
        "hash-tagged keys spread: {with_tag:?}"
    );

    // Single-key commands answer through the proxy exactly as a node answers directly.
    let reference = Server::start(&[]);
    let script: Vec<Vec<String>> = [
        &["SET", "s:a", "hello"][..],
        &["GET", "s:a"],
        &["APPEND", "s:a", " world"],
        &["STRLEN", "s:a"],
        &["GETRANGE", "s:a", "0", "4"],
        &["SETRANGE", "s:a", "6", "W"],
        &["GET", "s:a"],
        &["SETNX", "s:a", "x"],
        &["GETSET", "s:a", "new"],
        &["INCR", "s:n"],
        &["INCRBY", "s:n", "10"],
        &["DECR", "s:n"],
        &["DECRBY", "s:n", "2"],
        &["INCRBYFLOAT", "s:f", "1.5"],
        &["INCR", "s:a"],
        &["SET", "s:t", "v", "EX", "100"],
        &["EXPIRE", "s:a", "100"],
        &["PERSIST", "s:a"],
        &["TTL", "s:a"],
        &["TTL", "s:missing"],
        &["PSETEX", "s:p", "100000", "v"],
        &["SETEX", "s:e", "100", "v"],
        &["GETDEL", "s:e"],
        &["GETEX", "s:a"],
        &["TYPE", "s:n"],
        &["EXISTS", "s:n", "s:a", "s:missing"],
        &["DEL", "s:n"],
        &["GET", "s:n"],
    ]
    .iter()
    .map(|ws| words(ws))
    .collect();
    let direct = pipeline(&mut connect(reference.port()), &script);
    let proxied = pipeline(&mut p, &script);
    for ((cmd, d), x) in script.iter().zip(&direct).zip(&proxied) {
        assert_eq!(
            String::from_utf8_lossy(x),
            String::from_utf8_lossy(d),
            "{} through nutcracker differs from a direct answer",
            cmd.join(" ")
        );
    }
    drop(proxy);
    drop(nodes);
}

#[test]
fn shipped_twemproxy_config_has_the_documented_settings() {
    let text = std::fs::read_to_string(repo_root().join("docker/twemproxy/nutcracker.yml"))
        .expect("read docker/twemproxy/nutcracker.yml");
    for setting in [
        "hash: fnv1a_64",
        "distribution: ketama",
        "redis: true",
        "auto_eject_hosts: false",
        "server_retry_timeout:",
    ] {
        assert!(text.contains(setting), "nutcracker.yml lacks `{setting}`");
    }
    let servers = text
        .lines()
        .filter(|l| l.trim_start().starts_with("- ") && l.contains(":6379:1 shardcache-"))
        .count();
    assert_eq!(servers, 3, "three named servers");
}
