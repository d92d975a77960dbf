//! Hot-path reply writers.
//!
//! Each function appends exactly one RESP value to `buf` and allocates nothing except by growing
//! `buf` (numbers are formatted on the stack). Aggregates are written as a header
//! ([`array_len`], [`map_len`], [`set_len`]) followed by that many values written by the caller,
//! so a command can stream a large reply without building a [`Frame`](crate::Frame) tree.
//!
//! Functions that take a [`Version`] write the RESP3 type for RESP3 connections and the same
//! fallback Redis uses for RESP2 connections.

use bytes::{BufMut, BytesMut};

use crate::number::{len_u64, put_header, put_i64};
use crate::Version;

/// Writes `<prefix><line>\r\n`, replacing CR and LF by spaces as Redis does for error messages,
/// so that text a client controls (a key name in an error, say) can never inject a reply.
fn put_line(buf: &mut BytesMut, prefix: u8, line: &[u8]) {
    buf.reserve(line.len() + 3);
    buf.put_u8(prefix);
    if memchr::memchr2(b'\r', b'\n', line).is_none() {
        buf.extend_from_slice(line);
    } else {
        for &b in line {
            buf.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
    }
    buf.extend_from_slice(b"\r\n");
}

/// Simple string, `+<s>\r\n` (e.g. `+OK`): the cheapest status reply.
///
/// `s` must be one line; CR and LF in it are written as spaces.
pub fn simple(buf: &mut BytesMut, s: &[u8]) {
    put_line(buf, b'+', s);
}

/// `+OK\r\n`: [`simple`]`(buf, b"OK")` without its scan for CR and LF, for the reply of
/// every successful `SET`.
#[inline]
pub fn ok(buf: &mut BytesMut) {
    buf.extend_from_slice(b"+OK\r\n");
}

/// Error, `-<msg>\r\n`. `msg` includes the error code (`b"ERR unknown command"`,
/// `b"WRONGTYPE ..."`) because clients dispatch on it; the leading `-` is added here.
///
/// CR and LF in `msg` are written as spaces, as Redis does.
pub fn error(buf: &mut BytesMut, msg: &[u8]) {
    put_line(buf, b'-', msg);
}

/// Integer, `:<n>\r\n`.
pub fn integer(buf: &mut BytesMut, n: i64) {
    buf.reserve(23);
    buf.put_u8(b':');
    put_i64(buf, n);
    buf.extend_from_slice(b"\r\n");
}

/// Bulk string, `$<len>\r\n<data>\r\n`: binary-safe, the reply for values.
pub fn bulk(buf: &mut BytesMut, data: &[u8]) {
    buf.reserve(data.len() + 25);
    put_header(buf, b'$', len_u64(data.len()));
    buf.extend_from_slice(data);
    buf.extend_from_slice(b"\r\n");
}

/// The null reply for a missing value (`GET` of a missing key): `$-1\r\n` in RESP2, `_\r\n` in
/// RESP3.
pub fn null(buf: &mut BytesMut, v: Version) {
    buf.extend_from_slice(match v {
        Version::Resp2 => b"$-1\r\n",
        Version::Resp3 => b"_\r\n",
    });
}

/// The null reply where an array was expected (`BLPOP` timeout, aborted `EXEC`): `*-1\r\n` in
/// RESP2, `_\r\n` in RESP3.
pub fn null_array(buf: &mut BytesMut, v: Version) {
    buf.extend_from_slice(match v {
        Version::Resp2 => b"*-1\r\n",
        Version::Resp3 => b"_\r\n",
    });
}

/// Array header, `*<n>\r\n`; the caller then writes `n` values.
pub fn array_len(buf: &mut BytesMut, n: usize) {
    put_header(buf, b'*', len_u64(n));
}

/// Map header for `n` key/value pairs: `%<n>\r\n` in RESP3; in RESP2 Redis flattens maps into an
/// array of `2n` elements (`*<2n>\r\n`). The caller then writes key, value, key, value, ...
pub fn map_len(buf: &mut BytesMut, n: usize, v: Version) {
    match v {
        Version::Resp2 => put_header(buf, b'*', len_u64(n).saturating_mul(2)),
        Version::Resp3 => put_header(buf, b'%', len_u64(n)),
    }
}

/// Set header, `~<n>\r\n` in RESP3, a plain array `*<n>\r\n` in RESP2.
pub fn set_len(buf: &mut BytesMut, n: usize, v: Version) {
    match v {
        Version::Resp2 => put_header(buf, b'*', len_u64(n)),
        Version::Resp3 => put_header(buf, b'~', len_u64(n)),
    }
}

/// Push header, `><n>\r\n` in RESP3 (out-of-band data such as pub/sub messages), a plain array
/// `*<n>\r\n` in RESP2, as Redis does.
pub fn push_len(buf: &mut BytesMut, n: usize, v: Version) {
    match v {
        Version::Resp2 => put_header(buf, b'*', len_u64(n)),
        Version::Resp3 => put_header(buf, b'>', len_u64(n)),
    }
}

/// Double: `,<f>\r\n` in RESP3 (`inf`, `-inf` and `nan` spelled as the RESP3 spec says), and
/// in RESP2 a bulk string of the same text, as Redis does (e.g. `ZSCORE`).
///
/// Finite values use the shortest text that parses back to the same `f64` (like Redis 7.2's
/// `fpconv_dtoa`), with an exponent for very large or very small magnitudes.
pub fn double(buf: &mut BytesMut, f: f64, v: Version) {
    let mut tmp = StackBuf::new();
    let text = format_double(&mut tmp, f);
    match v {
        Version::Resp2 => bulk(buf, text),
        Version::Resp3 => {
            buf.reserve(text.len() + 3);
            buf.put_u8(b',');
            buf.extend_from_slice(text);
            buf.extend_from_slice(b"\r\n");
        }
    }
}

/// Boolean: `#t\r\n`/`#f\r\n` in RESP3, `:1\r\n`/`:0\r\n` in RESP2 (what Redis sends to RESP2
/// clients for RESP3 booleans).
pub fn boolean(buf: &mut BytesMut, b: bool, v: Version) {
    buf.extend_from_slice(match (v, b) {
        (Version::Resp2, true) => b":1\r\n",
        (Version::Resp2, false) => b":0\r\n",
        (Version::Resp3, true) => b"#t\r\n",
        (Version::Resp3, false) => b"#f\r\n",
    });
}

/// Verbatim string, `=<len>\r\n<fmt>:<text>\r\n` in RESP3 (`format` is e.g. `b"txt"` or
/// `b"mkd"`, so clients may display `text` without escaping); in RESP2 a bulk string of `text`
/// alone, as Redis does.
pub fn verbatim(buf: &mut BytesMut, format: &[u8; 3], text: &[u8], v: Version) {
    match v {
        Version::Resp2 => bulk(buf, text),
        Version::Resp3 => {
            buf.reserve(text.len() + 29);
            put_header(buf, b'=', len_u64(text.len()).saturating_add(4));
            buf.extend_from_slice(format);
            buf.put_u8(b':');
            buf.extend_from_slice(text);
            buf.extend_from_slice(b"\r\n");
        }
    }
}

/// Big number, `(<digits>\r\n` in RESP3, a bulk string of the digits in RESP2 (as Redis does).
/// `digits` must be one line; CR and LF in it are written as spaces.
pub fn big_number(buf: &mut BytesMut, digits: &[u8], v: Version) {
    match v {
        Version::Resp2 => bulk(buf, digits),
        Version::Resp3 => put_line(buf, b'(', digits),
    }
}

/// Fixed stack buffer implementing `fmt::Write`, so `f64` can be formatted without allocating.
pub(crate) struct StackBuf {
    bytes: [u8; 64],
    len: usize,
}

impl StackBuf {
    pub(crate) fn new() -> Self {
        StackBuf {
            bytes: [0; 64],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(std::fmt::Error)?;
        let dst = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Formats `f` as RESP3 wants it into `tmp`, returning the text.
pub(crate) fn format_double(tmp: &mut StackBuf, f: f64) -> &[u8] {
    use std::fmt::Write;
    if f.is_nan() {
        return b"nan";
    }
    if f.is_infinite() {
        return if f > 0.0 { b"inf" } else { b"-inf" };
    }
    let abs = f.abs();
    // `Display` never uses an exponent, so 1e300 would take 301 bytes; switch to the `e` form
    // outside the range where plain notation is short (the same cut-offs as `%.17g`).
    let plain = abs == 0.0 || (1e-4..1e17).contains(&abs);
    let ok = if plain {
        write!(tmp, "{f}")
    } else {
        write!(tmp, "{f:e}")
    };
    if ok.is_err() {
        // Unreachable in practice (the longest output is ~25 bytes); fall back to the exponent
        // form, which always fits.
        tmp.len = 0;
        let _ = write!(tmp, "{f:e}");
    }
    tmp.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Version::{Resp2, Resp3};

    /// Runs a writer on a fresh buffer and compares the exact bytes.
    fn check(write: impl FnOnce(&mut BytesMut), expected: &[u8]) {
        let mut buf = BytesMut::new();
        write(&mut buf);
        assert_eq!(
            String::from_utf8_lossy(&buf),
            String::from_utf8_lossy(expected)
        );
    }

    #[test]
    fn exact_bytes() {
        check(|b| simple(b, b"OK"), b"+OK\r\n");
        check(ok, b"+OK\r\n");
        check(|b| simple(b, b"a\r\nb"), b"+a  b\r\n");
        check(|b| error(b, b"ERR foo"), b"-ERR foo\r\n");
        check(|b| error(b, b"ERR bad\nkey"), b"-ERR bad key\r\n");
        check(|b| integer(b, 0), b":0\r\n");
        check(|b| integer(b, -42), b":-42\r\n");
        check(|b| integer(b, i64::MIN), b":-9223372036854775808\r\n");
        check(|b| integer(b, i64::MAX), b":9223372036854775807\r\n");
        check(|b| bulk(b, b""), b"$0\r\n\r\n");
        check(|b| bulk(b, b"a\r\n\0b"), b"$5\r\na\r\n\0b\r\n");
        check(|b| null(b, Resp2), b"$-1\r\n");
        check(|b| null(b, Resp3), b"_\r\n");
        check(|b| null_array(b, Resp2), b"*-1\r\n");
        check(|b| null_array(b, Resp3), b"_\r\n");
        check(|b| array_len(b, 0), b"*0\r\n");
        check(|b| array_len(b, 3), b"*3\r\n");
        check(|b| map_len(b, 2, Resp3), b"%2\r\n");
        check(|b| map_len(b, 2, Resp2), b"*4\r\n");
        check(|b| set_len(b, 5, Resp3), b"~5\r\n");
        check(|b| set_len(b, 5, Resp2), b"*5\r\n");
        check(|b| push_len(b, 3, Resp3), b">3\r\n");
        check(|b| push_len(b, 3, Resp2), b"*3\r\n");
        check(|b| double(b, 1.5, Resp3), b",1.5\r\n");
        check(|b| double(b, 3.0, Resp3), b",3\r\n");
        check(|b| double(b, -0.0, Resp3), b",-0\r\n");
        check(|b| double(b, 0.1, Resp3), b",0.1\r\n");
        check(|b| double(b, 1e300, Resp3), b",1e300\r\n");
        check(|b| double(b, -2.5e-7, Resp3), b",-2.5e-7\r\n");
        check(|b| double(b, f64::INFINITY, Resp3), b",inf\r\n");
        check(|b| double(b, f64::NEG_INFINITY, Resp3), b",-inf\r\n");
        check(|b| double(b, f64::NAN, Resp3), b",nan\r\n");
        check(|b| double(b, 1.5, Resp2), b"$3\r\n1.5\r\n");
        check(|b| double(b, f64::INFINITY, Resp2), b"$3\r\ninf\r\n");
        check(|b| boolean(b, true, Resp3), b"#t\r\n");
        check(|b| boolean(b, false, Resp3), b"#f\r\n");
        check(|b| boolean(b, true, Resp2), b":1\r\n");
        check(|b| boolean(b, false, Resp2), b":0\r\n");
        check(|b| verbatim(b, b"txt", b"hi", Resp3), b"=6\r\ntxt:hi\r\n");
        check(|b| verbatim(b, b"txt", b"hi", Resp2), b"$2\r\nhi\r\n");
        check(|b| big_number(b, b"123", Resp3), b"(123\r\n");
        check(|b| big_number(b, b"123", Resp2), b"$3\r\n123\r\n");
    }

    #[test]
    fn doubles_round_trip_through_text() {
        for f in [
            0.0,
            1.0,
            -1.0,
            0.1,
            1.0 / 3.0,
            1e16,
            1e17,
            1e-4,
            9.99e-5,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
        ] {
            let mut tmp = StackBuf::new();
            let text = std::str::from_utf8(format_double(&mut tmp, f)).unwrap();
            assert_eq!(text.parse::<f64>().unwrap(), f, "{text}");
            assert!(text.len() <= 25, "{text}");
        }
    }
}
