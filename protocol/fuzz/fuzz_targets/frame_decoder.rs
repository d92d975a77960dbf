//! Feeds arbitrary bytes to `FrameDecoder`, whole and split at a fuzzer-chosen point. It must
//! never panic, splitting must not change the result, and every decoded frame must re-encode
//! to bytes that decode and re-encode to the same bytes (encode is idempotent through decode).
//!
//! Input layout: bytes 0..2 the split point, the rest is the stream.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use shardcache_protocol::{Frame, FrameDecoder};
use tokio_util::codec::Decoder;

/// The frames (as their Debug text, so NaN compares equal), then the error text or leftover.
fn decode<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<Frame>, Result<usize, String>) {
    let mut decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Err(e.redis_message())),
            }
        }
    }
    (frames, Ok(buf.len()))
}

fuzz_target!(|data: &[u8]| {
    let (cut, input) = match data {
        [a, b, input @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), input),
        _ => (0, data),
    };
    let cut = cut % (input.len() + 1);
    let (frames, end) = decode([input]);
    let (split_frames, split_end) = decode([&input[..cut], &input[cut..]]);
    assert_eq!(
        format!("{frames:?}"),
        format!("{split_frames:?}"),
        "split at {cut}"
    );
    assert_eq!(end, split_end);

    for frame in &frames {
        let mut once = BytesMut::new();
        frame.encode(&mut once);
        let (again, end) = decode([&once[..]]);
        assert_eq!(end, Ok(0), "re-encoded frame must decode completely");
        let mut twice = BytesMut::new();
        for f in &again {
            f.encode(&mut twice);
        }
        assert_eq!(once, twice);
    }
});
