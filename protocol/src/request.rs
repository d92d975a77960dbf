//! Client requests and their decoder.

use bytes::{Buf, Bytes, BytesMut};
use smallvec::SmallVec;
use tokio_util::codec::Decoder;

use crate::inline::{split_args, Piece};
use crate::number::parse_i64;
use crate::{Limits, ProtocolError};

/// How much buffer space the decoder asks for at once while a large bulk string is arriving.
/// Bounded so that a client *declaring* a 512 MiB bulk makes us reserve nothing proportional;
/// the buffer still grows to the real size, by doubling, as the bytes actually arrive.
const RESERVE_CAP: usize = 64 * 1024;

/// Upper bound on the argument slots reserved from a declared `*<n>` (Redis caps its `argv`
/// preallocation at 1024 the same way); more slots are added only as arguments arrive.
const ARGS_PREALLOC_CAP: usize = 1024;

/// A decoded client request: the command name followed by its arguments.
///
/// The arguments are zero-copy slices of the connection's read buffer, and up to 8 of them are
/// stored inline (no heap allocation for the common commands). Because they share the read
/// buffer's allocation, a slice kept alive keeps that whole allocation alive: **copy**
/// (`Bytes::copy_from_slice`) anything stored long-term, such as a value written to the cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Request {
    args: SmallVec<[Bytes; 8]>,
}

impl Request {
    /// All arguments; `args()[0]` is the command name exactly as sent (any case), so the server
    /// can match it case-insensitively without this crate knowing any command.
    pub fn args(&self) -> &[Bytes] {
        &self.args
    }

    /// Number of arguments, the command name included (Redis's `argc`), for arity checks.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Whether there are no arguments. Never true for a request produced by
    /// [`RequestDecoder`], which skips empty requests like Redis does.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Builds a request from arguments, for tests and for code that synthesizes commands.
    pub fn from_args<I: IntoIterator<Item = Bytes>>(it: I) -> Request {
        Request {
            args: it.into_iter().collect(),
        }
    }

    /// Takes the arguments out, so a command can move them (e.g. into the store) without
    /// cloning.
    pub fn into_args(self) -> SmallVec<[Bytes; 8]> {
        self.args
    }

    /// Drops the arguments (and with them their share of the read buffer), keeping the inline
    /// storage for the next [`RequestDecoder::decode_into`]. A request that had more arguments
    /// than fit inline gives its heap storage back, so a slot reused for many requests never
    /// holds on to one large request's capacity.
    pub fn clear(&mut self) {
        if self.args.spilled() {
            self.args = SmallVec::new();
        } else {
            self.args.clear();
        }
    }
}

/// Decodes client requests, both RESP arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
/// and inline commands (`GET k\r\n`), with the exact acceptance rules and error texts of Redis
/// 7's `processMultibulkBuffer` / `processInlineBuffer`.
///
/// Properties the server relies on:
/// - **Zero copy**: a complete request is split off the buffer once and its arguments are
///   `Bytes` slices of it (inline arguments are copied only when quotes or escapes require it).
/// - **Resumable**: between calls it remembers how far it got (as offsets, never as `Bytes`), so
///   each call scans only new bytes, even while a large bulk arrives in many reads.
/// - **Bounded**: every client-declared size is checked against [`Limits`] before anything is
///   reserved, and reservations from declared sizes are capped at small constants.
/// - **Split-independent**: however the input is cut into reads, the same requests and the same
///   error come out. (Redis's "too big" checks depend on read sizes; we apply them to the line
///   length itself, which equals Redis's result when data arrives in reads no larger than the
///   limit, as Redis's own 16 KiB reads do.)
///
/// Deliberate Redis quirks kept: the CRLF after a `*`/`$` line and after bulk data is skipped
/// without being checked (only the `\r` is searched for); a NUL byte before a line's terminator
/// hides the terminator, as with C's `strchr` (so such a line ends in "too big ..." once it
/// exceeds the limit); `*0` and negative counts are consumed and ignored; blank inline lines are
/// ignored. Redis's unauthenticated-client limits belong to the server, not here.
///
/// After an error the decoder's state is unspecified: send the error and close the connection,
/// as Redis does.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    /// Size caps applied to every client-declared size.
    limits: Limits,
    /// The multibulk request being assembled, `None` between requests.
    multibulk: Option<Multibulk>,
    /// Progress of the search for the current line's terminator, so it resumes where it stopped.
    line: LineScan,
}

/// A multibulk request partly received. All positions are offsets from the start of the read
/// buffer, which stays put until the request is complete (callers only append to it).
#[derive(Debug)]
struct Multibulk {
    /// Arguments still expected.
    remaining: usize,
    /// Offset of the first byte not yet consumed.
    pos: usize,
    /// `(start, end)` of each complete argument.
    args: SmallVec<[(usize, usize); 8]>,
    /// Length of the bulk whose data starts at `pos`, once its `$<len>` line has been parsed.
    bulk_len: Option<usize>,
}

/// Resumable search for a line terminator with C `strchr` semantics (a NUL ends the search).
#[derive(Debug, Default)]
struct LineScan {
    /// Offset up to which the current line has been searched.
    scanned: usize,
    /// A NUL was found before the terminator: like `strchr`, the line is never terminated.
    blocked_by_nul: bool,
}

impl LineScan {
    /// Returns the offset of the first `needle` at or after `from`, unless a NUL comes first or
    /// it has not arrived yet.
    fn find(&mut self, buf: &[u8], from: usize, needle: u8) -> Option<usize> {
        if self.blocked_by_nul {
            return None;
        }
        let start = self.scanned.max(from);
        let found = buf
            .get(start..)
            .and_then(|rest| memchr::memchr2(needle, 0, rest));
        match found {
            Some(i) if buf.get(start + i) == Some(&needle) => {
                self.scanned = start + i;
                Some(start + i)
            }
            Some(_) => {
                self.blocked_by_nul = true;
                None
            }
            None => {
                self.scanned = buf.len();
                None
            }
        }
    }
}

/// Most arguments a request may have for [`RequestDecoder::whole_multibulk`].
const FAST_ARGS: usize = 16;

/// Most digits [`header_number`] reads: an 18-digit number fits `i64` (and `u64`), so it is
/// accumulated without overflow checks. A longer one is left to the resumable path.
const FAST_DIGITS: usize = 18;

/// The non-negative number of a `*<n>` or `$<n>` line whose digits start at `from`, and the
/// offset after its CRLF, when the line is complete, within `max_line` (the type byte and the
/// digits), and in the canonical form Redis's `string2ll` accepts (at least one digit, no
/// leading zero but in `0` itself). `None` for anything else (the resumable path handles it).
#[inline]
fn header_number(b: &[u8], from: usize, max_line: usize) -> Option<(usize, usize)> {
    let digits = b.get(from..)?;
    let mut n: u64 = 0;
    let mut cr = 0;
    loop {
        let c = *digits.get(cr)?;
        if c == b'\r' {
            break;
        }
        let digit = c.wrapping_sub(b'0');
        if digit > 9 || cr == FAST_DIGITS {
            return None;
        }
        n = n * 10 + u64::from(digit);
        cr += 1;
    }
    if cr == 0 || (cr > 1 && digits.first() == Some(&b'0')) || cr + 1 > max_line {
        return None;
    }
    // Redis needs one byte after the '\r' (assumed to be '\n', not checked).
    if from + cr + 1 >= b.len() {
        return None;
    }
    Some((usize::try_from(n).ok()?, from + cr + 2))
}

/// What one step of decoding achieved.
// Returned by value and immediately unpacked; boxing `Done` would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// More bytes are needed.
    Incomplete,
    /// An empty request (`*0`, blank line) was consumed; look for the next one.
    Skipped,
    /// A multibulk header was consumed; its arguments come next.
    Started,
    /// A complete request.
    Done(Request),
}

impl RequestDecoder {
    /// A decoder enforcing `limits` (use `Limits::default()` for Redis's defaults).
    pub fn new(limits: Limits) -> Self {
        RequestDecoder {
            limits,
            multibulk: None,
            line: LineScan::default(),
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Forgets any partly decoded request.
    fn reset(&mut self) {
        self.multibulk = None;
        self.line = LineScan::default();
    }

    /// Parses the `*<n>` line at the start of `buf`.
    fn start_multibulk(&mut self, buf: &mut BytesMut) -> Result<Step, ProtocolError> {
        let max_line = self.limits.max_inline_len;
        let Some(cr) = self.line.find(buf, 0, b'\r') else {
            if buf.len() > max_line {
                return Err(ProtocolError::TooBigMbulkCountString);
            }
            return Ok(Step::Incomplete);
        };
        if cr > max_line {
            return Err(ProtocolError::TooBigMbulkCountString);
        }
        // Redis needs one byte after the '\r' (assumed to be '\n', not checked).
        if cr + 1 >= buf.len() {
            return Ok(Step::Incomplete);
        }
        let count = buf
            .get(1..cr)
            .and_then(parse_i64)
            .ok_or(ProtocolError::InvalidMultibulkLength)?;
        if count > i64::from(i32::MAX) {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        self.line = LineScan::default();
        let pos = cr + 2;
        let Ok(count) = usize::try_from(count) else {
            // Negative: Redis consumes the line and ignores the request.
            buf.advance(pos);
            return Ok(Step::Skipped);
        };
        if count == 0 {
            buf.advance(pos);
            return Ok(Step::Skipped);
        }
        if count > self.limits.max_multibulk_len {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        self.multibulk = Some(Multibulk {
            remaining: count,
            pos,
            args: SmallVec::with_capacity(count.min(ARGS_PREALLOC_CAP)),
            bulk_len: None,
        });
        Ok(Step::Started)
    }

    /// Consumes as many `$<len>\r\n<data>\r\n` elements as have arrived.
    fn continue_multibulk(&mut self, buf: &mut BytesMut) -> Result<Step, ProtocolError> {
        let limits = self.limits;
        let Some(mb) = self.multibulk.as_mut() else {
            return Ok(Step::Incomplete);
        };
        while mb.remaining > 0 {
            let len = match mb.bulk_len {
                Some(len) => len,
                None => {
                    let Some(cr) = self.line.find(buf, mb.pos, b'\r') else {
                        if buf.len().saturating_sub(mb.pos) > limits.max_inline_len {
                            return Err(ProtocolError::TooBigBulkCountString);
                        }
                        return Ok(Step::Incomplete);
                    };
                    if cr - mb.pos > limits.max_inline_len {
                        return Err(ProtocolError::TooBigBulkCountString);
                    }
                    if cr + 1 >= buf.len() {
                        return Ok(Step::Incomplete);
                    }
                    match buf.get(mb.pos) {
                        Some(b'$') => {}
                        Some(&other) => return Err(ProtocolError::ExpectedDollar(other)),
                        None => return Ok(Step::Incomplete),
                    }
                    let len = buf
                        .get(mb.pos + 1..cr)
                        .and_then(parse_i64)
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|&n| n <= limits.max_bulk_len)
                        .ok_or(ProtocolError::InvalidBulkLength)?;
                    self.line = LineScan::default();
                    mb.pos = cr + 2;
                    mb.bulk_len = Some(len);
                    len
                }
            };
            // The data and the two bytes Redis skips after it (CRLF, unchecked).
            let end = mb
                .pos
                .checked_add(len)
                .and_then(|n| n.checked_add(2))
                .ok_or(ProtocolError::InvalidBulkLength)?;
            if buf.len() < end {
                buf.reserve((end - buf.len()).min(RESERVE_CAP));
                return Ok(Step::Incomplete);
            }
            mb.args.push((mb.pos, mb.pos + len));
            mb.pos = end;
            mb.bulk_len = None;
            mb.remaining -= 1;
        }
        let Some(mb) = self.multibulk.take() else {
            return Ok(Step::Incomplete);
        };
        self.line = LineScan::default();
        let mut frame = buf.split_to(mb.pos).freeze();
        // Every argument but the last is a new reference to the frame; the last *is* the frame,
        // narrowed, which saves one reference count increment and decrement per request.
        let Some((&(last_start, last_end), rest)) = mb.args.split_last() else {
            return Ok(Step::Skipped);
        };
        let mut args: SmallVec<[Bytes; 8]> = rest
            .iter()
            .map(|&(start, end)| frame.slice(start..end))
            .collect();
        frame.truncate(last_end);
        frame.advance(last_start);
        args.push(frame);
        Ok(Step::Done(Request { args }))
    }

    /// Decodes a complete multibulk request of at most [`FAST_ARGS`] arguments at the start of
    /// `buf` in one pass, without the resumable state. `None` (having consumed nothing) for
    /// anything else: not a multibulk, not all arrived, too many arguments, or anything an
    /// error or a Redis quirk could apply to; the resumable path then decides, with the same
    /// result as if this did not exist.
    ///
    /// On success the request replaces `args` (whose storage is reused).
    #[inline]
    fn whole_multibulk(&self, buf: &mut BytesMut, args: &mut SmallVec<[Bytes; 8]>) -> Option<()> {
        let b: &[u8] = buf;
        if b.first() != Some(&b'*') {
            return None;
        }
        let max_line = self.limits.max_inline_len;
        let (count, mut pos) = header_number(b, 1, max_line)?;
        if count == 0 || count > FAST_ARGS || count > self.limits.max_multibulk_len {
            return None;
        }
        let mut ranges = [(0usize, 0usize); FAST_ARGS];
        for range in ranges.iter_mut().take(count) {
            if b.get(pos) != Some(&b'$') {
                return None;
            }
            let (len, data) = header_number(b, pos + 1, max_line)?;
            if len > self.limits.max_bulk_len {
                return None;
            }
            let end = data.checked_add(len)?;
            // The data and the two bytes Redis skips after it (unchecked).
            pos = end.checked_add(2)?;
            if pos > b.len() {
                return None;
            }
            *range = (data, end);
        }
        let (&(last_start, last_end), rest) = ranges[..count].split_last()?;
        let mut frame = buf.split_to(pos).freeze();
        args.clear();
        for &(start, end) in rest {
            args.push(frame.slice(start..end));
        }
        frame.truncate(last_end);
        frame.advance(last_start);
        args.push(frame);
        Some(())
    }

    /// Parses an inline request line at the start of `buf`.
    fn inline(&mut self, buf: &mut BytesMut) -> Result<Step, ProtocolError> {
        let max_line = self.limits.max_inline_len;
        let Some(newline) = self.line.find(buf, 0, b'\n') else {
            if buf.len() > max_line {
                return Err(ProtocolError::TooBigInlineRequest);
            }
            return Ok(Step::Incomplete);
        };
        if newline > max_line {
            return Err(ProtocolError::TooBigInlineRequest);
        }
        let line_end = match newline.checked_sub(1) {
            Some(cr) if buf.get(cr) == Some(&b'\r') => cr,
            _ => newline,
        };
        let pieces = buf
            .get(..line_end)
            .and_then(split_args)
            .ok_or(ProtocolError::UnbalancedQuotes)?;
        self.line = LineScan::default();
        if pieces.is_empty() {
            buf.advance(newline + 1);
            return Ok(Step::Skipped);
        }
        let line = buf.split_to(newline + 1).freeze();
        let args = pieces
            .into_iter()
            .map(|piece| match piece {
                Piece::Range(start, end) => line.slice(start..end),
                Piece::Owned(bytes) => Bytes::from(bytes),
            })
            .collect();
        Ok(Step::Done(Request { args }))
    }
}

impl RequestDecoder {
    /// [`decode`](Decoder::decode) into a request the caller keeps: on `Ok(true)` the next
    /// complete request has replaced `request`'s arguments, reusing its storage, so a server
    /// that decodes into slots it reuses never moves a `Request` (a few hundred bytes with its
    /// inline arguments) per request. On `Ok(false)` (more bytes needed) or an error, `request`
    /// is left as it was.
    ///
    /// # Errors
    ///
    /// As [`decode`](Decoder::decode).
    pub fn decode_into(
        &mut self,
        buf: &mut BytesMut,
        request: &mut Request,
    ) -> Result<bool, ProtocolError> {
        // Our offsets assume the caller only appends; if bytes we looked at were removed,
        // start over rather than index out of bounds.
        let consumed = self.multibulk.as_ref().map_or(0, |mb| mb.pos);
        if consumed > buf.len() || self.line.scanned > buf.len() {
            self.reset();
        }
        // The common case, a whole well-formed request already buffered, in one pass.
        if self.multibulk.is_none()
            && self.line.scanned == 0
            && !self.line.blocked_by_nul
            && self.whole_multibulk(buf, &mut request.args).is_some()
        {
            return Ok(true);
        }
        loop {
            let step = if self.multibulk.is_some() {
                self.continue_multibulk(buf)?
            } else {
                match buf.first() {
                    None => return Ok(false),
                    Some(b'*') => self.start_multibulk(buf)?,
                    Some(_) => self.inline(buf)?,
                }
            };
            match step {
                Step::Incomplete => return Ok(false),
                Step::Done(decoded) => {
                    *request = decoded;
                    return Ok(true);
                }
                Step::Skipped | Step::Started => continue,
            }
        }
    }
}

impl Decoder for RequestDecoder {
    type Item = Request;
    type Error = ProtocolError;

    /// Returns the next complete request, `Ok(None)` when more bytes are needed, or the Redis
    /// protocol error to send before closing the connection.
    ///
    /// # Errors
    ///
    /// Any [`ProtocolError`] request variant, exactly where Redis would report it.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        let mut request = Request::default();
        Ok(self.decode_into(buf, &mut request)?.then_some(request))
    }

    /// At end of stream a partial request is dropped silently, as Redis does when a client
    /// disconnects mid-request (the bytes stay in `buf` for anyone who wants to log them).
    ///
    /// # Errors
    ///
    /// As [`decode`](Decoder::decode), for the bytes that did arrive.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        self.decode(buf)
    }
}
