//! Contention observability, end to end: the metrics endpoint, promtool, a real Prometheus,
//! INFO contention / commandstats / latencystats and HOTKEYS under a one-key write storm.

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shardcache_tests::{free_port, http_get, read_replies, require, resp_str, roundtrip, Server};

/// The value of one exact series line in an exposition.
fn series(body: &str, name_and_labels: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn info(s: &Server, section: &str) -> String {
    let mut c = s.connect();
    let r = roundtrip(&mut c, &resp_str(&["INFO", section]), 1);
    String::from_utf8_lossy(&r[0]).into_owned()
}

/// Every required name is there for every shard, and promtool finds no problem.
#[test]
fn metrics_endpoint_lists_every_shard_and_passes_promtool() {
    let s = Server::start_with_metrics(&["--shards", "8"]);
    let mut c = s.connect();
    roundtrip(&mut c, b"SET a 1\r\nGET a\r\nGET b\r\nNOSUCH\r\nGET\r\n", 5);
    let (status, body) = http_get(s.metrics_port(), "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    for shard in 0..8 {
        for mode in ["read", "write"] {
            let l = format!("{{shard=\"{shard}\",mode=\"{mode}\"}}");
            assert!(
                series(
                    &body,
                    &format!("shardcache_shard_lock_acquisitions_total{l}")
                )
                .is_some(),
                "{l}"
            );
            assert!(series(&body, &format!("shardcache_shard_lock_contended_total{l}")).is_some());
            assert!(series(
                &body,
                &format!("shardcache_shard_lock_wait_seconds_count{l}")
            )
            .is_some());
            let b = format!("shardcache_shard_lock_wait_seconds_bucket{{shard=\"{shard}\",mode=\"{mode}\",le=\"0.0000001\"}}");
            assert!(series(&body, &b).is_some(), "{b}");
        }
        assert!(series(
            &body,
            &format!("shardcache_shard_keys{{shard=\"{shard}\"}}")
        )
        .is_some());
        assert!(series(
            &body,
            &format!("shardcache_shard_used_memory_bytes{{shard=\"{shard}\"}}")
        )
        .is_some());
    }
    for name in [
        "shardcache_connected_clients",
        "shardcache_connections_total",
        "shardcache_rejected_connections_total",
        "shardcache_keyspace_hits_total",
        "shardcache_keyspace_misses_total",
        "shardcache_expired_keys_total",
        "shardcache_evicted_keys_total",
        "shardcache_used_memory_bytes",
        "shardcache_maxmemory_bytes",
        "shardcache_shards",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(series(&body, name).is_some(), "{name} missing");
    }
    assert_eq!(series(&body, "shardcache_shards"), Some(8.0));
    assert_eq!(series(&body, "shardcache_keyspace_hits_total"), Some(1.0));
    assert_eq!(series(&body, "shardcache_keyspace_misses_total"), Some(1.0));
    assert_eq!(
        series(&body, "shardcache_commands_total{command=\"get\"}"),
        Some(2.0)
    );
    assert_eq!(
        series(&body, "shardcache_command_errors_total{command=\"get\"}"),
        Some(1.0)
    );
    assert!(body.contains("shardcache_build_info{version=\""));
    assert!(series(
        &body,
        "shardcache_command_duration_seconds_count{command=\"get\"}"
    )
    .is_some());
    assert!(
        body.contains("shardcache_command_duration_seconds_bucket{command=\"get\",le=\"0.00001\"}")
    );

    require!("promtool");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unknown_paths_are_404() {
    let s = Server::start_with_metrics(&[]);
    assert_eq!(
        http_get(s.metrics_port(), "/nope").0,
        "HTTP/1.1 404 Not Found"
    );
}

/// A scrape of 1024 shards renders (the cost is asserted loosely: this is not a benchmark,
/// it guards against an accidental quadratic render).
#[test]
fn large_shard_counts_scrape_and_can_be_bounded() {
    let s = Server::start_with_metrics(&["--shards", "1024"]);
    let (_, body) = http_get(s.metrics_port(), "/metrics");
    assert!(series(&body, "shardcache_shard_keys{shard=\"1023\"}").is_some());
    let s = Server::start_with_metrics(&["--shards", "1024", "--metrics-top-shards", "4"]);
    let (_, body) = http_get(s.metrics_port(), "/metrics");
    let shards = body
        .lines()
        .filter(|l| l.starts_with("shardcache_shard_keys{"))
        .count();
    assert_eq!(shards, 4);
    assert!(series(&body, "shardcache_lock_acquisitions_total{mode=\"read\"}").is_some());
}

/// Many connections hammer one key with SETs: that key's shard must lead the contention
/// counters and the wait histogram, other shards stay near zero, INFO contention names the
/// shard and HOTKEYS the key.
#[test]
fn one_key_write_storm_is_visible() {
    let s = Server::start_with_metrics(&["--shards", "16"]);
    let port = s.port();
    // Background traffic on other keys, much lighter.
    let mut c = s.connect();
    let mut warm = Vec::new();
    for i in 0..200 {
        warm.extend(resp_str(&["SET", &format!("other:{i}"), "x"]));
    }
    roundtrip(&mut c, &warm, 200);
    let deadline = Instant::now() + Duration::from_secs(3);
    let writers: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let batch: Vec<u8> = (0..64)
                    .flat_map(|_| resp_str(&["SET", "hot:key", "v"]))
                    .collect();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    c.write_all(&batch).unwrap();
                    read_replies(&mut c, 64);
                    n += 64;
                }
                n
            })
        })
        .collect();
    let total: u64 = writers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(total > 1000);

    let mut c = s.connect();
    let hot =
        String::from_utf8_lossy(&roundtrip(&mut c, b"HOTKEYS COUNT 3\r\n", 1)[0]).into_owned();
    // *3\r\n*4\r\n$7\r\nhot:key\r\n:<shard>\r\n…
    let mut lines = hot.split("\r\n");
    assert_eq!(lines.nth(3), Some("hot:key"), "HOTKEYS: {hot}");
    let shard: usize = lines
        .next()
        .unwrap()
        .trim_start_matches(':')
        .parse()
        .unwrap();

    let (_, body) = http_get(s.metrics_port(), "/metrics");
    let contended = |i: usize| {
        series(
            &body,
            &format!("shardcache_shard_lock_contended_total{{shard=\"{i}\",mode=\"write\"}}"),
        )
        .unwrap()
    };
    let hot_contended = contended(shard);
    assert!(
        hot_contended > 0.0,
        "the storm must have produced contention"
    );
    for i in (0..16).filter(|&i| i != shard) {
        assert!(
            contended(i) * 20.0 <= hot_contended,
            "shard {i}: {} vs hot {hot_contended}",
            contended(i)
        );
    }
    let waited = series(
        &body,
        &format!("shardcache_shard_lock_wait_seconds_count{{shard=\"{shard}\",mode=\"write\"}}"),
    )
    .unwrap();
    assert_eq!(
        waited, hot_contended,
        "every contended acquisition is in the histogram"
    );

    let text = info(&s, "contention");
    let verdict = text
        .lines()
        .find(|l| l.starts_with("contention_verdict:"))
        .unwrap();
    assert!(
        verdict.contains(&format!("shard {shard} is the most contended")),
        "{verdict}"
    );
    let acquisitions = |line: &str| -> u64 {
        let f = line
            .split(',')
            .find(|f| f.starts_with("write_acquisitions="))
            .unwrap();
        f.trim_start_matches("write_acquisitions=").parse().unwrap()
    };
    let hot_line = text
        .lines()
        .find(|l| l.starts_with(&format!("shard_{shard}:")))
        .expect(&text);
    for l in text
        .lines()
        .filter(|l| l.starts_with("shard_") && !l.starts_with(&format!("shard_{shard}:")))
    {
        assert!(acquisitions(l) * 100 < acquisitions(hot_line), "{l}");
    }
}

#[test]
fn commandstats_and_latencystats_use_redis_formats() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    roundtrip(&mut c, b"SET a 1\r\nGET a\r\nGET a\r\nGET\r\n", 4);
    let stats = info(&s, "commandstats");
    let line = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_get:"))
        .expect(&stats);
    assert!(line.starts_with("cmdstat_get:calls=2,usec="), "{line}");
    assert!(
        line.contains(",usec_per_call=") && line.ends_with(",rejected_calls=1,failed_calls=0"),
        "{line}"
    );
    let lat = info(&s, "latencystats");
    let line = lat
        .lines()
        .find(|l| l.starts_with("latency_percentiles_usec_get:"))
        .expect(&lat);
    let rest = line.trim_start_matches("latency_percentiles_usec_get:");
    let keys: Vec<&str> = rest
        .split(',')
        .map(|kv| kv.split('=').next().unwrap())
        .collect();
    assert_eq!(keys, ["p50", "p99", "p99.9"]);
    let everything = info(&s, "everything");
    for section in [
        "# Server",
        "# Commandstats",
        "# Latencystats",
        "# Contention",
        "# Keyspace",
    ] {
        assert!(everything.contains(section), "{section}");
    }
}

/// A real Prometheus scrapes the endpoint; its HTTP API returns per-shard series.
#[test]
fn real_prometheus_scrapes_per_shard_series() {
    require!("prometheus");
    let s = Server::start_with_metrics(&["--shards", "4"]);
    let mut c = s.connect();
    roundtrip(&mut c, b"SET a 1\r\n", 1);
    let dir = std::env::temp_dir().join(format!("shardcache-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: shardcache\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            s.metrics_port()
        ),
    )
    .unwrap();
    let web = free_port();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Kill(&mut prom);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let Ok(mut probe) = TcpStream::connect(("127.0.0.1", web)) else {
            continue;
        };
        drop(probe.write_all(b""));
        let (status, body) = http_get(
            web,
            "/api/v1/query?query=shardcache_shard_lock_acquisitions_total",
        );
        last = format!("{status} {body}");
        if status.contains("200") && body.contains("\"shard\":\"3\"") {
            let n = body
                .matches("\"__name__\":\"shardcache_shard_lock_acquisitions_total\"")
                .count();
            assert_eq!(n, 8, "4 shards x 2 modes: {body}");
            assert!(body.contains("\"mode\":\"write\""));
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    panic!("Prometheus never returned per-shard series: {last}");
}

#[test]
fn config_resetstat_zeroes_the_statistics() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    roundtrip(&mut c, b"SET a 1\r\nGET a\r\nGET b\r\n", 3);
    assert!(info(&s, "commandstats").contains("cmdstat_get:calls=2,"));
    assert_eq!(roundtrip(&mut c, b"CONFIG RESETSTAT\r\n", 1)[0], b"+OK\r\n");
    let stats = info(&s, "stats");
    assert!(
        stats.contains("keyspace_hits:0\r\n") && stats.contains("keyspace_misses:0\r\n"),
        "{stats}"
    );
    let cmd = info(&s, "commandstats");
    assert!(!cmd.contains("cmdstat_get:"), "{cmd}");
    let cont = info(&s, "contention");
    assert!(cont.contains("write_acquisitions:0\r\n"), "{cont}");
    assert_eq!(
        roundtrip(&mut c, b"GET a\r\n", 1)[0],
        b"$1\r\n1\r\n",
        "data is kept"
    );
}

/// `/metrics` never carries a key name (nor anything else a client chose): keys that are hot
/// (HOTKEYS names them), missed, in errors, renamed, in unknown commands and in `CLIENT
/// SETNAME` are all absent from the scrape, whose labels are the server's own vocabulary.
#[test]
fn metrics_never_contain_a_key_name() {
    let s = Server::start_with_metrics(&["--shards", "4"]);
    let mut c = s.connect();
    let marker = "Xk3yN4me";
    let mut batch = Vec::new();
    for i in 0..2_000 {
        let key = format!("{marker}:hot");
        batch.extend(resp_str(&["SET", &key, "v"]));
        batch.extend(resp_str(&["GET", &key]));
        batch.extend(resp_str(&["GET", &format!("{marker}:miss:{i}")]));
    }
    for words in [
        vec![
            "SET".to_string(),
            format!("{marker}:s"),
            "notanumber".into(),
        ],
        vec!["INCR".into(), format!("{marker}:s")],
        vec![
            "RENAME".into(),
            format!("{marker}:s"),
            format!("{marker}:r"),
        ],
        vec!["EXPIRE".into(), format!("{marker}:r"), "100".into()],
        vec![format!("{marker}cmd"), format!("{marker}:arg")],
        vec!["CLIENT".into(), "SETNAME".into(), format!("{marker}name")],
        vec![
            "GETRANGE".into(),
            format!("{marker}:r"),
            "x".into(),
            "y".into(),
        ],
    ] {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        batch.extend(resp_str(&w));
    }
    roundtrip(&mut c, &batch, 6_000 + 7);
    let hot =
        String::from_utf8_lossy(&roundtrip(&mut c, b"HOTKEYS COUNT 3\r\n", 1)[0]).into_owned();
    assert!(hot.contains(marker), "HOTKEYS saw the key: {hot}");
    let (status, body) = http_get(s.metrics_port(), "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("shardcache_commands_total"), "{body}");
    let leaks: Vec<&str> = body
        .lines()
        .filter(|l| {
            l.to_ascii_lowercase()
                .contains(&marker.to_ascii_lowercase())
        })
        .collect();
    assert!(leaks.is_empty(), "/metrics names client data: {leaks:?}");
}
