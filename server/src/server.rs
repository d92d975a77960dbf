//! The accept loop, the connection limit and graceful shutdown.
//!
//! Shutdown follows mini-redis: one [`CancellationToken`] that every connection task selects on,
//! and a [`TaskTracker`] the server waits on until the last task has flushed its batch and
//! closed (or the `shutdown-timeout` passes).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::connection::Connection;
use crate::state::Shared;
use crate::Config;

/// How often the background reclaimer looks for expired keys nobody touches.
const EXPIRE_INTERVAL: Duration = Duration::from_millis(100);

/// A bound server, before it starts accepting: lets tests and the binary learn the real port.
pub struct Listening {
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shared: Arc<Shared>,
}

impl Listening {
    /// Validates nothing (the config must be valid), binds `--bind:--port` and builds the store.
    ///
    /// # Errors
    /// When the address cannot be bound or the store refuses the configuration.
    pub async fn bind(config: Config) -> anyhow::Result<Listening> {
        let addr = config.listen_addr()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let port = listener.local_addr()?.port();
        let metrics = match config.metrics_socket_addr()? {
            Some(addr) => Some(crate::metrics::bind(addr).await?),
            None => None,
        };
        let shared = Arc::new(Shared::new(config, port)?);
        Ok(Listening {
            listener,
            metrics,
            shared,
        })
    }

    /// The address actually bound.
    ///
    /// # Errors
    /// Only if the OS cannot report it.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The metrics endpoint's address, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared state (store, counters), e.g. for the metrics exporter.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Serves until `shutdown` completes, then drains connections.
    ///
    /// # Errors
    /// Never in practice; accept errors are logged and retried with a back-off.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let token = CancellationToken::new();
        if let Some(m) = self.metrics {
            tokio::spawn(crate::metrics::serve(
                m,
                Arc::clone(&self.shared),
                token.clone(),
            ));
        }
        let r = run(self.listener, self.shared, shutdown).await;
        token.cancel();
        r
    }
}

/// Runs the server on `listener` until `shutdown` completes, then stops accepting, lets every
/// connection finish and flush the batch it is executing, and returns once all are closed or
/// `shutdown-timeout` has passed.
///
/// # Errors
/// Never in practice; accept errors are logged and retried with a back-off.
pub async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let reclaimer = shardcache_storage::Reclaimer::spawn(&shared.store, EXPIRE_INTERVAL);

    info!(
        addr = %listener.local_addr()?,
        shards = shared.store.shard_count(),
        version = env!("CARGO_PKG_VERSION"),
        "shardcache ready to accept connections"
    );

    tokio::select! {
        () = accept_loop(&listener, &shared, &token, &tracker) => {}
        () = shutdown => {}
    }

    let open = shared.connected_clients.load(Ordering::Relaxed);
    info!(
        open_connections = open,
        "shutting down: no longer accepting"
    );
    drop(listener);
    token.cancel();
    tracker.close();
    let deadline = shared.config.shutdown_timeout();
    if tokio::time::timeout(deadline, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            timeout_s = deadline.as_secs(),
            "connections still open at the shutdown deadline; closing them"
        );
    }
    drop(reclaimer);
    info!("shardcache stopped");
    Ok(())
}

async fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    token: &CancellationToken,
    tracker: &TaskTracker,
) {
    let mut backoff = Duration::from_millis(1);
    let bound_loopback = listener
        .local_addr()
        .map(|a| a.ip().to_canonical().is_loopback())
        .unwrap_or(false);
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(pair) => {
                backoff = Duration::from_millis(1);
                pair
            }
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS…: back off instead of spinning on the error.
                error!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        shared.connections_total.fetch_add(1, Ordering::Relaxed);
        let clients = shared.connected_clients.fetch_add(1, Ordering::AcqRel);
        if clients >= shared.config.maxclients {
            shared.connected_clients.fetch_sub(1, Ordering::AcqRel);
            shared.rejected_connections.fetch_add(1, Ordering::Relaxed);
            tracker.spawn(refuse(socket, MAXCLIENTS_REPLY));
            continue;
        }
        if shared.config.protected_mode
            && !bound_loopback
            && !peer.ip().to_canonical().is_loopback()
            && !shared.auth.required()
        {
            shared.connected_clients.fetch_sub(1, Ordering::AcqRel);
            debug!(peer = %peer, "refused a non-loopback client: protected mode is on and no password is set");
            tracker.spawn(refuse(socket, PROTECTED_MODE_REPLY));
            continue;
        }
        let _ = socket.set_nodelay(true);
        let conn = Connection::new(socket, peer, Arc::clone(shared));
        let token = token.clone();
        let shared = Arc::clone(shared);
        tracker.spawn(async move {
            conn.run(token).await;
            shared.connected_clients.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// The reply to a connection over `maxclients`.
const MAXCLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";

/// Redis 7's protected-mode reply, with its advice adapted to shardcache's options.
pub const PROTECTED_MODE_REPLY: &[u8] = b"-DENIED Redis is running in protected mode because \
protected mode is enabled and no password is set for the default user. In this mode connections \
are only accepted from the loopback interface. If you want to connect from external computers to \
Redis you may adopt one of the following solutions: 1) Set a password for the default user with \
'--requirepass <password>' (or SHARDCACHE_REQUIREPASS), or 'CONFIG SET requirepass <password>' \
from the loopback interface. 2) Bind to the loopback interface only with '--bind 127.0.0.1' \
if external clients are not needed. 3) If the network is trusted (for example a private \
container network), disable protected mode by restarting the server with '--protected-mode no' \
(or SHARDCACHE_PROTECTED_MODE=no), however MAKE SURE the server is not publicly accessible from \
internet if you do so. NOTE: You only need to do one of the above things in order for the \
server to start accepting connections from the outside.\r\n";

/// Tells a refused client why (`reply`), then closes.
async fn refuse(mut socket: TcpStream, reply: &'static [u8]) {
    let write = async {
        socket.write_all(reply).await?;
        socket.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}
