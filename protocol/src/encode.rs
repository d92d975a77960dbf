//! Client-side request encoding.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::{reply, Frame, FrameDecoder, Limits, ProtocolError, Request};

/// Appends a request as an array of bulk strings (`*<n>\r\n$<len>\r\n<arg>\r\n...`), the only
/// request form that is binary-safe and that every Redis-protocol server accepts.
pub fn write_request<A: AsRef<[u8]>>(buf: &mut BytesMut, args: &[A]) {
    let size = args.iter().fold(23usize, |total, arg| {
        total.saturating_add(arg.as_ref().len().saturating_add(25))
    });
    buf.reserve(size);
    reply::array_len(buf, args.len());
    for arg in args {
        reply::bulk(buf, arg.as_ref());
    }
}

/// `tokio_util` encoder for client requests: accepts a slice, array or `Vec` of anything
/// byte-like (`&str`, `&[u8]`, `Bytes`, `Vec<u8>`, ...) or a [`Request`], and writes it with
/// [`write_request`]. For example `sink.send(&["SET", "k", "v"])`.
///
/// Encoding cannot fail; the error type is [`ProtocolError`] so that it matches
/// [`FrameDecoder`] in a `Framed` (see [`ClientCodec`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestEncoder;

impl<'a, A: AsRef<[u8]>> Encoder<&'a [A]> for RequestEncoder {
    type Error = ProtocolError;

    fn encode(&mut self, args: &'a [A], dst: &mut BytesMut) -> Result<(), ProtocolError> {
        write_request(dst, args);
        Ok(())
    }
}

impl<'a, A: AsRef<[u8]>, const N: usize> Encoder<&'a [A; N]> for RequestEncoder {
    type Error = ProtocolError;

    fn encode(&mut self, args: &'a [A; N], dst: &mut BytesMut) -> Result<(), ProtocolError> {
        write_request(dst, args);
        Ok(())
    }
}

impl<A: AsRef<[u8]>> Encoder<Vec<A>> for RequestEncoder {
    type Error = ProtocolError;

    fn encode(&mut self, args: Vec<A>, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        write_request(dst, &args);
        Ok(())
    }
}

impl<'a> Encoder<&'a Request> for RequestEncoder {
    type Error = ProtocolError;

    fn encode(&mut self, request: &'a Request, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        write_request(dst, request.args());
        Ok(())
    }
}

impl Encoder<Request> for RequestEncoder {
    type Error = ProtocolError;

    fn encode(&mut self, request: Request, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        write_request(dst, request.args());
        Ok(())
    }
}

/// The codec a client puts in `tokio_util::codec::Framed`: encodes requests like
/// [`RequestEncoder`] and decodes replies with [`FrameDecoder`], with one error type.
#[derive(Debug, Default)]
pub struct ClientCodec {
    /// Decoder for the server's replies.
    decoder: FrameDecoder,
}

impl ClientCodec {
    /// A codec whose reply decoder enforces `limits`.
    pub fn new(limits: Limits) -> Self {
        ClientCodec {
            decoder: FrameDecoder::new(limits),
        }
    }
}

impl Decoder for ClientCodec {
    type Item = Frame;
    type Error = ProtocolError;

    /// See [`FrameDecoder`].
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        self.decoder.decode(buf)
    }

    /// See [`FrameDecoder`].
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        self.decoder.decode_eof(buf)
    }
}

impl<T> Encoder<T> for ClientCodec
where
    RequestEncoder: Encoder<T, Error = ProtocolError>,
{
    type Error = ProtocolError;

    /// See [`RequestEncoder`].
    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        RequestEncoder.encode(item, dst)
    }
}
