//! State shared by every connection: the store, the configuration, server-wide counters.
//!
//! What every worker thread reads on the request path (the store handle, the config, the
//! command names, the shutdown flag) is written once at start (or, for the shutdown flag, once
//! at the end). Counters written per request live per worker in [`Stats`]; the ones written
//! per connection are grouped in [`ConnCounters`], on cache lines of their own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use shardcache_config::{Config, MaxmemorySource};
use shardcache_protocol::Limits;
use shardcache_storage::{EvictionPolicy, Store, StoreConfig};

use crate::stats::Stats;

/// Counters written when a connection opens or closes (never per request), kept off the
/// cache lines the request path reads.
#[repr(align(128))]
#[derive(Default)]
pub struct ConnCounters {
    /// Clients connected now.
    pub connected_clients: AtomicUsize,
    /// Connections accepted since start (including refused ones), Redis's
    /// `total_connections_received`.
    pub connections_total: AtomicU64,
    /// Connections refused because `maxclients` was reached.
    pub rejected_connections: AtomicU64,
    /// Source of client ids (`CLIENT ID`), starting at 1 as in Redis.
    pub next_client_id: AtomicU64,
}

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
    /// The metrics endpoint's port actually bound, once it is (`INFO server`).
    pub metrics_port: std::sync::OnceLock<u16>,
    /// The socket I/O the workers use, once they have started (`multiplexing_api` in
    /// `INFO server`): `io_uring`, `epoll` or `io_uring+epoll`.
    pub io_backend: std::sync::OnceLock<&'static str>,
    /// `SHUTDOWN` asks the accept loop to stop, as SIGTERM does.
    pub shutdown_request: tokio::sync::Notify,
    /// `CLIENT PAUSE`: until when (unix ms) and for which commands.
    pub pause: Pause,
    /// `SLOWLOG`.
    pub slowlog: crate::slowlog::SlowLog,
    /// `LOCKLOG`.
    pub locklog: crate::locklog::LockLog,
    /// `LATENCY LATEST|HISTORY|RESET`.
    pub latency_monitor: crate::latency_monitor::LatencyMonitor,
    /// `MONITOR` clients.
    pub monitors: crate::monitor::Monitors,
    /// The options `CONFIG SET` can change at run time (read from here, not from `config`).
    pub runtime: Runtime,
    /// Set once when the server begins to shut down; each connection reads it once per batch.
    pub shutting_down: AtomicBool,
    /// Worker threads serving clients (`--threads`).
    pub threads: usize,
    /// Per-worker command and network counters, summed when read.
    pub stats: Stats,
    /// Connection counters (connect and disconnect only).
    pub conns: ConnCounters,
    /// Connected clients, for `CLIENT LIST`. Touched on connect, disconnect, `SELECT`,
    /// `CLIENT SETNAME` and `HELLO SETNAME` only: never on the GET/SET path.
    pub clients: ClientRegistry,
    /// `requirepass`, changeable with `CONFIG SET requirepass`.
    pub auth: crate::auth::Auth,
    /// The command names this server answers to (after `--rename-command` and
    /// `--disable-command`): the dispatcher's lookup table.
    pub commands: crate::table::CommandNames,
}

/// What `CLIENT LIST` shows of a connection other than the caller's.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address the client connected to.
    pub laddr: Option<SocketAddr>,
    /// `CLIENT SETNAME`.
    pub name: Option<String>,
    /// Selected database.
    pub db: usize,
    /// When the connection was accepted.
    pub created: Instant,
    /// 2 or 3.
    pub resp: u8,
    /// `CLIENT NO-EVICT on` (flag `e`).
    pub no_evict: bool,
    /// `CLIENT NO-TOUCH on` (flag `T`).
    pub no_touch: bool,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: Option<String>,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: Option<String>,
}

/// One registered connection.
struct Registered {
    info: ClientInfo,
    /// The connection's socket, to wake it at shutdown. Valid while registered: a connection
    /// unregisters before its socket is closed.
    fd: Option<RawFd>,
}

/// The registry of connected clients, by id.
#[derive(Default)]
pub struct ClientRegistry {
    map: Mutex<HashMap<u64, Registered>>,
}

impl ClientRegistry {
    /// Adds a connection; `fd` is its socket, shut for reading by [`ClientRegistry::wake_all`].
    pub fn register(&self, id: u64, info: ClientInfo, fd: Option<RawFd>) {
        self.map.lock().insert(id, Registered { info, fd });
    }
    /// Removes a connection.
    pub fn unregister(&self, id: u64) {
        self.map.lock().remove(&id);
    }
    /// Changes a connection's entry (no-op for an unknown id).
    pub fn update(&self, id: u64, f: impl FnOnce(&mut ClientInfo)) {
        if let Some(c) = self.map.lock().get_mut(&id) {
            f(&mut c.info);
        }
    }
    /// A copy of one entry.
    pub fn get(&self, id: u64) -> Option<ClientInfo> {
        self.map.lock().get(&id).map(|r| r.info.clone())
    }
    /// A copy of every entry, sorted by id (taken under the lock, formatted after it).
    pub fn snapshot(&self) -> Vec<(u64, ClientInfo)> {
        let mut v: Vec<(u64, ClientInfo)> = self
            .map
            .lock()
            .iter()
            .map(|(&id, r)| (id, r.info.clone()))
            .collect();
        v.sort_unstable_by_key(|(id, _)| *id);
        v
    }

    /// `CLIENT KILL`: shuts down (both ways) the socket of every client `matches` accepts,
    /// except `skip`; each connection notices at its next read or write and closes. Returns
    /// how many were killed.
    pub fn kill(
        &self,
        skip: Option<u64>,
        mut matches: impl FnMut(u64, &ClientInfo) -> bool,
    ) -> usize {
        let map = self.map.lock();
        let mut n = 0;
        for (&id, r) in map.iter() {
            if Some(id) == skip || !matches(id, &r.info) {
                continue;
            }
            if let Some(fd) = r.fd {
                // SAFETY: as in `wake_all`.
                unsafe {
                    libc::shutdown(fd, libc::SHUT_RDWR);
                }
            }
            n += 1;
        }
        n
    }

    /// Shutdown: shuts every registered socket for reading, so a connection waiting for a
    /// request wakes at once (its read returns end-of-file) while its replies can still be
    /// written. Connections then see [`Shared::shutting_down`] and close. Done under the
    /// registry lock, which a connection takes to unregister before its socket closes, so no
    /// descriptor here can have been closed and reused.
    pub fn wake_all(&self) {
        let map = self.map.lock();
        for fd in map.values().filter_map(|r| r.fd) {
            // SAFETY: `fd` is an open socket (see above); shutdown(2) only changes its state.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RD);
            }
        }
    }
}

/// Removes the connection from the registry when dropped (every way out of
/// `Connection::run`).
pub struct ClientGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl ClientGuard {
    /// Registers `id` and returns the guard that unregisters it.
    pub fn new(shared: Arc<Shared>, id: u64, info: ClientInfo, fd: Option<RawFd>) -> ClientGuard {
        shared.clients.register(id, info, fd);
        ClientGuard { shared, id }
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.shared.clients.unregister(self.id);
    }
}

impl Shared {
    /// Builds the store and the shared state from a validated config.
    ///
    /// # Errors
    /// When the store refuses the configuration (shard count, databases).
    pub fn new(config: Config, port: u16) -> anyhow::Result<Shared> {
        let (maxmemory, source) = config.effective_maxmemory();
        let policy: EvictionPolicy = config
            .maxmemory_policy
            .parse()
            .map_err(|_| anyhow::anyhow!("unknown maxmemory-policy {}", config.maxmemory_policy))?;
        match source {
            MaxmemorySource::Option => tracing::info!(maxmemory, "maxmemory set by option"),
            MaxmemorySource::Cgroup { limit, version } => tracing::info!(
                maxmemory,
                cgroup_limit = limit,
                cgroup = ?version,
                share_percent = shardcache_config::cgroup::DEFAULT_SHARE_PERCENT,
                "maxmemory defaults to a share of the container's memory limit"
            ),
            MaxmemorySource::Unlimited => {
                tracing::info!(
                    maxmemory,
                    "no maxmemory and no cgroup memory limit: unlimited"
                )
            }
        }
        let commands =
            crate::table::CommandNames::new(&config.rename_command, &config.disable_command)
                .map_err(anyhow::Error::msg)?;
        let auth = crate::auth::Auth::new(config.requirepass.as_deref());
        let store = Store::new(StoreConfig {
            shards: config.shards,
            databases: config.databases,
            instrument: config.lock_stats,
            maxmemory,
            policy,
            samples: config.maxmemory_samples,
        })?;
        crate::latency::calibrate();
        let limits = Limits {
            max_bulk_len: usize::try_from(config.proto_max_bulk_len.bytes()).unwrap_or(usize::MAX),
            ..Limits::default()
        };
        Ok(Shared {
            store: Arc::new(store),
            limits,
            started: Instant::now(),
            port,
            metrics_port: std::sync::OnceLock::new(),
            io_backend: std::sync::OnceLock::new(),
            shutdown_request: tokio::sync::Notify::new(),
            pause: Pause::default(),
            runtime: Runtime::new(&config),
            monitors: crate::monitor::Monitors::default(),
            latency_monitor: crate::latency_monitor::LatencyMonitor::new(
                config.latency_monitor_threshold,
            ),
            slowlog: crate::slowlog::SlowLog::new(
                config.slowlog_log_slower_than,
                config.slowlog_max_len,
            ),
            locklog: crate::locklog::LockLog::new(
                config.lock_log_slower_than,
                config.lock_log_max_len,
            ),
            shutting_down: AtomicBool::new(false),
            threads: config.threads.max(1),
            stats: Stats::new(config.threads),
            conns: ConnCounters {
                next_client_id: AtomicU64::new(1),
                ..ConnCounters::default()
            },
            clients: ClientRegistry::default(),
            auth,
            commands,
            config,
        })
    }

    /// Whether commands are to be timed one by one (for `SLOWLOG` or the latency monitor).
    #[inline]
    pub fn times_commands(&self) -> bool {
        self.slowlog.enabled() || self.latency_monitor.threshold_ms() > 0
    }

    /// After a command that took `nanos`: the slow log and the latency monitor.
    #[inline]
    pub fn command_took(
        &self,
        index: usize,
        nanos: u64,
        args: &[bytes::Bytes],
        client: &crate::client::ClientState,
    ) {
        self.slowlog
            .note(nanos, args, client.peer, client.name.as_deref());
        self.latency_monitor
            .note(nanos, || crate::table::is_fast(index));
    }

    /// `CONFIG RESETSTAT`: zeroes the statistics Redis resets (command stats, keyspace hits
    /// and misses, expired and evicted keys, connection and network counters) plus the shard
    /// lock statistics and hot-key samples. Prometheus sees a counter reset, which `rate()`
    /// handles.
    pub fn reset_stats(&self) {
        self.stats.reset();
        self.store.reset_stats();
        shardcache_storage::blame::reset();
        for c in [
            &self.conns.connections_total,
            &self.conns.rejected_connections,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Seconds since start.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// A fresh client id.
    pub fn new_client_id(&self) -> u64 {
        self.conns.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// `CLIENT PAUSE` state: read by every connection before a command (one load of a line that
/// is written only by `CLIENT PAUSE`/`UNPAUSE`).
#[derive(Debug, Default)]
pub struct Pause {
    /// Unix ms until which commands wait; 0 = not paused.
    until_ms: std::sync::atomic::AtomicU64,
    /// Pause every command (`ALL`), not only writes (`WRITE`).
    all: AtomicBool,
}

impl Pause {
    /// Pauses for `ms` (`all`: every command, else writes). A shorter pause than one in force
    /// does not shorten it, as in Redis.
    pub fn pause(&self, ms: u64, all: bool) {
        let until = unix_ms().saturating_add(ms);
        let cur = self.until_ms.load(Ordering::Acquire);
        if until > cur || all {
            self.all.store(all, Ordering::Release);
        }
        self.until_ms.fetch_max(until, Ordering::AcqRel);
    }

    /// Whether a pause may be in force (one load; [`Pause::wait_for`] decides).
    #[inline]
    pub fn is_active(&self) -> bool {
        self.until_ms.load(Ordering::Relaxed) != 0
    }

    /// `CLIENT UNPAUSE`.
    pub fn unpause(&self) {
        self.until_ms.store(0, Ordering::Release);
    }

    /// How long a command must still wait (`None`: run now). `write` says whether it is a
    /// write command.
    #[inline]
    pub fn wait_for(&self, write: bool) -> Option<std::time::Duration> {
        let until = self.until_ms.load(Ordering::Acquire);
        if until == 0 {
            return None;
        }
        let now = unix_ms();
        if now >= until || !(write || self.all.load(Ordering::Acquire)) {
            return None;
        }
        Some(std::time::Duration::from_millis(until - now))
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Options that `CONFIG SET` changes at run time; everything that enforces them reads them
/// here (relaxed loads of a line written only by `CONFIG SET`).
#[derive(Debug)]
pub struct Runtime {
    timeout_s: AtomicU64,
    maxclients: AtomicUsize,
    protected_mode: AtomicBool,
    query_buffer_limit: AtomicU64,
    output_buffer_limit: AtomicU64,
}

impl Runtime {
    fn new(c: &Config) -> Runtime {
        Runtime {
            timeout_s: AtomicU64::new(c.timeout),
            maxclients: AtomicUsize::new(c.maxclients),
            protected_mode: AtomicBool::new(c.protected_mode),
            query_buffer_limit: AtomicU64::new(c.client_query_buffer_limit.bytes()),
            output_buffer_limit: AtomicU64::new(c.client_output_buffer_limit.bytes()),
        }
    }

    /// `timeout` in seconds (0: never).
    pub fn timeout_s(&self) -> u64 {
        self.timeout_s.load(Ordering::Relaxed)
    }
    /// `maxclients`.
    pub fn maxclients(&self) -> usize {
        self.maxclients.load(Ordering::Relaxed)
    }
    /// `protected-mode`.
    pub fn protected_mode(&self) -> bool {
        self.protected_mode.load(Ordering::Relaxed)
    }
    /// `client-query-buffer-limit` in bytes.
    pub fn query_buffer_limit(&self) -> u64 {
        self.query_buffer_limit.load(Ordering::Relaxed)
    }
    /// `client-output-buffer-limit` (normal clients' hard limit) in bytes; 0: none.
    pub fn output_buffer_limit(&self) -> u64 {
        self.output_buffer_limit.load(Ordering::Relaxed)
    }
    /// `CONFIG SET timeout`.
    pub fn set_timeout_s(&self, v: u64) {
        self.timeout_s.store(v, Ordering::Relaxed);
    }
    /// `CONFIG SET maxclients`.
    pub fn set_maxclients(&self, v: usize) {
        self.maxclients.store(v, Ordering::Relaxed);
    }
    /// `CONFIG SET protected-mode`.
    pub fn set_protected_mode(&self, v: bool) {
        self.protected_mode.store(v, Ordering::Relaxed);
    }
    /// `CONFIG SET client-query-buffer-limit`.
    pub fn set_query_buffer_limit(&self, v: u64) {
        self.query_buffer_limit.store(v, Ordering::Relaxed);
    }
    /// `CONFIG SET client-output-buffer-limit`.
    pub fn set_output_buffer_limit(&self, v: u64) {
        self.output_buffer_limit.store(v, Ordering::Relaxed);
    }
}
