//! Threads, the accept loop, the connection limit and graceful shutdown.
//!
//! Threading (thread per core): [`run`] starts `--threads` worker threads, each a
//! single-threaded tokio runtime pinned to one CPU of the process's affinity mask. The thread
//! that calls [`run`] (the control thread) accepts connections, applies `maxclients` and
//! protected mode, and hands each socket to the worker serving the fewest connections; the
//! connection then lives on that worker until it closes. Workers share the sharded store and
//! the read-mostly [`Shared`]; each writes only its own statistics (see [`crate::stats`]).
//!
//! Shutdown: the control thread sets [`Shared::shutting_down`], which each connection reads
//! once per batch, and shuts every connection's socket for reading so idle ones wake at once
//! ([`crate::state::ClientRegistry::wake_all`]); a [`TaskTracker`] counts the connections
//! until the last has flushed its batch and closed (or `shutdown-timeout` passes). Then the
//! workers stop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use shardcache_config::IoBackend;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::{task_tracker::TaskTrackerToken, TaskTracker};
use tracing::{debug, error, info, warn};

use crate::connection::Connection;
use crate::io::{Inbox, Stream};
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
        if let Some(m) = metrics.as_ref().and_then(|l| l.local_addr().ok()) {
            let _ = shared.metrics_port.set(m.port());
            info!(addr = %m, "metrics endpoint listening");
        }
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
        let metrics = self.metrics.map(|m| {
            tokio::spawn(crate::metrics::serve(
                m,
                Arc::clone(&self.shared),
                token.clone(),
            ))
        });
        let r = run(self.listener, self.shared, shutdown).await;
        // The metrics endpoint stops with the server: no exchange outlives it.
        token.cancel();
        if let Some(m) = metrics {
            let _ = m.await;
        }
        r
    }
}

/// Runs the server on `listener` until `shutdown` completes, then stops accepting, lets every
/// connection finish and flush the batch it is executing, and returns once all are closed or
/// `shutdown-timeout` has passed. Must be called on a tokio runtime (the control thread's);
/// the worker threads are started here and stopped before it returns.
///
/// # Errors
/// When a worker thread or runtime cannot be started. Accept errors are logged and retried
/// with a back-off.
pub async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    let reclaimer = shardcache_storage::Reclaimer::spawn(&shared.store, EXPIRE_INTERVAL);
    let workers = Workers::start(
        shared.threads,
        shared.config.io_backend,
        shared.config.io_uring_fail_setup,
        shared.config.io_uring_recv_limit,
    )?;
    let _ = shared.io_backend.set(workers.io_summary());

    info!(
        addr = %listener.local_addr()?,
        shards = shared.store.shard_count(),
        threads = workers.list.len(),
        io = workers.io_summary(),
        pinned = %workers.pinned_summary(),
        version = env!("CARGO_PKG_VERSION"),
        "shardcache ready to accept connections"
    );

    tokio::select! {
        () = accept_loop(&listener, &shared, &workers, &tracker) => {}
        () = shutdown => {}
        () = shared.shutdown_request.notified() => {
            info!("SHUTDOWN requested by a client");
        }
    }

    let open = shared.conns.connected_clients.load(Ordering::Relaxed);
    info!(
        open_connections = open,
        "shutting down: no longer accepting"
    );
    drop(listener);
    shared.shutting_down.store(true, Ordering::SeqCst);
    shared.clients.wake_all();
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
    workers.stop();
    drop(reclaimer);
    info!("shardcache stopped");
    Ok(())
}

/// Connections a worker serves now: read by the acceptor to pick the least loaded worker,
/// written on connect and disconnect only. On a cache line of its own.
#[repr(align(128))]
#[derive(Default)]
struct Load(AtomicUsize);

/// One worker thread: a single-threaded runtime pinned to a CPU.
struct Worker {
    handle: tokio::runtime::Handle,
    load: Arc<Load>,
    cpu: Option<usize>,
    /// Its io_uring driver's door, when its connections are served by one (else by epoll).
    inbox: Option<Inbox>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The worker threads.
struct Workers {
    list: Vec<Worker>,
}

impl Workers {
    /// Starts `n` workers. Worker `i` is pinned to the `i`-th CPU of the process's affinity
    /// mask (wrapping when there are more workers than CPUs). With `io` io_uring, each sets up
    /// its ring on its own thread; where that fails (`fail_uring` simulates it) the worker
    /// serves its clients on epoll, with one warning.
    fn start(
        n: usize,
        io: IoBackend,
        fail_uring: bool,
        recv_limit: bool,
    ) -> anyhow::Result<Workers> {
        let cpus = affinity::allowed_cpus();
        let mut list = Vec::with_capacity(n);
        let mut warned = false;
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(format!("shardcache-w{i}-blocking"))
                .build()
                .map_err(|e| anyhow::anyhow!("cannot start worker runtime {i}: {e}"))?;
            let handle = rt.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            let (ready, io_ready) = std::sync::mpsc::channel::<Result<Option<Inbox>, String>>();
            let thread = std::thread::Builder::new()
                .name(format!("shardcache-w{i}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        if !affinity::pin_current_thread(cpu) {
                            warn!(worker = i, cpu, "could not pin the worker thread");
                        }
                    }
                    let uring = match io {
                        IoBackend::Epoll => Ok(None),
                        IoBackend::IoUring | IoBackend::Auto => {
                            io_uring_install(&rt, fail_uring, recv_limit)
                        }
                    };
                    let _ = ready.send(uring);
                    let _ = rt.block_on(stopped);
                    // Connections still open past the shutdown deadline are dropped (closed)
                    // here (inline ones first, in the runtime's context); a long command still
                    // running on the blocking pool is not waited for.
                    {
                        let _context = rt.enter();
                        io_uring_drop_tasks();
                    }
                    rt.shutdown_background();
                    io_uring_uninstall();
                })
                .map_err(|e| anyhow::anyhow!("cannot start worker thread {i}: {e}"))?;
            let inbox = match io_ready.recv() {
                Ok(Ok(inbox)) => inbox,
                Ok(Err(e)) => {
                    if !warned {
                        if io == IoBackend::Auto {
                            info!(worker = i, error = %e, "io_uring is unavailable; using epoll");
                        } else {
                            warn!(worker = i, error = %e, "io_uring is unavailable; falling back to epoll");
                        }
                        warned = true;
                    }
                    None
                }
                Err(_) => None,
            };
            list.push(Worker {
                handle,
                load: Arc::default(),
                cpu,
                inbox,
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        Ok(Workers { list })
    }

    /// The worker serving the fewest connections (the first such one).
    fn least_loaded(&self) -> (usize, &Worker) {
        let mut best = 0;
        let mut best_load = usize::MAX;
        for (i, w) in self.list.iter().enumerate() {
            let l = w.load.0.load(Ordering::Relaxed);
            if l < best_load {
                best = i;
                best_load = l;
            }
        }
        (best, &self.list[best])
    }

    /// For the start-up log: which CPU each worker is pinned to.
    fn pinned_summary(&self) -> String {
        let cpus: Vec<String> = self
            .list
            .iter()
            .map(|w| w.cpu.map_or_else(|| "-".to_string(), |c| c.to_string()))
            .collect();
        cpus.join(",")
    }

    /// For the start-up log: the I/O backend the workers use.
    fn io_summary(&self) -> &'static str {
        let uring = self.list.iter().filter(|w| w.inbox.is_some()).count();
        if uring == self.list.len() {
            "io_uring"
        } else if uring == 0 {
            "epoll"
        } else {
            "io_uring+epoll"
        }
    }

    /// Stops every worker (dropping what it still runs) and waits for its thread.
    fn stop(mut self) {
        for w in &mut self.list {
            if let Some(stop) = w.stop.take() {
                let _ = stop.send(());
            }
        }
        for w in &mut self.list {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Sets up the calling worker thread's io_uring driver: its door for connections when it
/// runs, `Err` with the reason when it cannot.
#[cfg(target_os = "linux")]
fn io_uring_install(
    rt: &tokio::runtime::Runtime,
    fail: bool,
    recv_limit: bool,
) -> Result<Option<Inbox>, String> {
    crate::io::uring::install(rt, fail, recv_limit)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Drops the worker's connections served inline by its io_uring driver.
#[cfg(target_os = "linux")]
fn io_uring_drop_tasks() {
    crate::io::uring::drop_tasks();
}

#[cfg(not(target_os = "linux"))]
fn io_uring_drop_tasks() {}

#[cfg(not(target_os = "linux"))]
fn io_uring_install(
    _rt: &tokio::runtime::Runtime,
    _fail: bool,
    _recv_limit: bool,
) -> Result<Option<Inbox>, String> {
    Err("io_uring exists on Linux only".to_string())
}

#[cfg(target_os = "linux")]
fn io_uring_uninstall() {
    crate::io::uring::uninstall();
}

#[cfg(not(target_os = "linux"))]
fn io_uring_uninstall() {}

/// CPU affinity (Linux); elsewhere workers are not pinned.
mod affinity {
    /// The CPUs this process may run on, in order (empty when unknown).
    #[cfg(target_os = "linux")]
    pub fn allowed_cpus() -> Vec<usize> {
        // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Vec::new();
            }
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect()
        }
    }

    /// Pins the calling thread to `cpu`; false when the OS refuses.
    #[cfg(target_os = "linux")]
    pub fn pin_current_thread(cpu: usize) -> bool {
        // SAFETY: as above; sched_setaffinity(0) applies to the calling thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn allowed_cpus() -> Vec<usize> {
        Vec::new()
    }

    #[cfg(not(target_os = "linux"))]
    pub fn pin_current_thread(_cpu: usize) -> bool {
        false
    }
}

async fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    workers: &Workers,
    tracker: &TaskTracker,
) {
    let mut backoff = Duration::from_millis(1);
    let bound_loopback = listener
        .local_addr()
        .map(|a| a.ip().to_canonical().is_loopback())
        .unwrap_or(false);
    let conns = &shared.conns;
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
        conns.connections_total.fetch_add(1, Ordering::Relaxed);
        let clients = conns.connected_clients.fetch_add(1, Ordering::AcqRel);
        if clients >= shared.runtime.maxclients() {
            conns.connected_clients.fetch_sub(1, Ordering::AcqRel);
            conns.rejected_connections.fetch_add(1, Ordering::Relaxed);
            tracker.spawn(refuse(socket, MAXCLIENTS_REPLY));
            continue;
        }
        if shared.runtime.protected_mode()
            && !bound_loopback
            && !peer.ip().to_canonical().is_loopback()
            && !shared.auth.required()
        {
            conns.connected_clients.fetch_sub(1, Ordering::AcqRel);
            debug!(peer = %peer, "refused a non-loopback client: protected mode is on and no password is set");
            tracker.spawn(refuse(socket, PROTECTED_MODE_REPLY));
            continue;
        }
        let _ = socket.set_nodelay(true);
        // Hand the socket to a worker: it leaves this thread's event loop and joins the
        // worker's, where the connection stays until it closes.
        let socket = match socket.into_std() {
            Ok(s) => s,
            Err(e) => {
                conns.connected_clients.fetch_sub(1, Ordering::AcqRel);
                debug!(peer = %peer, error = %e, "could not hand the connection to a worker");
                continue;
            }
        };
        let (index, worker) = workers.least_loaded();
        worker.load.0.fetch_add(1, Ordering::Relaxed);
        let guard = Accepted {
            shared: Arc::clone(shared),
            load: Arc::clone(&worker.load),
        };
        let token = tracker.token();
        match &worker.inbox {
            // An io_uring worker: its driver opens the socket and serves the connection as
            // one of its inline tasks.
            Some(inbox) => inbox.send(Box::new(move || {
                if let Some(serve) = open_connection(socket, peer, guard, token, index, true) {
                    tokio::spawn(serve);
                }
            })),
            None => {
                worker.handle.spawn(async move {
                    if let Some(serve) = open_connection(socket, peer, guard, token, index, false) {
                        serve.await;
                    }
                });
            }
        }
    }
}

/// Opens an accepted socket on the calling worker thread (`worker`, on its io_uring driver if
/// `uring`) and returns the connection's future to run, unless the driver has taken the
/// connection as an inline task or the socket could not be opened. `guard` and `token` live
/// as long as the connection.
fn open_connection(
    socket: std::net::TcpStream,
    peer: SocketAddr,
    guard: Accepted,
    token: TaskTrackerToken,
    worker: usize,
    uring: bool,
) -> Option<impl Future<Output = ()> + Send + 'static> {
    let stream = match Stream::open(socket, uring) {
        Ok(stream) => stream,
        Err(e) => {
            debug!(peer = %peer, error = %e, "could not register the connection");
            return None;
        }
    };
    let slot = stream.uring();
    let conn = Connection::new(stream, peer, Arc::clone(&guard.shared), worker);
    let serve = async move {
        let _guard = guard;
        let _token = token;
        conn.run().await;
    };
    match slot {
        #[cfg(target_os = "linux")]
        Some(slot) => crate::io::uring::spawn_inline(slot, serve).err(),
        _ => Some(serve),
    }
}

/// Counts an accepted connection until its task ends, however it ends.
struct Accepted {
    shared: Arc<Shared>,
    load: Arc<Load>,
}

impl Drop for Accepted {
    fn drop(&mut self) {
        self.load.0.fetch_sub(1, Ordering::Relaxed);
        self.shared
            .conns
            .connected_clients
            .fetch_sub(1, Ordering::AcqRel);
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
