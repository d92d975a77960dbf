//! `shardcache-bench sweep`: start the server per shard count, run a grid of
//! workloads, write results.csv / results.md / SVG plots.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::process::{Child, Command};

use super::runner::{self, Report, RunConfig};
use super::workload::Distribution;
use shardcache_client::Client;

/// The grid (`shardcache-bench sweep ...`).
#[derive(Clone, Debug, clap::Args)]
pub struct SweepConfig {
    /// The shardcache server binary; started as
    /// `PATH --port P --shards N --metrics-addr ''`.
    #[arg(long)]
    pub server_bin: PathBuf,
    /// Shard counts to start the server with.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    pub shards: Vec<usize>,
    /// Connection counts.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub connections: Vec<usize>,
    /// GET fractions.
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.95")]
    pub read_ratios: Vec<f64>,
    /// Key distributions.
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "uniform,zipf"
    )]
    pub distributions: Vec<Distribution>,
    /// Seconds measured per grid point.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Unmeasured seconds before each grid point.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Key space size (every key is SET once after each server start).
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 32)]
    pub value_size: usize,
    /// Requests per batch per connection.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Zipf exponent.
    #[arg(long, default_value_t = 0.99)]
    pub zipf_theta: f64,
    /// Hot keys for the hotset distribution.
    #[arg(long, default_value_t = 1)]
    pub hot_keys: u64,
    /// Hot share for the hotset distribution.
    #[arg(long, default_value_t = 0.9)]
    pub hot_share: f64,
    /// Output directory (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Also run the grid against `redis-server` and add a ratio column.
    #[arg(long)]
    pub compare_redis: bool,
    /// Rounds per grid point; every server runs each round back to back and
    /// the median-throughput round is reported.
    #[arg(long, default_value_t = 1)]
    pub reps: usize,
    /// Extra argument for the shardcache server (repeatable), e.g.
    /// `--server-arg=--maxmemory --server-arg=1gb`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
    /// The redis-server binary for --compare-redis.
    #[arg(long, default_value = "redis-server")]
    pub redis_bin: PathBuf,
}

/// One row of results.csv.
#[derive(Clone, Debug, Serialize)]
pub struct SweepRow {
    /// `shardcache` or `redis`.
    pub server: String,
    /// Shard count (0 for redis, which has no shards).
    pub shards: usize,
    /// Connections.
    pub connections: usize,
    /// GET fraction.
    pub read_ratio: f64,
    /// Key distribution.
    pub distribution: Distribution,
    /// The run's result.
    pub report: Report,
    /// Redis's ops/s at the same grid point, when compared.
    pub redis_ops_per_sec: Option<f64>,
    /// shardcache's lock contention during the point (warmup included), from `INFO
    /// contention` before and after; `None` for redis or with `--lock-stats false`.
    pub contention: Option<Contention>,
}

/// Lock-contention totals of a server (the `INFO contention` header lines), or the
/// difference of two such snapshots around one grid point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Contention {
    /// Shared-mode acquisitions.
    pub read_acquisitions: u64,
    /// Shared-mode acquisitions that had to wait.
    pub read_contended: u64,
    /// Exclusive-mode acquisitions.
    pub write_acquisitions: u64,
    /// Exclusive-mode acquisitions that had to wait.
    pub write_contended: u64,
}

impl Contention {
    /// Parses the totals out of an `INFO contention` reply; `None` when the section is
    /// missing (redis) or lock stats are off (all acquisitions zero).
    pub fn parse(info: &str) -> Option<Contention> {
        let mut c = Contention::default();
        let mut seen = 0;
        for line in info.lines() {
            let Some((k, v)) = line.trim_end().split_once(':') else {
                continue;
            };
            let field = match k {
                "read_acquisitions" => &mut c.read_acquisitions,
                "read_contended" => &mut c.read_contended,
                "write_acquisitions" => &mut c.write_acquisitions,
                "write_contended" => &mut c.write_contended,
                _ => continue,
            };
            *field = v.trim().parse().ok()?;
            seen += 1;
        }
        (seen == 4 && c.read_acquisitions + c.write_acquisitions > 0).then_some(c)
    }

    /// `self - before` (counters only grow while one server runs).
    pub fn since(&self, before: &Contention) -> Contention {
        Contention {
            read_acquisitions: self
                .read_acquisitions
                .saturating_sub(before.read_acquisitions),
            read_contended: self.read_contended.saturating_sub(before.read_contended),
            write_acquisitions: self
                .write_acquisitions
                .saturating_sub(before.write_acquisitions),
            write_contended: self.write_contended.saturating_sub(before.write_contended),
        }
    }

    /// Percent of shared acquisitions that waited.
    pub fn read_contended_pct(&self) -> f64 {
        pct(self.read_contended, self.read_acquisitions)
    }

    /// Percent of exclusive acquisitions that waited.
    pub fn write_contended_pct(&self) -> f64 {
        pct(self.write_contended, self.write_acquisitions)
    }
}

/// `100 * part / whole`, 0 when `whole == 0`.
fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The server's contention totals now, if it reports them.
async fn contention_totals(addr: &str) -> Option<Contention> {
    let mut c = Client::connect(addr).await.ok()?;
    Contention::parse(&c.info(Some("contention")).await.ok()?)
}

impl SweepRow {
    /// shardcache ops/s divided by redis ops/s.
    pub fn ratio(&self) -> Option<f64> {
        self.redis_ops_per_sec
            .filter(|r| *r > 0.0)
            .map(|r| self.report.ops_per_sec / r)
    }
}

/// A server process we started; SIGTERM on [`Server::stop`].
struct Server {
    /// The process.
    child: Child,
}

/// Picks a free loopback port (bind to port 0, read it, release it).
///
/// # Errors
/// When no socket can be bound.
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Server {
    /// Starts `bin args...` with stdout/stderr to `log`, waits up to 15 s for PING.
    async fn start(bin: &Path, args: &[String], port: u16, log: &Path) -> anyhow::Result<Server> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = Server { child };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!(
                    "{} exited with {status}; see {}",
                    bin.display(),
                    log.display()
                );
            }
            if let Ok(mut c) = Client::connect(format!("127.0.0.1:{port}")).await {
                if c.ping().await.is_ok() {
                    return Ok(server);
                }
            }
            if started.elapsed() > Duration::from_secs(15) {
                server.stop().await;
                anyhow::bail!(
                    "{} did not answer PING within 15 s; see {}",
                    bin.display(),
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then SIGKILL after 10 s.
    async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: plain kill(2) on our own child's pid; no memory involved.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// One server under test: redis or shardcache at one shard count.
struct Target {
    /// `redis` or `shards-N` (progress lines and `info/` file names).
    label: String,
    /// Shard count (0 for redis).
    shards: usize,
    /// Loopback port.
    port: u16,
    /// The process.
    server: Server,
}

/// Runs the whole sweep and writes DIR/results.csv, DIR/results.md,
/// DIR/throughput.svg, DIR/p99.svg, DIR/contention.svg, server logs and per-point
/// `INFO` dumps.
///
/// Every server (redis, and shardcache at each shard count) is started and
/// prefilled first; then each grid point runs against every server back to back,
/// `--reps` rounds, and the median-throughput round is kept. Machine noise (other
/// processes, CPU frequency) thus hits all servers of a grid point alike: compare
/// within a grid point, not across.
///
/// # Errors
/// Output directory problems, a server that does not start, a run that fails.
pub async fn sweep(cfg: &SweepConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(cfg.out.join("info"))
        .with_context(|| format!("creating {}", cfg.out.display()))?;
    let points = grid(cfg);
    let mut targets = Vec::new();
    let started = start_targets(cfg, &mut targets).await;
    let res = match started {
        Ok(()) => run_grid(cfg, &points, &targets).await,
        Err(e) => Err(e),
    };
    for t in &mut targets {
        t.server.stop().await;
    }
    let results = res?;

    let redis_at = |i: usize| -> Option<f64> {
        targets
            .iter()
            .position(|t| t.shards == 0)
            .map(|ti| results[ti][i].0.ops_per_sec)
    };
    let mut rows = Vec::new();
    // shardcache rows first (by shard count), redis last.
    for (ti, t) in targets.iter().enumerate() {
        if t.shards == 0 {
            continue;
        }
        for (i, (report, contention)) in results[ti].iter().enumerate() {
            let (connections, read_ratio, distribution) = points[i];
            rows.push(SweepRow {
                server: "shardcache".into(),
                shards: t.shards,
                connections,
                read_ratio,
                distribution,
                redis_ops_per_sec: redis_at(i),
                report: report.clone(),
                contention: *contention,
            });
        }
    }
    if let Some(ti) = targets.iter().position(|t| t.shards == 0) {
        for (i, (report, _)) in results[ti].iter().enumerate() {
            let (connections, read_ratio, distribution) = points[i];
            rows.push(SweepRow {
                server: "redis".into(),
                shards: 0,
                connections,
                read_ratio,
                distribution,
                report: report.clone(),
                redis_ops_per_sec: None,
                contention: None,
            });
        }
    }

    std::fs::write(cfg.out.join("results.csv"), results_csv(&rows))?;
    std::fs::write(
        cfg.out.join("results.md"),
        results_md(&rows, cfg.compare_redis),
    )?;
    super::plot::plot_all(&rows, &cfg.out)?;
    eprintln!(
        "wrote {}/results.csv, results.md, throughput.svg, p99.svg, contention.svg",
        cfg.out.display()
    );
    Ok(())
}

/// Starts redis (with `--compare-redis`) and shardcache at every shard count,
/// pushing each into `targets` as soon as it runs (so the caller stops them
/// all, even after a failure), and prefills each.
async fn start_targets(cfg: &SweepConfig, targets: &mut Vec<Target>) -> anyhow::Result<()> {
    if cfg.compare_redis {
        let port = free_port()?;
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let server = Server::start(&cfg.redis_bin, &args, port, &cfg.out.join("redis.log")).await?;
        targets.push(Target {
            label: "redis".into(),
            shards: 0,
            port,
            server,
        });
    }
    for &shards in &cfg.shards {
        let port = free_port()?;
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--shards".into(),
            shards.to_string(),
            "--metrics-addr".into(),
            String::new(),
        ];
        args.extend(cfg.server_args.iter().cloned());
        let log = cfg.out.join(format!("server-shards-{shards}.log"));
        let server = Server::start(&cfg.server_bin, &args, port, &log).await?;
        targets.push(Target {
            label: format!("shards-{shards}"),
            shards,
            port,
            server,
        });
    }
    for t in targets.iter() {
        runner::prefill(&base_config(cfg, t.port)).await?;
    }
    Ok(())
}

/// The run parameters shared by every grid point.
fn base_config(cfg: &SweepConfig, port: u16) -> RunConfig {
    let mut base = RunConfig::new("127.0.0.1", port);
    base.duration = cfg.duration;
    base.warmup = cfg.warmup;
    base.keys = cfg.keys;
    base.value_size = cfg.value_size;
    base.pipeline = cfg.pipeline;
    base.zipf_theta = cfg.zipf_theta;
    base.hot_keys = cfg.hot_keys;
    base.hot_share = cfg.hot_share;
    base
}

/// `(connections, read_ratio, distribution)` for every grid point.
fn grid(cfg: &SweepConfig) -> Vec<(usize, f64, Distribution)> {
    let mut out = Vec::new();
    for &d in &cfg.distributions {
        for &rr in &cfg.read_ratios {
            for &c in &cfg.connections {
                out.push((c, rr, d));
            }
        }
    }
    out
}

/// Runs every grid point against every target, `--reps` interleaved rounds,
/// keeping the median-throughput round; saves `INFO` after each run.
/// `result[target][point]`.
async fn run_grid(
    cfg: &SweepConfig,
    points: &[(usize, f64, Distribution)],
    targets: &[Target],
) -> anyhow::Result<Vec<Vec<(Report, Option<Contention>)>>> {
    let reps = cfg.reps.max(1);
    let total = points.len() * targets.len() * reps;
    let mut done = 0;
    let mut out: Vec<Vec<(Report, Option<Contention>)>> =
        targets.iter().map(|_| Vec::new()).collect();
    for &(connections, read_ratio, distribution) in points {
        let mut runs: Vec<Vec<(Report, Option<Contention>)>> =
            targets.iter().map(|_| Vec::new()).collect();
        for _ in 0..reps {
            for (ti, t) in targets.iter().enumerate() {
                let mut rc = base_config(cfg, t.port);
                rc.connections = connections;
                rc.read_ratio = read_ratio;
                rc.distribution = distribution;
                done += 1;
                eprintln!(
                    "[{done}/{total}] {} c={connections} rr={read_ratio} {distribution}",
                    t.label
                );
                let r = run_point(cfg, &rc, &t.label).await?;
                runs[ti].push(r);
            }
        }
        for (ti, mut rs) in runs.into_iter().enumerate() {
            rs.sort_by(|a, b| a.0.ops_per_sec.total_cmp(&b.0.ops_per_sec));
            let median = rs.swap_remove(rs.len() / 2);
            out[ti].push(median);
        }
    }
    Ok(out)
}

/// One run: contention totals before and after, the run, the `INFO` dump.
async fn run_point(
    cfg: &SweepConfig,
    rc: &RunConfig,
    label: &str,
) -> anyhow::Result<(Report, Option<Contention>)> {
    let before = contention_totals(&rc.addr()).await;
    let report = runner::run(rc, false).await?;
    let contention = match (before, contention_totals(&rc.addr()).await) {
        (Some(b), Some(a)) => Some(a.since(&b)),
        _ => None,
    };
    eprintln!(
        "    {:.0} ops/s  p99 {:.1} us  errors {}{}",
        report.ops_per_sec,
        report.latency_us.p99,
        report.errors,
        contention
            .map(|c| format!(
                "  contended read {:.3}% write {:.3}%",
                c.read_contended_pct(),
                c.write_contended_pct()
            ))
            .unwrap_or_default()
    );
    if let Ok(mut c) = Client::connect(rc.addr()).await {
        if let Ok(info) = c.info(None).await {
            let name = format!(
                "{label}-c{}-rr{}-{}.txt",
                rc.connections, rc.read_ratio, rc.distribution
            );
            let _ = std::fs::write(cfg.out.join("info").join(name), info);
        }
    }
    Ok((report, contention))
}

/// CSV with one line per (server, grid point).
pub fn results_csv(rows: &[SweepRow]) -> String {
    let mut s = String::from(
        "server,shards,connections,read_ratio,distribution,ops_per_sec,p50_us,p90_us,p99_us,p999_us,max_us,mean_us,errors,redis_ops_per_sec,ratio_vs_redis,read_contended_pct,write_contended_pct\n",
    );
    for r in rows {
        let l = &r.report.latency_us;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.server,
            r.shards,
            r.connections,
            r.read_ratio,
            r.distribution,
            r.report.ops_per_sec,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.mean,
            r.report.errors,
            r.redis_ops_per_sec
                .map(|x| x.to_string())
                .unwrap_or_default(),
            r.ratio().map(|x| format!("{x:.3}")).unwrap_or_default(),
            r.contention
                .map(|c| format!("{:.4}", c.read_contended_pct()))
                .unwrap_or_default(),
            r.contention
                .map(|c| format!("{:.4}", c.write_contended_pct()))
                .unwrap_or_default(),
        );
    }
    s
}

/// A Markdown table of the same data.
pub fn results_md(rows: &[SweepRow], compare: bool) -> String {
    let mut s = String::from("| server | shards | conns | read ratio | dist | ops/s | p50 us | p99 us | p99.9 us | errors | read waited % | write waited % |");
    if compare {
        s.push_str(" redis ops/s | ratio |");
    }
    s.push('\n');
    s.push_str("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    if compare {
        s.push_str("---:|---:|");
    }
    s.push('\n');
    for r in rows {
        let l = &r.report.latency_us;
        let shards = if r.server == "redis" {
            "-".to_string()
        } else {
            r.shards.to_string()
        };
        let _ = write!(
            s,
            "| {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            r.server,
            shards,
            r.connections,
            r.read_ratio,
            r.distribution,
            r.report.ops_per_sec,
            l.p50,
            l.p99,
            l.p999,
            r.report.errors,
            r.contention
                .map(|c| format!("{:.3}", c.read_contended_pct()))
                .unwrap_or_default(),
            r.contention
                .map(|c| format!("{:.3}", c.write_contended_pct()))
                .unwrap_or_default(),
        );
        if compare {
            let _ = write!(
                s,
                " {} | {} |",
                r.redis_ops_per_sec
                    .map(|x| format!("{x:.0}"))
                    .unwrap_or_default(),
                r.ratio().map(|x| format!("{x:.2}")).unwrap_or_default()
            );
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::Contention;

    #[test]
    fn parses_info_contention_and_subtracts() {
        let info = "# Contention\r\nshards:4\r\nlock_stats:on\r\nread_acquisitions:1000\r\n\
                    read_contended:10\r\nread_contended_pct:1.0000\r\nwrite_acquisitions:200\r\n\
                    write_contended:50\r\nwrite_contended_pct:25.0000\r\nshard_0:keys=1\r\n";
        let after = Contention::parse(info).unwrap();
        assert_eq!(after.write_contended, 50);
        let before = Contention {
            read_acquisitions: 500,
            read_contended: 5,
            write_acquisitions: 100,
            write_contended: 0,
        };
        let d = after.since(&before);
        assert_eq!(d.read_contended_pct(), 1.0);
        assert_eq!(d.write_contended_pct(), 50.0);
        // redis: no section; lock stats off: all zero.
        assert_eq!(Contention::parse("# Server\r\nredis_version:7\r\n"), None);
        let off = info
            .replace("read_acquisitions:1000", "read_acquisitions:0")
            .replace("write_acquisitions:200", "write_acquisitions:0");
        assert_eq!(Contention::parse(&off), None);
    }
}
