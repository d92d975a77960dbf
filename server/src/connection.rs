//! One client connection: read, decode every complete request, execute in order, flush once.
//!
//! The loop keeps two buffers. Requests are decoded from `input` as zero-copy `Bytes` slices;
//! each is executed at once and its reply appended to `output`; when `input` holds no further
//! complete request (or `output` has grown past [`FLUSH_THRESHOLD`]) the whole batch is written
//! with one `write_all`. While that write waits for a slow reader, nothing more is read, so a
//! client that pipelines without reading its replies is throttled by TCP instead of growing
//! server memory (see the hardening notes in the README).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use shardcache_protocol::{ProtocolError, RequestDecoder, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::command::{self, Flow};
use crate::state::Shared;

/// Initial read buffer capacity; it grows as large requests demand.
const READ_CHUNK: usize = 16 * 1024;
/// Once a batch's replies reach this size they are written before decoding more requests, so
/// one read buffer full of `GET big-key` cannot build gigabytes of output.
pub const FLUSH_THRESHOLD: usize = 64 * 1024;

/// Per-connection state that commands read and change (`SELECT`, `HELLO`, `CLIENT SETNAME`).
#[derive(Debug)]
pub struct ClientState {
    /// `CLIENT ID`.
    pub id: u64,
    /// Peer address, for `CLIENT LIST` and logs.
    pub peer: SocketAddr,
    /// The selected database.
    pub db: usize,
    /// Reply protocol negotiated with `HELLO`.
    pub version: Version,
    /// `CLIENT SETNAME`.
    pub name: Option<String>,
    /// Passed `AUTH` (or needed none when it connected). Until then only `no_auth` commands
    /// run while a password is set.
    pub authenticated: bool,
}

/// A connection task's resources.
pub struct Connection {
    stream: TcpStream,
    shared: Arc<Shared>,
    state: ClientState,
}

impl Connection {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) -> Connection {
        let id = shared.new_client_id();
        let authenticated = !shared.auth.required();
        Connection {
            stream,
            shared,
            state: ClientState {
                id,
                peer,
                db: 0,
                version: Version::Resp2,
                name: None,
                authenticated,
            },
        }
    }

    /// Serves the client until it quits, errs, or the server shuts down. On shutdown the batch
    /// being executed is finished and flushed before the socket closes.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let _registered = crate::state::ClientGuard::new(
            Arc::clone(&self.shared),
            self.state.id,
            crate::state::ClientInfo {
                addr: self.state.peer,
                laddr: self.stream.local_addr().ok(),
                name: None,
                db: 0,
                created: std::time::Instant::now(),
                resp: 2,
            },
        );
        let mut decoder = RequestDecoder::new(self.shared.limits);
        let mut input = BytesMut::with_capacity(READ_CHUNK);
        let mut output = BytesMut::with_capacity(READ_CHUNK);
        loop {
            // Execute every complete request already buffered.
            let flow = self
                .execute_batch(&mut decoder, &mut input, &mut output)
                .await;
            if !output.is_empty() && self.flush(&mut output).await.is_err() {
                return;
            }
            if matches!(flow, Flow::Close) {
                let _ = self.stream.shutdown().await;
                return;
            }
            if input.capacity() - input.len() < READ_CHUNK / 4 {
                input.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    let _ = self.stream.shutdown().await;
                    return;
                }
                read = self.stream.read_buf(&mut input) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        self.shared.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                },
            }
        }
    }

    /// Decodes and executes requests until the buffer holds no complete one. Flushes midway
    /// when the output passes [`FLUSH_THRESHOLD`].
    async fn execute_batch(
        &mut self,
        decoder: &mut RequestDecoder,
        input: &mut BytesMut,
        output: &mut BytesMut,
    ) -> Flow {
        loop {
            match decoder.decode(input) {
                Ok(Some(request)) => {
                    let flow = command::execute(&self.shared, &mut self.state, &request, output);
                    drop(request);
                    if matches!(flow, Flow::Close) {
                        return Flow::Close;
                    }
                    if output.len() >= FLUSH_THRESHOLD && self.flush(output).await.is_err() {
                        return Flow::Close;
                    }
                }
                Ok(None) => return Flow::Continue,
                Err(ProtocolError::Io(_)) => return Flow::Close,
                Err(e) => {
                    debug!(client = self.state.id, peer = %self.state.peer, error = %e, "protocol error");
                    e.write_reply(output);
                    return Flow::Close;
                }
            }
        }
    }

    async fn flush(&mut self, output: &mut BytesMut) -> std::io::Result<()> {
        let n = output.len();
        let r = self.stream.write_all(output).await;
        output.clear();
        self.shared
            .net_output_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}
