//! The shardcache server: wires the RESP codec (`shardcache-protocol`) to the sharded store
//! (`shardcache-storage`) over tokio.
//!
//! The binary (`src/bin/shardcache.rs`) is thin: it reads the [`Config`], sets up logging,
//! binds the listener and calls [`run`]. Everything else is here, testable without a process.
//!
//! - [`server`]: the worker threads (thread per core), the accept loop, connection limit and
//!   graceful shutdown.
//! - [`connection`]: one task per client, on one worker thread; decodes every complete request in its read buffer,
//!   executes them in order and flushes all replies of the batch with one write.
//! - [`command`]: the handlers and dispatch.
//! - [`table`]: the command table (names, arity, flags, keys) and the rename-aware names.
//! - [`client`]: the per-connection client record.
//! - [`info`] and [`metrics`]: the `INFO` sections and the `/metrics` endpoint, two renderers
//!   of the same statistics ([`stats`], [`process`], the store's).
//! - [`stats`]: per-worker command and network counters, summed when read.
//!
//! Modules are layered, arrows pointing down only: `table`, `client`, `process`, `stats` →
//! `state` → `info`, `metrics` → `command` → `connection` → `server` (checked by
//! `modcycles.py`; see ARCHITECTURE.md).

pub mod auth;
pub mod client;
pub mod command;
pub mod connection;
pub mod health;
pub mod info;
pub mod io;
pub mod latency;
pub mod latency_monitor;
pub mod locklog;
pub mod metrics;
pub mod monitor;
pub mod pprof;
pub mod process;
pub mod server;
pub mod slowlog;
pub mod state;
pub mod stats;
pub mod table;

pub use server::{run, Listening};
pub use shardcache_config::Config;
pub use state::Shared;
