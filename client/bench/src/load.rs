//! `shardcache-bench load`: SET keys `0..N` once each, in order, over a few
//! pipelined connections, timing every SET. The memory benchmark
//! (`scripts/bench-memory.sh`) uses it to fill a server, and reads the SET
//! latency percentiles to see whether the server stalls while its tables grow.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::output::OutputFormat;
use super::stats::{new_histogram, round2, LatencySummary};
use super::workload::RequestEncoder;
use shardcache_client::{Client, ClientConfig, Frame};

/// `shardcache-bench load ...`.
#[derive(Clone, Debug, Serialize, clap::Args)]
pub struct LoadConfig {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// Number of distinct keys to SET (indices 0..N, each once).
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Key size in bytes: `key:` and zero-padded digits (16 gives `key:000000000042`).
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 32)]
    pub value_size: usize,
    /// Send `SET key value EX <ttl>` instead of a plain SET.
    #[arg(long)]
    pub ttl: Option<u64>,
    /// Concurrent connections; each claims the next `--pipeline` keys at a time.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// SETs per batch per connection: a connection writes a batch and reads all
    /// its replies before the next one, so at most this many are in flight.
    #[arg(long, default_value_t = 64)]
    pub pipeline: usize,
}

impl LoadConfig {
    /// Defaults for `host:port`, as the CLI would have them.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        LoadConfig {
            host: host.into(),
            port,
            keys: 1_000_000,
            key_size: 16,
            value_size: 32,
            ttl: None,
            connections: 4,
            pipeline: 64,
        }
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The encoder for these keys and values.
    ///
    /// # Errors
    /// A message naming the bad option.
    pub fn encoder(&self) -> Result<RequestEncoder, String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if self.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        if self.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        RequestEncoder::with_key_size(self.keys, self.key_size, self.value_size, self.ttl)
    }
}

/// What [`set_all`] measured.
#[derive(Clone, Debug)]
pub struct LoadStats {
    /// Per-SET latency in ns, from its batch's write to its reply.
    pub latency: Histogram<u64>,
    /// SETs answered with an error.
    pub errors: u64,
    /// The first error reply, if any.
    pub first_error: Option<String>,
    /// Wall time from the first write to the last reply.
    pub elapsed: Duration,
}

/// The result of `shardcache-bench load` (the JSON output's shape).
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    /// SETs answered (OK or error).
    pub requests: u64,
    /// SETs answered with an error.
    pub errors: u64,
    /// The first error reply, if any.
    pub first_error: Option<String>,
    /// Wall time of the load.
    pub duration_s: f64,
    /// Answered SETs per second.
    pub ops_per_sec: f64,
    /// SET latency.
    pub set: LatencySummary,
    /// The parameters of the load.
    pub config: LoadConfig,
}

/// SETs every index in `0..keys` once with `encoder`, over `connections`
/// connections writing batches of `pipeline` requests; batches are claimed in
/// key order from a shared counter, so keys arrive (almost) sequentially.
/// `progress` is bumped by the number of replies after each batch.
///
/// # Errors
/// Connection failures (error replies are counted, not fatal).
pub async fn set_all(
    addr: &str,
    encoder: Arc<RequestEncoder>,
    keys: u64,
    connections: usize,
    pipeline: usize,
    progress: Arc<AtomicU64>,
) -> anyhow::Result<LoadStats> {
    let next = Arc::new(AtomicU64::new(0));
    let pipeline = pipeline.max(1) as u64;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let (encoder, next, progress) = (
            Arc::clone(&encoder),
            Arc::clone(&next),
            Arc::clone(&progress),
        );
        let mut client = Client::connect(addr.to_string()).await?;
        tasks.push(tokio::spawn(async move {
            let mut latency = new_histogram();
            let mut errors = 0u64;
            let mut first_error = None;
            let mut buf = Vec::new();
            loop {
                let from = next.fetch_add(pipeline, Ordering::Relaxed);
                if from >= keys {
                    break;
                }
                let to = keys.min(from + pipeline);
                buf.clear();
                for idx in from..to {
                    encoder.push_set(&mut buf, idx);
                }
                let sent = Instant::now();
                client.send_raw(&buf).await?;
                client
                    .read_frames_with((to - from) as usize, |frame| {
                        let ns = sent.elapsed().as_nanos() as u64;
                        latency.saturating_record(ns.max(1));
                        if let Frame::Error(e) = frame {
                            errors += 1;
                            first_error
                                .get_or_insert_with(|| String::from_utf8_lossy(&e).into_owned());
                        }
                    })
                    .await?;
                progress.fetch_add(to - from, Ordering::Relaxed);
            }
            Ok::<_, shardcache_client::Error>((latency, errors, first_error))
        }));
    }
    let mut stats = LoadStats {
        latency: new_histogram(),
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (latency, errors, first_error) = t.await??;
        // Same bounds on both sides, so `add` cannot fail.
        let _ = stats.latency.add(&latency);
        stats.errors += errors;
        if stats.first_error.is_none() {
            stats.first_error = first_error;
        }
    }
    stats.elapsed = started.elapsed();
    Ok(stats)
}

/// Runs `shardcache-bench load` on the current tokio runtime. `progress`
/// prints a live line on stderr once a second.
///
/// # Errors
/// An invalid config, or a connection failure.
pub async fn load(cfg: &LoadConfig, progress: bool) -> anyhow::Result<LoadReport> {
    let encoder = Arc::new(cfg.encoder().map_err(anyhow::Error::msg)?);
    // Fail fast with a clear message when the server is not there.
    let mut probe = Client::connect_with(ClientConfig::new(cfg.addr()))
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", cfg.addr()))?;
    drop(probe.ping().await);
    drop(probe);

    let done = Arc::new(AtomicU64::new(0));
    let printer = progress.then(|| {
        let done = Arc::clone(&done);
        let keys = cfg.keys;
        tokio::spawn(async move {
            let start = Instant::now();
            let mut last = 0;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = done.load(Ordering::Relaxed);
                eprint!(
                    "\r{:>6.1}s  {now:>11} / {keys} keys  {:>9} SET/s   ",
                    start.elapsed().as_secs_f64(),
                    now - last
                );
                last = now;
            }
        })
    });
    let stats = set_all(
        &cfg.addr(),
        encoder,
        cfg.keys,
        cfg.connections,
        cfg.pipeline,
        done,
    )
    .await
    .map_err(|e| anyhow::anyhow!("load against {} failed: {e}", cfg.addr()))?;
    if let Some(p) = printer {
        p.abort();
        eprintln!();
    }
    let secs = stats.elapsed.as_secs_f64().max(1e-9);
    Ok(LoadReport {
        requests: stats.latency.len(),
        errors: stats.errors,
        first_error: stats.first_error,
        duration_s: round2(secs),
        ops_per_sec: round2(stats.latency.len() as f64 / secs),
        set: LatencySummary::from_histogram(&stats.latency),
        config: cfg.clone(),
    })
}

/// The report in the requested format, newline-terminated. Text is a human
/// summary followed by one `load key=value ...` line for scripts.
pub fn render(r: &LoadReport, format: OutputFormat) -> String {
    match format {
        OutputFormat::Text => {
            let c = &r.config;
            let mut s = String::new();
            let ttl = c.ttl.map_or(String::new(), |t| format!(" EX {t}"));
            let _ = writeln!(
                s,
                "target {}  {} keys x SET (key {} B, value {} B{ttl})  connections {}  pipeline {}",
                c.addr(),
                c.keys,
                c.key_size,
                c.value_size,
                c.connections,
                c.pipeline
            );
            let _ = writeln!(
                s,
                "{} SETs in {:.2} s: {:.0} SET/s, {} errors{}",
                r.requests,
                r.duration_s,
                r.ops_per_sec,
                r.errors,
                r.first_error
                    .as_deref()
                    .map_or(String::new(), |e| format!(" (first: {e})"))
            );
            let l = &r.set;
            let _ = writeln!(
                s,
                "SET latency (us): p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
                l.p50, l.p99, l.p999, l.max, l.mean
            );
            s.push_str(&kv_line(r));
            s.push('\n');
            s
        }
        OutputFormat::Json => {
            let mut s = serde_json::to_string_pretty(r)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
            s.push('\n');
            s
        }
        OutputFormat::Csv => {
            let (h, v) = fields(r);
            format!("{}\n{}\n", h.join(","), v.join(","))
        }
    }
}

/// `load keys=... ops_per_sec=... p50_us=...` on one line.
pub fn kv_line(r: &LoadReport) -> String {
    let (h, v) = fields(r);
    let mut s = String::from("load");
    for (k, v) in h.iter().zip(&v) {
        let _ = write!(s, " {k}={v}");
    }
    s
}

/// Column names and values shared by the CSV and key=value forms.
fn fields(r: &LoadReport) -> (Vec<&'static str>, Vec<String>) {
    let c = &r.config;
    let l = &r.set;
    let h = vec![
        "keys",
        "key_size",
        "value_size",
        "ttl",
        "connections",
        "pipeline",
        "requests",
        "errors",
        "duration_s",
        "ops_per_sec",
        "p50_us",
        "p99_us",
        "p999_us",
        "max_us",
        "mean_us",
    ];
    let v = vec![
        c.keys.to_string(),
        c.key_size.to_string(),
        c.value_size.to_string(),
        c.ttl.map_or("0".into(), |t| t.to_string()),
        c.connections.to_string(),
        c.pipeline.to_string(),
        r.requests.to_string(),
        r.errors.to_string(),
        r.duration_s.to_string(),
        r.ops_per_sec.to_string(),
        l.p50.to_string(),
        l.p99.to_string(),
        l.p999.to_string(),
        l.max.to_string(),
        l.mean.to_string(),
    ];
    (h, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_rejected() {
        let mut c = LoadConfig::new("127.0.0.1", 1);
        assert!(c.encoder().is_ok());
        c.key_size = 9; // "key:" + 5 digits < 1,000,000 keys
        assert!(c.encoder().unwrap_err().contains("--key-size"));
        c.key_size = 16;
        c.pipeline = 0;
        assert!(c.encoder().is_err());
    }

    #[test]
    fn kv_line_has_every_field() {
        let r = LoadReport {
            requests: 10,
            errors: 0,
            first_error: None,
            duration_s: 1.0,
            ops_per_sec: 10.0,
            set: LatencySummary::default(),
            config: LoadConfig::new("127.0.0.1", 1),
        };
        let line = kv_line(&r);
        assert!(line.starts_with("load keys=1000000 key_size=16 value_size=32 ttl=0 "));
        assert!(line.contains(" p999_us=0 "), "{line}");
        assert_eq!(line.split(' ').count(), 16);
    }
}
