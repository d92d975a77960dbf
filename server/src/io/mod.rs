//! Socket I/O of a connection, behind one type for both backends (`--io-backend`).
//!
//! [`Stream`] is what [`crate::connection::Connection`] reads from and writes to: a tokio
//! `TcpStream` (epoll readiness, the default) or, on Linux with `--io-backend io_uring`, a
//! socket served by its worker thread's io_uring driver ([`uring`]). The connection logic
//! (decode all, execute all, flush once, the limits, shutdown) is the same code for both; only
//! the four operations here differ.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An empty input or output buffer whose capacity exceeds this (after one large request or
/// reply) is replaced by a small one, so an idle connection holds little memory.
pub const SHRINK_ABOVE: usize = 1024 * 1024;

#[cfg(target_os = "linux")]
pub mod uring;

/// A client socket on one of the two backends.
pub enum Stream {
    /// Readiness-based I/O through the worker's tokio runtime (epoll).
    Tcp(TcpStream),
    /// Completion-based I/O through the worker's io_uring driver.
    #[cfg(target_os = "linux")]
    Uring(uring::UringStream),
}

impl Stream {
    /// Registers an accepted socket with the calling worker's event loop: its io_uring driver
    /// when `uring` is true (the worker has one), else tokio's.
    ///
    /// # Errors
    /// When the socket cannot be registered.
    pub fn open(socket: std::net::TcpStream, uring: bool) -> io::Result<Stream> {
        #[cfg(target_os = "linux")]
        if uring {
            return uring::UringStream::open(socket).map(Stream::Uring);
        }
        let _ = uring;
        TcpStream::from_std(socket).map(Stream::Tcp)
    }

    /// Reads what has arrived (waiting for at least one byte) and appends it to `buf`.
    /// `Ok(0)` is the end of the stream.
    ///
    /// # Errors
    /// The socket's error.
    pub async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_buf(buf).await,
            #[cfg(target_os = "linux")]
            Stream::Uring(s) => s.read_buf(buf).await,
        }
    }

    /// Writes all of `buf` (the caller clears it after). On io_uring the write is queued and
    /// completes behind the caller (`buf` comes back empty); the next write or
    /// [`Stream::shutdown`] waits for it, and reports its error. If the future is dropped
    /// before it completes, `buf` may be left empty: the connection is being abandoned anyway.
    ///
    /// # Errors
    /// The socket's error.
    pub async fn write_buf(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(buf).await,
            #[cfg(target_os = "linux")]
            Stream::Uring(s) => s.write_buf(buf).await,
        }
    }

    /// Writes all of `data` (a copy on io_uring, which needs a buffer it owns: for the rare
    /// writes outside a batch, e.g. the `MONITOR` feed).
    ///
    /// # Errors
    /// The socket's error.
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(data).await,
            #[cfg(target_os = "linux")]
            Stream::Uring(s) => {
                let mut buf = BytesMut::from(data);
                s.write_buf(&mut buf).await
            }
        }
    }

    /// Shuts the socket for writing (the client sees the end of the stream once it has read
    /// every reply already written).
    ///
    /// # Errors
    /// The socket's error.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown().await,
            #[cfg(target_os = "linux")]
            Stream::Uring(s) => s.shutdown().await,
        }
    }

    /// The socket's place in the worker's io_uring driver, when it is served by one.
    #[cfg(target_os = "linux")]
    pub fn uring(&self) -> Option<uring::SlotId> {
        match self {
            Stream::Uring(s) => Some(s.id()),
            Stream::Tcp(_) => None,
        }
    }

    /// Elsewhere there is no io_uring driver.
    #[cfg(not(target_os = "linux"))]
    pub fn uring(&self) -> Option<std::convert::Infallible> {
        None
    }

    /// The local address of the socket, for `CLIENT LIST`'s `laddr`.
    ///
    /// # Errors
    /// When the OS cannot report it.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr(),
            #[cfg(target_os = "linux")]
            Stream::Uring(s) => s.local_addr(),
        }
    }
}

/// A worker's io_uring driver's door for new connections ([`uring::Inbox`]); there is none
/// off Linux.
#[cfg(target_os = "linux")]
pub use uring::Inbox;

/// There is no io_uring driver off Linux.
#[cfg(not(target_os = "linux"))]
#[derive(Clone)]
pub enum Inbox {}

#[cfg(not(target_os = "linux"))]
impl Inbox {
    /// Unreachable: no value exists.
    pub fn send(&self, _job: Box<dyn FnOnce() + Send>) {
        match *self {}
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            #[cfg(target_os = "linux")]
            Stream::Uring(s) => s.as_raw_fd(),
        }
    }
}
