//! What a handler runs with ([`Ctx`]) and returns ([`CmdResult`], [`CmdError`], [`Flow`]).

use std::borrow::Cow;

use bytes::BytesMut;
use shardcache_protocol::{reply, Version};

use crate::client::ClientState;
use crate::state::Shared;

/// What the connection does after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving.
    Continue,
    /// Flush the replies so far and close (`QUIT`, protocol error).
    Close,
}

/// A command failed; the reply is an error with this text (which starts with the error code,
/// e.g. `ERR`, `WRONGTYPE`, `OOM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError(pub Cow<'static, str>);

impl CmdError {
    /// Redis's `-ERR syntax error`.
    pub const SYNTAX: CmdError = CmdError(Cow::Borrowed("ERR syntax error"));
    /// Redis's reply to a malformed or out-of-range integer argument.
    pub const NOT_INTEGER: CmdError =
        CmdError(Cow::Borrowed("ERR value is not an integer or out of range"));
    /// Redis's reply when a write would exceed `maxmemory` under `noeviction`.
    pub const OOM: CmdError = CmdError(Cow::Borrowed(
        "OOM command not allowed when used memory > 'maxmemory'.",
    ));

    /// An error with a computed message.
    pub fn msg(s: impl Into<String>) -> CmdError {
        CmdError(Cow::Owned(s.into()))
    }
}

/// What a handler returns: `Ok` once it has written its reply, or the error to send.
pub type CmdResult = Result<(), CmdError>;

/// Everything a handler may touch.
pub struct Ctx<'a> {
    /// Server-wide state.
    pub shared: &'a Shared,
    /// This connection's state.
    pub client: &'a mut ClientState,
    /// The reply buffer of the current batch.
    pub out: &'a mut BytesMut,
    /// Set by `QUIT`.
    pub flow: Flow,
}

impl Ctx<'_> {
    /// The connection's reply protocol.
    pub fn version(&self) -> Version {
        self.client.version
    }
    /// Writes `+OK`.
    pub fn ok(&mut self) -> CmdResult {
        reply::ok(self.out);
        Ok(())
    }
    /// Writes a bulk string.
    pub fn bulk(&mut self, b: &[u8]) -> CmdResult {
        reply::bulk(self.out, b);
        Ok(())
    }
    /// Writes an integer.
    pub fn int(&mut self, n: i64) -> CmdResult {
        reply::integer(self.out, n);
        Ok(())
    }
    /// Writes the null bulk string (`$-1` / RESP3 `_`).
    pub fn null(&mut self) -> CmdResult {
        reply::null(self.out, self.client.version);
        Ok(())
    }
    /// For replies assembled from many values (`MGET`): whether a reply of `bytes` would
    /// exceed `client-output-buffer-limit`. If so the client is to be disconnected, as Redis
    /// does, *before* the reply is built, so one request cannot make the server copy an
    /// unbounded amount of data (e.g. `MGET` of one 512 MB key a thousand times).
    pub fn reply_too_large(&mut self, bytes: u64) -> bool {
        let limit = self.shared.runtime.output_buffer_limit();
        if limit == 0 || bytes <= limit {
            return false;
        }
        tracing::warn!(
            client = self.client.id,
            peer = %self.client.peer,
            reply_bytes = bytes,
            limit,
            "closing client whose reply would exceed client-output-buffer-limit"
        );
        self.flow = Flow::Close;
        true
    }

    /// Writes a bulk string, or null for `None`.
    pub fn opt_bulk(&mut self, b: Option<&[u8]>) -> CmdResult {
        match b {
            Some(b) => self.bulk(b),
            None => self.null(),
        }
    }
}
