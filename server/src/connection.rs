//! One client connection: read, decode every complete request, execute in order, flush once.
//!
//! The loop keeps two buffers. Requests are decoded from `input` as zero-copy `Bytes` slices;
//! each is executed at once and its reply appended to `output`; when `input` holds no further
//! complete request (or `output` has grown past [`FLUSH_THRESHOLD`]) the whole batch is written
//! with one `write_all`. While that write waits for a slow reader, nothing more is read, so a
//! client that pipelines without reading its replies is throttled by TCP instead of growing
//! server memory (see "Security and limits" in the README).
//!
//! Pipelined batches are decoded a few requests ahead ([`LOOKAHEAD`]) and each decoded
//! request's key is prefetched ([`shardcache_storage::Store::prefetch`]) before the first of
//! them runs, so the batch's cache misses on the store overlap instead of coming one per
//! request. A lone request (nothing more buffered) is executed at once, with no prefetch.
//!
//! Statistics: commands are counted in the worker's own [`WorkerStats`] (no cache line shared
//! with another thread is written per request). With `--lock-stats` on, a batch's commands
//! are timed together, two reads of the CPU's time-stamp counter per batch (no system clock
//! read: see [`latency::ticks`]), and each is recorded with an equal share;
//! a command run off the event loop is timed alone.
//!
//! Long commands (`KEYS`, `FLUSHALL`, `INFO`, a big `SCAN` page: see
//! [`command::Dispatched::offload`]) run on the worker runtime's blocking pool while the
//! connection waits, so the worker's other clients are not held up.
//!
//! Shutdown costs nothing per request: the connection reads [`Shared::shutting_down`] once per
//! batch, and a connection idle in a read is woken by the server shutting its socket for
//! reading ([`crate::state::ClientRegistry::wake_all`]).
//!
//! Limits enforced here: `client-query-buffer-limit` (unparsed input held for the client),
//! `client-output-buffer-limit` (one command's reply; a single bulk string, bounded by
//! `proto-max-bulk-len`, is exempt), and `timeout` (a read that brings nothing, or a write the
//! client does not drain, for that long closes the connection). Buffers grown past
//! [`SHRINK_ABOVE`] by one large request or reply are given back once empty.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use shardcache_protocol::{ProtocolError, Request, RequestDecoder};
use tracing::{debug, warn};

use crate::client::ClientState;
use crate::command::{self, Dispatched, Flow};
use crate::io::Stream;
use crate::latency;
use crate::state::Shared;
use crate::stats::WorkerStats;

/// Initial read buffer capacity; it grows as large requests demand.
const READ_CHUNK: usize = 16 * 1024;
/// Once a batch's replies reach this size they are written before decoding more requests, so
/// one read buffer full of `GET big-key` cannot build gigabytes of output.
pub const FLUSH_THRESHOLD: usize = 64 * 1024;
pub use crate::io::SHRINK_ABOVE;
/// Requests of a pipelined batch decoded ahead of execution, whose keys are prefetched.
pub const LOOKAHEAD: usize = 16;

/// Why a connection read ended.
enum ReadOutcome {
    /// Bytes arrived.
    Data(usize),
    /// The peer closed, or the socket failed.
    Closed,
    /// Nothing arrived within `timeout`.
    Idle,
}

/// A connection task's resources.
pub struct Connection {
    /// The socket, on the worker's I/O backend (epoll or io_uring).
    stream: Stream,
    shared: Arc<Shared>,
    state: ClientState,
    /// The worker thread serving this connection: whose statistics it writes.
    worker: usize,
    /// Commands of the batch run being timed, run-length encoded: (index into the command
    /// table, consecutive executions).
    timed: Vec<(u16, u32)>,
}

/// The requests of a batch, decoded in place into slots reused from batch to batch (a
/// `Request` is a few hundred bytes with its inline arguments: decoded where it stays, it is
/// never moved), up to [`LOOKAHEAD`] ahead of execution so their keys can be prefetched.
#[derive(Default)]
struct Lookahead {
    /// Decoded requests in `..len`, handed out in order; a slot's arguments are dropped when
    /// the request after it is asked for. Grows to [`LOOKAHEAD`] slots on the first pipelined
    /// batch; a connection that never pipelines has one.
    slots: Vec<Request>,
    /// Slots handed out: `slots[next - 1]` is the request running.
    next: usize,
    /// Slots decoded.
    len: usize,
    /// The decoding error that ended the look-ahead, reported once the requests before it ran.
    err: Option<ProtocolError>,
}

/// The run of commands being timed together: its start (in [`latency::ticks`]) and its
/// commands, run-length encoded.
struct Run {
    timing: bool,
    started: Option<u64>,
    /// The command of the run-length being counted, and its count so far (0: none yet);
    /// finished run-lengths are in `Connection::timed`.
    current: u16,
    count: u32,
}

impl Run {
    fn new(timing: bool) -> Run {
        Run {
            timing,
            started: None,
            current: 0,
            count: 0,
        }
    }

    /// Starts the clock at the run's first command; counts `index` in the run (a pipeline of
    /// one command costs a comparison and an increment each).
    #[inline]
    fn command(&mut self, timed: &mut Vec<(u16, u32)>, index: usize) {
        if !self.timing {
            return;
        }
        let index = index as u16;
        if self.count != 0 && self.current == index {
            self.count += 1;
            return;
        }
        if self.started.is_none() {
            self.started = Some(latency::ticks());
        }
        if self.count != 0 {
            timed.push((self.current, self.count));
        }
        self.current = index;
        self.count = 1;
    }

    /// Ends the run: its time is shared evenly by its commands.
    fn end(&mut self, stats: &WorkerStats, timed: &mut Vec<(u16, u32)>) {
        if let Some(t0) = self.started.take() {
            if self.count != 0 {
                timed.push((self.current, self.count));
            }
            stats.durations(
                timed,
                latency::ticks_to_ns(latency::ticks().saturating_sub(t0)),
            );
        }
        self.count = 0;
        timed.clear();
    }
}

impl Lookahead {
    /// The next request of the batch, after dropping the arguments of the one that ran: the
    /// oldest decoded ahead, else a newly decoded one. When a new one is decoded and more
    /// input is buffered (a pipelined batch), up to [`LOOKAHEAD`] − 1 more are decoded and
    /// every one's key (its first argument, for the client's current database `db`) is
    /// prefetched before the first is returned. Prefetching is only a hint: a request that is
    /// not keyed, or a `SELECT` in the batch, costs a useless prefetch and changes nothing.
    fn next_request(
        &mut self,
        shared: &Shared,
        db: usize,
        decoder: &mut RequestDecoder,
        input: &mut BytesMut,
    ) -> Result<Option<&Request>, ProtocolError> {
        if let Some(ran) = self.next.checked_sub(1).and_then(|i| self.slots.get_mut(i)) {
            ran.clear();
        }
        if self.next == self.len {
            self.next = 0;
            self.len = 0;
            if let Some(e) = self.err.take() {
                return Err(e);
            }
            self.decode(decoder, input)?;
            if self.len > 1 {
                for r in &self.slots[..self.len] {
                    if let Some(key) = r.args().get(1) {
                        shared.store.prefetch(db, key);
                    }
                }
            }
        }
        let request = self.slots[..self.len].get(self.next);
        if request.is_some() {
            self.next += 1;
        }
        Ok(request)
    }

    /// Decodes into the emptied slots: one request, and while more input is buffered, up to
    /// [`LOOKAHEAD`] − 1 more. An error on the first is returned at once; an error after it
    /// ends the look-ahead and is kept for after the requests before it.
    fn decode(
        &mut self,
        decoder: &mut RequestDecoder,
        input: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        while self.len < LOOKAHEAD && (self.len == 0 || !input.is_empty()) {
            if self.slots.len() == self.len {
                // One slot for a connection that never pipelines, all of them at its first
                // pipelined batch.
                self.slots.reserve_exact(if self.len == 0 {
                    1
                } else {
                    LOOKAHEAD - self.len
                });
                self.slots.push(Request::default());
            }
            let slot = &mut self.slots[self.len];
            match decoder.decode_into(input, slot) {
                Ok(true) => self.len += 1,
                Ok(false) => break,
                Err(e) if self.len == 0 => return Err(e),
                Err(e) => {
                    self.err = Some(e);
                    break;
                }
            }
        }
        Ok(())
    }

    /// Takes the running request out of its slot (for a command run on the blocking pool).
    fn take_running(&mut self) -> Request {
        self.next
            .checked_sub(1)
            .and_then(|i| self.slots.get_mut(i))
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

impl Connection {
    /// Wraps an accepted socket, served by worker thread `worker`.
    pub fn new(stream: Stream, peer: SocketAddr, shared: Arc<Shared>, worker: usize) -> Connection {
        let id = shared.new_client_id();
        let state = ClientState::new(id, peer, &shared.auth);
        Connection {
            stream,
            shared,
            state,
            worker,
            timed: Vec::new(),
        }
    }

    /// Serves the client until it quits, errs, or the server shuts down. On shutdown the batch
    /// being executed is finished and flushed before the socket closes.
    pub async fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        let stats = shared.stats.worker(self.worker);
        let _registered = crate::state::ClientGuard::new(
            Arc::clone(&shared),
            self.state.id,
            crate::state::ClientInfo {
                addr: self.state.peer,
                laddr: self.stream.local_addr().ok(),
                name: None,
                db: 0,
                created: Instant::now(),
                resp: 2,
                no_evict: false,
                no_touch: false,
                lib_name: None,
                lib_ver: None,
            },
            Some(self.stream.as_raw_fd()),
        );
        let mut decoder = RequestDecoder::new(shared.limits);
        let mut ahead = Lookahead::default();
        let mut input = BytesMut::with_capacity(READ_CHUNK);
        let mut output = BytesMut::with_capacity(READ_CHUNK);
        let query_limit =
            usize::try_from(shared.runtime.query_buffer_limit()).unwrap_or(usize::MAX);
        let mut monitor: Option<crate::monitor::MonitorFeed> = None;
        loop {
            // Execute every complete request already buffered.
            let flow = self
                .execute_batch(
                    &shared,
                    stats,
                    &mut decoder,
                    &mut ahead,
                    &mut input,
                    &mut output,
                )
                .await;
            if !output.is_empty() && self.flush(stats, &mut output).await.is_err() {
                return;
            }
            // One load per batch of a flag written once: registered before this check, so a
            // shutdown that began after it also shuts our socket for reading.
            if matches!(flow, Flow::Close) || shared.shutting_down.load(Ordering::Relaxed) {
                let _ = self.stream.shutdown().await;
                return;
            }
            if input.is_empty() && input.capacity() > SHRINK_ABOVE {
                input = BytesMut::with_capacity(READ_CHUNK);
            } else if input.capacity() - input.len() < READ_CHUNK / 4 {
                input.reserve(READ_CHUNK);
            }
            if monitor.is_none() {
                monitor = self.state.monitor.take();
            }
            let outcome = match monitor.as_mut() {
                None => self.read(&mut input).await,
                Some(feed) => {
                    // `MONITOR`: forward the stream while still reading requests (QUIT,
                    // RESET, anything).
                    tokio::select! {
                        r = self.read(&mut input) => r,
                        line = feed.rx.recv() => {
                            let Some(line) = line else {
                                // Dropped for falling behind its output buffer limit.
                                let _ = self.stream.shutdown().await;
                                return;
                            };
                            feed.pending.fetch_sub(line.len(), Ordering::Relaxed);
                            if self.stream.write_all(&line).await.is_err() {
                                return;
                            }
                            stats.net_output(line.len());
                            continue;
                        }
                    }
                }
            };
            match outcome {
                ReadOutcome::Closed => return,
                ReadOutcome::Idle => {
                    debug!(client = self.state.id, peer = %self.state.peer, timeout_s = shared.runtime.timeout_s(), "closing idle client");
                    let _ = self.stream.shutdown().await;
                    return;
                }
                ReadOutcome::Data(n) => {
                    stats.net_input(n);
                    if input.len() > query_limit {
                        warn!(
                            client = self.state.id,
                            peer = %self.state.peer,
                            buffered = input.len(),
                            limit = query_limit,
                            "closing client that reached client-query-buffer-limit"
                        );
                        return;
                    }
                }
            }
        }
    }

    /// The idle timeout, when `timeout` is not 0.
    fn idle_timeout(&self) -> Option<Duration> {
        {
            let t = self.shared.runtime.timeout_s();
            (t > 0).then(|| Duration::from_secs(t))
        }
    }

    /// Reads more input, giving up after `timeout` seconds of silence when one is set.
    async fn read(&mut self, input: &mut BytesMut) -> ReadOutcome {
        let idle = self.idle_timeout();
        let read = self.stream.read_buf(input);
        let r = match idle {
            Some(t) => match tokio::time::timeout(t, read).await {
                Ok(r) => r,
                Err(_) => return ReadOutcome::Idle,
            },
            None => read.await,
        };
        match r {
            Ok(0) | Err(_) => ReadOutcome::Closed,
            Ok(n) => ReadOutcome::Data(n),
        }
    }

    /// Decodes and executes requests until the buffer holds no complete one. Flushes midway
    /// when the output passes [`FLUSH_THRESHOLD`].
    async fn execute_batch(
        &mut self,
        shared: &Arc<Shared>,
        stats: &WorkerStats,
        decoder: &mut RequestDecoder,
        ahead: &mut Lookahead,
        input: &mut BytesMut,
        output: &mut BytesMut,
    ) -> Flow {
        let mut run = Run::new(shared.config.lock_stats);
        // The end of the last inline command timed for SLOWLOG; reset across waits.
        let mut boundary: Option<u64> = None;
        loop {
            match ahead.next_request(shared, self.state.db, decoder, input) {
                Ok(Some(request)) => {
                    let before = output.len();
                    let args = request.args();
                    if shared.pause.is_active() {
                        // `CLIENT PAUSE`: the command waits (replies stay in order).
                        if let Some(write) = command::pause_class(shared, args) {
                            run.end(stats, &mut self.timed);
                            while let Some(d) = shared.pause.wait_for(write) {
                                tokio::time::sleep(d.min(Duration::from_millis(20))).await;
                                boundary = None;
                            }
                        }
                    }
                    let intercepted = if self.state.multi.is_some() {
                        run.end(stats, &mut self.timed);
                        boundary = None;
                        command::transaction::intercept(
                            shared,
                            stats,
                            &mut self.state,
                            args,
                            output,
                        )
                    } else {
                        None
                    };
                    let flow = match intercepted {
                        Some(flow) => flow,
                        None => match command::dispatch(shared, stats, &self.state, args, output) {
                            None => Flow::Continue,
                            Some(d) if d.offload(args) => {
                                run.end(stats, &mut self.timed);
                                boundary = None;
                                let request = ahead.take_running();
                                self.run_offloaded(shared, stats, d, request, output).await
                            }
                            Some(d) => {
                                run.command(&mut self.timed, d.index);
                                // SLOWLOG / latency monitor: one clock read per command, at
                                // its end; it started where the previous one ended (its
                                // decode included), or at the batch's first command.
                                let t0 = shared
                                    .times_commands()
                                    .then(|| *boundary.get_or_insert_with(latency::ticks));
                                let (flow, failed) = command::run(
                                    shared,
                                    &mut self.state,
                                    d.index,
                                    d.holder,
                                    args,
                                    output,
                                );
                                if let Some(t0) = t0 {
                                    let now = latency::ticks();
                                    boundary = Some(now);
                                    let ns = latency::ticks_to_ns(now.saturating_sub(t0));
                                    shared.command_took(d.index, ns, args, &self.state);
                                }
                                stats.call(d.index, failed);
                                flow
                            }
                        },
                    };
                    if output.len() - before > self.output_limit()
                        && output.get(before) != Some(&b'$')
                    {
                        warn!(
                            client = self.state.id,
                            peer = %self.state.peer,
                            reply_bytes = output.len() - before,
                            limit = self.output_limit(),
                            "closing client whose reply exceeds client-output-buffer-limit"
                        );
                        output.truncate(before);
                        run.end(stats, &mut self.timed);
                        return Flow::Close;
                    }
                    if matches!(flow, Flow::Close) {
                        run.end(stats, &mut self.timed);
                        return Flow::Close;
                    }
                    if output.len() >= FLUSH_THRESHOLD {
                        run.end(stats, &mut self.timed);
                        boundary = None;
                        if self.flush(stats, output).await.is_err() {
                            return Flow::Close;
                        }
                    }
                }
                Ok(None) => {
                    run.end(stats, &mut self.timed);
                    return Flow::Continue;
                }
                Err(ProtocolError::Io(_)) => {
                    run.end(stats, &mut self.timed);
                    return Flow::Close;
                }
                Err(e) => {
                    run.end(stats, &mut self.timed);
                    debug!(client = self.state.id, peer = %self.state.peer, error = %e, "protocol error");
                    e.write_reply(output);
                    return Flow::Close;
                }
            }
        }
    }

    /// Runs a long command on the worker runtime's blocking pool, so the worker's other
    /// clients keep being served; this connection waits for it (replies stay in order).
    async fn run_offloaded(
        &mut self,
        shared: &Arc<Shared>,
        stats: &WorkerStats,
        d: Dispatched,
        request: Request,
        output: &mut BytesMut,
    ) -> Flow {
        let job_shared = Arc::clone(shared);
        let mut client = self.state.clone();
        let mut out = std::mem::take(output);
        let timing = shared.config.lock_stats;
        let job = tokio::task::spawn_blocking(move || {
            // Long commands are always timed (for SLOWLOG too); the clock is nothing next to
            // their cost.
            let t0 = Instant::now();
            let (flow, failed) = command::run(
                &job_shared,
                &mut client,
                d.index,
                d.holder,
                request.args(),
                &mut out,
            );
            let ns = t0.elapsed().as_nanos() as u64;
            job_shared.command_took(d.index, ns, request.args(), &client);
            (client, out, flow, failed, timing.then_some(ns))
        });
        match job.await {
            Ok((client, out, flow, failed, ns)) => {
                let multi = self.state.multi.take();
                let watching = self.state.watching.take();
                self.state = client;
                self.state.multi = multi;
                self.state.watching = watching;
                *output = out;
                stats.call(d.index, failed);
                if let Some(ns) = ns {
                    stats.duration(d.index, ns);
                }
                flow
            }
            Err(e) => {
                warn!(client = self.state.id, error = %e, "command failed; closing the client");
                Flow::Close
            }
        }
    }

    /// `client-output-buffer-limit` in bytes.
    fn output_limit(&self) -> usize {
        match self.shared.runtime.output_buffer_limit() {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        }
    }

    /// Writes the batch. With `timeout` set, a client that does not drain its replies for that
    /// long is disconnected (the write fails with `TimedOut`).
    async fn flush(&mut self, stats: &WorkerStats, output: &mut BytesMut) -> std::io::Result<()> {
        let n = output.len();
        let idle = self.idle_timeout();
        let write = self.stream.write_buf(output);
        let r = match idle {
            Some(t) => tokio::time::timeout(t, write)
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
            None => write.await,
        };
        if output.capacity() > SHRINK_ABOVE {
            *output = BytesMut::with_capacity(READ_CHUNK);
        } else {
            output.clear();
        }
        stats.net_output(n);
        r
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use shardcache_config::Config;
    use shardcache_protocol::{write_request, Limits};

    use super::*;

    fn shared() -> Shared {
        let config = Config::parse_from(["shardcache", "--shards", "4", "--metrics-addr", ""]);
        Shared::new(config, 0).expect("shared state")
    }

    /// `n` pipelined `GET kI`.
    fn gets(n: usize) -> BytesMut {
        let mut input = BytesMut::new();
        for i in 0..n {
            write_request(&mut input, &[b"GET".to_vec(), format!("k{i}").into_bytes()]);
        }
        input
    }

    /// The keys of the requests `next_request` hands out until the batch ends, and how it
    /// ended.
    fn drain(
        shared: &Shared,
        ahead: &mut Lookahead,
        decoder: &mut RequestDecoder,
        input: &mut BytesMut,
    ) -> (Vec<String>, Result<(), ProtocolError>) {
        let mut keys = Vec::new();
        loop {
            match ahead.next_request(shared, 0, decoder, input) {
                Ok(Some(r)) => keys.push(String::from_utf8_lossy(&r.args()[1]).into_owned()),
                Ok(None) => return (keys, Ok(())),
                Err(e) => return (keys, Err(e)),
            }
        }
    }

    #[test]
    fn a_pipelined_batch_is_handed_out_in_order_and_its_buffer_released() {
        let shared = shared();
        let mut decoder = RequestDecoder::new(Limits::default());
        let mut ahead = Lookahead::default();
        let mut input = gets(LOOKAHEAD + 4);
        let capacity = input.capacity();
        let (keys, end) = drain(&shared, &mut ahead, &mut decoder, &mut input);
        let want: Vec<String> = (0..LOOKAHEAD + 4).map(|i| format!("k{i}")).collect();
        assert_eq!(keys, want);
        assert!(end.is_ok());
        assert_eq!(ahead.slots.len(), LOOKAHEAD);
        assert!(ahead.slots.iter().all(Request::is_empty));
        // No argument still refers to the read buffer: it is reused in place.
        assert!(input.is_empty());
        assert!(input.try_reclaim(capacity));
    }

    #[test]
    fn a_lone_request_uses_one_slot() {
        let shared = shared();
        let mut decoder = RequestDecoder::new(Limits::default());
        let mut ahead = Lookahead::default();
        let mut input = gets(1);
        let (keys, end) = drain(&shared, &mut ahead, &mut decoder, &mut input);
        assert_eq!(keys, ["k0"]);
        assert!(end.is_ok());
        assert_eq!(ahead.slots.len(), 1);
    }

    #[test]
    fn a_decoding_error_comes_after_the_requests_before_it() {
        let shared = shared();
        for before in [0, 3, LOOKAHEAD - 1, LOOKAHEAD, LOOKAHEAD + 2] {
            let mut decoder = RequestDecoder::new(Limits::default());
            let mut ahead = Lookahead::default();
            let mut input = gets(before);
            input.extend_from_slice(b"*1\r\n+OK\r\n");
            let (keys, end) = drain(&shared, &mut ahead, &mut decoder, &mut input);
            assert_eq!(keys.len(), before);
            assert!(
                matches!(end, Err(ProtocolError::ExpectedDollar(b'+'))),
                "{before}: {end:?}"
            );
        }
    }

    #[test]
    fn the_running_request_can_be_taken() {
        let shared = shared();
        let mut decoder = RequestDecoder::new(Limits::default());
        let mut ahead = Lookahead::default();
        let mut input = gets(3);
        let first = ahead
            .next_request(&shared, 0, &mut decoder, &mut input)
            .expect("a complete request")
            .cloned();
        assert_eq!(Some(ahead.take_running()), first);
        let (keys, end) = drain(&shared, &mut ahead, &mut decoder, &mut input);
        assert_eq!(keys, ["k1", "k2"]);
        assert!(end.is_ok());
    }
}
