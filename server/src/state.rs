//! State shared by every connection: the store, the configuration, server-wide counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use shardcache_config::Config;
use shardcache_protocol::Limits;
use shardcache_storage::{Store, StoreConfig};

use crate::command::CommandStats;

/// Everything a connection task needs besides its socket. One per server, behind an `Arc`.
pub struct Shared {
    /// The keyspace.
    pub store: Arc<Store>,
    /// The options the server started with.
    pub config: Config,
    /// Protocol limits derived from the config, copied into each connection's decoder.
    pub limits: Limits,
    /// When the server started, for `uptime_in_seconds`.
    pub started: Instant,
    /// The port actually bound (differs from `config.port` when that was 0).
    pub port: u16,
    /// Clients connected now.
    pub connected_clients: AtomicUsize,
    /// Connections accepted since start (including refused ones), Redis's
    /// `total_connections_received`.
    pub connections_total: AtomicU64,
    /// Connections refused because `maxclients` was reached.
    pub rejected_connections: AtomicU64,
    /// Requests executed, all commands together (`total_commands_processed`).
    pub commands_processed: AtomicU64,
    /// Source of client ids (`CLIENT ID`), starting at 1 as in Redis.
    pub next_client_id: AtomicU64,
    /// Per-command call counters, indexed like the command table.
    pub command_stats: CommandStats,
    /// Bytes read from and written to clients.
    pub net_input_bytes: AtomicU64,
    /// See `net_input_bytes`.
    pub net_output_bytes: AtomicU64,
}

impl Shared {
    /// Builds the store and the shared state from a validated config.
    ///
    /// # Errors
    /// When the store refuses the configuration (shard count, databases).
    pub fn new(config: Config, port: u16) -> anyhow::Result<Shared> {
        let store = Store::new(StoreConfig {
            shards: config.shards,
            databases: config.databases,
            ..StoreConfig::default()
        })?;
        let limits = Limits {
            max_bulk_len: usize::try_from(config.proto_max_bulk_len.bytes()).unwrap_or(usize::MAX),
            ..Limits::default()
        };
        Ok(Shared {
            store: Arc::new(store),
            config,
            limits,
            started: Instant::now(),
            port,
            connected_clients: AtomicUsize::new(0),
            connections_total: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            commands_processed: AtomicU64::new(0),
            next_client_id: AtomicU64::new(1),
            command_stats: CommandStats::new(),
            net_input_bytes: AtomicU64::new(0),
            net_output_bytes: AtomicU64::new(0),
        })
    }

    /// Seconds since start.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// A fresh client id.
    pub fn new_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}
