//! Every shardcache option, in one place: defined, documented and validated.
//!
//! Each option is a `clap` argument that can also come from an environment variable
//! `SHARDCACHE_<NAME>` (upper case, `-` → `_`). Option names follow Redis's configuration
//! names (`maxmemory`, `maxmemory-policy`, `proto-max-bulk-len`, …) so that users recognise them.
//!
//! Parsing is split from validation: [`Config::parse_from_env_and_args`] lets clap read the
//! values, then [`Config::validate`] checks the cross-field rules and returns one clear
//! [`ConfigError`] that names the option and says why. The binary prints it and exits non-zero.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

pub mod cgroup;

/// The `maxmemory-policy` names, as Redis spells them.
pub const MAXMEMORY_POLICIES: [&str; 8] = [
    "noeviction",
    "allkeys-lru",
    "volatile-lru",
    "allkeys-lfu",
    "volatile-lfu",
    "allkeys-random",
    "volatile-random",
    "volatile-ttl",
];

/// The largest shard count accepted: beyond it each shard holds too few keys to matter and the
/// per-shard metric series become a burden (and SCAN cursors reserve 16 bits for the shard).
/// The store refuses more (`shardcache_storage::Store::new` reads this constant).
pub const MAX_SHARDS: usize = 1 << 16;

/// The largest number of logical databases (`--databases`); the store refuses more.
pub const MAX_DATABASES: usize = 1 << 16;

/// The largest `shards × databases`: each is a table header (~64 bytes even when empty), so
/// the product bounds the memory an empty store takes. The store refuses more.
pub const MAX_TABLES: usize = 1 << 22;

/// The default metrics port is the Redis port plus this (6379 → 9379).
pub const METRICS_PORT_OFFSET: u16 = 3000;

/// An option had a value that cannot work. The message names the option and the reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid value for --{option}: {reason}")]
pub struct ConfigError {
    /// The option's long name, without dashes.
    pub option: &'static str,
    /// Why the value was refused, in words a user can act on.
    pub reason: String,
}

impl ConfigError {
    fn new(option: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            option,
            reason: reason.into(),
        }
    }
}

/// Log line format: human-readable text for terminals, JSON lines for log collectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (for Loki, Elasticsearch, CloudWatch…).
    Json,
}

/// How worker threads do socket I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum IoBackend {
    /// io_uring where the kernel allows it, else epoll (the default; the choice is logged at
    /// start and shown by `INFO server` as `io_backend`).
    #[default]
    Auto,
    /// Readiness (epoll through tokio): one `recv` and one `send` system call per batch.
    Epoll,
    /// Linux io_uring: multishot receives into provided buffers and batched sends, one
    /// `io_uring_enter` per event-loop turn for all of a worker's connections. Falls back to
    /// epoll (with a warning) where io_uring cannot be set up, e.g. blocked by seccomp.
    #[value(name = "io_uring", alias = "uring", alias = "io-uring")]
    IoUring,
}

/// A byte size written the way Redis accepts it in its configuration: a plain number of bytes,
/// or a number with a unit `k`/`m`/`g` (powers of 1000) or `kb`/`mb`/`gb` (powers of 1024),
/// case-insensitive (`64mb`, `1GB`, `500k`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_memory(s).map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Parses a memory size with Redis's units (see [`ByteSize`]). Shared with `CONFIG SET`.
///
/// # Errors
/// A message saying why the text is not a size.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "'{s}' is not a size (examples: 1048576, 64mb, 1gb)"
        ));
    }
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is too large"))?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "'{s}' has an unknown unit (use k, kb, m, mb, g or gb)"
            ))
        }
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// The default shard count: the smallest power of two at or above four times the number of
/// CPUs the process may run on, and at least 16. Four shards per core keeps the chance that two
/// cores want the same shard low for uniform keys, while each shard stays large enough that
/// per-shard overhead (a lock, a table, metric series) is negligible.
pub fn default_shards() -> usize {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (cpus * 4).next_power_of_two().clamp(16, MAX_SHARDS)
}

/// The largest `--threads` accepted.
pub const MAX_THREADS: usize = 1024;

/// The default worker thread count: the CPUs this process may run on, as the standard library
/// reports them (the affinity mask, e.g. `taskset`, and a cgroup v1/v2 CPU quota, e.g. a
/// container's `--cpus`, are both honoured), at least 1.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_THREADS)
}

/// Subcommands of the `shardcache` binary besides running the server.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum Tool {
    /// Send PING to a running server and exit 0 on PONG, 1 otherwise. Used as the container
    /// HEALTHCHECK, since the image has no shell and no redis-cli.
    Health {
        /// Address to check.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to check.
        #[arg(long, default_value_t = 6379, env = "SHARDCACHE_PORT")]
        port: u16,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
        /// Password, when the server has `requirepass`.
        #[arg(long, env = "SHARDCACHE_REQUIREPASS", hide_env_values = true)]
        password: Option<String>,
    },
}

/// shardcache: a Redis-protocol in-memory cache on a sharded, lock-instrumented store.
///
/// Every option can also be set from the environment as `SHARDCACHE_<OPTION>` (for example
/// SHARDCACHE_PORT=6380, SHARDCACHE_MAXMEMORY=256mb).
#[derive(Debug, Clone, Parser, PartialEq, Eq)]
#[command(
    name = "shardcache",
    version,
    about = "shardcache: a Redis-protocol in-memory cache on a sharded, lock-instrumented store.\nEvery option can also be set from the environment as SHARDCACHE_<OPTION>.",
    long_about = None
)]
pub struct Config {
    /// A tool to run instead of the server.
    #[command(subcommand)]
    pub tool: Option<Tool>,

    /// Address to listen on. The default only accepts local clients; use 0.0.0.0 to accept
    /// others (the container image does).
    #[arg(long, env = "SHARDCACHE_BIND", default_value = "127.0.0.1")]
    pub bind: String,

    /// TCP port for the Redis protocol. 0 picks a free port (it is logged).
    #[arg(long, env = "SHARDCACHE_PORT", default_value_t = 6379)]
    pub port: u16,

    /// Number of shards: a power of two from 1 to 65536. Each shard is one RwLock over its own
    /// table. Default: the smallest power of two >= 4 x CPUs, at least 16.
    #[arg(long, env = "SHARDCACHE_SHARDS", default_value_t = default_shards())]
    pub shards: usize,

    /// Worker threads serving clients. Each runs its own single-threaded event loop pinned to
    /// one CPU of the process's affinity mask; a connection stays on the thread that accepted
    /// it. Default: the CPUs available to the process (affinity mask and cgroup CPU quota).
    #[arg(long, env = "SHARDCACHE_THREADS", default_value_t = default_threads())]
    pub threads: usize,

    /// Socket I/O of the worker threads: `io_uring` (completion: multishot receives, batched
    /// sends, one system call per event-loop turn), `epoll` (readiness), or `auto` (the
    /// default: io_uring where it can be set up, else epoll). Where io_uring cannot be set up
    /// (an old kernel, a container's seccomp profile) the server uses epoll: silently for
    /// `auto` (the choice is logged at start), with a warning when io_uring was asked for.
    #[arg(
        long = "io-backend",
        env = "SHARDCACHE_IO_BACKEND",
        value_enum,
        default_value_t = IoBackend::Auto
    )]
    pub io_backend: IoBackend,

    /// Tests only: make io_uring setup fail, to exercise the fall-back to epoll.
    #[arg(
        long = "io-uring-fail-setup",
        env = "SHARDCACHE_IO_URING_FAIL_SETUP",
        default_value_t = false,
        hide = true,
        action = clap::ArgAction::Set
    )]
    pub io_uring_fail_setup: bool,

    /// Tests only: arm io_uring receives without a byte limit, as on kernels before 6.17
    /// (which refuse it), to exercise the pause by cancellation.
    #[arg(
        long = "io-uring-recv-limit",
        env = "SHARDCACHE_IO_URING_RECV_LIMIT",
        default_value_t = true,
        hide = true,
        action = clap::ArgAction::Set
    )]
    pub io_uring_recv_limit: bool,

    /// Number of logical databases (SELECT 0..N-1), as Redis's `databases`.
    #[arg(long, env = "SHARDCACHE_DATABASES", default_value_t = 16)]
    pub databases: usize,

    /// Maximum number of simultaneous client connections; the next one gets
    /// "-ERR max number of clients reached" and is closed.
    #[arg(long, env = "SHARDCACHE_MAXCLIENTS", default_value_t = 10000)]
    pub maxclients: usize,

    /// Largest bulk string a client may send, in bytes (units accepted: 512mb, 1gb).
    #[arg(
        long = "proto-max-bulk-len",
        env = "SHARDCACHE_PROTO_MAX_BULK_LEN",
        default_value = "512mb"
    )]
    pub proto_max_bulk_len: ByteSize,

    /// Seconds to wait, after SIGTERM or SIGINT, for connections to finish the batch they are
    /// executing before the process exits anyway.
    #[arg(
        long = "shutdown-timeout",
        env = "SHARDCACHE_SHUTDOWN_TIMEOUT",
        default_value_t = 10
    )]
    pub shutdown_timeout: u64,

    /// Log filter: error, warn, info, debug, trace (or a tracing directive like
    /// "shardcache_server=debug").
    #[arg(
        long = "log-level",
        env = "SHARDCACHE_LOG_LEVEL",
        default_value = "info"
    )]
    pub log_level: String,

    /// Log format on stdout.
    #[arg(long = "log-format", env = "SHARDCACHE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Memory limit for keys and values (units: 100mb, 1gb; 0 = unlimited). Above it, commands
    /// that may grow memory evict per --maxmemory-policy or fail with Redis's OOM error.
    /// Default: when the process runs under a cgroup memory limit (a container), 75% of that
    /// limit (the rest is headroom for allocator fragmentation, table slack and connection
    /// buffers, so the container is not OOM-killed); otherwise 0.
    #[arg(long, env = "SHARDCACHE_MAXMEMORY")]
    pub maxmemory: Option<ByteSize>,

    /// What to evict above --maxmemory. Redis's default, noeviction, is kept: a cache that
    /// silently drops keys should be a choice (allkeys-lru is the usual one for a cache).
    #[arg(
        long = "maxmemory-policy",
        env = "SHARDCACHE_MAXMEMORY_POLICY",
        default_value = "noeviction",
        value_parser = clap::builder::PossibleValuesParser::new(MAXMEMORY_POLICIES),
    )]
    pub maxmemory_policy: String,

    /// Keys sampled per eviction round (Redis's maxmemory-samples): more is closer to true
    /// LRU/LFU and costs more CPU per eviction.
    #[arg(
        long = "maxmemory-samples",
        env = "SHARDCACHE_MAXMEMORY_SAMPLES",
        default_value_t = 5
    )]
    pub maxmemory_samples: usize,

    /// Root of the cgroup file tree read for the container memory limit (tests pass a fake one).
    #[arg(long = "cgroup-root", env = "SHARDCACHE_CGROUP_ROOT", default_value_os_t = default_cgroup_root(), hide = true)]
    pub cgroup_root: PathBuf,

    /// Address of the Prometheus metrics HTTP endpoint (path /metrics). Default: the `--bind`
    /// address and `--port` + 3000 (6379 → 9379, 6380 → 9380), so instances that differ only
    /// by `--port` do not collide; `--port 0` gives an ephemeral metrics port too. Empty turns
    /// it off.
    #[arg(long = "metrics-addr", env = "SHARDCACHE_METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// Bound the per-shard metric series to the K most contended shards (0: every shard).
    /// Totals over all shards are always exported. Useful above a few thousand shards.
    #[arg(
        long = "metrics-top-shards",
        env = "SHARDCACHE_METRICS_TOP_SHARDS",
        default_value_t = 0
    )]
    pub metrics_top_shards: usize,

    /// Count shard lock acquisitions and time contended waits (the contention metrics,
    /// INFO contention, HOTKEYS), and time commands (INFO commandstats usec, INFO
    /// latencystats, the command duration histogram). `false` only to measure what the
    /// instrumentation costs; commands are still counted.
    #[arg(long = "lock-stats", env = "SHARDCACHE_LOCK_STATS", default_value_t = true, action = clap::ArgAction::Set)]
    pub lock_stats: bool,

    /// Password clients must send with AUTH (or HELLO ... AUTH default PASSWORD) before any other
    /// command; until then they get "-NOAUTH Authentication required.". Unset: no password.
    /// Also CONFIG SET requirepass. Prefer the environment variable to the command line, which
    /// other local users can read in the process list.
    #[arg(long, env = "SHARDCACHE_REQUIREPASS", hide_env_values = true)]
    pub requirepass: Option<String>,

    /// Protected mode, as Redis: with no --requirepass and --bind on a non-loopback address,
    /// connections from non-loopback peers get "-DENIED ..." and are closed. yes or no.
    #[arg(long = "protected-mode", env = "SHARDCACHE_PROTECTED_MODE", default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub protected_mode: bool,

    /// Rename a command: --rename-command NAME NEWNAME (repeatable). An empty NEWNAME ("")
    /// disables it. The old name then answers Redis's unknown-command error. From the
    /// environment: SHARDCACHE_RENAME_COMMAND="flushall,,keys,admin-keys" (pairs, comma-separated).
    #[arg(long = "rename-command", env = "SHARDCACHE_RENAME_COMMAND", num_args = 2, value_names = ["NAME", "NEWNAME"], action = clap::ArgAction::Append, value_delimiter = ',')]
    pub rename_command: Vec<String>,

    /// Disable a command (repeatable, or comma-separated): it answers Redis's unknown-command
    /// error. For example --disable-command flushall,flushdb,keys,config.
    #[arg(long = "disable-command", env = "SHARDCACHE_DISABLE_COMMAND", action = clap::ArgAction::Append, value_delimiter = ',')]
    pub disable_command: Vec<String>,

    /// Largest reply a client may have pending (units: 32mb). A command whose reply exceeds it
    /// (KEYS or MGET over huge data) closes the connection with a warning in the log. A single
    /// bulk string (one value, at most --proto-max-bulk-len) is always sent.
    #[arg(
        long = "client-output-buffer-limit",
        env = "SHARDCACHE_CLIENT_OUTPUT_BUFFER_LIMIT",
        default_value = "32mb"
    )]
    pub client_output_buffer_limit: ByteSize,

    /// Most unparsed input buffered for one client (units: 1gb, as Redis). Above it the
    /// connection is closed and a warning logged.
    #[arg(
        long = "client-query-buffer-limit",
        env = "SHARDCACHE_CLIENT_QUERY_BUFFER_LIMIT",
        default_value = "1gb"
    )]
    pub client_query_buffer_limit: ByteSize,

    /// Close a client after this many seconds without a complete read or a finished write
    /// (0: never, as Redis's timeout). Also bounds how long a half-sent request (slowloris)
    /// or a client that stops reading its replies can hold a connection.
    #[arg(long, env = "SHARDCACHE_TIMEOUT", default_value_t = 0)]
    pub timeout: u64,

    /// Log commands that take at least this many microseconds in `SLOWLOG` (0: every command;
    /// negative: none), as Redis's `slowlog-log-slower-than`. Changeable with `CONFIG SET`.
    #[arg(
        long = "slowlog-log-slower-than",
        env = "SHARDCACHE_SLOWLOG_LOG_SLOWER_THAN",
        default_value_t = 10_000,
        allow_negative_numbers = true
    )]
    pub slowlog_log_slower_than: i64,

    /// Record commands that take at least this many milliseconds in the latency monitor
    /// (`LATENCY LATEST|HISTORY`); 0 turns it off, as Redis's `latency-monitor-threshold`.
    /// Changeable with `CONFIG SET`.
    #[arg(
        long = "latency-monitor-threshold",
        env = "SHARDCACHE_LATENCY_MONITOR_THRESHOLD",
        default_value_t = 0
    )]
    pub latency_monitor_threshold: u64,

    /// Entries `SLOWLOG` keeps (the oldest go first), as Redis's `slowlog-max-len`.
    /// Changeable with `CONFIG SET`.
    #[arg(
        long = "slowlog-max-len",
        env = "SHARDCACHE_SLOWLOG_MAX_LEN",
        default_value_t = 128
    )]
    pub slowlog_max_len: usize,

    /// Log commands that held a shard lock for at least this many microseconds in `LOCKLOG`
    /// (0: every timed hold; negative: none). Changeable with `CONFIG SET`. Needs
    /// `--lock-stats` (holds are not timed without it).
    #[arg(
        long = "lock-log-slower-than",
        env = "SHARDCACHE_LOCK_LOG_SLOWER_THAN",
        default_value_t = 1_000,
        allow_negative_numbers = true
    )]
    pub lock_log_slower_than: i64,

    /// Entries `LOCKLOG` keeps (the oldest go first). Changeable with `CONFIG SET`.
    #[arg(
        long = "lock-log-max-len",
        env = "SHARDCACHE_LOCK_LOG_MAX_LEN",
        default_value_t = 128
    )]
    pub lock_log_max_len: usize,
}

impl Config {
    /// Parses the process's arguments and environment, then validates.
    ///
    /// # Errors
    /// The first invalid option, with its reason. (`--help`, `--version` and clap's own parse
    /// errors exit the process from inside clap, as usual for a CLI.)
    pub fn parse_from_env_and_args() -> Result<Config, ConfigError> {
        let c = Config::parse();
        c.validate()?;
        Ok(c)
    }

    /// Checks every rule clap's types cannot express.
    ///
    /// # Errors
    /// The first option whose value cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.metrics_socket_addr()?;
        if self.shards == 0 || !self.shards.is_power_of_two() || self.shards > MAX_SHARDS {
            return Err(ConfigError::new(
                "shards",
                format!(
                    "{} is not a power of two between 1 and {MAX_SHARDS} (try {})",
                    self.shards,
                    self.shards.max(1).next_power_of_two().min(MAX_SHARDS)
                ),
            ));
        }
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(ConfigError::new(
                "threads",
                format!("{} is not between 1 and {MAX_THREADS}", self.threads),
            ));
        }
        if self.databases == 0 || self.databases > MAX_DATABASES {
            return Err(ConfigError::new(
                "databases",
                format!("{} is not between 1 and {MAX_DATABASES}", self.databases),
            ));
        }
        if self.shards.saturating_mul(self.databases) > MAX_TABLES {
            return Err(ConfigError::new(
                "databases",
                format!(
                    "{} databases in each of {} shards is more than {MAX_TABLES} tables \
                     (lower --databases or --shards)",
                    self.databases, self.shards
                ),
            ));
        }
        if self.maxclients == 0 {
            return Err(ConfigError::new("maxclients", "must be at least 1"));
        }
        let bulk = self.proto_max_bulk_len.bytes();
        if bulk < 1024 * 1024 {
            return Err(ConfigError::new(
                "proto-max-bulk-len",
                format!("{bulk} is below the minimum of 1mb"),
            ));
        }
        if bulk > i64::MAX as u64 {
            return Err(ConfigError::new("proto-max-bulk-len", "is too large"));
        }
        if self.maxmemory_samples == 0 || self.maxmemory_samples > i32::MAX as usize {
            return Err(ConfigError::new(
                "maxmemory-samples",
                format!(
                    "{} is not between 1 and 2147483647 (as Redis)",
                    self.maxmemory_samples
                ),
            ));
        }
        if self.bind.trim().is_empty() {
            return Err(ConfigError::new("bind", "must not be empty"));
        }
        self.listen_addr()?;
        self.metrics_socket_addr()?;
        if self.client_output_buffer_limit.bytes() < 1024 * 1024 {
            return Err(ConfigError::new(
                "client-output-buffer-limit",
                "is below the minimum of 1mb",
            ));
        }
        if self.client_query_buffer_limit.bytes() < 1024 * 1024 {
            return Err(ConfigError::new(
                "client-query-buffer-limit",
                "is below the minimum of 1mb",
            ));
        }
        if !self.rename_command.chunks_exact(2).remainder().is_empty() {
            return Err(ConfigError::new(
                "rename-command",
                "takes two values: NAME NEWNAME",
            ));
        }
        Ok(())
    }

    /// The Redis-protocol listen address from `--bind` and `--port`.
    ///
    /// # Errors
    /// When `--bind` is not an IP address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        let ip: std::net::IpAddr = self.bind.trim().parse().map_err(|_| {
            ConfigError::new(
                "bind",
                format!("'{}' is not an IPv4 or IPv6 address", self.bind),
            )
        })?;
        Ok(SocketAddr::new(ip, self.port))
    }

    /// The metrics endpoint's address, or `None` when `--metrics-addr` is empty; when it is
    /// not given, the Redis address with the port + [`METRICS_PORT_OFFSET`].
    ///
    /// # Errors
    /// When the value is neither empty nor `IP:PORT`.
    pub fn metrics_socket_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(s) = self.metrics_addr.as_deref().map(str::trim) else {
            let redis = self.listen_addr()?;
            let port = match redis.port() {
                0 => 0,
                p => p.checked_add(METRICS_PORT_OFFSET).ok_or_else(|| {
                    ConfigError::new(
                        "metrics-addr",
                        format!(
                            "the default metrics port (--port + {METRICS_PORT_OFFSET}) is \
                             above 65535 for --port {p}: set --metrics-addr"
                        ),
                    )
                })?,
            };
            return Ok(Some(SocketAddr::new(redis.ip(), port)));
        };
        if s.is_empty() {
            return Ok(None);
        }
        s.parse().map(Some).map_err(|_| {
            ConfigError::new(
                "metrics-addr",
                format!(
                    "'{s}' is not IP:PORT (for example 127.0.0.1:9379), or empty to turn it off"
                ),
            )
        })
    }

    /// The graceful-shutdown deadline.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout)
    }

    /// The `maxmemory` to run with and where it came from: `--maxmemory` when given, else
    /// [`cgroup::DEFAULT_SHARE_PERCENT`] of the cgroup memory limit under `--cgroup-root`,
    /// else 0 (unlimited).
    pub fn effective_maxmemory(&self) -> (u64, MaxmemorySource) {
        if let Some(m) = self.maxmemory {
            return (m.bytes(), MaxmemorySource::Option);
        }
        match cgroup::memory_limit(&self.cgroup_root) {
            Some((limit, version)) => (
                cgroup::default_maxmemory(limit),
                MaxmemorySource::Cgroup { limit, version },
            ),
            None => (0, MaxmemorySource::Unlimited),
        }
    }

    /// A configuration with every default, for tests and embedding.
    pub fn defaults() -> Config {
        Config::parse_from(["shardcache"])
    }
}

/// Why `maxmemory` has the value it has (logged at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxmemorySource {
    /// Given with `--maxmemory` / `SHARDCACHE_MAXMEMORY`.
    Option,
    /// A share of this cgroup memory limit.
    Cgroup {
        /// The container's limit in bytes.
        limit: u64,
        /// Which cgroup file it came from.
        version: cgroup::CgroupVersion,
    },
    /// No option and no cgroup limit: unlimited, as Redis.
    Unlimited,
}

/// Parses Redis's yes/no booleans (also true/false, on/off, 1/0).
///
/// # Errors
/// Any other word.
pub fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("'{s}' is not yes or no")),
    }
}

/// Where the process may read its cgroup limits; a parameter so tests can pass a fake tree.
pub fn default_cgroup_root() -> PathBuf {
    PathBuf::from("/sys/fs/cgroup")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let mut all = vec!["shardcache"];
        all.extend_from_slice(args);
        let c = Config::try_parse_from(all).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_are_valid() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.port, 6379);
        assert_eq!(c.bind, "127.0.0.1");
        assert!(c.shards.is_power_of_two() && c.shards >= 16);
        assert_eq!(c.proto_max_bulk_len.bytes(), 512 * 1024 * 1024);
        assert_eq!(c.maxclients, 10000);
        assert_eq!(c.databases, 16);
        assert_eq!(
            c.metrics_socket_addr().unwrap(),
            Some("127.0.0.1:9379".parse().unwrap())
        );
    }

    #[test]
    fn metrics_port_follows_the_redis_port() {
        let at = |args: &[&str]| parse(args).unwrap().metrics_socket_addr().unwrap();
        assert_eq!(
            at(&["--port", "6380"]),
            Some("127.0.0.1:9380".parse().unwrap())
        );
        assert_eq!(
            at(&["--port", "7000", "--bind", "0.0.0.0"]),
            Some("0.0.0.0:10000".parse().unwrap())
        );
        assert_eq!(at(&["--port", "0"]), Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(
            at(&["--port", "6380", "--metrics-addr", "127.0.0.1:9999"]),
            Some("127.0.0.1:9999".parse().unwrap())
        );
        assert_eq!(at(&["--metrics-addr", ""]), None);
        // Refused at start, in one line naming the option.
        let e = parse(&["--port", "64000"]).unwrap_err();
        assert!(e.to_string().contains("set --metrics-addr"), "{e}");
    }

    #[test]
    fn database_counts() {
        for ok in ["1", "16", "65536"] {
            assert!(
                parse(&["--databases", ok, "--shards", "16"]).is_ok(),
                "{ok}"
            );
        }
        for bad in ["0", "65537", "1000000"] {
            let e = parse(&["--databases", bad]).unwrap_err();
            assert!(e.contains("--databases") && e.contains("65536"), "{e}");
        }
        let e = parse(&["--databases", "128", "--shards", "65536"]).unwrap_err();
        assert!(e.contains("--databases") && e.contains("tables"), "{e}");
        assert!(parse(&["--databases", "64", "--shards", "65536"]).is_ok());
    }

    #[test]
    fn shard_counts() {
        for ok in ["1", "2", "64", "1024", "65536"] {
            assert!(parse(&["--shards", ok]).is_ok(), "{ok}");
        }
        for bad in ["0", "3", "100", "131072"] {
            let e = parse(&["--shards", bad]).unwrap_err();
            assert!(e.contains("--shards") && e.contains("power of two"), "{e}");
        }
    }

    #[test]
    fn memory_units() {
        let cases = [
            ("100", 100),
            ("1k", 1000),
            ("1kb", 1024),
            ("64mb", 64 << 20),
            ("64MB", 64 << 20),
            ("2g", 2_000_000_000),
            ("1gb", 1 << 30),
        ];
        for (s, want) in cases {
            assert_eq!(parse_memory(s), Ok(want), "{s}");
        }
        for bad in ["", "mb", "12xb", "-1", "99999999999999999999"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_values_name_the_option() {
        let e = parse(&["--bind", "localhost"]).unwrap_err();
        assert!(e.contains("--bind"), "{e}");
        let e = parse(&["--metrics-addr", "nope"]).unwrap_err();
        assert!(e.contains("--metrics-addr"), "{e}");
        assert_eq!(
            parse(&["--metrics-addr", ""])
                .unwrap()
                .metrics_socket_addr(),
            Ok(None)
        );
        let e = parse(&["--proto-max-bulk-len", "10"]).unwrap_err();
        assert!(e.contains("proto-max-bulk-len"), "{e}");
        let e = parse(&["--maxclients", "0"]).unwrap_err();
        assert!(e.contains("maxclients"), "{e}");
        let e = parse(&["--threads", "0"]).unwrap_err();
        assert!(e.contains("--threads"), "{e}");
        assert_eq!(parse(&["--threads", "3"]).unwrap().threads, 3);
        assert!(default_threads() >= 1);
    }

    #[test]
    fn maxmemory_options() {
        let c = parse(&["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]).unwrap();
        assert_eq!(c.effective_maxmemory(), (64 << 20, MaxmemorySource::Option));
        assert_eq!(c.maxmemory_policy, "allkeys-lru");
        assert_eq!(c.maxmemory_samples, 5);
        let e = parse(&["--maxmemory-policy", "lru"]).unwrap_err();
        assert!(e.contains("maxmemory-policy"), "{e}");
        let e = parse(&["--maxmemory-samples", "0"]).unwrap_err();
        assert!(e.contains("maxmemory-samples"), "{e}");
        let e = parse(&["--maxmemory", "12xb"]).unwrap_err();
        assert!(e.contains("maxmemory"), "{e}");
    }

    #[test]
    fn maxmemory_defaults_from_cgroup() {
        let dir = std::env::temp_dir().join(format!("shardcache-cfg-cg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.max"), "1073741824\n").unwrap();
        let root = dir.to_str().unwrap();
        let c = parse(&["--cgroup-root", root]).unwrap();
        assert_eq!(c.effective_maxmemory().0, 805_306_368);
        let c = parse(&["--cgroup-root", root, "--maxmemory", "0"]).unwrap();
        assert_eq!(c.effective_maxmemory(), (0, MaxmemorySource::Option));
        std::fs::write(dir.join("memory.max"), "max\n").unwrap();
        let c = parse(&["--cgroup-root", root]).unwrap();
        assert_eq!(c.effective_maxmemory(), (0, MaxmemorySource::Unlimited));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn hardening_options() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.requirepass, None);
        assert!(c.protected_mode);
        assert_eq!(c.client_output_buffer_limit.bytes(), 32 << 20);
        assert_eq!(c.client_query_buffer_limit.bytes(), 1 << 30);
        assert_eq!(c.timeout, 0);
        let c = parse(&[
            "--protected-mode",
            "no",
            "--rename-command",
            "flushall",
            "",
            "--rename-command",
            "keys",
            "k2",
            "--disable-command",
            "config,debug",
        ])
        .unwrap();
        assert!(!c.protected_mode);
        assert_eq!(c.rename_command, ["flushall", "", "keys", "k2"]);
        assert_eq!(c.disable_command, ["config", "debug"]);
        assert!(parse(&["--protected-mode", "maybe"]).is_err());
        let e = parse(&["--client-query-buffer-limit", "10"]).unwrap_err();
        assert!(e.contains("client-query-buffer-limit"), "{e}");
    }

    #[test]
    fn health_subcommand() {
        let c = parse(&["health", "--port", "7000"]).unwrap();
        assert!(matches!(c.tool, Some(Tool::Health { port: 7000, .. })));
    }
}
