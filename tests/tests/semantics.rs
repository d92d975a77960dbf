//! End-to-end semantics that a differential stream cannot show: cross-shard atomicity of
//! MSET/MGET, active expiry of keys nobody touches, CLIENT LIST's registry, CONFIG SET at run
//! time, INFO formats, the unsupported-command errors, and the cgroup default.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardcache_tests::{read_replies, resp_str, roundtrip, Server};

fn cmd(s: &mut TcpStream, words: &[&str]) -> Vec<u8> {
    roundtrip(s, &resp_str(words), 1).remove(0)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `INFO section` as text.
fn info(s: &mut TcpStream, section: &str) -> String {
    text(&cmd(s, &["INFO", section]))
}

/// A numeric `field:value` of an INFO text.
fn info_field(info: &str, field: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn mset_is_atomic_across_shards() {
    let server = Server::start(&["--shards", "64"]);
    const PAIRS: usize = 32;
    let keys: Vec<(String, String)> = (0..PAIRS)
        .map(|i| (format!("a{i}"), format!("b{i}")))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut s = server.connect();
        let keys = keys.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v = i.to_string();
                let mut words = vec!["MSET"];
                for (a, b) in &keys {
                    words.extend([a.as_str(), v.as_str(), b.as_str(), v.as_str()]);
                }
                assert_eq!(cmd(&mut s, &words), b"+OK\r\n");
                i += 1;
            }
            i
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut s = server.connect();
            let keys = keys.clone();
            std::thread::spawn(move || {
                let mut words = vec!["MGET"];
                for (a, b) in &keys {
                    words.extend([a.as_str(), b.as_str()]);
                }
                let deadline = Instant::now() + Duration::from_secs(2);
                let mut reads = 0;
                while Instant::now() < deadline {
                    let r = cmd(&mut s, &words);
                    let parts: Vec<&[u8]> = r.split(|&c| c == b'\n').collect();
                    // "*64", then per key: "$n" / "$-1" and (for present keys) the value.
                    let mut values = Vec::new();
                    let mut i = 1;
                    while i < parts.len() {
                        if parts[i].starts_with(b"$-1") {
                            values.push(None);
                            i += 1;
                        } else if parts[i].starts_with(b"$") {
                            values.push(Some(parts[i + 1].to_vec()));
                            i += 2;
                        } else {
                            i += 1;
                        }
                    }
                    assert_eq!(values.len(), 2 * PAIRS);
                    for p in values.chunks(2) {
                        assert_eq!(p[0], p[1], "a reader saw half of an MSET");
                    }
                    // Every pair comes from the same MSET.
                    assert!(
                        values.windows(2).all(|w| w[0] == w[1]),
                        "MGET saw two MSETs"
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    println!("atomic MSET/MGET: {writes} MSETs of {PAIRS} pairs, {reads} MGETs, no torn read");
    assert!(writes > 10 && reads > 10);
}

#[test]
fn expired_keys_are_reclaimed_untouched() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    const N: usize = 100_000;
    let mut batch = Vec::new();
    let start = Instant::now();
    for chunk in (0..N).collect::<Vec<_>>().chunks(5_000) {
        batch.clear();
        for i in chunk {
            batch.extend(resp_str(&["SET", &format!("exp:{i}"), "v", "PX", "300"]));
        }
        s.write_all(&batch).unwrap();
        let replies = read_replies(&mut s, chunk.len());
        assert!(replies.iter().all(|r| r == b"+OK\r\n"));
    }
    let written = Instant::now();
    println!("wrote {N} keys with a 300 ms TTL in {:?}", written - start);
    let mut c = server.connect();
    let stats = info(&mut c, "memory");
    assert!(info_field(&stats, "stored_entries").unwrap() > 0);
    // Poll only INFO: no command touches the keys.
    let deadline = written + Duration::from_millis(300) + Duration::from_secs(4);
    loop {
        let st = info(&mut c, "stats");
        let mem = info(&mut c, "memory");
        let expired = info_field(&st, "expired_keys").unwrap();
        let entries = info_field(&mem, "stored_entries").unwrap();
        if expired >= N as u64 && entries == 0 {
            let t = written.elapsed();
            println!("all {N} keys physically reclaimed {t:?} after the last write");
            assert_eq!(cmd(&mut c, &["DBSIZE"]), b":0\r\n");
            assert!(
                info_field(&mem, "used_memory").unwrap() < 1 << 20,
                "memory not released: {mem}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {:?}: expired_keys={expired} stored_entries={entries}",
            written.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn client_registry_and_names() {
    let server = Server::start(&[]);
    let mut a = server.connect();
    let mut b = server.connect();
    assert_eq!(cmd(&mut a, &["CLIENT", "SETNAME", "alpha"]), b"+OK\r\n");
    assert_eq!(cmd(&mut a, &["CLIENT", "GETNAME"]), b"$5\r\nalpha\r\n");
    assert_eq!(cmd(&mut b, &["SELECT", "3"]), b"+OK\r\n");
    let id_b = text(&cmd(&mut b, &["CLIENT", "ID"]));
    let id_b = id_b.trim().trim_start_matches(':').to_string();
    let list = text(&cmd(&mut a, &["CLIENT", "LIST"]));
    let lines: Vec<&str> = list.lines().filter(|l| l.starts_with("id=")).collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines
        .iter()
        .any(|l| l.contains(" name=alpha ") && l.contains("cmd=client|list")));
    let lb = lines
        .iter()
        .find(|l| l.starts_with(&format!("id={id_b} ")))
        .expect("b listed");
    assert!(lb.contains(" db=3 ") && lb.contains(" name= "), "{lb}");
    let me = text(&cmd(&mut b, &["CLIENT", "INFO"]));
    assert!(me.contains(&format!("id={id_b} ")) && me.contains("cmd=client|info"));
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list = text(&cmd(&mut a, &["CLIENT", "LIST"]));
        if list.lines().filter(|l| l.starts_with("id=")).count() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "closed client still listed: {list}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn config_set_changes_the_store_at_run_time() {
    let server = Server::start(&["--maxmemory", "0"]);
    let mut s = server.connect();
    assert_eq!(
        cmd(
            &mut s,
            &[
                "CONFIG",
                "SET",
                "maxmemory",
                "10mb",
                "maxmemory-policy",
                "allkeys-lru"
            ]
        ),
        b"+OK\r\n"
    );
    assert_eq!(
        text(&cmd(&mut s, &["CONFIG", "GET", "maxmemory*"])),
        "*6\r\n$9\r\nmaxmemory\r\n$8\r\n10485760\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n$17\r\nmaxmemory-samples\r\n$1\r\n5\r\n"
    );
    let mem = info(&mut s, "memory");
    assert_eq!(info_field(&mem, "maxmemory"), Some(10 << 20));
    assert!(mem.contains("maxmemory_policy:allkeys-lru"));
    let all = text(&cmd(&mut s, &["CONFIG", "GET", "*"]));
    for p in [
        "maxmemory",
        "maxmemory-policy",
        "maxmemory-samples",
        "databases",
        "port",
    ] {
        assert!(
            all.contains(&format!("\r\n{p}\r\n")),
            "{p} missing from CONFIG GET *"
        );
    }
    assert_eq!(
        text(&cmd(&mut s, &["CONFIG", "SET", "foo", "1"])),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'foo'\r\n"
    );
}

#[test]
fn info_keyspace_format() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    cmd(&mut s, &["SET", "a", "1"]);
    cmd(&mut s, &["SET", "b", "1", "EX", "100"]);
    cmd(&mut s, &["SELECT", "2"]);
    cmd(&mut s, &["SET", "c", "1"]);
    let ks = info(&mut s, "keyspace");
    assert!(ks.contains("# Keyspace\r\n"), "{ks}");
    let db0 = ks.lines().find(|l| l.starts_with("db0:")).expect("db0");
    assert!(db0.starts_with("db0:keys=2,expires=1,avg_ttl="), "{db0}");
    let ttl: u64 = db0.rsplit('=').next().unwrap().trim().parse().unwrap();
    assert!((98_000..=100_000).contains(&ttl), "{db0}");
    assert!(ks.contains("db2:keys=1,expires=0,avg_ttl=0"), "{ks}");
}

#[test]
fn unsupported_commands_say_why() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    assert_eq!(
        text(&cmd(&mut s, &["LPUSH", "l", "a"])),
        "-ERR shardcache does not support 'lpush': shardcache is a string-only cache (see README: What shardcache is not)\r\n"
    );
    for c in ["EVAL", "SUBSCRIBE", "SAVE", "REPLICAOF", "hset"] {
        let r = text(&cmd(&mut s, &[c, "x"]));
        assert!(
            r.starts_with("-ERR shardcache does not support '"),
            "{c}: {r}"
        );
    }
    // A command Redis does not have either keeps Redis's text.
    assert!(text(&cmd(&mut s, &["NOSUCH"])).starts_with("-ERR unknown command 'NOSUCH'"));
}

#[test]
fn maxmemory_defaults_to_share_of_cgroup_limit() {
    let dir = std::env::temp_dir().join(format!("shardcache-e2e-cgroup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("memory.max"), "268435456\n").unwrap();
    let mut server = Server::start(&["--cgroup-root", dir.to_str().unwrap()]);
    let mut s = server.connect();
    let mem = info(&mut s, "memory");
    assert_eq!(info_field(&mem, "maxmemory"), Some(268_435_456 * 3 / 4));
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.contains("cgroup_limit=268435456")),
        "the chosen maxmemory is logged"
    );
    drop(server);
    std::fs::write(dir.join("memory.max"), "max\n").unwrap();
    let server = Server::start(&["--cgroup-root", dir.to_str().unwrap()]);
    let mut s = server.connect();
    assert_eq!(info_field(&info(&mut s, "memory"), "maxmemory"), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}
