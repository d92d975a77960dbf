//! Request decoding, driven through one `check(input, expected)` helper that also verifies
//! that feeding the input one byte at a time gives the same result as feeding it whole.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use shardcache_protocol::{write_request, Limits, Request, RequestDecoder};
use tokio_util::codec::Decoder;

/// Decodes `chunks` fed in order, rendering each request as `["a" "b"]` on its own line, then
/// the error (`error: <redis message>`) or the leftover (`incomplete: <n> bytes`), if any.
fn decode_chunks<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut decoder = RequestDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(request)) => out.push(render(&request)),
                Ok(None) => break,
                Err(e) => {
                    out.push(format!("error: {}", e.redis_message()));
                    return out.join("\n");
                }
            }
        }
    }
    if !buf.is_empty() {
        out.push(format!("incomplete: {} bytes", buf.len()));
    }
    out.join("\n")
}

/// As [`decode_chunks`], through [`RequestDecoder::decode_into`] with one request reused for
/// every decode, checking that a decode that does not complete a request leaves it untouched.
fn decode_chunks_reusing<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut decoder = RequestDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut request = Request::default();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = request.clone();
            match decoder.decode_into(&mut buf, &mut request) {
                Ok(true) => {
                    out.push(render(&request));
                    request.clear();
                }
                Ok(false) => {
                    assert_eq!(request, before, "an incomplete decode changed the request");
                    break;
                }
                Err(e) => {
                    assert_eq!(request, before, "a failed decode changed the request");
                    out.push(format!("error: {}", e.redis_message()));
                    return out.join("\n");
                }
            }
        }
    }
    if !buf.is_empty() {
        out.push(format!("incomplete: {} bytes", buf.len()));
    }
    out.join("\n")
}

fn render(request: &Request) -> String {
    let args: Vec<String> = request
        .args()
        .iter()
        .map(|a| format!("\"{}\"", a.escape_ascii()))
        .collect();
    format!("[{}]", args.join(" "))
}

fn decode_whole(limits: Limits, input: &[u8]) -> String {
    decode_chunks(limits, [input])
}

fn decode_bytewise(limits: Limits, input: &[u8]) -> String {
    decode_chunks(limits, input.chunks(1))
}

#[track_caller]
fn check_with(limits: Limits, input: &[u8], expected: &str) {
    let whole = decode_whole(limits, input);
    assert_eq!(
        whole,
        expected.trim(),
        "input: {:?}",
        input.escape_ascii().to_string()
    );
    let bytewise = decode_bytewise(limits, input);
    assert_eq!(bytewise, whole, "byte-at-a-time differs from whole");
    let reusing = decode_chunks_reusing(limits, [input]);
    assert_eq!(reusing, whole, "decode_into differs from decode");
    let reusing = decode_chunks_reusing(limits, input.chunks(1));
    assert_eq!(
        reusing, whole,
        "decode_into byte-at-a-time differs from decode"
    );
}

#[track_caller]
fn check(input: &[u8], expected: &str) {
    check_with(Limits::default(), input, expected);
}

fn small_lines() -> Limits {
    Limits {
        max_inline_len: 8,
        ..Limits::default()
    }
}

#[test]
fn multibulk() {
    check(b"*1\r\n$4\r\nPING\r\n", r#"["PING"]"#);
    check(
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n",
        r#"["SET" "k" ""]"#,
    );
    check(
        b"*3\r\n$3\r\nSET\r\n$5\r\na\r\n\0b\r\n$2\r\n\xff\xfe\r\n",
        r#"["SET" "a\r\n\x00b" "\xff\xfe"]"#,
    );
    // Pipelined, mixed with inline requests.
    check(
        b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n",
        r#"
["PING"]
["GET" "k"]
["PING"]
["QUIT"]"#,
    );
    // Empty and negative counts are consumed and ignored.
    check(b"*0\r\n*-1\r\n*-5\r\n*1\r\n$1\r\na\r\n", r#"["a"]"#);
    check(b"*0\r\n", "");
    // Incomplete requests wait.
    check(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n", "incomplete: 20 bytes");
    check(b"*1\r\n$4\r\nPI", "incomplete: 10 bytes");
    check(b"*1\r", "incomplete: 3 bytes");
    check(b"*2147483647\r\n", "incomplete: 13 bytes");
    check(b"*1\r\n$536870912\r\n", "incomplete: 16 bytes");
    // No '\r' yet: Redis does not look at the first byte of the element until it has a line.
    check(b"*1\r\nfoo", "incomplete: 7 bytes");
}

#[test]
fn whole_requests_the_one_pass_path_declines() {
    // A request that has arrived whole is decoded in one pass unless something in it is not
    // plain; then the resumable path decides, with Redis's answer.
    check(
        b"*1\r\n$01\r\na\r\n",
        "error: ERR Protocol error: invalid bulk length",
    );
    check(
        b"*1\r\n$00\r\n\r\n",
        "error: ERR Protocol error: invalid bulk length",
    );
    check(
        b"*1\r\n$0000000000000000001\r\na\r\n",
        "error: ERR Protocol error: invalid bulk length",
    );
    check(
        b"*01\r\n$1\r\na\r\n",
        "error: ERR Protocol error: invalid multibulk length",
    );
    check(b"*1\r\n$0\r\n\r\n", r#"[""]"#);
    check(b"*1\r\n$10\r\n0123456789\r\n", r#"["0123456789"]"#);
    // More arguments than the one-pass path takes.
    let mut many = b"*17\r\n".to_vec();
    for _ in 0..17 {
        many.extend_from_slice(b"$1\r\nx\r\n");
    }
    let expected = format!("[{}]", vec![r#""x""#; 17].join(" "));
    check(&many, &expected);
}

#[test]
fn multibulk_redis_quirks() {
    // Redis skips the two bytes after a length line and after bulk data without checking them.
    check(b"*1\r\n$3\r\nfooXY", r#"["foo"]"#);
    check(b"*1\rX$1\rXa\r\n", r#"["a"]"#);
    // A NUL hides the line terminator from strchr(): Redis waits (until the line is too big).
    check(b"*1\0\r\n", "incomplete: 5 bytes");
    check_with(
        small_lines(),
        b"*1\0\r\n$1\r\na\r\n",
        "error: ERR Protocol error: too big mbulk count string",
    );
}

#[test]
fn multibulk_errors() {
    let invalid_multibulk = "error: ERR Protocol error: invalid multibulk length";
    for input in [
        &b"*\r\n"[..],
        b"*abc\r\n",
        b"*+1\r\n",
        b"*01\r\n",
        b"*-0\r\n",
        b"* 1\r\n",
        b"*1 \r\n",
        b"*2147483648\r\n",
        b"*99999999999999999999999\r\n",
    ] {
        check(input, invalid_multibulk);
    }
    check_with(
        Limits {
            max_multibulk_len: 2,
            ..Limits::default()
        },
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n*3\r\n",
        r#"
["a" "b"]
error: ERR Protocol error: invalid multibulk length"#,
    );

    let invalid_bulk = "error: ERR Protocol error: invalid bulk length";
    for input in [
        &b"*1\r\n$-1\r\n"[..],
        b"*1\r\n$\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$01\r\n",
        b"*1\r\n$+1\r\n",
        b"*1\r\n$536870913\r\n",
        b"*1\r\n$99999999999999999999\r\n",
    ] {
        check(input, invalid_bulk);
    }
    check_with(
        Limits {
            max_bulk_len: 3,
            ..Limits::default()
        },
        b"*2\r\n$3\r\nabc\r\n$4\r\nabcd\r\n",
        invalid_bulk,
    );

    check(
        b"*1\r\nfoo\r\n",
        "error: ERR Protocol error: expected '$', got 'f'",
    );
    check(
        b"*2\r\n$1\r\na\r\n:1\r\n",
        "error: ERR Protocol error: expected '$', got ':'",
    );
    // Redis prints CR and LF as spaces.
    check(
        b"*1\r\n\r\n",
        "error: ERR Protocol error: expected '$', got ' '",
    );
    check(
        b"*1\r\n\n\r\n",
        "error: ERR Protocol error: expected '$', got ' '",
    );
    // Requests before the error are returned first.
    check(
        b"PING\r\n*1\r\n+OK\r\n",
        r#"
["PING"]
error: ERR Protocol error: expected '$', got '+'"#,
    );
}

#[test]
fn line_length_limits() {
    // Redis errors when more than PROTO_INLINE_MAX_SIZE bytes have arrived without the '\n'
    // (inline) or '\r' (multibulk) it searches for, so the '\r' of an inline CRLF counts.
    check_with(small_lines(), b"PINGPIN\r\n", r#"["PINGPIN"]"#);
    check_with(small_lines(), b"PINGPING\n", r#"["PINGPING"]"#);
    check_with(
        small_lines(),
        b"PINGPING\r\n",
        "error: ERR Protocol error: too big inline request",
    );
    check_with(small_lines(), b"PINGPING", "incomplete: 8 bytes");
    let too_big_inline = "error: ERR Protocol error: too big inline request";
    check_with(small_lines(), b"PINGPINGP", too_big_inline);
    check_with(small_lines(), b"PINGPINGP\n", too_big_inline);
    check_with(small_lines(), b"PING\0\r\nPING\r\n", too_big_inline);

    check_with(small_lines(), b"*1111111", "incomplete: 8 bytes");
    check_with(small_lines(), b"*1111111\r\n", "incomplete: 10 bytes");
    check_with(
        small_lines(),
        b"*11111111",
        "error: ERR Protocol error: too big mbulk count string",
    );
    check_with(
        small_lines(),
        b"*11111111\r\n",
        "error: ERR Protocol error: too big mbulk count string",
    );
    check_with(small_lines(), b"*1\r\n$1234567\r\n", "incomplete: 14 bytes");
    check_with(
        small_lines(),
        b"*1\r\n$12345678",
        "error: ERR Protocol error: too big bulk count string",
    );
    check_with(
        small_lines(),
        b"*1\r\n$12345678\r\n",
        "error: ERR Protocol error: too big bulk count string",
    );
    // Bulk *data* is not a line: it may be longer than the line limit.
    check_with(
        small_lines(),
        b"*1\r\n$10\r\n0123456789\r\n",
        r#"["0123456789"]"#,
    );

    // Default limit: 64 KiB.
    let mut long = vec![b'a'; 64 * 1024 - 1];
    long.extend_from_slice(b"\r\n");
    assert_eq!(
        decode_whole(Limits::default(), &long).len(),
        64 * 1024 - 1 + 4
    );
    long.insert(0, b'b');
    assert_eq!(decode_whole(Limits::default(), &long), too_big_inline);
}

#[test]
fn inline() {
    check(b"PING\r\n", r#"["PING"]"#);
    check(b"PING\n", r#"["PING"]"#);
    check(b"set  k \t v\r\n", r#"["set" "k" "v"]"#);
    check(b"\r\n\n   \r\nPING\r\n", r#"["PING"]"#);
    check(b"\r\n", "");
    check(b"PING", "incomplete: 4 bytes");
    check(b"PING\r", "incomplete: 5 bytes");
    check(b"a\rb\n", r#"["a" "b"]"#);
    check(b"ECHO \r\r\n", r#"["ECHO"]"#);
    check(b"set a \"b c\"\r\n", r#"["set" "a" "b c"]"#);
    check(b"ECHO \"a\\x41\\n\"\r\n", r#"["ECHO" "aA\n"]"#);
    check(b"ECHO \"\\x4\"\r\n", r#"["ECHO" "x4"]"#);
    check(b"ECHO 'it\\'s'\r\n", r#"["ECHO" "it\'s"]"#);
    check(b"ECHO \"\" ''\r\n", r#"["ECHO" "" ""]"#);
    check(
        b"ECHO a\"b c\"d\r\n",
        "error: ERR Protocol error: unbalanced quotes in request",
    );
    check(
        b"ECHO 'it''s'\r\n",
        "error: ERR Protocol error: unbalanced quotes in request",
    );
    check(
        b"\"unterminated\r\n",
        "error: ERR Protocol error: unbalanced quotes in request",
    );
    check(
        b"'unterminated\r\n",
        "error: ERR Protocol error: unbalanced quotes in request",
    );
    // A NUL before the newline hides it, as with strchr().
    check(b"PING\0\r\n", "incomplete: 7 bytes");
    // Bytes above 0x7f are ordinary.
    check(b"ECHO \xff\xfe\r\n", r#"["ECHO" "\xff\xfe"]"#);
}

#[test]
fn arguments_are_slices_of_the_read_buffer() {
    let input = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nSET \"k\" v\r\n";
    let mut buf = BytesMut::from(&input[..]);
    let base = buf.as_ptr() as usize;
    let range = base..base + input.len();
    let mut decoder = RequestDecoder::new(Limits::default());
    let first = decoder.decode(&mut buf).unwrap().unwrap();
    let second = decoder.decode(&mut buf).unwrap().unwrap();
    for arg in first.args().iter().chain(second.args()) {
        assert!(
            range.contains(&(arg.as_ptr() as usize)),
            "{arg:?} was copied"
        );
    }
    assert_eq!(first.args()[1].as_ptr() as usize, base + 17);
    assert!(buf.is_empty());
}

#[test]
fn decode_into_reuses_the_request() {
    // A request with more arguments than fit inline, then small ones into the same request:
    // each decode replaces the arguments, and `clear` gives the spilled storage back.
    let mut input = BytesMut::new();
    let many: Vec<Vec<u8>> = (0..12).map(|i| format!("a{i}").into_bytes()).collect();
    write_request(&mut input, &many);
    write_request(&mut input, &[b"GET".to_vec(), b"k".to_vec()]);
    input.extend_from_slice(b"PING\r\n");
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut request = Request::default();
    assert!(matches!(
        decoder.decode_into(&mut input, &mut request),
        Ok(true)
    ));
    assert_eq!(request.len(), 12);
    request.clear();
    assert!(request.is_empty());
    assert!(matches!(
        decoder.decode_into(&mut input, &mut request),
        Ok(true)
    ));
    assert_eq!(render(&request), r#"["GET" "k"]"#);
    assert!(matches!(
        decoder.decode_into(&mut input, &mut request),
        Ok(true)
    ));
    assert_eq!(render(&request), r#"["PING"]"#);
    assert!(matches!(
        decoder.decode_into(&mut input, &mut request),
        Ok(false)
    ));
    assert_eq!(render(&request), r#"["PING"]"#);
}

#[test]
fn request_api() {
    let request = Request::from_args([Bytes::from_static(b"GET"), Bytes::from_static(b"k")]);
    assert_eq!(request.len(), 2);
    assert!(!request.is_empty());
    assert_eq!(request.args()[0], "GET");
    assert!(Request::default().is_empty());
    assert_eq!(request.clone().into_args().len(), 2);
}

#[test]
fn eof_with_partial_request_is_not_an_error() {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"PING\r\n*1\r\n$4\r\nPI"[..]);
    assert!(decoder.decode_eof(&mut buf).unwrap().is_some());
    assert!(decoder.decode_eof(&mut buf).unwrap().is_none());
}

#[test]
fn caller_truncating_the_buffer_does_not_panic() {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nk"[..]);
    assert!(decoder.decode(&mut buf).unwrap().is_none());
    buf.clear();
    buf.extend_from_slice(b"PING\r\n");
    assert_eq!(
        render(&decoder.decode(&mut buf).unwrap().unwrap()),
        r#"["PING"]"#
    );
}

#[test]
fn huge_declared_sizes_reserve_little() {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(b"*1000000000\r\n$536870912\r\nabc");
    assert!(decoder.decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() <= 128 * 1024, "capacity {}", buf.capacity());
}

#[test]
fn large_bulk_in_pieces() {
    let value = vec![b'x'; 1 << 20];
    let mut input = BytesMut::new();
    write_request(&mut input, &[&b"SET"[..], b"k", &value]);
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut got = None;
    for chunk in input.chunks(4096) {
        buf.extend_from_slice(chunk);
        if let Some(request) = decoder.decode(&mut buf).unwrap() {
            got = Some(request);
        }
    }
    let request = got.expect("request decoded");
    assert_eq!(request.args()[2].len(), value.len());
    assert!(buf.is_empty());
}

/// Encodes an argument for an inline request: plain if it is a simple word, else double-quoted
/// with `\xHH` escapes.
fn inline_arg(out: &mut Vec<u8>, arg: &[u8]) {
    if !arg.is_empty() && arg.iter().all(u8::is_ascii_alphanumeric) {
        out.extend_from_slice(arg);
        return;
    }
    out.push(b'"');
    for &b in arg {
        if b.is_ascii_alphanumeric() {
            out.push(b);
        } else {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
    }
    out.push(b'"');
}

fn requests() -> impl Strategy<Value = Vec<(bool, Vec<Vec<u8>>)>> {
    let arg = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..12),
        "[a-zA-Z0-9]{1,8}".prop_map(String::into_bytes),
    ];
    let request = (any::<bool>(), proptest::collection::vec(arg, 1..6));
    proptest::collection::vec(request, 1..6)
}

/// Cuts `input` at the given points (any order, any values).
fn split_at_points(input: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
    for p in &mut points {
        *p %= input.len() + 1;
    }
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for p in points {
        chunks.push(&input[last..p]);
        last = p;
    }
    chunks.push(&input[last..]);
    chunks
}

proptest! {
    #[test]
    fn random_requests_decode_the_same_however_split(
        reqs in requests(),
        points in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for (inline, args) in &reqs {
            if *inline {
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        input.push(b' ');
                    }
                    inline_arg(&mut input, arg);
                }
                input.extend_from_slice(b"\r\n");
            } else {
                let mut buf = BytesMut::new();
                write_request(&mut buf, args);
                input.extend_from_slice(&buf);
            }
            let request = Request::from_args(args.iter().map(|a| Bytes::copy_from_slice(a)));
            expected.push(render(&request));
        }
        let expected = expected.join("\n");
        prop_assert_eq!(&decode_whole(Limits::default(), &input), &expected);
        let chunks = split_at_points(&input, points);
        prop_assert_eq!(&decode_chunks(Limits::default(), chunks.clone()), &expected);
        prop_assert_eq!(&decode_chunks_reusing(Limits::default(), chunks), &expected);
    }

    #[test]
    fn arbitrary_bytes_decode_the_same_however_split(
        input in proptest::collection::vec(
            prop_oneof![
                Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'1'),
                Just(b'2'), Just(b'-'), Just(b' '), Just(b'"'), Just(b'\''), Just(b'\\'),
                Just(b'x'), Just(b'a'), Just(0u8), any::<u8>(),
            ],
            0..64,
        ),
        points in proptest::collection::vec(any::<usize>(), 0..8),
        small in any::<bool>(),
    ) {
        let limits = if small {
            Limits { max_inline_len: 4, max_bulk_len: 8, max_multibulk_len: 3 }
        } else {
            Limits::default()
        };
        let whole = decode_whole(limits, &input);
        prop_assert_eq!(&decode_chunks(limits, split_at_points(&input, points.clone())), &whole);
        prop_assert_eq!(&decode_bytewise(limits, &input), &whole);
        prop_assert_eq!(&decode_chunks_reusing(limits, split_at_points(&input, points)), &whole);
    }
}
