//! The load loop: one task per connection, closed-loop or open-loop (`--rate`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use shardcache_protocol::{Frame, FrameDecoder, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use super::stats::{round2, LatencySummary, OpStats};
use super::workload::{Distribution, KeySampler, RequestEncoder};
use shardcache_client::{Client, ClientConfig};

/// Most requests a connection keeps in flight in open-loop mode before the
/// writer waits (latency is still charged from the scheduled time).
const MAX_OUTSTANDING: usize = 16 * 1024;
/// How long to wait for outstanding replies once the run is over.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// One benchmark run's parameters (`shardcache-bench run ...`).
#[derive(Clone, Debug, Serialize, clap::Args)]
pub struct RunConfig {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// Concurrent connections, one task each.
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Requests per batch per connection (closed loop only).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Measured run length in seconds (used when --requests is not given).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many measured requests instead of after --duration.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Fraction of requests that are GET (the rest are SET), 0.0-1.0.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Key space size; keys look like `key:000123`.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Key popularity.
    #[arg(long, value_enum, default_value_t = Distribution::Uniform)]
    pub distribution: Distribution,
    /// Zipf exponent (0.99 is YCSB's default).
    #[arg(long, default_value_t = 0.99)]
    pub zipf_theta: f64,
    /// Number of hot keys for --distribution hotset.
    #[arg(long, default_value_t = 1)]
    pub hot_keys: u64,
    /// Share of requests going to the hot keys (hotset).
    #[arg(long, default_value_t = 0.9)]
    pub hot_share: f64,
    /// SET value size in bytes.
    #[arg(long, default_value_t = 32)]
    pub value_size: usize,
    /// Seconds of unmeasured load before measuring.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Open-loop target rate in requests/s over all connections: requests are
    /// scheduled at fixed times and latency counts from the scheduled time, so
    /// a stalled server cannot hide its latency (no coordinated omission).
    #[arg(long)]
    pub rate: Option<f64>,
    /// SET every key once before the run, so GETs hit.
    #[arg(long)]
    pub prefill: bool,
    /// RNG seed (per-connection streams derive from it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl RunConfig {
    /// Defaults for `host:port`, as the CLI would have them.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        RunConfig {
            host: host.into(),
            port,
            connections: 50,
            pipeline: 1,
            duration: 10.0,
            requests: None,
            read_ratio: 0.9,
            keys: 100_000,
            distribution: Distribution::Uniform,
            zipf_theta: 0.99,
            hot_keys: 1,
            hot_share: 0.9,
            value_size: 32,
            warmup: 0.0,
            rate: None,
            prefill: false,
            seed: 1,
        }
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Rejects settings that cannot run.
    ///
    /// # Errors
    /// A message naming the bad option.
    pub fn validate(&self) -> Result<(), String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if self.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.read_ratio) {
            return Err("--read-ratio must be within 0.0..=1.0".into());
        }
        if self.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        if self.requests.is_none() && !(self.duration > 0.0 && self.duration.is_finite()) {
            return Err("--duration must be > 0".into());
        }
        if !(self.warmup >= 0.0 && self.warmup.is_finite()) {
            return Err("--warmup must be >= 0".into());
        }
        if let Some(r) = self.rate {
            if !(r > 0.0 && r.is_finite()) {
                return Err("--rate must be > 0".into());
            }
        }
        Ok(())
    }
}

/// The result of one run (the JSON output's shape).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Completed measured requests per second.
    pub ops_per_sec: f64,
    /// Completed measured requests.
    pub requests: u64,
    /// Error replies plus requests lost to connection failures.
    pub errors: u64,
    /// Measured wall time.
    pub duration_s: f64,
    /// All requests.
    pub latency_us: LatencySummary,
    /// GETs only.
    pub get: LatencySummary,
    /// SETs only.
    pub set: LatencySummary,
    /// GETs that found a value.
    pub get_hits: u64,
    /// GETs that found nothing.
    pub get_misses: u64,
    /// The parameters of the run.
    pub config: RunConfig,
}

/// State shared by the connection tasks and the progress printer.
struct Shared {
    /// Config.
    cfg: RunConfig,
    /// Key picker.
    sampler: KeySampler,
    /// Request templates.
    encoder: RequestEncoder,
    /// When measuring starts.
    measure_from: Instant,
    /// When the run ends (duration mode; far future in requests mode).
    deadline: Instant,
    /// Remaining measured requests (requests mode).
    budget: AtomicU64,
    /// Set when the run must stop (budget spent, deadline reached).
    stop: AtomicBool,
    /// Completed measured requests (for the progress line).
    completed: AtomicU64,
    /// Per-connection stats, locked once per batch by their owner.
    stats: Vec<Mutex<OpStats>>,
}

impl Shared {
    /// Claims up to `want` requests; 0 means stop. Before warmup ends requests
    /// are free; after it, they come out of the `--requests` budget if any.
    fn claim(&self, want: usize, now: Instant) -> usize {
        if self.stop.load(Ordering::Relaxed) || now >= self.deadline {
            return 0;
        }
        if self.cfg.requests.is_none() || now < self.measure_from {
            return want;
        }
        let mut cur = self.budget.load(Ordering::Relaxed);
        loop {
            if cur == 0 {
                self.stop.store(true, Ordering::Relaxed);
                return 0;
            }
            let take = cur.min(want as u64);
            match self.budget.compare_exchange_weak(
                cur,
                cur - take,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return take as usize,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Locks connection `i`'s stats (poisoning is harmless for counters).
    fn stats(&self, i: usize) -> std::sync::MutexGuard<'_, OpStats> {
        self.stats[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Merges every connection's stats.
    fn merged(&self) -> OpStats {
        let mut total = OpStats::default();
        for i in 0..self.stats.len() {
            total.merge(&self.stats(i));
        }
        total
    }
}

/// SETs every key once (pipelined over a few connections).
///
/// # Errors
/// Connection errors.
pub async fn prefill(cfg: &RunConfig) -> anyhow::Result<()> {
    let encoder = Arc::new(RequestEncoder::new(cfg.keys, cfg.value_size));
    let conns = cfg.connections.clamp(1, 8);
    super::load::set_all(
        &cfg.addr(),
        encoder,
        cfg.keys,
        conns,
        1000,
        Default::default(),
    )
    .await?;
    Ok(())
}

/// Runs the benchmark described by `cfg` on the current tokio runtime.
/// `progress` prints a live line on stderr once a second.
///
/// # Errors
/// An invalid config, or no connection could be made at all.
pub async fn run(cfg: &RunConfig, progress: bool) -> anyhow::Result<Report> {
    cfg.validate().map_err(anyhow::Error::msg)?;
    // Fail fast with a clear message when the server is not there.
    let mut probe = Client::connect_with(ClientConfig::new(cfg.addr()))
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", cfg.addr()))?;
    drop(probe.ping().await);
    drop(probe);
    if cfg.prefill {
        prefill(cfg).await?;
    }

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(cfg.warmup);
    let deadline = match cfg.requests {
        Some(_) => start + Duration::from_secs(365 * 24 * 3600),
        None => measure_from + Duration::from_secs_f64(cfg.duration),
    };
    let shared = Arc::new(Shared {
        sampler: KeySampler::new(
            cfg.distribution,
            cfg.keys,
            cfg.zipf_theta,
            cfg.hot_keys,
            cfg.hot_share,
        ),
        encoder: RequestEncoder::new(cfg.keys, cfg.value_size),
        measure_from,
        deadline,
        budget: AtomicU64::new(cfg.requests.unwrap_or(u64::MAX)),
        stop: AtomicBool::new(false),
        completed: AtomicU64::new(0),
        stats: (0..cfg.connections)
            .map(|_| Mutex::new(OpStats::default()))
            .collect(),
        cfg: cfg.clone(),
    });

    let printer = progress.then(|| tokio::spawn(print_progress(Arc::clone(&shared))));
    let mut tasks = Vec::with_capacity(cfg.connections);
    for id in 0..cfg.connections {
        let shared = Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            match shared.cfg.rate {
                Some(rate) => open_loop(&shared, id, rate / shared.cfg.connections as f64).await,
                None => closed_loop(&shared, id).await,
            }
        }));
    }
    for t in tasks {
        if let Err(e) = t.await {
            eprintln!("connection task failed: {e}");
        }
    }
    let end = Instant::now();
    shared.stop.store(true, Ordering::Relaxed);
    if let Some(p) = printer {
        p.abort();
        eprintln!();
    }

    let stats = shared.merged();
    let total = stats.total();
    let elapsed = end
        .saturating_duration_since(measure_from)
        .as_secs_f64()
        .max(1e-9);
    Ok(Report {
        ops_per_sec: round2(total.len() as f64 / elapsed),
        requests: total.len(),
        errors: stats.errors,
        duration_s: round2(elapsed),
        latency_us: LatencySummary::from_histogram(&total),
        get: LatencySummary::from_histogram(&stats.get),
        set: LatencySummary::from_histogram(&stats.set),
        get_hits: stats.get_hits,
        get_misses: stats.get_misses,
        config: cfg.clone(),
    })
}

/// Prints `elapsed, ops/s (last second), p99 so far, errors` on one `\r` line.
async fn print_progress(shared: Arc<Shared>) {
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let done = shared.completed.load(Ordering::Relaxed);
        let stats = shared.merged();
        let p99 = LatencySummary::from_histogram(&stats.total()).p99;
        let phase = if Instant::now() < shared.measure_from {
            " (warmup)"
        } else {
            ""
        };
        eprint!(
            "\r{:>6.1}s  {:>10} ops/s  p99 {:>9.1} us  errors {}{}   ",
            shared.measure_from.elapsed().as_secs_f64(),
            done - last,
            p99,
            stats.errors,
            phase
        );
        last = done;
    }
}

/// Closed loop: send a batch of `--pipeline` requests, wait for all replies,
/// repeat. Each reply's latency runs from the batch's send to its own arrival.
async fn closed_loop(shared: &Shared, id: usize) {
    let cfg = &shared.cfg;
    let mut rng = SmallRng::seed_from_u64(cfg.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ id as u64);
    let mut client = match Client::connect(cfg.addr()).await {
        Ok(c) => c,
        Err(_) => {
            shared.stats(id).errors += 1;
            return;
        }
    };
    let mut buf = Vec::with_capacity(cfg.pipeline * (64 + cfg.value_size));
    let mut kinds: Vec<bool> = Vec::with_capacity(cfg.pipeline);
    // (is_get, latency ns, reply class) per reply of the current batch; recorded
    // under the stats lock once per batch, so the hot path takes one
    // uncontended lock per batch and never merges whole histograms.
    let mut samples: Vec<(bool, u64, Class)> = Vec::with_capacity(cfg.pipeline);
    loop {
        let n = shared.claim(cfg.pipeline, Instant::now());
        if n == 0 {
            break;
        }
        buf.clear();
        kinds.clear();
        samples.clear();
        for _ in 0..n {
            let idx = shared.sampler.sample(&mut rng);
            let is_get = rng.random::<f64>() < cfg.read_ratio;
            if is_get {
                shared.encoder.push_get(&mut buf, idx);
            } else {
                shared.encoder.push_set(&mut buf, idx);
            }
            kinds.push(is_get);
        }
        let sent = Instant::now();
        let measured = sent >= shared.measure_from;
        let res = match client.send_raw(&buf).await {
            Ok(()) => {
                client
                    .read_frames_with(n, |frame| {
                        let is_get = kinds[samples.len()];
                        samples.push((
                            is_get,
                            sent.elapsed().as_nanos() as u64,
                            Class::of(is_get, &frame),
                        ));
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        let lost = n - samples.len();
        if measured {
            let mut stats = shared.stats(id);
            for &(is_get, ns, class) in &samples {
                stats.record(is_get, ns);
                class.count(&mut stats);
            }
            if res.is_err() {
                stats.errors += lost as u64;
            }
            drop(stats);
            shared
                .completed
                .fetch_add(samples.len() as u64, Ordering::Relaxed);
        }
        if res.is_err() {
            // Back off briefly, then try a fresh connection until the run ends.
            tokio::time::sleep(Duration::from_millis(50)).await;
            if client.reconnect().await.is_err() && Instant::now() >= shared.deadline {
                break;
            }
        }
    }
}

/// What a reply counts as, beyond its latency.
#[derive(Clone, Copy, Debug)]
enum Class {
    /// An error reply.
    Error,
    /// A GET that found a value.
    Hit,
    /// A GET that found nothing.
    Miss,
    /// A SET's reply.
    Other,
}

impl Class {
    /// Classifies a reply to a GET (`is_get`) or SET.
    #[inline]
    fn of(is_get: bool, frame: &Frame) -> Class {
        match frame {
            Frame::Error(_) => Class::Error,
            Frame::Null if is_get => Class::Miss,
            _ if is_get => Class::Hit,
            _ => Class::Other,
        }
    }

    /// Adds this reply to the counters.
    #[inline]
    fn count(self, stats: &mut OpStats) {
        match self {
            Class::Error => stats.errors += 1,
            Class::Hit => stats.get_hits += 1,
            Class::Miss => stats.get_misses += 1,
            Class::Other => {}
        }
    }
}

/// Open loop: request `k` of this connection is due at `start + k / rate`;
/// a writer sends whatever is due, a reader matches replies in order and
/// charges each from its *scheduled* time.
async fn open_loop(shared: &Shared, id: usize, rate: f64) {
    let cfg = &shared.cfg;
    let mut rng = SmallRng::seed_from_u64(cfg.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ id as u64);
    let stream = match TcpStream::connect(cfg.addr()).await {
        Ok(s) => s,
        Err(_) => {
            shared.stats(id).errors += 1;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, bool)>(MAX_OUTSTANDING);
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-6));
    // Spread connections' schedules so they do not all fire together.
    let start = Instant::now() + interval.mul_f64(id as f64 / cfg.connections as f64);

    let writer = async {
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut k: u32 = 0;
        'outer: loop {
            let due = start + interval * k;
            tokio::time::sleep_until(due.into()).await;
            let now = Instant::now();
            buf.clear();
            while start + interval * k <= now && buf.len() < 256 * 1024 {
                let sched = start + interval * k;
                if shared.claim(1, sched) == 0 {
                    if !buf.is_empty() {
                        let _ = wr.write_all(&buf).await;
                    }
                    break 'outer;
                }
                let idx = shared.sampler.sample(&mut rng);
                let is_get = rng.random::<f64>() < cfg.read_ratio;
                if is_get {
                    shared.encoder.push_get(&mut buf, idx);
                } else {
                    shared.encoder.push_set(&mut buf, idx);
                }
                // Queue before writing so the reader always finds the entry.
                if tx.send((sched, is_get)).await.is_err() {
                    break 'outer;
                }
                k = k.saturating_add(1);
            }
            if wr.write_all(&buf).await.is_err() {
                break;
            }
        }
        drop(tx);
    };

    let reader = async {
        let mut local = OpStats::default();
        let mut rbuf = BytesMut::with_capacity(64 * 1024);
        let mut decoder = FrameDecoder::new(Limits::default());
        let mut last_flush = Instant::now();
        'outer: while let Some((sched, is_get)) = rx.recv().await {
            let frame = loop {
                match decoder.decode(&mut rbuf) {
                    Ok(Some(Frame::Push(_))) => continue,
                    Ok(Some(f)) => break f,
                    Ok(None) => {}
                    Err(_) => {
                        local.errors += 1;
                        break 'outer;
                    }
                }
                let read = rd.read_buf(&mut rbuf);
                let wait = if Instant::now() >= shared.deadline {
                    DRAIN_TIMEOUT
                } else {
                    Duration::MAX
                };
                match tokio::time::timeout(wait, read).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => {
                        local.errors += 1;
                        break 'outer;
                    }
                }
            };
            if sched >= shared.measure_from {
                let ns = sched.elapsed().as_nanos() as u64;
                local.record(is_get, ns);
                Class::of(is_get, &frame).count(&mut local);
                shared.completed.fetch_add(1, Ordering::Relaxed);
            }
            if last_flush.elapsed() > Duration::from_millis(100) {
                shared.stats(id).merge_and_reset(&mut local);
                last_flush = Instant::now();
            }
        }
        // Requests still queued were never answered.
        rx.close();
        while rx.recv().await.is_some() {
            local.errors += 1;
        }
        shared.stats(id).merge_and_reset(&mut local);
    };
    tokio::join!(writer, reader);
}

impl OpStats {
    /// Moves `local`'s counts into `self` and clears `local`.
    fn merge_and_reset(&mut self, local: &mut OpStats) {
        self.merge(local);
        local.get.reset();
        local.set.reset();
        local.errors = 0;
        local.get_hits = 0;
        local.get_misses = 0;
    }
}
