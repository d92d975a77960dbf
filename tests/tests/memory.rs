//! Memory limit and eviction, end to end: RSS under a write storm of 6x `maxmemory`, Redis's
//! OOM error under `noeviction`, what each policy evicts, and how the store's accounted
//! `used_memory` compares with the RSS the process really grows by.

use std::io::Write;
use std::net::TcpStream;
use std::time::Instant;

use shardcache_tests::{read_replies, resp, resp_str, roundtrip, Server};

const MIB: u64 = 1 << 20;

fn cmd(s: &mut TcpStream, words: &[&str]) -> Vec<u8> {
    roundtrip(s, &resp_str(words), 1).remove(0)
}

fn info_field(s: &mut TcpStream, section: &str, field: &str) -> u64 {
    shardcache_tests::info_field(s, section, field)
        .unwrap_or_else(|| panic!("{field} missing from INFO {section}"))
}

/// Pipelines `SET prefix:i value` for `i` in `range`, `batch` at a time; returns the replies
/// that were not `+OK`.
fn fill(
    s: &mut TcpStream,
    prefix: &str,
    range: std::ops::Range<usize>,
    value: &[u8],
    extra: &[&str],
    batch: usize,
) -> Vec<Vec<u8>> {
    let mut bad = Vec::new();
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(batch) {
        let mut buf = Vec::new();
        for i in chunk {
            let key = format!("{prefix}:{i}");
            let mut args: Vec<&[u8]> = vec![b"SET", key.as_bytes(), value];
            args.extend(extra.iter().map(|e| e.as_bytes()));
            buf.extend(resp(&args));
        }
        s.write_all(&buf).unwrap();
        for r in read_replies(s, chunk.len()) {
            if r != b"+OK\r\n" {
                bad.push(r);
            }
        }
    }
    bad
}

#[test]
fn write_storm_stays_under_the_rss_bound() {
    let server = Server::start(&["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut s = server.connect();
    let value = vec![b'x'; 100 * 1024];
    let start = Instant::now();
    let mut peak = 0;
    // 4096 x 100 KiB = 400 MiB, in pipelined batches of 32 (3.2 MiB).
    for round in 0..128 {
        let bad = fill(
            &mut s,
            "storm",
            round * 32..(round + 1) * 32,
            &value,
            &[],
            32,
        );
        assert!(
            bad.is_empty(),
            "writes refused: {:?}",
            String::from_utf8_lossy(&bad[0])
        );
        peak = peak.max(server.rss_bytes());
    }
    let rss = server.rss_bytes();
    peak = peak.max(rss);
    let used = info_field(&mut s, "memory", "used_memory");
    let evicted = info_field(&mut s, "stats", "evicted_keys");
    println!(
        "write storm: 400 MiB in {:?}; used_memory {:.1} MiB, RSS {:.1} MiB (peak sampled {:.1} MiB), evicted_keys {evicted}",
        start.elapsed(),
        used as f64 / MIB as f64,
        rss as f64 / MIB as f64,
        peak as f64 / MIB as f64
    );
    assert!(
        used <= 64 * MIB + 200 * 1024,
        "used_memory {used} above maxmemory"
    );
    // Measured: a 75 MiB peak, 11 MiB over maxmemory (the process itself, connection
    // buffers, allocator slack); the bound allows 2.5 times that overhead.
    assert!(
        peak < 64 * MIB + 28 * MIB,
        "RSS peaked at {:.1} MiB",
        peak as f64 / MIB as f64
    );
    assert!(evicted > 0);
    assert_eq!(cmd(&mut s, &["PING"]), b"+PONG\r\n");
    // The latest keys survive, the oldest were evicted.
    assert_eq!(cmd(&mut s, &["EXISTS", "storm:4095"]), b":1\r\n");
    assert_eq!(cmd(&mut s, &["EXISTS", "storm:0"]), b":0\r\n");
}

#[test]
fn noeviction_refuses_writes_with_redis_error() {
    let server = Server::start(&["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"]);
    let mut s = server.connect();
    let value = vec![b'v'; 1000];
    let bad = fill(&mut s, "k", 0..2000, &value, &[], 100);
    assert!(!bad.is_empty());
    assert!(bad
        .iter()
        .all(|r| r == b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"));
    // Reads and deletes still work; every growing command is refused.
    assert_eq!(cmd(&mut s, &["GET", "k:0"]).len(), 1000 + 9);
    for c in [
        vec!["APPEND", "k:0", "x"],
        vec!["INCR", "n"],
        vec!["MSET", "a", "1", "b", "2"],
        vec!["SETRANGE", "k:1", "0", "x"],
        vec!["SETNX", "new", "1"],
        vec!["GETSET", "k:0", "1"],
        vec!["INCRBYFLOAT", "f", "1.5"],
    ] {
        assert_eq!(
            cmd(&mut s, &c),
            b"-OOM command not allowed when used memory > 'maxmemory'.\r\n",
            "{c:?}"
        );
    }
    assert_eq!(cmd(&mut s, &["DEL", "k:0"]), b":1\r\n");
    assert_eq!(cmd(&mut s, &["EXPIRE", "k:1", "100"]), b":1\r\n");
    assert_eq!(info_field(&mut s, "stats", "evicted_keys"), 0);
}

#[test]
fn each_policy_evicts_what_it_should() {
    let value = vec![b'p'; 1000];
    for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-random"] {
        let server = Server::start(&["--maxmemory", "2mb", "--maxmemory-policy", policy]);
        let mut s = server.connect();
        assert!(
            fill(&mut s, "k", 0..6000, &value, &[], 200).is_empty(),
            "{policy}"
        );
        let evicted = info_field(&mut s, "stats", "evicted_keys");
        let used = info_field(&mut s, "memory", "used_memory");
        println!("{policy}: evicted {evicted}, used_memory {used}");
        assert!(evicted > 3000, "{policy}: evicted {evicted}");
        assert!(used <= 2 * MIB + 4096, "{policy}: used {used}");
    }
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let server = Server::start(&["--maxmemory", "2mb", "--maxmemory-policy", policy]);
        let mut s = server.connect();
        // 1000 keys without TTL (~1.1 MB): never evicted by a volatile policy.
        assert!(fill(&mut s, "keep", 0..1000, &value, &[], 200).is_empty());
        assert!(
            fill(&mut s, "vol", 0..3000, &value, &["EX", "1000"], 200).is_empty(),
            "{policy}"
        );
        let evicted = info_field(&mut s, "stats", "evicted_keys");
        assert!(evicted > 1000, "{policy}: evicted {evicted}");
        let mut buf = Vec::new();
        for i in 0..1000 {
            buf.extend(resp_str(&["EXISTS", &format!("keep:{i}")]));
        }
        s.write_all(&buf).unwrap();
        let kept = read_replies(&mut s, 1000)
            .iter()
            .filter(|r| *r == b":1\r\n")
            .count();
        assert_eq!(kept, 1000, "{policy} evicted keys without a TTL");
        if policy == "volatile-ttl" {
            // The soonest-expiring keys go first.
            assert!(fill(&mut s, "soon", 0..200, &value, &["EX", "10"], 200).is_empty());
            assert!(fill(&mut s, "late", 0..800, &value, &["EX", "100000"], 200).is_empty());
            let soon: usize = (0..200)
                .filter(|i| cmd(&mut s, &["EXISTS", &format!("soon:{i}")]) == b":1\r\n")
                .count();
            println!("volatile-ttl: {soon}/200 soon-expiring keys left after 800 later writes");
            assert!(soon < 100, "volatile-ttl kept {soon} of the soonest keys");
        }
        // Only persistent keys left to evict: writes fail with OOM.
        let bad = fill(&mut s, "keep2", 0..2000, &value, &[], 200);
        assert!(
            bad.iter().any(|r| r.starts_with(b"-OOM")),
            "{policy}: no OOM once nothing volatile is left"
        );
    }
}

#[test]
fn accounted_memory_tracks_rss_growth() {
    let server = Server::start(&["--maxmemory", "0"]);
    let mut s = server.connect();
    // Warm up the allocator and connection buffers.
    fill(&mut s, "warm", 0..1000, b"w", &[], 500);
    cmd(&mut s, &["FLUSHALL"]);
    let rss0 = server.rss_bytes();
    let used0 = info_field(&mut s, "memory", "used_memory");
    let mut report = Vec::new();
    for (name, count, size) in [
        ("small", 200_000usize, 16usize),
        ("medium", 50_000, 1000),
        ("large", 200, 100_000),
    ] {
        let value = vec![b'm'; size];
        fill(&mut s, name, 0..count, &value, &[], 1000);
        let rss = server.rss_bytes();
        let used = info_field(&mut s, "memory", "used_memory");
        let ratio = (rss - rss0) as f64 / (used - used0) as f64;
        report.push(format!(
            "{name:>6}: {count} x {size} B: used_memory +{:.1} MiB, RSS +{:.1} MiB, RSS/used = {ratio:.2}",
            (used - used0) as f64 / MIB as f64,
            (rss - rss0) as f64 / MIB as f64
        ));
        // Cumulative: each step adds to the previous ones.
        assert!((0.6..=1.6).contains(&ratio), "{}", report.join("\n"));
    }
    println!("{}", report.join("\n"));
}

/// Survivors of `prefix:0..n`, by pipelined `EXISTS` (which does not count as an access).
fn survivors(s: &mut TcpStream, prefix: &str, n: usize) -> usize {
    let mut buf = Vec::new();
    for i in 0..n {
        buf.extend(resp_str(&["EXISTS", &format!("{prefix}:{i}")]));
    }
    s.write_all(&buf).unwrap();
    read_replies(s, n)
        .iter()
        .filter(|r| *r == b":1\r\n")
        .count()
}

/// Each policy evicts the right kind of key. Old keys (`persist:*` without a TTL, `cold:*` with
/// one), then 100 `hot:*` keys (with a TTL) read 100 times each once the old ones have been
/// idle for a second, then enough `new:*` keys (with a TTL, the hot keys read between their
/// batches) to evict about 700 keys:
/// * LRU and LFU keep the hot keys and evict old ones; the `volatile-` ones never a key
///   without a TTL;
/// * `random` policies do not favour the hot keys; `allkeys-random` evicts keys without a TTL
///   too, `volatile-random` never;
/// * `noeviction` evicts nothing and refuses the writes (`volatile-ttl`'s order is checked by
///   `each_policy_evicts_what_it_should`).
#[test]
fn each_policy_evicts_the_right_kind_of_key() {
    const PERSIST: usize = 200;
    const COLD: usize = 1400;
    const HOT: usize = 100;
    const NEW: usize = 900;
    let value = vec![b'p'; 1000];
    let ttl: &[&str] = &["EX", "100000"];
    for policy in [
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "noeviction",
    ] {
        let server = Server::start(&["--maxmemory", "2mb", "--maxmemory-policy", policy]);
        let mut s = server.connect();
        assert!(fill(&mut s, "persist", 0..PERSIST, &value, &[], 100).is_empty());
        assert!(fill(&mut s, "cold", 0..COLD, &value, ttl, 100).is_empty());
        assert!(fill(&mut s, "hot", 0..HOT, &value, ttl, 100).is_empty());
        assert_eq!(
            info_field(&mut s, "stats", "evicted_keys"),
            0,
            "{policy}: evicted before the pressure"
        );
        if !policy.contains("lfu") {
            // The LRU clock moves on: every old key is idle for at least a second.
            shardcache_tests::wait_until(
                "a second of idle time",
                std::time::Duration::from_secs(30),
                || {
                    cmd(
                        &mut s,
                        &["OBJECT", "IDLETIME", &format!("cold:{}", COLD - 1)],
                    ) != b":0\r\n"
                },
            );
        }
        let mut reads = Vec::new();
        for _ in 0..100 {
            for i in 0..HOT {
                reads.extend(resp_str(&["GET", &format!("hot:{i}")]));
            }
        }
        s.write_all(&reads).unwrap();
        assert!(read_replies(&mut s, 100 * HOT)
            .iter()
            .all(|r| r.starts_with(b"$1000")));
        // The new keys arrive in batches, the hot keys read after each: they stay the most
        // recently (and most often) used keys while the pressure lasts.
        let mut refused = Vec::new();
        for start in (0..NEW).step_by(100) {
            refused.extend(fill(&mut s, "new", start..start + 100, &value, ttl, 100));
            let mut reads = Vec::new();
            for i in 0..HOT {
                reads.extend(resp_str(&["GET", &format!("hot:{i}")]));
            }
            s.write_all(&reads).unwrap();
            read_replies(&mut s, HOT);
        }
        let evicted = info_field(&mut s, "stats", "evicted_keys");
        let persist = survivors(&mut s, "persist", PERSIST);
        let cold = survivors(&mut s, "cold", COLD);
        let hot = survivors(&mut s, "hot", HOT);
        println!(
            "{policy}: evicted {evicted}, refused {}; left: persist {persist}/{PERSIST}, cold {cold}/{COLD}, hot {hot}/{HOT}",
            refused.len()
        );
        if policy == "noeviction" {
            assert_eq!(evicted, 0);
            assert!(refused.iter().all(|r| r.starts_with(b"-OOM")) && !refused.is_empty());
            assert_eq!((persist, cold, hot), (PERSIST, COLD, HOT));
            continue;
        }
        assert!(refused.is_empty(), "{policy}: writes refused");
        assert!(evicted >= 500, "{policy}: evicted {evicted}");
        if policy.starts_with("volatile-") {
            assert_eq!(persist, PERSIST, "{policy} evicted keys without a TTL");
        }
        let old_left = (persist + cold) as f64 / (PERSIST + COLD) as f64;
        if policy.ends_with("-random") {
            // Being read protects nothing: hot keys go like the others.
            assert!(hot < HOT, "{policy} spared every hot key");
            if policy == "allkeys-random" {
                assert!(persist < PERSIST, "{policy} spared every key without a TTL");
            }
        } else {
            assert!(
                hot >= HOT * 95 / 100,
                "{policy} evicted {} hot keys",
                HOT - hot
            );
            // LRU takes the old keys first (LFU cannot tell them from the new ones: both were
            // accessed once).
            if policy.ends_with("-lru") {
                assert!(
                    old_left < 0.7,
                    "{policy}: {old_left:.2} of the old keys left"
                );
            }
        }
    }
}
