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
    shardcache_tests::info_value(info, field).and_then(|v| v.parse().ok())
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

/// Stores `exp:0..n` in the selected database, all expiring at the same moment, soon: every
/// key is written first, then given the expiry time by `PEXPIREAT`, and only once every
/// `PEXPIREAT` has been answered before that moment (by this host's clock, which the server
/// shares) are all `n` keys known to be stored with an expiry still ahead, so each will be
/// counted in `expired_keys`. (A `SET … PX 300` that a loaded machine delays past its own
/// expiry deletes the key instead, uncounted.) Otherwise the keys are written again with a
/// later moment. Returns when the keys expire.
fn store_keys_expiring_together(s: &mut TcpStream, n: usize) -> Instant {
    let mut margin = Duration::from_millis(500);
    loop {
        assert_eq!(cmd(s, &["CONFIG", "RESETSTAT"]), b"+OK\r\n");
        let start = Instant::now();
        // Phase 1: the keys, without a TTL.
        for c0 in (0..n).step_by(5_000) {
            let mut batch = Vec::new();
            for i in c0..(c0 + 5_000).min(n) {
                batch.extend(resp_str(&["SET", &format!("exp:{i}"), "v"]));
            }
            s.write_all(&batch).unwrap();
            assert!(read_replies(s, (c0 + 5_000).min(n) - c0)
                .iter()
                .all(|r| r == b"+OK\r\n"));
        }
        // Phase 2: one expiry moment for all, a margin ahead (three times phase 1's duration).
        margin = margin.max(start.elapsed() * 3);
        let expires = Instant::now() + margin;
        let at_ms = (std::time::SystemTime::now() + margin)
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            .to_string();
        for c0 in (0..n).step_by(5_000) {
            let mut batch = Vec::new();
            for i in c0..(c0 + 5_000).min(n) {
                batch.extend(resp_str(&["PEXPIREAT", &format!("exp:{i}"), &at_ms]));
            }
            s.write_all(&batch).unwrap();
            assert!(read_replies(s, (c0 + 5_000).min(n) - c0)
                .iter()
                .all(|r| r == b":1\r\n"));
        }
        if Instant::now() < expires {
            return expires;
        }
        // Too slow for the margin: some keys may have been deleted, uncounted. Again, later.
        println!("PEXPIREATs answered after the expiry moment; retrying with a wider margin");
        margin *= 2;
    }
}

#[test]
fn expired_keys_are_reclaimed_untouched() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    const N: usize = 100_000;
    let written = store_keys_expiring_together(&mut s, N);
    println!("{N} keys stored, expiring together");
    let mut c = server.connect();
    let stats = info(&mut c, "memory");
    assert!(info_field(&stats, "stored_entries").unwrap() > 0);
    // Poll only INFO: no command touches the keys.
    // A liveness bound (how fast the reclaimer is: `cargo bench -p shardcache-storage --bench
    // reclaim`).
    let deadline = written + Duration::from_secs(60);
    loop {
        let st = info(&mut c, "stats");
        let mem = info(&mut c, "memory");
        let expired = info_field(&st, "expired_keys").unwrap();
        let entries = info_field(&mem, "stored_entries").unwrap();
        if expired >= N as u64 && entries == 0 {
            let t = written.elapsed();
            println!("all {N} keys physically reclaimed {t:?} after they expired");
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

/// Active expiry is not only database 0's: keys with a short TTL in databases 5 and 15, never
/// touched, are removed by the reclaimer (their `INFO keyspace` lines go), while a persistent
/// key in each stays.
#[test]
fn expired_keys_are_reclaimed_in_every_database() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    const N: usize = 2_000;
    for db in ["5", "15"] {
        assert_eq!(cmd(&mut s, &["SELECT", db]), b"+OK\r\n");
        assert_eq!(cmd(&mut s, &["SET", "stays", "v"]), b"+OK\r\n");
    }
    // Both databases' keys stored before either's expire (CONFIG RESETSTAT at each attempt).
    loop {
        assert_eq!(cmd(&mut s, &["SELECT", "5"]), b"+OK\r\n");
        let first = store_keys_expiring_together(&mut s, N);
        assert_eq!(cmd(&mut s, &["SELECT", "15"]), b"+OK\r\n");
        let mut batch = Vec::new();
        let at_ms = (std::time::SystemTime::now()
            + first.saturating_duration_since(Instant::now()))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
        for i in 0..N {
            batch.extend(resp_str(&["SET", &format!("exp:{i}"), "v", "PXAT", &at_ms]));
        }
        s.write_all(&batch).unwrap();
        assert!(read_replies(&mut s, N).iter().all(|r| r == b"+OK\r\n"));
        if Instant::now() < first {
            break;
        }
    }
    assert_eq!(cmd(&mut s, &["SELECT", "0"]), b"+OK\r\n");
    // Only INFO is polled: no command touches the keys (a liveness bound only).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ks = info(&mut s, "keyspace");
        let expired = info_field(&info(&mut s, "stats"), "expired_keys").unwrap();
        if expired >= 2 * N as u64 {
            assert!(ks.contains("db5:keys=1,expires=0"), "{ks}");
            assert!(ks.contains("db15:keys=1,expires=0"), "{ks}");
            let entries = info_field(&info(&mut s, "memory"), "stored_entries").unwrap();
            assert_eq!(entries, 2, "the expired entries are physically gone");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expired_keys={expired} of {}; {ks}",
            2 * N
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SCAN's guarantee: a key present for the whole scan is returned (at least once), while other
/// clients insert (growing the tables, few shards so each grows a lot) and delete keys.
#[test]
fn scan_returns_every_key_present_throughout_under_writes_and_growth() {
    const STABLE: usize = 5_000;
    let server = Server::start(&["--shards", "2"]);
    let mut s = server.connect();
    let mut batch = Vec::new();
    for i in 0..STABLE {
        batch.extend(resp_str(&["SET", &format!("stable:{i}"), "v"]));
    }
    s.write_all(&batch).unwrap();
    assert!(read_replies(&mut s, STABLE).iter().all(|r| r == b"+OK\r\n"));

    let stop = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // The writers insert until `target`, which each scan raises part-way through.
    let target = Arc::new(std::sync::atomic::AtomicU64::new(2_000));
    let port = server.port();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (stop, inserted, target) = (
                Arc::clone(&stop),
                Arc::clone(&inserted),
                Arc::clone(&target),
            );
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if inserted.load(Ordering::Relaxed) >= target.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    let mut batch = Vec::new();
                    for i in n..n + 100 {
                        batch.extend(resp_str(&["SET", &format!("churn:{w}:{i}"), "v"]));
                        // Deletes some, so slots are freed and reused as well.
                        if i % 3 == 0 && i >= 50 {
                            batch.extend(resp_str(&["DEL", &format!("churn:{w}:{}", i - 50)]));
                        }
                    }
                    let n_cmds = (n..n + 100).filter(|i| i % 3 == 0 && *i >= 50).count() + 100;
                    c.write_all(&batch).unwrap();
                    read_replies(&mut c, n_cmds);
                    n += 100;
                    inserted.fetch_add(100, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // The writers are under way before the first scan starts.
    shardcache_tests::wait_until("the writers' first keys", Duration::from_secs(60), || {
        inserted.load(Ordering::Relaxed) >= 2_000
    });
    let mut grown_during = Vec::new();
    for _ in 0..3 {
        let before = inserted.load(Ordering::Relaxed);
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        let mut mid_scan_wait_done = false;
        loop {
            let r = cmd(&mut s, &["SCAN", &cursor, "COUNT", "200"]);
            let text = text(&r);
            let lines: Vec<&str> = text.split("\r\n").collect();
            // *2, $len, cursor, *n, then $len/key pairs.
            cursor = lines[2].to_string();
            for k in lines[4..].iter().skip(1).step_by(2) {
                if let Some(i) = k.strip_prefix("stable:") {
                    seen.insert(i.parse::<usize>().unwrap());
                }
            }
            if cursor == "0" {
                break;
            }
            // Part-way through each scan, the writers insert (and grow tables) before it goes on.
            if !mid_scan_wait_done {
                mid_scan_wait_done = true;
                let at = target.fetch_add(20_000, Ordering::Relaxed) + 20_000;
                shardcache_tests::wait_until(
                    "inserts during the scan",
                    Duration::from_secs(60),
                    || inserted.load(Ordering::Relaxed) >= at,
                );
            }
        }
        grown_during.push(inserted.load(Ordering::Relaxed) - before);
        let missing: Vec<usize> = (0..STABLE).filter(|i| !seen.contains(i)).collect();
        assert!(
            missing.is_empty(),
            "{} stable keys not returned by a full scan, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    println!("keys inserted during each full scan: {grown_during:?}");
}
