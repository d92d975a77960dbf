//! A single RESP connection: buffered writes, incremental frame decoding.

use bytes::BytesMut;
use shardcache_protocol::{Frame, FrameDecoder, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use crate::error::{Error, Result};

/// Initial capacity of the read buffer; it grows as large replies need.
const READ_BUF_CAPACITY: usize = 16 * 1024;

/// A TCP connection speaking RESP, with no knowledge of commands.
///
/// Reads go into one reusable buffer and are decoded incrementally; writes go out
/// in one `write_all` per batch, so a pipeline is one syscall.
pub(crate) struct Connection {
    /// The socket (Nagle disabled: we batch ourselves).
    stream: TcpStream,
    /// Bytes read but not yet decoded into frames.
    rbuf: BytesMut,
    /// The RESP decoder; it keeps state between calls.
    decoder: FrameDecoder,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.stream.peer_addr().ok())
            .field("buffered", &self.rbuf.len())
            .finish()
    }
}

impl Connection {
    /// Wraps a connected socket.
    pub(crate) fn new(stream: TcpStream) -> Self {
        // Failing to disable Nagle only costs latency; never fatal.
        let _ = stream.set_nodelay(true);
        Connection {
            stream,
            rbuf: BytesMut::with_capacity(READ_BUF_CAPACITY),
            decoder: FrameDecoder::new(Limits::default()),
        }
    }

    /// Writes all of `bytes` (already RESP-encoded) in one go.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Reads the next top-level reply, skipping RESP3 out-of-band push frames
    /// (which are not replies to a request).
    ///
    /// # Errors
    /// [`Error::Closed`] on EOF, [`Error::Io`] on socket errors,
    /// [`Error::Protocol`] on malformed input.
    pub(crate) async fn read_frame(&mut self) -> Result<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.rbuf)? {
                if matches!(frame, Frame::Push(_)) {
                    continue;
                }
                return Ok(frame);
            }
            if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                self.rbuf.reserve(READ_BUF_CAPACITY);
            }
            let n = self.stream.read_buf(&mut self.rbuf).await?;
            if n == 0 {
                return Err(Error::Closed);
            }
        }
    }
}
