//! Async client for shardcache and any Redis-protocol (RESP2/RESP3) server.
//!
//! - [`Client`]: one connection; typed commands ([`Client::get`],
//!   [`Client::set_with`], ...), raw [`Client::cmd`], pipelines
//!   ([`Client::pipeline`]) and a pre-encoded fast path ([`Client::send_raw`] +
//!   [`Client::read_frames`]) for load generation.
//! - [`Pool`]: fixed-size pool with checkout and reconnect-with-backoff.
//! - [`Ketama`] / [`ShardedClient`]: client-side sharding compatible with
//!   twemproxy's `distribution: ketama`, `hash: fnv1a_64`.
//! - [`Error`] keeps server error replies apart from I/O, protocol and timeout
//!   failures.
//!
//! The `shardcache-bench` load generator is a crate of its own (`client/bench/`), so an
//! application that only wants a RESP client pulls in none of its dependencies.
//!
//! ```no_run
//! # async fn demo() -> shardcache_client::Result<()> {
//! use shardcache_client::{Client, Error};
//! let mut client = Client::connect("127.0.0.1:6379").await?;
//! client.set("counter", "41").await?;
//! assert_eq!(client.incr("counter").await?, 42);
//! match client.incr("no-such-command-target").await {
//!     Err(Error::Server(msg)) => eprintln!("server said no: {msg}"),
//!     other => { other?; }
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod client;
mod connection;
mod error;
mod ketama;
mod md5;
mod pool;
mod sharded;

pub use client::{Client, ClientConfig, Pipeline, SetOptions, Ttl};
pub use error::{Error, Result};
pub use ketama::{fnv1a_64, Ketama, KetamaNode};
pub use pool::{Pool, PoolConfig, PooledClient};
pub use shardcache_protocol::Frame;
pub use sharded::ShardedClient;
