//! [`Pool`]: a fixed-size connection pool with checkout and reconnect-with-backoff.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardcache_protocol::Frame;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client::{Client, ClientConfig};
use crate::error::{Error, Result};

/// Sizing and reconnect policy of a [`Pool`].
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// How each connection is made.
    pub client: ClientConfig,
    /// Number of connections (and of concurrent checkouts).
    pub size: usize,
    /// Delay before the second connect attempt; doubled after each failure.
    pub initial_backoff: Duration,
    /// Cap on the delay between connect attempts.
    pub max_backoff: Duration,
    /// Connect attempts per checkout before giving up with the last error.
    pub max_attempts: u32,
}

impl PoolConfig {
    /// `size` connections to `client.addr`, backoff 10 ms doubling up to 1 s, 8 attempts.
    pub fn new(client: ClientConfig, size: usize) -> Self {
        PoolConfig {
            client,
            size: size.max(1),
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
            max_attempts: 8,
        }
    }
}

/// State shared by a pool and its checked-out guards.
#[derive(Debug)]
struct Shared {
    /// Policy.
    config: PoolConfig,
    /// Idle connections; `None` marks a slot whose connection must be (re)made.
    idle: Mutex<Vec<Option<Client>>>,
    /// One permit per connection: checkout waits here when all are in use.
    permits: Arc<Semaphore>,
}

/// A fixed-size pool of [`Client`]s, cheap to clone and share between tasks.
///
/// [`Pool::get`] checks a connection out (waiting when all are busy); the guard
/// puts it back on drop. A connection that broke (I/O error, timeout) is not
/// reused: the next checkout of its slot reconnects with capped exponential
/// backoff. Commands are never retried automatically, since a command that
/// failed mid-flight may or may not have run (think `INCR`).
///
/// ```no_run
/// # async fn demo() -> shardcache_client::Result<()> {
/// use shardcache_client::{ClientConfig, Pool, PoolConfig};
/// let pool = Pool::new(PoolConfig::new(ClientConfig::new("127.0.0.1:6379"), 8));
/// let mut conn = pool.get().await?;
/// conn.set("k", "v").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Pool {
    /// Shared state.
    shared: Arc<Shared>,
}

impl Pool {
    /// Creates the pool; connections are made lazily, on first checkout.
    pub fn new(config: PoolConfig) -> Self {
        let size = config.size.max(1);
        Pool {
            shared: Arc::new(Shared {
                idle: Mutex::new((0..size).map(|_| None).collect()),
                permits: Arc::new(Semaphore::new(size)),
                config,
            }),
        }
    }

    /// Checks out a connection, connecting (with backoff) if its slot is empty
    /// or its connection broke.
    ///
    /// # Errors
    /// The last connect error after `max_attempts` failed attempts.
    pub async fn get(&self) -> Result<PooledClient> {
        let permit = Arc::clone(&self.shared.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let slot = self.lock_idle().pop().flatten();
        let client = match slot {
            Some(c) if !c.is_broken() => c,
            _ => match self.connect_with_backoff().await {
                Ok(c) => c,
                Err(e) => {
                    self.lock_idle().push(None);
                    return Err(e);
                }
            },
        };
        Ok(PooledClient {
            client: Some(client),
            shared: Arc::clone(&self.shared),
            _permit: permit,
        })
    }

    /// Checks out a connection, runs one command, returns it.
    ///
    /// # Errors
    /// As [`Pool::get`] and [`Client::cmd`].
    pub async fn cmd<A: AsRef<[u8]>>(&self, args: &[A]) -> Result<Frame> {
        self.get().await?.cmd(args).await
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// Locks the idle list; a poisoned lock only means a panic elsewhere, the
    /// list itself is still consistent.
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Option<Client>>> {
        self.shared.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connects, sleeping `initial_backoff * 2^n` (capped) between attempts.
    async fn connect_with_backoff(&self) -> Result<Client> {
        let cfg = &self.shared.config;
        let mut delay = cfg.initial_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Client::connect_with(cfg.client.clone()).await {
                Ok(c) => return Ok(c),
                Err(e) if attempt >= cfg.max_attempts.max(1) || !e.is_connection_error() => {
                    return Err(e)
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(cfg.max_backoff);
                }
            }
        }
    }
}

/// A connection checked out of a [`Pool`]; derefs to [`Client`] and goes back
/// to the pool when dropped (or is discarded if it broke).
#[derive(Debug)]
pub struct PooledClient {
    /// Always `Some` until drop.
    client: Option<Client>,
    /// Where to return it.
    shared: Arc<Shared>,
    /// Released after the client is back in the idle list.
    _permit: OwnedSemaphorePermit,
}

impl Deref for PooledClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("client present until drop")
    }
}

impl DerefMut for PooledClient {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("client present until drop")
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        let client = self.client.take().filter(|c| !c.is_broken());
        self.shared
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(client);
    }
}
