//! The one error type of the client crate.

use shardcache_protocol::ProtocolError;

/// Everything that can go wrong talking to a RESP server.
///
/// The variants are kept apart so callers can tell a server that said "no"
/// ([`Error::Server`]: the connection is still fine) from a broken connection
/// ([`Error::Io`], [`Error::Closed`], [`Error::Timeout`]: reconnect) from a server
/// that spoke something that is not RESP ([`Error::Protocol`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error reply (`-ERR ...`, `-WRONGTYPE ...`).
    /// The text is the reply without the leading `-`. The connection stays usable.
    #[error("server error: {0}")]
    Server(String),
    /// The socket failed (connect refused, reset, ...). The connection is unusable.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The server sent bytes that are not valid RESP. The connection is unusable.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// Connecting or a request took longer than its configured timeout. The
    /// connection is unusable, since a late reply could still arrive on it.
    #[error("timed out")]
    Timeout,
    /// The server closed the connection, or an earlier failure left this
    /// connection unusable.
    #[error("connection closed")]
    Closed,
    /// The server sent a well-formed reply of a type the typed call did not expect
    /// (e.g. an array where `GET` should return a bulk string).
    #[error("unexpected reply: {0}")]
    UnexpectedReply(String),
}

impl Error {
    /// True when the error means the connection is gone and a new one is needed
    /// (I/O, protocol, timeout, closed); false for server error replies and
    /// unexpected reply types, after which the connection is still in sync.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Error::Io(_) | Error::Protocol(_) | Error::Timeout | Error::Closed
        )
    }
}

/// `Result` with the client's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
