//! The `INFO` sections, in Redis's `field:value` line format so existing tools parse them.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::command::connection_compat_version;
use crate::state::Shared;

/// The sections `INFO` with no argument (or `default`) prints.
const DEFAULT_SECTIONS: &[&str] = &["server", "clients", "memory", "stats", "keyspace"];
/// Every section, for `INFO all` / `INFO everything`.
const ALL_SECTIONS: &[&str] = &["server", "clients", "memory", "stats", "keyspace"];

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
         multiplexing_api:tokio\r\n\
         process_id:{}\r\n\
         tcp_port:{}\r\n\
         uptime_in_seconds:{}\r\n\
         uptime_in_days:{}\r\n\
         shards:{}\r\n\
         databases:{}\r\n",
        connection_compat_version(),
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        usize::BITS,
        std::process::id(),
        shared.port,
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
        shared.connected_clients.load(Ordering::Relaxed),
        shared.config.maxclients,
    );
    true
}

fn memory(shared: &Shared, out: &mut String) -> bool {
    let used = shared.store.used_memory();
    let max = shared.store.maxmemory();
    let _ = write!(
        out,
        "# Memory\r\n\
         used_memory:{used}\r\n\
         used_memory_human:{}\r\n\
         maxmemory:{max}\r\n\
         maxmemory_human:{}\r\n\
         maxmemory_policy:{}\r\n",
        human_bytes(used),
        human_bytes(max),
        shared.store.policy().as_str(),
    );
    true
}

fn stats(shared: &Shared, out: &mut String) -> bool {
    let s = shared.store.stats();
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
        shared.connections_total.load(Ordering::Relaxed),
        shared.commands_processed.load(Ordering::Relaxed),
        shared.net_input_bytes.load(Ordering::Relaxed),
        shared.net_output_bytes.load(Ordering::Relaxed),
        shared.rejected_connections.load(Ordering::Relaxed),
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
