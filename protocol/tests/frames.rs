//! Reply decoding (`FrameDecoder`), `Frame::encode`, and the client codec, driven through one
//! `check(input, expected)` helper that also feeds the input one byte at a time.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use shardcache_protocol::{
    ClientCodec, Frame, FrameDecoder, Limits, Request, RequestEncoder, Version,
};
use tokio_util::codec::{Decoder, Encoder};

/// Decodes `chunks` in order; one line per frame (`{:?}`), then `error: ...` or
/// `incomplete: <n> bytes`.
fn decode_chunks<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut decoder = FrameDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => out.push(format!("{frame:?}")),
                Ok(None) => break,
                Err(e) => {
                    out.push(format!("error: {e}"));
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

#[track_caller]
fn check_with(limits: Limits, input: &[u8], expected: &str) {
    let whole = decode_chunks(limits, [input]);
    assert_eq!(
        whole,
        expected.trim(),
        "input: {:?}",
        input.escape_ascii().to_string()
    );
    assert_eq!(
        decode_chunks(limits, input.chunks(1)),
        whole,
        "byte-at-a-time differs"
    );
}

#[track_caller]
fn check(input: &[u8], expected: &str) {
    check_with(Limits::default(), input, expected);
}

#[test]
fn resp2_replies() {
    check(b"+OK\r\n", r#"Simple(b"OK")"#);
    check(b"-ERR no\r\n", r#"Error(b"ERR no")"#);
    check(b":-42\r\n", "Integer(-42)");
    check(b"$3\r\na\r\n\r\n", r#"Bulk(b"a\r\n")"#);
    check(b"$0\r\n\r\n", r#"Bulk(b"")"#);
    check(b"$-1\r\n*-1\r\n", "Null\nNull");
    check(b"*0\r\n", "Array([])");
    check(
        b"*3\r\n:1\r\n*1\r\n+a\r\n$-1\r\n",
        r#"Array([Integer(1), Array([Simple(b"a")]), Null])"#,
    );
    check(b"*2\r\n:1\r\n", "incomplete: 8 bytes");
    check(b"$5\r\nab", "incomplete: 6 bytes");
    check(b"+OK\r", "incomplete: 4 bytes");
}

#[test]
fn resp3_replies() {
    check(b"_\r\n", "Null");
    check(
        b"%1\r\n+k\r\n:1\r\n",
        r#"Map([(Simple(b"k"), Integer(1))])"#,
    );
    check(b"~2\r\n:1\r\n:2\r\n", "Set([Integer(1), Integer(2)])");
    check(
        b",1.5\r\n,inf\r\n,-inf\r\n,nan\r\n,1e300\r\n",
        "Double(1.5)\nDouble(inf)\nDouble(-inf)\nDouble(NaN)\nDouble(1e300)",
    );
    check(b"#t\r\n#f\r\n", "Boolean(true)\nBoolean(false)");
    check(
        b"=6\r\ntxt:hi\r\n",
        r#"Verbatim { format: [116, 120, 116], text: b"hi" }"#,
    );
    check(
        b"(-12345678901234567890\r\n",
        r#"BigNumber(b"-12345678901234567890")"#,
    );
    check(b"!5\r\nERR x\r\n", r#"Error(b"ERR x")"#);
    check(
        b">2\r\n+message\r\n$1\r\nx\r\n",
        r#"Push([Simple(b"message"), Bulk(b"x")])"#,
    );
    // A top-level attribute is its own frame, before the reply it annotates.
    check(
        b"|1\r\n+ttl\r\n:5\r\n$1\r\nv\r\n",
        r#"
Attribute([(Simple(b"ttl"), Integer(5))])
Bulk(b"v")"#,
    );
    // Nested attributes are skipped and are not elements.
    check(
        b"*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n|0\r\n:2\r\n",
        "Array([Integer(1), Integer(2)])",
    );
}

#[test]
fn malformed_replies() {
    check(
        b"?x\r\n",
        "error: ERR Protocol error: invalid reply type byte '?'",
    );
    check(
        b"\r\n",
        "error: ERR Protocol error: invalid reply type byte ' '",
    );
    check(b":abc\r\n", "error: ERR Protocol error: invalid integer");
    check(b":01\r\n", "error: ERR Protocol error: invalid integer");
    check(
        b"+OK\rX",
        "error: ERR Protocol error: line not ended by CRLF",
    );
    check(
        b"$3\r\nfooXY",
        "error: ERR Protocol error: bulk data not followed by CRLF",
    );
    check(b"$-2\r\n", "error: ERR Protocol error: invalid bulk length");
    check(
        b"*-2\r\n",
        "error: ERR Protocol error: invalid multibulk length",
    );
    check(
        b"%-1\r\n",
        "error: ERR Protocol error: invalid multibulk length",
    );
    check(
        b"*2147483648\r\n",
        "error: ERR Protocol error: invalid multibulk length",
    );
    check(b"_x\r\n", "error: ERR Protocol error: invalid null");
    check(b"#x\r\n", "error: ERR Protocol error: invalid boolean");
    check(b",x\r\n", "error: ERR Protocol error: invalid double");
    check(b"(1a\r\n", "error: ERR Protocol error: invalid big number");
    check(
        b"=2\r\nab\r\n",
        "error: ERR Protocol error: invalid verbatim string",
    );
    check(
        b"=4\r\nabcd\r\n",
        "error: ERR Protocol error: invalid verbatim string",
    );
    let deep = b"*1\r\n".repeat(200);
    check(&deep, "error: ERR Protocol error: reply nested too deep");
    let ok_depth = [b"*1\r\n".repeat(127), b":1\r\n".to_vec()].concat();
    assert!(decode_chunks(Limits::default(), [&ok_depth[..]]).starts_with("Array"));
    let small = Limits {
        max_inline_len: 4,
        max_bulk_len: 2,
        max_multibulk_len: 1,
    };
    check_with(small, b"+OKOK", "error: ERR Protocol error: line too long");
    check_with(small, b"+OKO\r\n", r#"Simple(b"OKO")"#);
    check_with(
        small,
        b"$3\r\n",
        "error: ERR Protocol error: invalid bulk length",
    );
    check_with(
        small,
        b"*2\r\n",
        "error: ERR Protocol error: invalid multibulk length",
    );
}

#[test]
fn partial_reply_at_eof_is_an_error() {
    let mut decoder = FrameDecoder::default();
    let mut buf = BytesMut::from(&b"$5\r\nab"[..]);
    assert!(decoder.decode_eof(&mut buf).is_err());
}

#[test]
fn resp2_encoding_of_resp3_frames() {
    let frame = Frame::Array(vec![
        Frame::Null,
        Frame::Map(vec![(
            Frame::Simple(Bytes::from_static(b"k")),
            Frame::Boolean(true),
        )]),
        Frame::Double(2.5),
        Frame::Attribute(vec![]),
        Frame::Verbatim {
            format: *b"txt",
            text: Bytes::from_static(b"hi"),
        },
    ]);
    let mut resp2 = BytesMut::new();
    frame.encode_with(&mut resp2, Version::Resp2);
    assert_eq!(
        &resp2[..],
        b"*4\r\n$-1\r\n*2\r\n+k\r\n:1\r\n$3\r\n2.5\r\n$2\r\nhi\r\n"
    );
    let mut resp3 = BytesMut::new();
    frame.encode(&mut resp3);
    assert_eq!(
        &resp3[..],
        b"*4\r\n_\r\n%1\r\n+k\r\n#t\r\n,2.5\r\n|0\r\n=6\r\ntxt:hi\r\n"
    );
}

#[test]
fn request_encoder_and_client_codec() {
    let mut buf = BytesMut::new();
    RequestEncoder.encode(&["SET", "k", "v"], &mut buf).unwrap();
    RequestEncoder
        .encode(&[&b"GET"[..], b"k"][..], &mut buf)
        .unwrap();
    RequestEncoder
        .encode(vec![Bytes::from_static(b"PING")], &mut buf)
        .unwrap();
    let request = Request::from_args([Bytes::from_static(b"QUIT")]);
    RequestEncoder.encode(&request, &mut buf).unwrap();
    assert_eq!(
        &buf[..],
        &b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n"[..]
    );

    let mut codec = ClientCodec::default();
    let mut out = BytesMut::new();
    codec.encode(&["PING"], &mut out).unwrap();
    assert_eq!(&out[..], b"*1\r\n$4\r\nPING\r\n");
    let mut input = BytesMut::from(&b"+PONG\r\n"[..]);
    assert_eq!(
        codec.decode(&mut input).unwrap(),
        Some(Frame::Simple(Bytes::from_static(b"PONG")))
    );
}

/// One line of text without CR or LF (simple strings, errors).
fn line() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..12,
    )
    .prop_map(Bytes::from)
}

fn blob() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

/// Frames that survive an encode/decode round trip: no NaN (NaN != NaN), and attributes only
/// at the top level (nested ones are skipped by design).
fn frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        line().prop_map(Frame::Simple),
        line().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        blob().prop_map(Frame::Bulk),
        Just(Frame::Null),
        any::<f64>()
            .prop_filter("NaN", |f| !f.is_nan())
            .prop_map(Frame::Double),
        Just(Frame::Double(f64::INFINITY)),
        Just(Frame::Double(f64::NEG_INFINITY)),
        any::<bool>().prop_map(Frame::Boolean),
        (any::<[u8; 3]>(), blob()).prop_map(|(format, text)| Frame::Verbatim { format, text }),
        "-?[0-9]{1,40}".prop_map(|s| Frame::BigNumber(Bytes::from(s))),
    ];
    let nested = leaf.prop_recursive(4, 64, 6, |inner| {
        let items = proptest::collection::vec(inner.clone(), 0..6);
        let pairs = proptest::collection::vec((inner.clone(), inner), 0..4);
        prop_oneof![
            items.clone().prop_map(Frame::Array),
            items.clone().prop_map(Frame::Set),
            items.prop_map(Frame::Push),
            pairs.prop_map(Frame::Map),
        ]
    });
    let pairs = proptest::collection::vec((nested.clone(), nested.clone()), 0..3);
    prop_oneof![4 => nested, 1 => pairs.prop_map(Frame::Attribute)]
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(
        frames in proptest::collection::vec(frame(), 1..4),
        cut in any::<proptest::sample::Index>(),
    ) {
        let mut buf = BytesMut::new();
        for f in &frames {
            f.encode(&mut buf);
        }
        let input = buf.freeze();
        let cut = cut.index(input.len() + 1);
        let expected: Vec<String> = frames.iter().map(|f| format!("{f:?}")).collect();
        let expected = expected.join("\n");
        prop_assert_eq!(&decode_chunks(Limits::default(), [&input[..]]), &expected);
        prop_assert_eq!(
            &decode_chunks(Limits::default(), [&input[..cut], &input[cut..]]),
            &expected
        );
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::from(&input[..]);
        for f in &frames {
            let decoded = decoder.decode(&mut buf).unwrap();
            prop_assert_eq!(decoded.as_ref(), Some(f));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_split_does_not_matter(
        input in proptest::collection::vec(
            prop_oneof![
                Just(b'*'), Just(b'$'), Just(b'%'), Just(b'|'), Just(b'>'), Just(b'='),
                Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'1'), Just(b'4'), Just(b'-'),
                Just(b':'), Just(b'+'), Just(b'_'), any::<u8>(),
            ],
            0..64,
        ),
        cut in any::<proptest::sample::Index>(),
    ) {
        let cut = cut.index(input.len() + 1);
        let whole = decode_chunks(Limits::default(), [&input[..]]);
        prop_assert_eq!(&decode_chunks(Limits::default(), [&input[..cut], &input[cut..]]), &whole);
        prop_assert_eq!(&decode_chunks(Limits::default(), input.chunks(1)), &whole);
    }
}
