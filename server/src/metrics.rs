//! The Prometheus endpoint (`GET /metrics`, text exposition format 0.0.4).
//!
//! Nothing here is on the command path. Every figure already lives in an atomic somewhere —
//! the store's per-shard lock counters and wait histograms, each worker thread's command
//! counters and latency histograms (summed here), the server's connection counters — and is
//! *read at scrape time*:
//!
//! - Server-wide counters and gauges go through `metrics` + `metrics-exporter-prometheus`:
//!   their handles are registered once at start on a recorder owned by this server (no global
//!   registry lookup later), set from the atomics when a scrape arrives, and rendered by the
//!   exporter.
//! - Histograms (lock waits per shard and mode, command durations) and per-shard series are
//!   rendered here directly from the bucket atomics, since a Prometheus histogram cannot be
//!   "set" through the `metrics` API without replaying samples. This also lets
//!   `--metrics-top-shards K` bound the per-shard series to the K most contended shards.
//!
//! Series count: per shard, 2 modes x (2 counters + 22 wait-histogram series + 25
//! hold-histogram series) + 2 gauges = 100 series; so 16 shards ≈ 1.6k, 1024 shards ≈ 102k;
//! plus 2 per command in the table (calls, errors), 19 (the duration histogram) per command
//! that has been called, and up to 49 (hold and wait histograms, two blame counters) per
//! command that has held or waited for a lock. With `--metrics-top-shards K`, at most K
//! shards are detailed; the `shardcache_lock_*` totals always cover every shard.
//!
//! The HTTP side is deliberately small: one request per connection, the head bounded to
//! 16 KiB and the exchange to 10 s, at most [`MAX_SCRAPES`] at once (a further connection is
//! answered 503 at once), a malformed request line answered 400; in-flight exchanges are
//! tracked and stop with the server.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use shardcache_storage::blame::Histogram;
use shardcache_storage::{LockModeStats, LOCK_HOLD_BUCKETS_NS, LOCK_WAIT_BUCKETS_NS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use crate::latency::DURATION_BOUNDS_SECONDS;
use crate::process::{ratio, ProcessStats};
use crate::state::Shared;
use crate::table::{COMMANDS, REDIS_COMPAT_VERSION};

/// Handles of the exporter-rendered series, registered once.
pub struct Exporter {
    /// Renders the series registered on the recorder built in `new` (the handles keep
    /// their storage alive; the recorder itself is not needed afterwards).
    handle: PrometheusHandle,
    commands_total: Vec<Counter>,
    command_errors_total: Vec<Counter>,
    connected_clients: Gauge,
    connections_total: Counter,
    rejected_connections_total: Counter,
    hits: Counter,
    misses: Counter,
    expired: Counter,
    evicted: Counter,
    used_memory: Gauge,
    maxmemory: Gauge,
    shards: Gauge,
    keys: Gauge,
    net_input: Counter,
    net_output: Counter,
}

const META: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

impl Exporter {
    /// Registers every handle on a recorder owned by this server.
    pub fn new() -> Exporter {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let r = &recorder;
        let counter = |name: &'static str, help: &'static str, labels: Vec<Label>| {
            r.describe_counter(KeyName::from(name), None, SharedString::from(help));
            r.register_counter(&Key::from_parts(name, labels), &META)
        };
        let gauge = |name: &'static str, help: &'static str, unit: Option<Unit>| {
            r.describe_gauge(KeyName::from(name), unit, SharedString::from(help));
            r.register_gauge(&Key::from_name(name), &META)
        };
        let commands_total = COMMANDS
            .iter()
            .map(|c| {
                counter(
                    "shardcache_commands_total",
                    "Commands executed, by command.",
                    vec![Label::new("command", c.name)],
                )
            })
            .collect();
        let command_errors_total = COMMANDS
            .iter()
            .map(|c| {
                counter(
                    "shardcache_command_errors_total",
                    "Commands that replied with an error, by command.",
                    vec![Label::new("command", c.name)],
                )
            })
            .collect();
        let build = {
            let name = "shardcache_build_info";
            r.describe_gauge(
                KeyName::from(name),
                None,
                SharedString::from("Always 1; the labels carry the version."),
            );
            r.register_gauge(
                &Key::from_parts(
                    name,
                    vec![
                        Label::new("version", env!("CARGO_PKG_VERSION")),
                        Label::new("redis_version", REDIS_COMPAT_VERSION),
                    ],
                ),
                &META,
            )
        };
        build.set(1.0);
        Exporter {
            commands_total,
            command_errors_total,
            connected_clients: gauge(
                "shardcache_connected_clients",
                "Client connections open now.",
                None,
            ),
            connections_total: counter(
                "shardcache_connections_total",
                "Client connections accepted since start, including refused ones.",
                vec![],
            ),
            rejected_connections_total: counter(
                "shardcache_rejected_connections_total",
                "Connections refused because maxclients was reached.",
                vec![],
            ),
            hits: counter(
                "shardcache_keyspace_hits_total",
                "Key lookups that found the key.",
                vec![],
            ),
            misses: counter(
                "shardcache_keyspace_misses_total",
                "Key lookups that did not find the key.",
                vec![],
            ),
            expired: counter(
                "shardcache_expired_keys_total",
                "Keys removed because their TTL passed.",
                vec![],
            ),
            evicted: counter(
                "shardcache_evicted_keys_total",
                "Keys evicted to stay under maxmemory.",
                vec![],
            ),
            used_memory: gauge(
                "shardcache_used_memory_bytes",
                "Memory used by keys, values and per-entry overhead, as accounted by the store.",
                Some(Unit::Bytes),
            ),
            maxmemory: gauge(
                "shardcache_maxmemory_bytes",
                "The maxmemory limit (0: none).",
                Some(Unit::Bytes),
            ),
            shards: gauge(
                "shardcache_shards",
                "Number of shards (each one RwLock over its own table).",
                None,
            ),
            keys: gauge("shardcache_keys", "Keys stored, all databases.", None),
            net_input: counter(
                "shardcache_net_input_bytes_total",
                "Bytes read from clients.",
                vec![],
            ),
            net_output: counter(
                "shardcache_net_output_bytes_total",
                "Bytes written to clients.",
                vec![],
            ),
            handle,
        }
    }

    /// Copies the current atomics into the registered handles and renders everything.
    pub fn render(&self, shared: &Shared) -> String {
        let totals = shared.stats.totals();
        for ((calls, errors), c) in self
            .commands_total
            .iter()
            .zip(&self.command_errors_total)
            .zip(&totals.commands)
        {
            calls.absolute(c.calls);
            errors.absolute(c.errors());
        }
        let s = shared.store.stats();
        self.connected_clients
            .set(shared.conns.connected_clients.load(Ordering::Relaxed) as f64);
        self.connections_total
            .absolute(shared.conns.connections_total.load(Ordering::Relaxed));
        self.rejected_connections_total
            .absolute(shared.conns.rejected_connections.load(Ordering::Relaxed));
        self.hits.absolute(s.hits);
        self.misses.absolute(s.misses);
        self.expired.absolute(s.expired);
        self.evicted.absolute(s.evicted);
        self.used_memory.set(s.used_memory as f64);
        self.maxmemory.set(shared.store.maxmemory() as f64);
        self.shards.set(shared.store.shard_count() as f64);
        self.keys.set(s.keys as f64);
        self.net_input.absolute(totals.net_input_bytes);
        self.net_output.absolute(totals.net_output_bytes);

        let mut out = self.handle.render();
        render_shards(shared, &mut out);
        render_command_durations(&totals, &mut out);
        render_blame(&mut out);
        render_process(&mut out);
        out
    }
}

impl Default for Exporter {
    fn default() -> Self {
        Self::new()
    }
}

const MODES: [&str; 2] = ["read", "write"];

/// Per-shard series and the all-shard lock totals.
fn render_shards(shared: &Shared, out: &mut String) {
    let store = &shared.store;
    let n = store.shard_count();
    let stats: Vec<_> = (0..n).map(|i| store.shard_stats(i)).collect();
    let mut detailed: Vec<usize> = (0..n).collect();
    let top = shared.config.metrics_top_shards;
    if top > 0 && top < n {
        detailed.sort_by_key(|&i| {
            std::cmp::Reverse(stats[i].read.contended + stats[i].write.contended)
        });
        detailed.truncate(top);
        detailed.sort_unstable();
    }

    out.push_str("# HELP shardcache_shard_lock_acquisitions_total Lock acquisitions of a shard, by mode.\n# TYPE shardcache_shard_lock_acquisitions_total counter\n");
    for &i in &detailed {
        for (m, st) in MODES.iter().zip([&stats[i].read, &stats[i].write]) {
            let _ = writeln!(
                out,
                "shardcache_shard_lock_acquisitions_total{{shard=\"{i}\",mode=\"{m}\"}} {}",
                st.acquisitions
            );
        }
    }
    out.push_str("# HELP shardcache_shard_lock_contended_total Acquisitions that could not take the shard lock at once and had to wait.\n# TYPE shardcache_shard_lock_contended_total counter\n");
    for &i in &detailed {
        for (m, st) in MODES.iter().zip([&stats[i].read, &stats[i].write]) {
            let _ = writeln!(
                out,
                "shardcache_shard_lock_contended_total{{shard=\"{i}\",mode=\"{m}\"}} {}",
                st.contended
            );
        }
    }
    out.push_str("# HELP shardcache_shard_lock_wait_seconds Wait of contended shard lock acquisitions.\n# TYPE shardcache_shard_lock_wait_seconds histogram\n");
    for &i in &detailed {
        for (m, st) in MODES.iter().zip([&stats[i].read, &stats[i].write]) {
            let labels = format!("shard=\"{i}\",mode=\"{m}\"");
            write_histogram(
                out,
                "shardcache_shard_lock_wait_seconds",
                &labels,
                LOCK_WAIT_BUCKETS_NS,
                &st.wait_buckets,
                st.wait_ns_total,
            );
        }
    }
    out.push_str("# HELP shardcache_shard_lock_hold_seconds How long a shard lock was held, by mode (estimated from timed holds: every hold of a command whose work grows with its input, one in 256 of the others).\n# TYPE shardcache_shard_lock_hold_seconds histogram\n");
    for &i in &detailed {
        for (m, st) in MODES.iter().zip([&stats[i].read, &stats[i].write]) {
            write_histogram(
                out,
                "shardcache_shard_lock_hold_seconds",
                &format!("shard=\"{i}\",mode=\"{m}\""),
                LOCK_HOLD_BUCKETS_NS,
                &st.hold_buckets,
                st.hold_ns_total,
            );
        }
    }
    out.push_str("# HELP shardcache_shard_keys Keys stored in a shard (all databases).\n# TYPE shardcache_shard_keys gauge\n");
    for &i in &detailed {
        let _ = writeln!(
            out,
            "shardcache_shard_keys{{shard=\"{i}\"}} {}",
            stats[i].keys
        );
    }
    out.push_str("# HELP shardcache_shard_used_memory_bytes Memory accounted to a shard.\n# TYPE shardcache_shard_used_memory_bytes gauge\n");
    for &i in &detailed {
        let _ = writeln!(
            out,
            "shardcache_shard_used_memory_bytes{{shard=\"{i}\"}} {}",
            stats[i].used_memory
        );
    }

    // Totals over every shard, whatever --metrics-top-shards says.
    let mut totals = [LockModeStats::default(), LockModeStats::default()];
    for s in &stats {
        totals[0].merge(&s.read);
        totals[1].merge(&s.write);
    }
    out.push_str("# HELP shardcache_lock_acquisitions_total Shard lock acquisitions, all shards, by mode.\n# TYPE shardcache_lock_acquisitions_total counter\n");
    for (m, st) in MODES.iter().zip(&totals) {
        let _ = writeln!(
            out,
            "shardcache_lock_acquisitions_total{{mode=\"{m}\"}} {}",
            st.acquisitions
        );
    }
    out.push_str("# HELP shardcache_lock_contended_total Contended shard lock acquisitions, all shards, by mode.\n# TYPE shardcache_lock_contended_total counter\n");
    for (m, st) in MODES.iter().zip(&totals) {
        let _ = writeln!(
            out,
            "shardcache_lock_contended_total{{mode=\"{m}\"}} {}",
            st.contended
        );
    }
    out.push_str("# HELP shardcache_lock_wait_seconds Wait of contended shard lock acquisitions, all shards.\n# TYPE shardcache_lock_wait_seconds histogram\n");
    for (m, st) in MODES.iter().zip(&totals) {
        write_histogram(
            out,
            "shardcache_lock_wait_seconds",
            &format!("mode=\"{m}\""),
            LOCK_WAIT_BUCKETS_NS,
            &st.wait_buckets,
            st.wait_ns_total,
        );
    }
    out.push_str("# HELP shardcache_lock_hold_seconds How long shard locks were held, all shards, by mode (estimated from timed holds).\n# TYPE shardcache_lock_hold_seconds histogram\n");
    for (m, st) in MODES.iter().zip(&totals) {
        write_histogram(
            out,
            "shardcache_lock_hold_seconds",
            &format!("mode=\"{m}\""),
            LOCK_HOLD_BUCKETS_NS,
            &st.hold_buckets,
            st.hold_ns_total,
        );
    }
    // The hottest shard's share of all acquisitions: the key-free signal of a hot key.
    let all: u64 = totals.iter().map(|t| t.acquisitions).sum();
    let hottest = stats
        .iter()
        .map(|s| s.read.acquisitions + s.write.acquisitions)
        .max()
        .unwrap_or(0);
    let share = ratio(hottest, all);
    let _ = write!(
        out,
        "# HELP shardcache_hottest_shard_share Share of all lock acquisitions taken by the busiest shard (1/shards when even).\n# TYPE shardcache_hottest_shard_share gauge\nshardcache_hottest_shard_share {share}\n"
    );
}

/// A Prometheus histogram from non-cumulative `buckets` over `bounds_ns` (+Inf last).
fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    bounds_ns: &[u64],
    buckets: &[u64],
    sum_ns: u64,
) {
    let mut acc = 0u64;
    for (i, bound) in bounds_ns.iter().enumerate() {
        acc += buckets.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"{}\"}} {acc}",
            *bound as f64 / 1e9
        );
    }
    let total: u64 = buckets.iter().sum();
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", sum_ns as f64 / 1e9);
    let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
}

/// Per-command lock figures: hold times, the waits a command's holds caused (blame), and
/// its own waits. Labels are command names (bounded by the command table), never keys.
fn render_blame(out: &mut String) {
    let snap = shardcache_storage::blame::snapshot();
    let name = crate::table::holder_name;
    let sorted = |m: &std::collections::HashMap<u16, Histogram>| {
        let mut v: Vec<(&'static str, Histogram)> = Vec::new();
        for (t, h) in m {
            match v.iter_mut().find(|(n, _)| *n == name(*t)) {
                Some((_, acc)) => acc.merge(h),
                None => v.push((name(*t), h.clone())),
            }
        }
        v.sort_by_key(|(n, _)| *n);
        v
    };
    out.push_str("# HELP shardcache_command_lock_hold_seconds How long a command held shard locks, per acquisition (estimated from timed holds).\n# TYPE shardcache_command_lock_hold_seconds histogram\n");
    for (cmd, h) in sorted(&snap.holds) {
        write_histogram(
            out,
            "shardcache_command_lock_hold_seconds",
            &format!("command=\"{cmd}\""),
            LOCK_HOLD_BUCKETS_NS,
            &h.buckets,
            h.sum_ns,
        );
    }
    out.push_str("# HELP shardcache_command_lock_wait_seconds Contended shard lock waits of a command (the waiting side).\n# TYPE shardcache_command_lock_wait_seconds histogram\n");
    for (cmd, h) in sorted(&snap.waits) {
        write_histogram(
            out,
            "shardcache_command_lock_wait_seconds",
            &format!("command=\"{cmd}\""),
            LOCK_WAIT_BUCKETS_NS,
            &h.buckets,
            h.sum_ns,
        );
    }
    let mut caused: Vec<(&'static str, u64, u64)> = Vec::new();
    for (tag, b) in snap.blame_by_holder() {
        match caused.iter_mut().find(|(n, _, _)| *n == name(tag)) {
            Some((_, w, ns)) => {
                *w += b.waits;
                *ns += b.wait_ns;
            }
            None => caused.push((name(tag), b.waits, b.wait_ns)),
        }
    }
    caused.sort_by_key(|(n, _, _)| *n);
    out.push_str("# HELP shardcache_lock_wait_caused_seconds_total Wait of contended shard lock acquisitions, charged to the command that held the lock.\n# TYPE shardcache_lock_wait_caused_seconds_total counter\n");
    for (cmd, _, ns) in &caused {
        let _ = writeln!(
            out,
            "shardcache_lock_wait_caused_seconds_total{{command=\"{cmd}\"}} {}",
            *ns as f64 / 1e9
        );
    }
    out.push_str("# HELP shardcache_lock_waits_caused_total Contended shard lock acquisitions, charged to the command that held the lock.\n# TYPE shardcache_lock_waits_caused_total counter\n");
    for (cmd, waits, _) in &caused {
        let _ = writeln!(
            out,
            "shardcache_lock_waits_caused_total{{command=\"{cmd}\"}} {waits}"
        );
    }
}

fn render_command_durations(totals: &crate::stats::Totals, out: &mut String) {
    out.push_str("# HELP shardcache_command_duration_seconds Time to execute a command (excluding network and queueing), by command.\n# TYPE shardcache_command_duration_seconds histogram\n");
    let bounds_ns: Vec<u64> = DURATION_BOUNDS_SECONDS
        .iter()
        .map(|s| (s * 1e9).round() as u64)
        .collect();
    for (spec, c) in totals.called() {
        let snap = &c.duration;
        let total = snap.count();
        for (bound, cum) in DURATION_BOUNDS_SECONDS
            .iter()
            .zip(snap.cumulative(&bounds_ns))
        {
            let _ = writeln!(
                out,
                "shardcache_command_duration_seconds_bucket{{command=\"{}\",le=\"{bound}\"}} {cum}",
                spec.name
            );
        }
        let _ = writeln!(
            out,
            "shardcache_command_duration_seconds_bucket{{command=\"{}\",le=\"+Inf\"}} {total}",
            spec.name
        );
        let _ = writeln!(
            out,
            "shardcache_command_duration_seconds_sum{{command=\"{}\"}} {}",
            spec.name,
            snap.sum_ns as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "shardcache_command_duration_seconds_count{{command=\"{}\"}} {total}",
            spec.name
        );
    }
}

/// The standard `process_*` series, from /proc (Linux).
fn render_process(out: &mut String) {
    let Some(p) = ProcessStats::read() else {
        return;
    };
    let _ = write!(
        out,
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n\
         # HELP process_virtual_memory_bytes Virtual memory size in bytes.\n# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes {}\n\
         # HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}\n\
         # HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds {}\n\
         # HELP process_threads Number of OS threads.\n# TYPE process_threads gauge\nprocess_threads {}\n",
        p.rss_bytes, p.vsize_bytes, p.cpu_seconds, p.open_fds, p.threads
    );
}

/// Binds the metrics listener (at start, so a bad address fails fast).
///
/// # Errors
/// When the address cannot be bound.
pub async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on metrics address {addr}: {e}"))
}

/// Exchanges served at once; a connection beyond them is answered 503 and closed.
pub const MAX_SCRAPES: usize = 4;

/// Serves `GET /metrics` (and `/debug/pprof/mutex`) until `shutdown`, then ends the
/// exchanges in flight and returns.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let exporter = Arc::new(Exporter::new());
    if let Ok(addr) = listener.local_addr() {
        info!(addr = %addr, "metrics endpoint listening on http://{addr}/metrics");
    }
    let exchanges = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(MAX_SCRAPES));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((socket, _)) => {
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    // Busy: say so without waiting (the reply fits the socket buffer).
                    let _ = socket.try_write(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                };
                let shared = Arc::clone(&shared);
                let exporter = Arc::clone(&exporter);
                let stop = shutdown.clone();
                exchanges.spawn(async move {
                    let _permit = permit;
                    tokio::select! {
                        r = tokio::time::timeout(
                            Duration::from_secs(10),
                            handle_http(socket, &shared, &exporter),
                        ) => {
                            if let Ok(Err(e)) = r {
                                debug!(error = %e, "metrics request failed");
                            }
                        }
                        () = stop.cancelled() => {}
                    }
                });
            }
            Err(e) => {
                debug!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    exchanges.close();
    exchanges.wait().await;
}

/// A minimal HTTP/1.x exchange: read the request head (bounded), answer, close.
async fn handle_http(
    mut socket: TcpStream,
    shared: &Shared,
    exporter: &Exporter,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return respond(
                &mut socket,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"",
            )
            .await;
        }
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let Some((method, target)) = request_line(line) else {
        return respond(
            &mut socket,
            "400 Bad Request",
            "text/plain",
            b"bad request\n",
        )
        .await;
    };
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    match (method, path) {
        (b"GET", b"/metrics") => {
            let body = exporter.render(shared);
            respond(
                &mut socket,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                body.as_bytes(),
            )
            .await
        }
        (b"GET", b"/debug/pprof/mutex") => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
            let body = crate::pprof::mutex_profile(
                &shardcache_storage::blame::snapshot(),
                crate::table::holder_name,
                now,
            )?;
            respond(&mut socket, "200 OK", "application/octet-stream", &body).await
        }
        (b"GET", b"/") => {
            respond(
                &mut socket,
                "200 OK",
                "text/plain",
                b"shardcache: metrics at /metrics, mutex profile at /debug/pprof/mutex\n",
            )
            .await
        }
        (b"GET", _) => respond(&mut socket, "404 Not Found", "text/plain", b"not found\n").await,
        _ => respond(&mut socket, "405 Method Not Allowed", "text/plain", b"").await,
    }
}

/// `METHOD SP TARGET SP HTTP/1.x` → (method, target); `None` for anything else.
fn request_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let token = |m: &[u8]| !m.is_empty() && m.iter().all(u8::is_ascii_uppercase);
    (parts.next().is_none()
        && token(method)
        && target.first() == Some(&b'/')
        && target.iter().all(|b| b.is_ascii_graphic())
        && matches!(version, b"HTTP/1.0" | b"HTTP/1.1"))
    .then_some((method, target))
}

async fn respond(
    socket: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(body).await?;
    socket.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::request_line;

    #[test]
    fn request_lines() {
        assert_eq!(
            request_line(b"GET /metrics HTTP/1.1"),
            Some((&b"GET"[..], &b"/metrics"[..]))
        );
        assert!(request_line(b"GET /metrics?x=1 HTTP/1.0").is_some());
        for bad in [
            &b""[..],
            b"GET",
            b"GET /metrics",
            b"GET metrics HTTP/1.1",
            b"get /metrics HTTP/1.1",
            b"GET /metrics HTTP/2",
            b"GET /metrics HTTP/1.1 extra",
            b"GET /met\x01rics HTTP/1.1",
            b"\x16\x03\x01\x02\x00",
        ] {
            assert_eq!(request_line(bad), None, "{bad:?}");
        }
    }
}
