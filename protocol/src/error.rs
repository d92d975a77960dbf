//! The protocol error type.
//!
//! Every variant the request decoder can produce corresponds to one error Redis 7 sends before
//! closing a connection (`networking.c`), so that clients written against Redis see the same
//! bytes from us.

/// Everything that can go wrong while decoding RESP.
///
/// The request-side variants carry Redis's exact texts: `Display` and
/// [`redis_message`](ProtocolError::redis_message) produce the error line Redis sends (without the
/// leading `-` and trailing CRLF). After any of them the server should send the error and close
/// the connection, as Redis does: the stream position is lost, so nothing after it can be trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// `*<n>` where `n` is not a number (Redis `string2ll` rules), exceeds `INT_MAX`, or exceeds
    /// [`Limits::max_multibulk_len`](crate::Limits::max_multibulk_len).
    #[error("ERR Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// `$<len>` where `len` is not a number, is negative, or exceeds
    /// [`Limits::max_bulk_len`](crate::Limits::max_bulk_len).
    #[error("ERR Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// An element of a request array did not start with `$`. Holds the offending byte; Redis
    /// prints it raw with `%c` (CR and LF become spaces).
    #[error("ERR Protocol error: expected '$', got '{}'", char_for_message(*.0))]
    ExpectedDollar(u8),
    /// An inline request has an unterminated quote, or a closing quote not followed by a space.
    #[error("ERR Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// An inline request line is longer than
    /// [`Limits::max_inline_len`](crate::Limits::max_inline_len).
    #[error("ERR Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// The `*<n>` line of a request is longer than `max_inline_len`.
    #[error("ERR Protocol error: too big mbulk count string")]
    TooBigMbulkCountString,
    /// A `$<len>` line of a request is longer than `max_inline_len`.
    #[error("ERR Protocol error: too big bulk count string")]
    TooBigBulkCountString,
    /// A server reply (decoded by [`FrameDecoder`](crate::FrameDecoder)) started with a byte
    /// that is not a RESP2/RESP3 type marker.
    #[error("ERR Protocol error: invalid reply type byte '{}'", char_for_message(*.0))]
    InvalidReplyType(u8),
    /// A server reply is malformed in some other way; the text says how. Redis has no
    /// equivalent (it never parses replies), so these texts are ours.
    #[error("ERR Protocol error: {0}")]
    InvalidReply(&'static str),
    /// An I/O error from the transport, passed through by `tokio_util::codec::Framed`.
    #[error("ERR I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl ProtocolError {
    /// The exact error line Redis sends for this error, without the leading `-` and trailing
    /// CRLF, e.g. `"ERR Protocol error: invalid bulk length"`, so the server can reply
    /// byte-for-byte like Redis before closing the connection.
    ///
    /// For [`ExpectedDollar`](ProtocolError::ExpectedDollar) with a non-ASCII byte, Redis sends
    /// the raw byte, which a `String` cannot hold; it appears here as U+FFFD. Use
    /// [`write_reply`](ProtocolError::write_reply) for the byte-exact reply.
    pub fn redis_message(&self) -> String {
        self.to_string()
    }

    /// Appends the complete RESP error reply (`-ERR Protocol error: ...\r\n`) to `buf`,
    /// byte-exact with Redis even when the message embeds a raw non-ASCII byte.
    pub fn write_reply(&self, buf: &mut bytes::BytesMut) {
        match self {
            ProtocolError::ExpectedDollar(b) => {
                let mut msg = *b"ERR Protocol error: expected '$', got 'X'";
                let last = msg.len() - 2;
                msg[last] = sanitize_byte(*b);
                crate::reply::error(buf, &msg);
            }
            other => crate::reply::error(buf, other.to_string().as_bytes()),
        }
    }
}

/// Redis replaces CR and LF in error messages with spaces so the reply stays one line.
fn sanitize_byte(b: u8) -> u8 {
    if b == b'\r' || b == b'\n' {
        b' '
    } else {
        b
    }
}

/// How a raw byte embedded in an error message appears in a `String`.
fn char_for_message(b: u8) -> char {
    let b = sanitize_byte(b);
    if b.is_ascii() {
        char::from(b)
    } else {
        char::REPLACEMENT_CHARACTER
    }
}

#[cfg(test)]
mod tests {
    use super::ProtocolError::{self, *};

    #[test]
    fn redis_texts() {
        let cases: &[(ProtocolError, &str)] = &[
            (
                InvalidMultibulkLength,
                "ERR Protocol error: invalid multibulk length",
            ),
            (InvalidBulkLength, "ERR Protocol error: invalid bulk length"),
            (
                ExpectedDollar(b'x'),
                "ERR Protocol error: expected '$', got 'x'",
            ),
            (
                ExpectedDollar(b'\n'),
                "ERR Protocol error: expected '$', got ' '",
            ),
            (
                ExpectedDollar(0xff),
                "ERR Protocol error: expected '$', got '\u{fffd}'",
            ),
            (
                UnbalancedQuotes,
                "ERR Protocol error: unbalanced quotes in request",
            ),
            (
                TooBigInlineRequest,
                "ERR Protocol error: too big inline request",
            ),
            (
                TooBigMbulkCountString,
                "ERR Protocol error: too big mbulk count string",
            ),
            (
                TooBigBulkCountString,
                "ERR Protocol error: too big bulk count string",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.redis_message(), *text);
            assert_eq!(error.to_string(), *text);
        }
    }

    #[test]
    fn write_reply_is_byte_exact() {
        let mut buf = bytes::BytesMut::new();
        ExpectedDollar(0xff).write_reply(&mut buf);
        InvalidBulkLength.write_reply(&mut buf);
        assert_eq!(
            &buf[..],
            &b"-ERR Protocol error: expected '$', got '\xff'\r\n-ERR Protocol error: invalid bulk length\r\n"[..]
        );
    }
}
