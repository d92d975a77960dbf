//! Whole RESP2/RESP3 values and the reply decoder used by clients.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::number::{len_u64, parse_i64, put_header};
use crate::{reply, Limits, ProtocolError, Version};

/// Deepest nesting of aggregates accepted in a reply. Real replies nest a handful of levels;
/// the cap keeps the (recursive) frame builder's stack use bounded whatever a peer sends.
pub const MAX_FRAME_DEPTH: usize = 128;

/// Upper bound on what the decoder reserves at once for a declared-but-not-yet-received bulk.
const RESERVE_CAP: usize = 64 * 1024;

/// A whole RESP2/RESP3 value. Used by clients and tests; the server's hot path writes replies
/// with the [`reply`] functions instead of building these trees.
///
/// `Bytes` payloads share the buffer they were decoded from (zero copy).
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`: a status line (never contains CR or LF).
    Simple(Bytes),
    /// `-ERR ...`, and the RESP3 blob error `!<len>`: the message including its code, without
    /// the `-`.
    Error(Bytes),
    /// `:<n>`.
    Integer(i64),
    /// `$<len>`: a binary-safe string.
    Bulk(Bytes),
    /// The absent value, whichever way it was sent: RESP2 `$-1` and `*-1`, RESP3 `_`.
    Null,
    /// `*<n>`.
    Array(Vec<Frame>),
    /// RESP3 `%<n>`: key/value pairs, in the order sent.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~<n>`.
    Set(Vec<Frame>),
    /// RESP3 `,<f>`.
    Double(f64),
    /// RESP3 `#t` / `#f`.
    Boolean(bool),
    /// RESP3 `=<len>`: text with a three-byte format such as `txt` or `mkd`.
    Verbatim {
        /// The format, e.g. `*b"txt"`.
        format: [u8; 3],
        /// The text after `<format>:`.
        text: Bytes,
    },
    /// RESP3 `(<digits>`: an integer too large for `i64`, as sent.
    BigNumber(Bytes),
    /// RESP3 `><n>`: out-of-band data (pub/sub messages, invalidations).
    Push(Vec<Frame>),
    /// RESP3 `|<n>`: metadata about the reply that follows it. A top-level attribute is decoded
    /// as its own frame, followed by the reply it annotates. Attributes nested inside
    /// aggregates are skipped by [`FrameDecoder`] (they are not elements); when encoding, an
    /// `Attribute` inside an `Array`/`Set`/`Push` is written before the next element and not
    /// counted in the header. Attributes as map keys or values are not supported.
    Attribute(Vec<(Frame, Frame)>),
}

impl Frame {
    /// Writes this value in RESP3 (RESP3 types as RESP3; `Null` as `_`), e.g. for a test server
    /// or to compare with the bytes a server sent.
    ///
    /// `Simple`, `Error` and `BigNumber` must be one line: CR and LF in them are written as
    /// spaces.
    pub fn encode(&self, buf: &mut BytesMut) {
        self.encode_with(buf, Version::Resp3);
    }

    /// Writes this value as a server would for a connection speaking `version`: for RESP2 the
    /// same fallbacks as the [`reply`] functions (maps flattened, doubles as bulk strings,
    /// booleans as integers, ...; attributes are dropped).
    pub fn encode_with(&self, buf: &mut BytesMut, version: Version) {
        match self {
            Frame::Simple(s) => reply::simple(buf, s),
            Frame::Error(e) => reply::error(buf, e),
            Frame::Integer(n) => reply::integer(buf, *n),
            Frame::Bulk(b) => reply::bulk(buf, b),
            Frame::Null => reply::null(buf, version),
            Frame::Array(items) => {
                reply::array_len(buf, element_count(items));
                encode_all(buf, items, version);
            }
            Frame::Set(items) => {
                reply::set_len(buf, element_count(items), version);
                encode_all(buf, items, version);
            }
            Frame::Push(items) => {
                reply::push_len(buf, element_count(items), version);
                encode_all(buf, items, version);
            }
            Frame::Map(pairs) => {
                reply::map_len(buf, pairs.len(), version);
                encode_pairs(buf, pairs, version);
            }
            Frame::Attribute(pairs) => {
                if version == Version::Resp3 {
                    put_header(buf, b'|', len_u64(pairs.len()));
                    encode_pairs(buf, pairs, version);
                }
            }
            Frame::Double(f) => reply::double(buf, *f, version),
            Frame::Boolean(b) => reply::boolean(buf, *b, version),
            Frame::Verbatim { format, text } => reply::verbatim(buf, format, text, version),
            Frame::BigNumber(digits) => reply::big_number(buf, digits, version),
        }
    }
}

/// Elements that count in an aggregate header: nested attributes annotate the next element.
fn element_count(items: &[Frame]) -> usize {
    items
        .iter()
        .filter(|f| !matches!(f, Frame::Attribute(_)))
        .count()
}

fn encode_all(buf: &mut BytesMut, items: &[Frame], version: Version) {
    for item in items {
        item.encode_with(buf, version);
    }
}

fn encode_pairs(buf: &mut BytesMut, pairs: &[(Frame, Frame)], version: Version) {
    for (key, value) in pairs {
        key.encode_with(buf, version);
        value.encode_with(buf, version);
    }
}

/// Decodes server replies (RESP2 and RESP3) into [`Frame`]s, for clients.
///
/// Like [`RequestDecoder`](crate::RequestDecoder) it is resumable and bounded: a first pass
/// validates the reply as bytes arrive, remembering its position and the open aggregates as
/// plain counts (each byte is examined once, a large bulk is waited for without rescanning),
/// and nothing is reserved from a declared size beyond a small cap; once the whole reply is
/// present it is split off the buffer and built with zero-copy slices.
///
/// It is strict where Redis servers are (lines end in CRLF, integers follow `string2ll`,
/// bulk data is followed by CRLF), since a malformed reply means the stream is out of sync.
/// At end of stream, a partial reply is an error (the server died mid-reply).
#[derive(Debug)]
pub struct FrameDecoder {
    /// Size caps applied to every declared size.
    limits: Limits,
    /// Offset of the first byte of the current reply not yet validated.
    pos: usize,
    /// Offset up to which the line starting at `pos` has been searched for CR.
    scanned: usize,
    /// Open aggregates of the current reply, outermost first.
    stack: Vec<Open>,
}

/// An aggregate whose elements are still arriving.
#[derive(Debug)]
struct Open {
    /// Elements still expected (two per map pair).
    remaining: usize,
    /// Whether completing it completes an element of its parent (false for nested attributes).
    counts: bool,
}

/// Kinds of aggregate, as declared by their type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Array,
    Map,
    Set,
    Push,
    Attribute,
}

/// One value's header line (and, for bulk types, its data), with payloads as ranges.
enum Header {
    Simple(usize, usize),
    Error(usize, usize),
    Integer(i64),
    Null,
    Double(f64),
    Boolean(bool),
    BigNumber(usize, usize),
    Bulk(usize, usize),
    Verbatim([u8; 3], usize, usize),
    /// An aggregate with this many elements (pairs for maps and attributes).
    Aggregate(Kind, usize),
}

/// Outcome of parsing one header.
enum Parsed {
    /// The header and the offset just past it (past the data for bulk types).
    Done(Header, usize),
    /// More bytes are needed: the search for CR has covered up to `scanned`, and `missing`
    /// bytes of bulk data are known to be still due.
    Incomplete { scanned: usize, missing: usize },
}

/// Parses the value starting at `start`, resuming its line search at `scan_from`.
fn parse_header(
    buf: &[u8],
    start: usize,
    scan_from: usize,
    limits: &Limits,
) -> Result<Parsed, ProtocolError> {
    let from = scan_from.max(start);
    let cr = match buf.get(from..).and_then(|rest| memchr::memchr(b'\r', rest)) {
        Some(i) => from + i,
        None => {
            if buf.len().saturating_sub(start) > limits.max_inline_len {
                return Err(ProtocolError::InvalidReply("line too long"));
            }
            return Ok(Parsed::Incomplete {
                scanned: buf.len().max(start),
                missing: 0,
            });
        }
    };
    if cr - start > limits.max_inline_len {
        return Err(ProtocolError::InvalidReply("line too long"));
    }
    match buf.get(cr + 1) {
        None => {
            return Ok(Parsed::Incomplete {
                scanned: cr,
                missing: 0,
            })
        }
        Some(b'\n') => {}
        Some(_) => return Err(ProtocolError::InvalidReply("line not ended by CRLF")),
    }
    let (Some(&ty), Some(body)) = (buf.get(start), buf.get(start + 1..cr)) else {
        return Err(ProtocolError::InvalidReplyType(b'\r'));
    };
    let next = cr + 2;
    let header = match ty {
        b'+' => Header::Simple(start + 1, cr),
        b'-' => Header::Error(start + 1, cr),
        b':' => {
            Header::Integer(parse_i64(body).ok_or(ProtocolError::InvalidReply("invalid integer"))?)
        }
        b'_' if body.is_empty() => Header::Null,
        b'_' => return Err(ProtocolError::InvalidReply("invalid null")),
        b',' => Header::Double(
            std::str::from_utf8(body)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or(ProtocolError::InvalidReply("invalid double"))?,
        ),
        b'#' => match body {
            b"t" => Header::Boolean(true),
            b"f" => Header::Boolean(false),
            _ => return Err(ProtocolError::InvalidReply("invalid boolean")),
        },
        b'(' => {
            let digits = body.strip_prefix(b"-").or(body.strip_prefix(b"+"));
            let digits = digits.unwrap_or(body);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(ProtocolError::InvalidReply("invalid big number"));
            }
            Header::BigNumber(start + 1, cr)
        }
        b'$' | b'!' | b'=' => {
            if ty == b'$' && body == b"-1" {
                return Ok(Parsed::Done(Header::Null, next));
            }
            let len = parse_i64(body)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= limits.max_bulk_len)
                .ok_or(ProtocolError::InvalidBulkLength)?;
            let end = next
                .checked_add(len)
                .ok_or(ProtocolError::InvalidBulkLength)?;
            let after = end.checked_add(2).ok_or(ProtocolError::InvalidBulkLength)?;
            if buf.len() < after {
                return Ok(Parsed::Incomplete {
                    scanned: cr,
                    missing: after - buf.len(),
                });
            }
            if buf.get(end..after) != Some(b"\r\n") {
                return Err(ProtocolError::InvalidReply(
                    "bulk data not followed by CRLF",
                ));
            }
            let header = match ty {
                b'$' => Header::Bulk(next, end),
                b'!' => Header::Error(next, end),
                _ => {
                    let format = buf
                        .get(next..next + 3)
                        .and_then(|f| <[u8; 3]>::try_from(f).ok());
                    match (format, buf.get(next + 3)) {
                        (Some(format), Some(b':')) if len >= 4 => {
                            Header::Verbatim(format, next + 4, end)
                        }
                        _ => return Err(ProtocolError::InvalidReply("invalid verbatim string")),
                    }
                }
            };
            return Ok(Parsed::Done(header, after));
        }
        b'*' | b'%' | b'~' | b'>' | b'|' => {
            if ty == b'*' && body == b"-1" {
                return Ok(Parsed::Done(Header::Null, next));
            }
            let kind = match ty {
                b'*' => Kind::Array,
                b'%' => Kind::Map,
                b'~' => Kind::Set,
                b'>' => Kind::Push,
                _ => Kind::Attribute,
            };
            let count = parse_i64(body)
                .filter(|&n| n <= i64::from(i32::MAX))
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= limits.max_multibulk_len)
                .ok_or(ProtocolError::InvalidMultibulkLength)?;
            Header::Aggregate(kind, count)
        }
        other => return Err(ProtocolError::InvalidReplyType(other)),
    };
    Ok(Parsed::Done(header, next))
}

impl FrameDecoder {
    /// A decoder enforcing `limits` on every declared size.
    pub fn new(limits: Limits) -> Self {
        FrameDecoder {
            limits,
            pos: 0,
            scanned: 0,
            stack: Vec::new(),
        }
    }

    /// Forgets the partly validated reply.
    fn reset(&mut self) {
        self.pos = 0;
        self.scanned = 0;
        self.stack.clear();
    }

    /// Validates as much of the reply at the start of `buf` as has arrived; returns its length
    /// once complete.
    fn check(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, ProtocolError> {
        loop {
            let (header, next) = match parse_header(buf, self.pos, self.scanned, &self.limits)? {
                Parsed::Done(header, next) => (header, next),
                Parsed::Incomplete { scanned, missing } => {
                    self.scanned = scanned;
                    buf.reserve(missing.min(RESERVE_CAP));
                    return Ok(None);
                }
            };
            self.pos = next;
            self.scanned = next;
            let mut counts = true;
            if let Header::Aggregate(kind, count) = header {
                let nested = !self.stack.is_empty();
                counts = !(nested && kind == Kind::Attribute);
                let elements = match kind {
                    Kind::Map | Kind::Attribute => count.saturating_mul(2),
                    _ => count,
                };
                if elements > 0 {
                    if self.stack.len() >= MAX_FRAME_DEPTH {
                        return Err(ProtocolError::InvalidReply("reply nested too deep"));
                    }
                    self.stack.push(Open {
                        remaining: elements,
                        counts,
                    });
                    continue;
                }
            }
            // A value is complete: account for it in the enclosing aggregates.
            while counts {
                let Some(top) = self.stack.last_mut() else {
                    return Ok(Some(self.pos));
                };
                top.remaining = top.remaining.saturating_sub(1);
                if top.remaining > 0 {
                    break;
                }
                counts = self.stack.pop().is_some_and(|open| open.counts);
            }
        }
    }
}

/// Builds the value starting at `*pos` of a reply already validated by `check`.
fn build(
    data: &Bytes,
    pos: &mut usize,
    limits: &Limits,
    depth: usize,
) -> Result<Frame, ProtocolError> {
    let Parsed::Done(header, next) = parse_header(data, *pos, *pos, limits)? else {
        return Err(ProtocolError::InvalidReply("truncated reply"));
    };
    *pos = next;
    Ok(match header {
        Header::Simple(s, e) => Frame::Simple(data.slice(s..e)),
        Header::Error(s, e) => Frame::Error(data.slice(s..e)),
        Header::Integer(n) => Frame::Integer(n),
        Header::Null => Frame::Null,
        Header::Double(f) => Frame::Double(f),
        Header::Boolean(b) => Frame::Boolean(b),
        Header::BigNumber(s, e) => Frame::BigNumber(data.slice(s..e)),
        Header::Bulk(s, e) => Frame::Bulk(data.slice(s..e)),
        Header::Verbatim(format, s, e) => Frame::Verbatim {
            format,
            text: data.slice(s..e),
        },
        Header::Aggregate(kind, count) => {
            if depth >= MAX_FRAME_DEPTH {
                return Err(ProtocolError::InvalidReply("reply nested too deep"));
            }
            // Every element takes at least 3 bytes, so this never exceeds what was received.
            let capacity = count.min(data.len().saturating_sub(*pos) / 3);
            match kind {
                Kind::Array | Kind::Set | Kind::Push => {
                    let mut items = Vec::with_capacity(capacity);
                    while items.len() < count {
                        items.push(build_element(data, pos, limits, depth + 1)?);
                    }
                    match kind {
                        Kind::Array => Frame::Array(items),
                        Kind::Set => Frame::Set(items),
                        _ => Frame::Push(items),
                    }
                }
                Kind::Map | Kind::Attribute => {
                    let mut pairs = Vec::with_capacity(capacity / 2);
                    while pairs.len() < count {
                        let key = build_element(data, pos, limits, depth + 1)?;
                        let value = build_element(data, pos, limits, depth + 1)?;
                        pairs.push((key, value));
                    }
                    if kind == Kind::Map {
                        Frame::Map(pairs)
                    } else {
                        Frame::Attribute(pairs)
                    }
                }
            }
        }
    })
}

/// Builds an element of an aggregate, skipping attributes that precede it.
fn build_element(
    data: &Bytes,
    pos: &mut usize,
    limits: &Limits,
    depth: usize,
) -> Result<Frame, ProtocolError> {
    loop {
        match build(data, pos, limits, depth)? {
            Frame::Attribute(_) => continue,
            frame => return Ok(frame),
        }
    }
}

impl Default for FrameDecoder {
    /// A decoder with Redis's default [`Limits`].
    fn default() -> Self {
        FrameDecoder::new(Limits::default())
    }
}

impl Decoder for FrameDecoder {
    type Item = Frame;
    type Error = ProtocolError;

    /// Returns the next complete reply, or `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`ProtocolError`] when the reply is malformed or exceeds the limits; the stream cannot
    /// be resynchronized after that.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if self.pos > buf.len() || self.scanned > buf.len() {
            // The caller removed bytes we had validated; start over.
            self.reset();
        }
        let Some(len) = self.check(buf)? else {
            return Ok(None);
        };
        self.reset();
        let data = buf.split_to(len).freeze();
        let mut pos = 0;
        build(&data, &mut pos, &self.limits, 0).map(Some)
    }
}
