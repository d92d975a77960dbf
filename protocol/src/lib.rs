//! RESP2/RESP3 for shardcache: decoding client requests, writing replies, and the client-side
//! counterparts (request encoding, reply decoding).
//!
//! This crate knows RESP and nothing else: no sockets, no runtime, no storage, no command
//! names. The server feeds its read buffer to [`RequestDecoder`] (a `tokio_util` [`Decoder`]
//! producing zero-copy [`Request`]s) and writes replies with the allocation-free functions in
//! [`reply`]; clients use [`ClientCodec`] ([`write_request`] + [`FrameDecoder`] into [`Frame`]s).
//!
//! Request decoding follows Redis 7's `networking.c` byte for byte, including its error texts
//! ([`ProtocolError::redis_message`]), so clients see the same behaviour as with Redis. Every
//! size a peer declares is checked against [`Limits`] before memory is reserved.
//!
//! [`Decoder`]: tokio_util::codec::Decoder

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod encode;
mod error;
mod frame;
mod inline;
mod limits;
mod number;
pub mod reply;
mod request;

pub use encode::{write_request, ClientCodec, RequestEncoder};
pub use error::ProtocolError;
pub use frame::{Frame, FrameDecoder, MAX_FRAME_DEPTH};
pub use limits::Limits;
pub use number::parse_i64;
pub use request::{Request, RequestDecoder};

/// The protocol version a connection speaks, chosen by the client with `HELLO 2|3`. Reply
/// writers take it because RESP3-only types (null, map, set, double, boolean, verbatim) have a
/// RESP2 fallback that Redis uses for RESP2 connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Version {
    /// RESP2, what every connection starts with.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Version {
    /// The version for a `HELLO` protocol number (`2` or `3`), `None` for anything else (Redis
    /// replies `NOPROTO` then).
    pub fn from_protover(n: i64) -> Option<Version> {
        match n {
            2 => Some(Version::Resp2),
            3 => Some(Version::Resp3),
            _ => None,
        }
    }
}
