//! The `INFO` sections, in Redis's `field:value` line format so existing tools parse them.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use shardcache_storage::LockModeStats;

use crate::process::{ratio, ProcessStats};
use crate::state::Shared;
use crate::table::{COMMANDS, REDIS_COMPAT_VERSION};

/// The sections `INFO` with no argument (or `default`) prints.
const DEFAULT_SECTIONS: &[&str] = &["server", "clients", "memory", "stats", "keyspace"];
/// Every section, for `INFO all` / `INFO everything`.
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "stats",
    "commandstats",
    "latencystats",
    "contention",
    "keyspace",
];

/// Renders the requested sections (lower-case names; empty means the default set).
pub fn render(shared: &Shared, requested: &[String]) -> String {
    let wanted: Vec<&str> = if requested.is_empty() || requested.iter().any(|s| s == "default") {
        DEFAULT_SECTIONS.to_vec()
    } else if requested.iter().any(|s| s == "all" || s == "everything") {
        ALL_SECTIONS.to_vec()
    } else {
        requested.iter().map(String::as_str).collect()
    };
    let mut out = String::with_capacity(2048);
    for name in wanted {
        let before = out.len();
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let wrote = match name {
            "server" => server(shared, &mut out),
            "clients" => clients(shared, &mut out),
            "memory" => memory(shared, &mut out),
            "stats" => stats(shared, &mut out),
            "keyspace" => keyspace(shared, &mut out),
            "commandstats" => commandstats(shared, &mut out),
            "latencystats" => latencystats(shared, &mut out),
            "contention" => contention(shared, &mut out),
            _ => false,
        };
        if !wrote {
            out.truncate(before);
        }
    }
    out
}

fn server(shared: &Shared, out: &mut String) -> bool {
    let uptime = shared.uptime_secs();
    let _ = write!(
        out,
        "# Server\r\n\
         redis_version:{}\r\n\
         shardcache_version:{}\r\n\
         redis_mode:standalone\r\n\
         os:{} {}\r\n\
         arch_bits:{}\r\n\
         multiplexing_api:{}\r\n\
         process_id:{}\r\n\
         tcp_port:{}\r\n\
         metrics_port:{}\r\n\
         threads:{}\r\n\
         uptime_in_seconds:{}\r\n\
         uptime_in_days:{}\r\n\
         shards:{}\r\n\
         databases:{}\r\n",
        REDIS_COMPAT_VERSION,
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        usize::BITS,
        shared.io_backend.get().copied().unwrap_or("epoll"),
        std::process::id(),
        shared.port,
        shared.metrics_port.get().copied().unwrap_or(0),
        shared.threads,
        uptime,
        uptime / 86400,
        shared.store.shard_count(),
        shared.store.databases(),
    );
    true
}

fn clients(shared: &Shared, out: &mut String) -> bool {
    let _ = write!(
        out,
        "# Clients\r\n\
         connected_clients:{}\r\n\
         maxclients:{}\r\n",
        shared.conns.connected_clients.load(Ordering::Relaxed),
        shared.runtime.maxclients(),
    );
    true
}

fn memory(shared: &Shared, out: &mut String) -> bool {
    let store = &shared.store;
    let used = store.used_memory();
    let max = store.maxmemory();
    let rss = rss_bytes();
    let st = store.stats();
    let ratio = ratio(rss, used);
    let _ = write!(
        out,
        "# Memory\r\n\
         used_memory:{used}\r\n\
         used_memory_human:{}\r\n\
         used_memory_rss:{rss}\r\n\
         used_memory_rss_human:{}\r\n\
         maxmemory:{max}\r\n\
         maxmemory_human:{}\r\n\
         maxmemory_policy:{}\r\n\
         maxmemory_samples:{}\r\n\
         mem_fragmentation_ratio:{ratio:.2}\r\n\
         stored_entries:{}\r\n",
        human_bytes(used),
        human_bytes(rss),
        human_bytes(max),
        store.policy().as_str(),
        store.samples(),
        st.keys,
    );
    true
}

/// The process's resident set size from `/proc/self/statm` (0 where unavailable).
fn rss_bytes() -> u64 {
    ProcessStats::read().map_or(0, |p| p.rss_bytes)
}

fn stats(shared: &Shared, out: &mut String) -> bool {
    let s = shared.store.stats();
    let t = shared.stats.totals();
    let _ = write!(
        out,
        "# Stats\r\n\
         total_connections_received:{}\r\n\
         total_commands_processed:{}\r\n\
         total_net_input_bytes:{}\r\n\
         total_net_output_bytes:{}\r\n\
         rejected_connections:{}\r\n\
         expired_keys:{}\r\n\
         evicted_keys:{}\r\n\
         keyspace_hits:{}\r\n\
         keyspace_misses:{}\r\n",
        shared.conns.connections_total.load(Ordering::Relaxed),
        t.total_processed(),
        t.net_input_bytes,
        t.net_output_bytes,
        shared.conns.rejected_connections.load(Ordering::Relaxed),
        s.expired,
        s.evicted,
        s.hits,
        s.misses,
    );
    true
}

fn keyspace(shared: &Shared, out: &mut String) -> bool {
    out.push_str("# Keyspace\r\n");
    for db in 0..shared.store.databases() {
        let s = shared.store.db_stats(db);
        if s.keys > 0 {
            let _ = write!(
                out,
                "db{db}:keys={},expires={},avg_ttl={}\r\n",
                s.keys, s.expires, s.avg_ttl_ms
            );
        }
    }
    true
}

/// Redis's `bytesToHuman`: `1.50M`, `512B`.
pub fn human_bytes(n: u64) -> String {
    let d = n as f64;
    const K: f64 = 1024.0;
    if d < K {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else {
        format!("{:.2}T", d / (K * K * K * K))
    }
}

/// Redis 7's `# Commandstats`: `cmdstat_get:calls=…,usec=…,usec_per_call=…,rejected_calls=0,failed_calls=…`.
fn commandstats(shared: &Shared, out: &mut String) -> bool {
    out.push_str("# Commandstats\r\n");
    let totals = shared.stats.totals();
    for (spec, c) in COMMANDS.iter().zip(&totals.commands) {
        let (calls, rejected) = (c.calls, c.rejected);
        if calls == 0 && rejected == 0 {
            continue;
        }
        let usec = c.duration.sum_ns / 1000;
        let _ = write!(
            out,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={:.2},rejected_calls={rejected},failed_calls={}\r\n",
            spec.name,
            ratio(usec, calls),
            c.failed,
        );
    }
    true
}

/// Redis 7's `# Latencystats`: `latency_percentiles_usec_get:p50=…,p99=…,p99.9=…`.
fn latencystats(shared: &Shared, out: &mut String) -> bool {
    out.push_str("# Latencystats\r\n");
    let totals = shared.stats.totals();
    for (spec, c) in totals.called() {
        let snap = &c.duration;
        let q = |q: f64| snap.quantile_ns(q).unwrap_or(0) as f64 / 1000.0;
        let _ = write!(
            out,
            "latency_percentiles_usec_{}:p50={:.3},p99={:.3},p99.9={:.3}\r\n",
            spec.name,
            q(0.5),
            q(0.99),
            q(0.999),
        );
    }
    true
}

/// `# Contention`: per shard, lock acquisitions, the share that had to wait, wait p50/p99 per
/// mode, keys; then a one-line verdict naming the most contended shard.
fn contention(shared: &Shared, out: &mut String) -> bool {
    let store = &shared.store;
    let n = store.shard_count();
    let stats: Vec<_> = (0..n).map(|i| store.shard_stats(i)).collect();
    let us = |ns: Option<u64>| ns.map_or(0.0, |v| v as f64 / 1000.0);
    let (mut read, mut write) = (LockModeStats::default(), LockModeStats::default());
    for s in &stats {
        read.merge(&s.read);
        write.merge(&s.write);
    }
    let (ra, rc, wa, wc) = (
        read.acquisitions,
        read.contended,
        write.acquisitions,
        write.contended,
    );
    let _ = write!(
        out,
        "# Contention\r\n\
         shards:{n}\r\n\
         lock_stats:{}\r\n\
         read_acquisitions:{ra}\r\n\
         read_contended:{rc}\r\n\
         read_contended_pct:{:.4}\r\n\
         write_acquisitions:{wa}\r\n\
         write_contended:{wc}\r\n\
         write_contended_pct:{:.4}\r\n",
        if shared.config.lock_stats {
            "on"
        } else {
            "off"
        },
        100.0 * ratio(rc, ra),
        100.0 * ratio(wc, wa),
    );
    for (i, s) in stats.iter().enumerate() {
        let _ = write!(
            out,
            "shard_{i}:keys={},read_acquisitions={},read_contended_pct={:.4},read_wait_p50_us={:.2},read_wait_p99_us={:.2},write_acquisitions={},write_contended_pct={:.4},write_wait_p50_us={:.2},write_wait_p99_us={:.2}\r\n",
            s.keys,
            s.read.acquisitions,
            100.0 * ratio(s.read.contended, s.read.acquisitions),
            us(s.read.wait_quantile_ns(0.5)),
            us(s.read.wait_quantile_ns(0.99)),
            s.write.acquisitions,
            100.0 * ratio(s.write.contended, s.write.acquisitions),
            us(s.write.wait_quantile_ns(0.5)),
            us(s.write.wait_quantile_ns(0.99)),
        );
    }
    let _ = write!(out, "contention_verdict:{}\r\n", verdict(&stats));
    let snap = shardcache_storage::blame::snapshot();
    let blamed = snap.blame_by_holder();
    let top: Vec<String> = blamed
        .iter()
        .take(5)
        .map(|(t, b)| {
            format!(
                "{}={:.6}s/{}",
                crate::table::holder_name(*t),
                b.wait_ns as f64 / 1e9,
                b.waits
            )
        })
        .collect();
    let _ = write!(out, "lock_wait_caused_by:{}\r\n", top.join(","));
    if let Some(e) = shared.locklog.worst() {
        let _ = write!(out, "lock_hold_worst:{}\r\n", describe_hold(&e));
    }
    if let Some(c) = cause(shared, &snap, &blamed) {
        let _ = write!(out, "contention_cause:{c}\r\n");
    }
    true
}

/// A median hold at least this long marks the top blamed command as a slow holder rather
/// than one of the short holds of a hot key (a median, so that a few holds stretched by the
/// OS descheduling their thread do not turn a hot key into a "slow command").
const SLOW_HOLD_NS: u64 = 50_000;

/// Who made the waiters wait: a slow command (long holds, named with its worst logged hold)
/// or a hot key (the wait spread over short holds of the commands on it, named by HOTKEYS).
fn cause(
    shared: &Shared,
    snap: &shardcache_storage::blame::BlameSnapshot,
    blamed: &[(u16, shardcache_storage::blame::Blame)],
) -> Option<String> {
    let total: u64 = blamed.iter().map(|(_, b)| b.wait_ns).sum();
    let (tag, top) = blamed.first()?;
    if total == 0 {
        return None;
    }
    let name = crate::table::holder_name;
    let median_hold = |t: u16| {
        snap.holds
            .get(&t)
            .and_then(|h| h.quantile_bound_ns(shardcache_storage::LOCK_HOLD_BUCKETS_NS, 0.5))
    };
    let share = |ns: u64| percent(ratio(ns, total));
    if median_hold(*tag).is_some_and(|h| h >= SLOW_HOLD_NS) {
        let mut text = format!(
            "slow command: {} caused {} of the lock wait ({} over {} waits; median hold up to {})",
            name(*tag),
            share(top.wait_ns),
            human_ns(top.wait_ns),
            top.waits,
            human_ns(median_hold(*tag).unwrap_or(0)),
        );
        if let Some(e) = shared
            .locklog
            .newest(None)
            .into_iter()
            .filter(|e| e.command == name(*tag))
            .max_by_key(|e| e.hold_micros)
        {
            let _ = write!(text, "; worst logged: {}", describe_hold(&e));
        }
        return Some(text);
    }
    let spread: Vec<String> = blamed
        .iter()
        .take(3)
        .map(|(t, b)| format!("{} ({})", name(*t), share(b.wait_ns)))
        .collect();
    let mut text = format!(
        "hot key: the lock wait is charged to short holds of {} (median hold up to {})",
        spread.join(", "),
        human_ns(median_hold(*tag).unwrap_or(0)),
    );
    if let Some(k) = shared.store.hot_keys(1).first() {
        let _ = write!(
            text,
            "; HOTKEYS: {} (shard {}, ~{} of sampled accesses)",
            String::from_utf8_lossy(&k.key),
            k.shard,
            percent(k.estimated_share)
        );
    }
    Some(text)
}

/// "shard 3: KEYS from 10.0.0.5:51234 held it 41.0 ms, 312 acquisitions waited 2.9 s in all".
fn describe_hold(e: &crate::locklog::Entry) -> String {
    let (shards, held) = match e.shards.as_slice() {
        [one] => (format!("shard {one}"), "held it"),
        many => (format!("{} shards", many.len()), "held them, the longest"),
    };
    format!(
        "{shards}: {} from {} {held} {} ({} lock), {} waited {} in all",
        e.command.to_ascii_uppercase(),
        e.peer,
        human_ns(e.hold_micros.saturating_mul(1000)),
        e.mode(),
        match e.waiters {
            1 => "1 acquisition".to_string(),
            n => format!("{n} acquisitions"),
        },
        human_ns(e.waited_micros.saturating_mul(1000)),
    )
}

/// A duration for people: `850 ns`, `12.3 us`, `41.0 ms`, `2.9 s`.
fn human_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} us", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.1} s", ns as f64 / 1e9),
    }
}

/// One line naming the most contended shard and how far it stands above the median.
fn verdict(stats: &[shardcache_storage::ShardStats]) -> String {
    let shares: Vec<f64> = stats
        .iter()
        .map(|s| {
            ratio(
                s.read.contended + s.write.contended,
                s.read.acquisitions + s.write.acquisitions,
            )
        })
        .collect();
    let Some((worst, &top)) = shares.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) else {
        return "no shards".into();
    };
    if top == 0.0 {
        return "no contention observed".into();
    }
    let mut sorted = shares.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let s = &stats[worst];
    let p99 = s
        .write
        .wait_quantile_ns(0.99)
        .max(s.read.wait_quantile_ns(0.99))
        .map_or(0.0, |v| v as f64 / 1000.0);
    let above = if median > 0.0 {
        format!(
            "{:.1}x the median shard ({})",
            top / median,
            percent(median)
        )
    } else {
        "the median shard saw none".into()
    };
    format!(
        "shard {worst} is the most contended: {} of its lock acquisitions waited (p99 wait {p99:.1}us), {above}",
        percent(top)
    )
}

/// A share as a percentage with enough digits to show small values (`0.0031%`, `12.50%`).
fn percent(share: f64) -> String {
    let p = 100.0 * share;
    if p >= 0.1 {
        format!("{p:.2}%")
    } else {
        format!("{p:.4}%")
    }
}
