//! The `shardcache-bench` binary end to end against a real redis-server (and,
//! for `load`, a shardcache binary when one is built).

use std::process::Command;
use std::time::Duration;

use shardcache_client::{Client, Frame, Ttl};
use shardcache_tests::{free_port, require, RedisServer, Server};

const BENCH: &str = env!("CARGO_BIN_EXE_shardcache-bench");

#[test]
fn run_json_against_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let out = Command::new(BENCH)
        .args([
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            &redis.port().to_string(),
        ])
        .args([
            "--duration",
            "1",
            "--connections",
            "4",
            "--pipeline",
            "4",
            "--keys",
            "1000",
        ])
        .args([
            "--distribution",
            "zipf",
            "--read-ratio",
            "0.8",
            "--prefill",
            "--threads",
            "2",
        ])
        .args(["--output", "json"])
        .output()
        .expect("run bench");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON on stdout");
    // No throughput or duration bound (the machine may be loaded): the report must be
    // consistent (rate = requests / duration), and the run at least as long as asked.
    let ops = v["ops_per_sec"].as_f64().unwrap();
    let requests = v["requests"].as_u64().unwrap();
    let duration = v["duration_s"].as_f64().unwrap();
    assert_eq!(v["errors"].as_u64(), Some(0), "{v}");
    assert!(requests > 0, "{v}");
    assert!(duration >= 0.99, "{v}");
    assert!(
        (ops - requests as f64 / duration).abs() <= 0.01 * ops,
        "ops_per_sec is not requests / duration_s: {v}"
    );
    for section in ["latency_us", "get", "set"] {
        for f in ["p50", "p90", "p99", "p999", "max", "mean"] {
            assert!(
                v[section][f].as_f64().unwrap() > 0.0,
                "{section}.{f} in {v}"
            );
        }
        assert!(v[section]["p50"].as_f64() <= v[section]["p99"].as_f64());
    }
    // Prefilled: every GET hits.
    assert_eq!(v["get_misses"].as_u64(), Some(0), "{v}");
    assert_eq!(v["config"]["connections"].as_u64(), Some(4));
    assert_eq!(v["config"]["distribution"].as_str(), Some("zipf"));
    // Piped stderr: no progress line.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("ops/s"));
}

#[test]
fn run_requests_open_loop_and_csv() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let port = redis.port().to_string();
    // Fixed request count.
    let out = Command::new(BENCH)
        .args([
            "run",
            "--port",
            &port,
            "--requests",
            "5000",
            "--connections",
            "5",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["requests"].as_u64(), Some(5000), "{v}");

    // Open loop at 2,000 req/s for 1 s: about 2,000 requests, latency from schedule.
    let out = Command::new(BENCH)
        .args([
            "run",
            "--port",
            &port,
            "--rate",
            "2000",
            "--duration",
            "1",
            "--connections",
            "4",
        ])
        .args(["--distribution", "hotset", "--output", "csv"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.len(), row.len());
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    let requests: u64 = col("requests").parse().unwrap();
    assert!((1700..=2100).contains(&requests), "{text}");
    assert_eq!(col("errors"), "0");
    assert_eq!(col("distribution"), "hotset");

    // Nothing listening: a clear failure, not a hang.
    let dead = free_port().to_string();
    let out = Command::new(BENCH)
        .args(["run", "--port", &dead, "--duration", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}

/// The sweep machinery end to end, with redis-server standing in for the
/// shardcache binary (a wrapper script drops `--shards` / `--metrics-addr`).
#[test]
fn sweep_writes_csv_markdown_and_plots() {
    require!("redis-server");
    let dir = std::env::temp_dir().join(format!("sc-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("fake-server.sh");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\n# args: --port P --shards N --metrics-addr ''\nexec redis-server --port \"$2\" --save '' --appendonly no --bind 127.0.0.1\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .unwrap();
    let out_dir = dir.join("out");
    let out = Command::new(BENCH)
        .args(["sweep", "--server-bin"])
        .arg(&wrapper)
        .args([
            "--shards",
            "1,4",
            "--connections",
            "1,2",
            "--read-ratios",
            "0.5",
        ])
        .args([
            "--distributions",
            "uniform,zipf",
            "--duration",
            "0.3",
            "--warmup",
            "0.1",
            "--keys",
            "500",
        ])
        .args(["--compare-redis", "--redis-bin"])
        .arg("redis-server")
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(out_dir.join("results.csv")).unwrap();
    // header + 2 shards x 4 points + 4 redis points
    assert_eq!(csv.lines().count(), 1 + 8 + 4, "{csv}");
    let first = csv.lines().nth(1).unwrap();
    assert!(first.starts_with("shardcache,1,1,0.5,uniform,"), "{first}");
    // The ratio column is filled; the contention columns stay empty here, because the
    // stand-in server (redis behind a wrapper script) has no `INFO contention`.
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let ratio = header.iter().position(|h| *h == "ratio_vs_redis").unwrap();
    let cells: Vec<&str> = first.split(',').collect();
    assert!(
        cells[ratio].parse::<f64>().is_ok_and(|r| r > 0.0),
        "ratio column filled: {first}"
    );
    let md = std::fs::read_to_string(out_dir.join("results.md")).unwrap();
    assert!(md.contains("| ratio |"), "{md}");
    for svg in ["throughput.svg", "p99.svg"] {
        let s = std::fs::read_to_string(out_dir.join(svg)).unwrap();
        assert!(s.contains("<svg") && s.contains("conns"), "{svg}");
    }
    assert!(out_dir.join("server-shards-4.log").exists());
    assert!(std::fs::read_dir(out_dir.join("info")).unwrap().count() >= 8);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `shardcache-bench load` against `port` and checks what it left behind: exactly
/// `keys` keys, each `key:` + 12 digits with a value of the requested size and TTL.
fn check_load(port: u16) {
    let port_s = port.to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let mut client = rt.block_on(Client::connect(addr.clone())).unwrap();
    rt.block_on(client.cmd(&["FLUSHALL"])).unwrap();

    // 5,000 keys with a TTL; pipeline 7 does not divide 5,000, so the last batch is short.
    let out = Command::new(BENCH)
        .args([
            "load",
            "--port",
            &port_s,
            "--keys",
            "5000",
            "--key-size",
            "16",
        ])
        .args(["--value-size", "100", "--ttl", "3600", "--connections", "3"])
        .args(["--pipeline", "7", "--threads", "2", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["requests"].as_u64(), Some(5000), "{v}");
    assert_eq!(v["errors"].as_u64(), Some(0), "{v}");
    assert_eq!(v["set"]["count"].as_u64(), Some(5000), "{v}");
    for f in ["p50", "p99", "p999", "max"] {
        assert!(v["set"][f].as_f64().unwrap() > 0.0, "set.{f} in {v}");
    }
    assert!(v["set"]["p50"].as_f64() <= v["set"]["p999"].as_f64());
    let strlen =
        |client: &mut Client, key: &str| match rt.block_on(client.cmd(&["STRLEN", key])).unwrap() {
            Frame::Integer(n) => n,
            other => panic!("STRLEN {key}: {other:?}"),
        };
    assert_eq!(rt.block_on(client.dbsize()).unwrap(), 5000);
    for key in ["key:000000000000", "key:000000002500", "key:000000004999"] {
        assert_eq!(key.len(), 16);
        assert_eq!(strlen(&mut client, key), 100, "{key}");
        match rt.block_on(client.ttl(key)).unwrap() {
            Ttl::Expires(d) => assert!(d > Duration::from_secs(3500), "{key}: {d:?}"),
            other => panic!("{key} should expire: {other:?}"),
        }
    }
    assert_eq!(strlen(&mut client, "key:000000005000"), 0);

    // Text output, no TTL, after a flush: the human lines and the key=value line.
    rt.block_on(client.cmd(&["FLUSHALL"])).unwrap();
    let out = Command::new(BENCH)
        .args([
            "load",
            "--port",
            &port_s,
            "--keys",
            "1000",
            "--value-size",
            "8",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("SET latency (us): p50 "), "{text}");
    let kv = text.lines().find(|l| l.starts_with("load ")).expect(&text);
    let field = |name: &str| {
        kv.split(' ')
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("{name} in {kv}"))
    };
    assert_eq!(field("requests"), "1000");
    assert_eq!(field("errors"), "0");
    assert_eq!(field("ttl"), "0");
    assert!(field("ops_per_sec").parse::<f64>().unwrap() > 0.0);
    assert!(field("p999_us").parse::<f64>().unwrap() > 0.0);
    assert_eq!(rt.block_on(client.dbsize()).unwrap(), 1000);
    assert_eq!(strlen(&mut client, "key:000000000999"), 8);
    assert_eq!(
        rt.block_on(client.ttl("key:000000000999")).unwrap(),
        Ttl::Persistent
    );

    // Keys that cannot be 16 bytes and distinct: refused before connecting.
    let out = Command::new(BENCH)
        .args([
            "load",
            "--port",
            &port_s,
            "--keys",
            "1000000",
            "--key-size",
            "9",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key-size"));
}

#[test]
fn load_sets_every_key_once_redis() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    check_load(redis.port());
}

#[test]
fn load_sets_every_key_once_shardcache() {
    let server = Server::start(&[]);
    check_load(server.port());
}
