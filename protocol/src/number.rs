//! Integer parsing and formatting without allocation.

use bytes::{BufMut, BytesMut};

/// Parses a signed decimal exactly like Redis's `string2ll` (util.c), so that the same request
/// bytes are accepted or rejected as by Redis: no sign other than a leading `-`, no leading
/// zeros (except `"0"` itself, so `"-0"` is rejected), no spaces, at most 20 bytes, no overflow.
///
/// The decoder reads RESP lengths with it; the server parses integer arguments with it, so a
/// command accepts exactly the integers Redis accepts.
///
/// ```
/// assert_eq!(shardcache_protocol::parse_i64(b"-42"), Some(-42));
/// assert_eq!(shardcache_protocol::parse_i64(b"+1"), None);
/// assert_eq!(shardcache_protocol::parse_i64(b"007"), None);
/// assert_eq!(shardcache_protocol::parse_i64(b"9223372036854775808"), None);
/// ```
#[inline]
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    // LONG_STR_SIZE is 21 in Redis: 20 bytes or fewer.
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut v = u64::from(first - b'0');
    for &c in rest {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        if v == 1 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(v).ok().map(|x| -x)
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Formats `n` in decimal at the end of `tmp` (which must have room for 20 digits), returning
/// the index of its first digit.
#[inline]
fn digits_u64(tmp: &mut [u8], mut n: u64) -> usize {
    let mut i = tmp.len();
    loop {
        i -= 1;
        // `n % 10` is always < 10, so the cast cannot truncate.
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

/// Appends the decimal digits of `n`, formatted on the stack (the hot path must not allocate).
pub(crate) fn put_u64(buf: &mut BytesMut, n: u64) {
    let mut tmp = [0u8; 20];
    let i = digits_u64(&mut tmp, n);
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends the decimal form of `n`, including a `-` sign when negative.
pub(crate) fn put_i64(buf: &mut BytesMut, n: i64) {
    if n < 0 {
        buf.put_u8(b'-');
    }
    put_u64(buf, n.unsigned_abs());
}

/// Appends `<prefix><n>\r\n`, the header line shared by most RESP types. The line is
/// assembled right to left on the stack and appended with one copy: it heads every bulk reply
/// (`GET`).
#[inline]
pub(crate) fn put_header(buf: &mut BytesMut, prefix: u8, n: u64) {
    // The prefix, at most 20 digits, CRLF.
    let mut line = [0u8; 23];
    line[21] = b'\r';
    line[22] = b'\n';
    // At least 1: the digits take at most 20 of the 21 bytes before the CRLF.
    let start = digits_u64(&mut line[..21], n) - 1;
    line[start] = prefix;
    buf.extend_from_slice(&line[start..]);
}

/// Converts a length to `u64` for formatting; `usize` is at most 64 bits on every target Rust
/// supports, so this never saturates in practice.
pub(crate) fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_strictness() {
        let cases: &[(&[u8], Option<i64>)] = &[
            (b"0", Some(0)),
            (b"1", Some(1)),
            (b"-1", Some(-1)),
            (b"123", Some(123)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"-9223372036854775808", Some(i64::MIN)),
            (b"9223372036854775808", None),
            (b"-9223372036854775809", None),
            (b"18446744073709551616", None),
            (b"", None),
            (b"-", None),
            (b"-0", None),
            (b"00", None),
            (b"01", None),
            (b"+1", None),
            (b" 1", None),
            (b"1 ", None),
            (b"1a", None),
            (b"0x10", None),
            (b"000000000000000000001", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_i64(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn integer_formatting() {
        for n in [0, 1, -1, 9, 10, 99, 100, 12345, i64::MAX, i64::MIN] {
            let mut buf = BytesMut::new();
            put_i64(&mut buf, n);
            assert_eq!(&buf[..], n.to_string().as_bytes());
        }
        for n in [0, 7, 10, 32, 999, 1 << 20, u64::MAX] {
            let mut buf = BytesMut::new();
            put_header(&mut buf, b'$', n);
            assert_eq!(&buf[..], format!("${n}\r\n").as_bytes());
        }
    }
}
